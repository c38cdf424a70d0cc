using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Vsock.Net.Tests;

/// <summary>The sockaddr_vm layout (linux/vm_sockets.h) and the EndPoint contract, without any socket.</summary>
public sealed class VsockEndPointTests
{
    [Fact]
    public void Serialize_writes_struct_sockaddr_vm()
    {
        SocketAddress address = new VsockEndPoint(0x1234_5678, 0x9abc_def0, VsockEndPoint.FlagToHost).Serialize();
        Assert.Equal(16, address.Size);
        ReadOnlySpan<byte> b = address.Buffer.Span[..16];
        Assert.Equal(40, BinaryPrimitives.ReadUInt16LittleEndian(b));        // svm_family = AF_VSOCK
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(b[2..]));    // svm_reserved1
        Assert.Equal(0x9abc_def0u, BinaryPrimitives.ReadUInt32LittleEndian(b[4..])); // svm_port
        Assert.Equal(0x1234_5678u, BinaryPrimitives.ReadUInt32LittleEndian(b[8..])); // svm_cid
        Assert.Equal(1, b[12]);                                               // svm_flags
        Assert.True(b[13..16].IndexOfAnyExcept((byte)0) < 0);                 // svm_zero
    }

    [Theory]
    [InlineData(0u, 0u)]
    [InlineData(2u, 1024u)]
    [InlineData(3u, 5000u)]
    [InlineData(VsockEndPoint.AnyCid, VsockEndPoint.AnyPort)]
    public void Create_reads_back_what_Serialize_wrote(uint cid, uint port)
    {
        var endPoint = new VsockEndPoint(cid, port);
        EndPoint back = endPoint.Create(endPoint.Serialize());
        Assert.Equal(endPoint, back);
        Assert.Equal(endPoint.GetHashCode(), back.GetHashCode());
        var vsock = Assert.IsType<VsockEndPoint>(back);
        Assert.Equal(cid, vsock.Cid);
        Assert.Equal(port, vsock.Port);
    }

    [Fact]
    public void Create_rejects_an_address_of_another_family_or_too_short()
    {
        var endPoint = new VsockEndPoint(3, 1);
        Assert.Throws<ArgumentException>(() => endPoint.Create(new IPEndPoint(IPAddress.Loopback, 80).Serialize()));
        Assert.Throws<ArgumentException>(() => endPoint.Create(new UnixDomainSocketEndPoint("/tmp/x").Serialize()));
        Assert.False(VsockEndPoint.TryRead(new byte[15], out _));
        byte[] bytes = new byte[16];
        new VsockEndPoint(3, 1).WriteTo(bytes);
        bytes[0] = 41;
        Assert.False(VsockEndPoint.TryRead(bytes, out _));
    }

    [Fact]
    public void WriteTo_refuses_a_short_buffer_and_clears_the_padding()
    {
        Assert.Throws<ArgumentException>(() => new VsockEndPoint(3, 1).WriteTo(new byte[15]));
        byte[] dirty = Enumerable.Repeat((byte)0xff, 20).ToArray();
        new VsockEndPoint(3, 1).WriteTo(dirty);
        Assert.True(dirty.AsSpan(13, 3).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(0xff, dirty[16]); // nothing past the 16 bytes
    }

    [Fact]
    public void Well_known_cids_ports_and_family_are_the_uapi_values()
    {
        Assert.Equal(uint.MaxValue, VsockEndPoint.AnyCid);
        Assert.Equal(uint.MaxValue, VsockEndPoint.AnyPort);
        Assert.Equal(0u, VsockEndPoint.HypervisorCid);
        Assert.Equal(1u, VsockEndPoint.LocalCid);
        Assert.Equal(2u, VsockEndPoint.HostCid);
        Assert.Equal(40, VsockSocket.AfVsock);
        Assert.Equal((AddressFamily)40, VsockSocket.AddressFamily);
        // What the runtime reports for AF_VSOCK sockets, so Socket.ConnectAsync(EndPoint) accepts the endpoint.
        Assert.Equal(AddressFamily.Unknown, new VsockEndPoint(2, 1).AddressFamily);
    }

    [Fact]
    public void Equality_and_text()
    {
        Assert.Equal(new VsockEndPoint(3, 5000), new VsockEndPoint(3, 5000));
        Assert.NotEqual(new VsockEndPoint(3, 5000), new VsockEndPoint(4, 5000));
        Assert.NotEqual(new VsockEndPoint(3, 5000), new VsockEndPoint(3, 5001));
        Assert.NotEqual(new VsockEndPoint(3, 5000), new VsockEndPoint(3, 5000, VsockEndPoint.FlagToHost));
        Assert.Equal("vsock:3:5000", new VsockEndPoint(3, 5000).ToString());
        Assert.Equal("vsock:any:80", new VsockEndPoint(VsockEndPoint.AnyCid, 80).ToString());
    }
}
