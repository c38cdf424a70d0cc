using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Vsock.Net;

/// <summary>
/// A vsock address: a context id (CID) and a port, the <c>struct sockaddr_vm</c> of Linux
/// (<c>linux/vm_sockets.h</c>). Serializes to and from a 16-byte <see cref="SocketAddress"/> whose first
/// two bytes hold the Linux address family 40 (<c>AF_VSOCK</c>), so it works with the address-taking
/// methods of <see cref="Socket"/> on a socket made by <see cref="VsockSocket.Create"/>.
/// Owns only the address value and its wire layout; never opens a socket.
/// </summary>
public sealed class VsockEndPoint : EndPoint, IEquatable<VsockEndPoint>
{
    /// <summary>The size of <c>struct sockaddr_vm</c> in bytes.</summary>
    public const int SocketAddressSize = 16;

    /// <summary><c>VMADDR_CID_ANY</c>: bind to any local CID (listeners).</summary>
    public const uint AnyCid = uint.MaxValue;

    /// <summary><c>VMADDR_PORT_ANY</c>: let the kernel choose the port (bind).</summary>
    public const uint AnyPort = uint.MaxValue;

    /// <summary><c>VMADDR_CID_HYPERVISOR</c> (0): the hypervisor.</summary>
    public const uint HypervisorCid = 0;

    /// <summary><c>VMADDR_CID_LOCAL</c> (1): this machine, through the loopback transport.</summary>
    public const uint LocalCid = 1;

    /// <summary><c>VMADDR_CID_HOST</c> (2): the host, seen from a guest.</summary>
    public const uint HostCid = 2;

    /// <summary><c>VMADDR_FLAG_TO_HOST</c>: route the connection to the host even if the CID is a nested guest's.</summary>
    public const byte FlagToHost = 0x01;

    /// <summary>Creates an address.</summary>
    /// <param name="cid">The context id: <see cref="HostCid"/> from a guest, the guest's CID from the host, <see cref="AnyCid"/> to listen.</param>
    /// <param name="port">The port (any 32-bit value; <see cref="AnyPort"/> lets the kernel pick on bind).</param>
    /// <param name="flags">The <c>svm_flags</c> byte (<see cref="FlagToHost"/>), 0 normally.</param>
    public VsockEndPoint(uint cid, uint port, byte flags = 0)
    {
        Cid = cid;
        Port = port;
        Flags = flags;
    }

    /// <summary>The context id.</summary>
    public uint Cid { get; }

    /// <summary>The port.</summary>
    public uint Port { get; }

    /// <summary>The <c>svm_flags</c> byte.</summary>
    public byte Flags { get; }

    /// <summary>
    /// <see cref="AddressFamily.Unknown"/>: what the runtime reports as <see cref="Socket.AddressFamily"/> for an
    /// AF_VSOCK socket (it maps families it does not know to Unknown), so that <see cref="Socket"/> methods
    /// that compare the two (<see cref="Socket.ConnectAsync(EndPoint)"/>, <c>SendTo</c>) accept this endpoint.
    /// The kernel sees family 40 (<see cref="VsockSocket.AfVsock"/>) in the serialized address.
    /// </summary>
    public override AddressFamily AddressFamily => AddressFamily.Unknown;

    /// <summary>Writes the address as <c>struct sockaddr_vm</c> into <paramref name="destination"/>.</summary>
    /// <param name="destination">At least <see cref="SocketAddressSize"/> bytes.</param>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is too short.</exception>
    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < SocketAddressSize)
        {
            throw new ArgumentException($"A sockaddr_vm needs {SocketAddressSize} bytes.", nameof(destination));
        }

        destination[..SocketAddressSize].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(destination, VsockSocket.AfVsock);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Port);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Cid);
        destination[12] = Flags;
    }

    /// <summary>Reads a <c>struct sockaddr_vm</c>.</summary>
    /// <param name="source">The bytes the kernel returned (16 of them).</param>
    /// <param name="endPoint">The address, when the bytes are a vsock address.</param>
    /// <returns>False when <paramref name="source"/> is shorter than 16 bytes or its family is not 40.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VsockEndPoint? endPoint)
    {
        endPoint = null;
        if (source.Length < SocketAddressSize || BinaryPrimitives.ReadUInt16LittleEndian(source) != VsockSocket.AfVsock)
        {
            return false;
        }

        endPoint = new VsockEndPoint(
            BinaryPrimitives.ReadUInt32LittleEndian(source[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
            source[12]);
        return true;
    }

    /// <summary>
    /// The address as a 16-byte <see cref="SocketAddress"/>. The runtime cannot build a
    /// <see cref="SocketAddress"/> of a family it does not know, so it is created with
    /// <see cref="AddressFamily.Unknown"/> and its bytes are then overwritten with the
    /// <c>sockaddr_vm</c>, family 40 included: <see cref="SocketAddress.Family"/> reads back as
    /// <see cref="AddressFamily.Unknown"/> but the kernel sees <c>AF_VSOCK</c>.
    /// </summary>
    /// <returns>The serialized address.</returns>
    public override SocketAddress Serialize()
    {
        var address = new SocketAddress(AddressFamily.Unknown, SocketAddressSize);
        WriteTo(address.Buffer.Span);
        return address;
    }

    /// <summary>Reads an address from a <see cref="SocketAddress"/> the runtime filled in (accept, getpeername).</summary>
    /// <param name="socketAddress">A <c>sockaddr_vm</c>.</param>
    /// <returns>The address.</returns>
    /// <exception cref="ArgumentException">The bytes are not a vsock address.</exception>
    public override EndPoint Create(SocketAddress socketAddress)
    {
        ArgumentNullException.ThrowIfNull(socketAddress);
        ReadOnlySpan<byte> bytes = socketAddress.Buffer.Span[..Math.Min(socketAddress.Size, socketAddress.Buffer.Length)];
        return TryRead(bytes, out VsockEndPoint? endPoint)
            ? endPoint!
            : throw new ArgumentException("The socket address is not a 16-byte AF_VSOCK (40) sockaddr_vm.", nameof(socketAddress));
    }

    /// <summary>Equal when CID, port and flags are.</summary>
    /// <param name="other">The other address.</param>
    /// <returns>Whether they are equal.</returns>
    public bool Equals(VsockEndPoint? other) => other is not null && other.Cid == Cid && other.Port == Port && other.Flags == Flags;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as VsockEndPoint);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Cid, Port, Flags);

    /// <summary><c>vsock:CID:PORT</c> (the CID as <c>any</c> for <see cref="AnyCid"/>).</summary>
    /// <returns>The text.</returns>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"vsock:{(Cid == AnyCid ? "any" : Cid.ToString(CultureInfo.InvariantCulture))}:{Port}");
}
