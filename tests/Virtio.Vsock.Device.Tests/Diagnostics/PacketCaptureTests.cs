using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using Virtio.Vsock.Device.Diagnostics.Capture;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Device.Tests.UnixBackend;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Diagnostics;

/// <summary>Packet capture: pcap files with LINKTYPE_VSOCK, read back by tshark; the ring never blocks the device nor grows.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PacketCaptureTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact(Timeout = 60_000)]
    public async Task TsharkDissectsAHostConnectionEchoedByTheGuest()
    {
        const ulong cid = 0x52_0001;
        await using var h = new UnixBackendHarness(new VsockDeviceOptions { GuestCid = cid });
        string path = Path.Combine(h.Directory, "cap.pcap");
        var capture = VsockPacketCapture.CreateFile(path, snapLength: 8);
        h.Device.PacketTap = capture;

        using GuestListener listener = h.Guest.Listen(5300);
        Task echo = Task.Run(async () => await HostIo.EchoAsync(await listener.AcceptAsync(Token), Token), Token);
        (Socket host, uint hostPort) = await h.ConnectToGuestAsync(5300, token: Token);
        using (host)
        {
            await host.SendAsync("hi"u8.ToArray(), SocketFlags.None, Token);
            Assert.Equal("hi"u8.ToArray(), await UnixTestSockets.ReadExactlyOrEofAsync(host, 2));
            await host.SendAsync("hello vsock"u8.ToArray(), SocketFlags.None, Token);
            Assert.Equal("hello vsock"u8.ToArray(), await UnixTestSockets.ReadExactlyOrEofAsync(host, 11));
            host.Shutdown(SocketShutdown.Send);
            Assert.Empty(await UnixTestSockets.ReadToEndAsync(host));
            await echo;
        }

        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Device.ConnectionCount == 0));
        h.Device.PacketTap = null;
        long captured = capture.Captured;
        capture.Dispose();
        Assert.Equal(0, capture.Dropped);
        Assert.Null(capture.Error);
        Assert.Equal((UnixFileMode.UserRead | UnixFileMode.UserWrite), File.GetUnixFileMode(path));

        List<string[]> packets = await Tshark.ReadAsync(path, Token);
        Assert.Equal(captured, packets.Count);
        // [0] vsockmon op, [1] virtio op, [2] src cid, [3] dst cid, [4] src port, [5] dst port, [6] len, [7] type,
        // [8] payload (only when not truncated), [9] bytes on the wire, [10] bytes captured.
        string[] request = packets[0];
        Assert.Equal(["1", "1", "2", $"{cid}", $"{hostPort}", "5300", "0", "1"], request[..8]);
        string[] response = packets.First(p => p[1] == "2");
        Assert.Equal(["1", $"{cid}", "2", "5300", $"{hostPort}"], [response[0], .. response[2..6]]);

        // RW both ways: vsockmon op PAYLOAD (4), the packet's whole length; payloads up to the snap length (8) whole.
        List<string[]> rw = packets.Where(p => p[1] == "5").ToList();
        foreach (string from in (string[])["2", $"{cid}"])
        {
            Assert.Contains(rw, p => p[0] == "4" && p[2] == from && p[6] == "2" && p[8] == "6869" && p[9] == "78" && p[10] == "78");
            Assert.Contains(rw, p => p[0] == "4" && p[2] == from && p[6] == "11" && p[9] == "87" && p[10] == "84");
        }

        Assert.Equal(13, rw.Where(p => p[2] == "2").Sum(p => int.Parse(p[6], CultureInfo.InvariantCulture)));

        // The close: SHUTDOWN and RST are DISCONNECT (2); credit packets are CONTROL (3).
        Assert.Contains(packets, p => p[1] == "4" && p[0] == "2");
        Assert.Contains(packets, p => p[1] == "3" && p[0] == "2");
        Assert.All(packets.Where(p => p[1] is "6" or "7"), p => Assert.Equal("3", p[0]));
    }

    [Fact(Timeout = 30_000)]
    public async Task AFullRingDropsAndCountsInsteadOfWaitingForTheFile()
    {
        using var slow = new GatedStream();
        var capture = new VsockPacketCapture(slow, snapLength: 100, ringBytes: 1024);
        byte[] header = new byte[VsockHeader.Size];
        new VsockHeader { SrcCid = 3, DstCid = 2, SrcPort = 0, DstPort = 2, Len = 100, Type = VsockType.Stream, Op = VsockOp.Rw }.Write(header);
        VsockPacket packet = VsockPacket.FromBuffers(header, new byte[100]);

        // The writer gets stuck writing the first record: the 1 KiB ring takes a few 192-byte records, then drops.
        capture.OnPacket(packet, fromGuest: true);
        await Task.Run(() => slow.WaitUntilWriting(TimeSpan.FromSeconds(10)), Token).WaitAsync(TimeSpan.FromSeconds(15), Token);
        for (int i = 1; i < 100; i++)
        {
            packet.SetSrcPort((uint)i);
            capture.OnPacket(packet, fromGuest: true);
        }

        Assert.Equal(100, capture.Captured + capture.Dropped);
        Assert.InRange(capture.Captured, 1, 1024 / 192);
        slow.Open();
        await Task.Run(capture.Dispose, Token).WaitAsync(TimeSpan.FromSeconds(10), Token);

        // Every captured record reached the stream, in order, after the 24-byte file header.
        byte[] bytes = slow.Written;
        Assert.Equal(VsockMonRecord.FileHeaderSize + (capture.Captured * 192), bytes.Length);
        Assert.Equal(271u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(20)));
        for (int i = 0; i < capture.Captured; i++)
        {
            int record = VsockMonRecord.FileHeaderSize + (i * 192);
            Assert.Equal(76u + 100u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(record + 8)));
            Assert.Equal((uint)i, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(record + 16 + 16)));
        }
    }

    /// <summary>A stream whose writes after the file header block until <see cref="Open"/> (span writes of a derived MemoryStream arrive as array writes).</summary>
    private sealed class GatedStream : MemoryStream
    {
        private readonly ManualResetEventSlim _open = new(false);
        private readonly ManualResetEventSlim _writing = new(false);
        private int _writes;

        public byte[] Written => ToArray();

        public void Open() => _open.Set();

        public void WaitUntilWriting(TimeSpan timeout) => Assert.True(_writing.Wait(timeout));

        public override void Write(byte[] buffer, int offset, int count)
        {
            Block();
            base.Write(buffer, offset, count);
        }

        private void Block()
        {
            if (Interlocked.Increment(ref _writes) > 1)
            {
                _writing.Set();
                _open.Wait();
            }
        }

        protected override void Dispose(bool disposing)
        {
            // Kept readable for the test; the events go with the test.
            base.Dispose(false);
        }
    }
}
