
namespace Vhost.User.Tests;

/// <summary>Hostile or broken messages: refused with a log line (and an error reply where the protocol has one), never a crash; the connection goes on.</summary>
public sealed class MalformedMessageTests
{
    public enum Outcome
    {
        /// <summary>REPLY_ACK status with a non-zero value.</summary>
        AckError,

        /// <summary>Nothing comes back.</summary>
        NoReply,

        /// <summary>The mandatory reply comes back without payload.</summary>
        EmptyReply,

        /// <summary>A mandatory u64 status reply, non-zero.</summary>
        StatusError,
    }

    public static TheoryData<string> Cases =>
    [
        "version 0", "version 2", "version 3 with need-reply", "reply flag in request", "reserved flag bit",
        "payload above the known maximum", "wrong payload size", "short payload", "unknown request", "request 0",
        "log base refused", "vring endian refused", "iotlb refused", "inflight refused", "inband kick refused",
        "nine descriptors", "forty descriptors", "descriptor where none expected", "descriptor on a get",
        "queue index out of range", "get vring base index out of range", "kick index out of range",
        "queue size zero", "queue size not a power of two", "queue size above max", "queue size 65536",
        "vring base above 16 bits", "feature not offered", "protocol feature not offered", "kick without fd",
        "kick with a memfd", "kick reserved bits", "call with two fds", "config size zero", "config size 300",
        "config size mismatch", "set config bad flags", "status not offered", "get status not offered",
        "vring enable value 2", "kick before num", "kick before addr", "kick before memory",
    ];

    [Theory(Timeout = 30_000)]
    [MemberData(nameof(Cases))]
    public async Task MalformedMessageIsRefusedAndTheConnectionGoesOn(string which)
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        FakeFrontend frontend = harness.Frontend;
        int fd = harness.NewEventFd().Fd;
        byte[] ok8 = FakeFrontend.U64(0);
        VhostUserRequest request = VhostUserRequest.None;
        Outcome expected;
        switch (which)
        {
            case "version 0":
                frontend.SendRaw((uint)VhostUserRequest.GetFeatures, 0x0, 0, []);
                expected = Outcome.NoReply;
                break;
            case "version 2":
                frontend.SendRaw((uint)VhostUserRequest.GetFeatures, 0x2, 0, []);
                expected = Outcome.NoReply;
                break;
            case "version 3 with need-reply":
                frontend.SendRaw((uint)VhostUserRequest.SetOwner, 0xb, 8, ok8);
                expected = Outcome.NoReply;
                break;
            case "reply flag in request":
                frontend.SendRaw((uint)VhostUserRequest.GetFeatures, 0x5, 0, []);
                expected = Outcome.NoReply;
                break;
            case "reserved flag bit":
                frontend.SendRaw((uint)VhostUserRequest.GetFeatures, 0x101, 0, []);
                expected = Outcome.NoReply;
                break;
            case "payload above the known maximum":
                (request, expected) = (VhostUserRequest.SetFeatures, Outcome.AckError);
                frontend.Send(request, new byte[1000], true);
                break;
            case "wrong payload size":
                (request, expected) = (VhostUserRequest.SetVringNum, Outcome.AckError);
                frontend.Send(request, new byte[12], true);
                break;
            case "short payload":
                (request, expected) = (VhostUserRequest.SetVringAddr, Outcome.AckError);
                frontend.Send(request, new byte[39], true);
                break;
            case "unknown request":
                frontend.SendRaw(99, 0x9, 8, ok8);
                (request, expected) = ((VhostUserRequest)99, Outcome.AckError);
                break;
            case "request 0":
                (request, expected) = (VhostUserRequest.None, Outcome.AckError);
                frontend.Send(request, [], true);
                break;
            case "log base refused":
                (request, expected) = (VhostUserRequest.SetLogBase, Outcome.AckError);
                frontend.Send(request, new byte[16], true, fd);
                break;
            case "vring endian refused":
                (request, expected) = (VhostUserRequest.SetVringEndian, Outcome.AckError);
                frontend.Send(request, FakeFrontend.State(0, 1), true);
                break;
            case "iotlb refused":
                (request, expected) = (VhostUserRequest.IotlbMsg, Outcome.StatusError);
                frontend.Send(request, new byte[32]);
                break;
            case "inflight refused":
                (request, expected) = (VhostUserRequest.GetInflightFd, Outcome.EmptyReply);
                frontend.Send(request, new byte[20]);
                break;
            case "inband kick refused":
                (request, expected) = (VhostUserRequest.VringKick, Outcome.AckError);
                frontend.Send(request, FakeFrontend.State(0, 0), true);
                break;
            case "nine descriptors":
                (request, expected) = (VhostUserRequest.SetVringCall, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(0), true, Enumerable.Range(0, 9).Select(_ => harness.NewEventFd().Fd).ToArray());
                break;
            case "forty descriptors":
                (request, expected) = (VhostUserRequest.SetVringCall, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(0), true, Enumerable.Range(0, 40).Select(_ => harness.NewEventFd().Fd).ToArray());
                break;
            case "descriptor where none expected":
                (request, expected) = (VhostUserRequest.SetOwner, Outcome.AckError);
                frontend.Send(request, [], true, fd);
                break;
            case "descriptor on a get":
                (request, expected) = (VhostUserRequest.GetFeatures, Outcome.EmptyReply);
                frontend.Send(request, [], false, fd);
                break;
            case "queue index out of range":
                (request, expected) = (VhostUserRequest.SetVringNum, Outcome.AckError);
                frontend.Send(request, FakeFrontend.State(2, 64), true);
                break;
            case "get vring base index out of range":
                (request, expected) = (VhostUserRequest.GetVringBase, Outcome.EmptyReply);
                frontend.Send(request, FakeFrontend.State(200, 0));
                break;
            case "kick index out of range":
                (request, expected) = (VhostUserRequest.SetVringKick, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(255), true, fd);
                break;
            case "queue size zero":
                (request, expected) = (VhostUserRequest.SetVringNum, Outcome.AckError);
                frontend.Send(request, FakeFrontend.State(0, 0), true);
                break;
            case "queue size not a power of two":
                (request, expected) = (VhostUserRequest.SetVringNum, Outcome.AckError);
                frontend.Send(request, FakeFrontend.State(0, 100), true);
                break;
            case "queue size above max":
                (request, expected) = (VhostUserRequest.SetVringNum, Outcome.AckError);
                frontend.Send(request, FakeFrontend.State(0, 512), true);
                break;
            case "queue size 65536":
                (request, expected) = (VhostUserRequest.SetVringNum, Outcome.AckError);
                frontend.Send(request, FakeFrontend.State(0, 65536), true);
                break;
            case "vring base above 16 bits":
                (request, expected) = (VhostUserRequest.SetVringBase, Outcome.AckError);
                frontend.Send(request, FakeFrontend.State(0, 0x1_0000), true);
                break;
            case "feature not offered":
                (request, expected) = (VhostUserRequest.SetFeatures, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(1UL << 40), true);
                break;
            case "protocol feature not offered":
                (request, expected) = (VhostUserRequest.SetProtocolFeatures, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64((ulong)(Harness.AllProtocolFeatures | VhostUserProtocolFeatures.LogShmfd)), true);
                break;
            case "kick without fd":
                (request, expected) = (VhostUserRequest.SetVringKick, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(0x100), true);
                break;
            case "kick with a memfd":
                (request, expected) = (VhostUserRequest.SetVringKick, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(0), true, harness.RamFd);
                break;
            case "kick reserved bits":
                (request, expected) = (VhostUserRequest.SetVringKick, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(0x200), true, fd);
                break;
            case "call with two fds":
                (request, expected) = (VhostUserRequest.SetVringCall, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(0), true, fd, fd);
                break;
            case "config size zero":
                (request, expected) = (VhostUserRequest.GetConfig, Outcome.EmptyReply);
                frontend.Send(request, FakeFrontend.ConfigRequest(0, 0));
                break;
            case "config size 300":
                (request, expected) = (VhostUserRequest.GetConfig, Outcome.EmptyReply);
                frontend.Send(request, FakeFrontend.ConfigRequest(0, 300));
                break;
            case "config size mismatch":
                (request, expected) = (VhostUserRequest.GetConfig, Outcome.EmptyReply);
                frontend.Send(request, FakeFrontend.ConfigRequest(0, 8)[..16]);
                break;
            case "set config bad flags":
                (request, expected) = (VhostUserRequest.SetConfig, Outcome.AckError);
                frontend.Send(request, FakeFrontend.ConfigRequest(0, 8, 7), true);
                break;
            case "status not offered":
                (request, expected) = (VhostUserRequest.SetStatus, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(0xf), true);
                break;
            case "get status not offered":
                (request, expected) = (VhostUserRequest.GetStatus, Outcome.EmptyReply);
                frontend.Send(request, []);
                break;
            case "vring enable value 2":
                (request, expected) = (VhostUserRequest.SetVringEnable, Outcome.AckError);
                frontend.Send(request, FakeFrontend.State(0, 2), true);
                break;
            case "kick before num":
                (request, expected) = (VhostUserRequest.SetVringKick, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(0), true, fd);
                break;
            case "kick before addr":
                frontend.Send(VhostUserRequest.SetVringNum, FakeFrontend.State(0, 64));
                (request, expected) = (VhostUserRequest.SetVringKick, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(0), true, fd);
                break;
            case "kick before memory":
                Assert.Equal(0UL, frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));
                frontend.Send(VhostUserRequest.SetVringNum, FakeFrontend.State(0, 64));
                var (descriptors, available, used) = Harness.RingUser(0);
                Assert.Equal(0UL, frontend.Ack(VhostUserRequest.SetVringAddr, FakeFrontend.Address(0, descriptors, used, available)));
                var removed = Harness.RamRegion;
                Assert.Equal(0UL, frontend.Ack(VhostUserRequest.RemMemReg, FakeFrontend.SingleRegion(removed)));
                (request, expected) = (VhostUserRequest.SetVringKick, Outcome.AckError);
                frontend.Send(request, FakeFrontend.U64(0), true, fd);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(which));
        }

        switch (expected)
        {
            case Outcome.AckError:
            case Outcome.StatusError:
                Assert.NotEqual(0UL, frontend.ReceiveReplyTo(request).U64);
                break;
            case Outcome.EmptyReply:
                Assert.Empty(frontend.ReceiveReplyTo(request).Payload);
                break;
            case Outcome.NoReply:
                frontend.AssertNoReplyPending(); // a refused header must not be answered
                break;
        }

        Assert.True(harness.Logger.Lines.Any(line => line.Level == Microsoft.Extensions.Logging.LogLevel.Warning && line.Message.Contains("refused", StringComparison.Ordinal)), harness.Logger.Dump());

        // The connection goes on and the device was not disturbed.
        Assert.Equal(2UL, frontend.GetU64(VhostUserRequest.GetQueueNum));
        Assert.Equal(0, harness.Backend.ResetCount);
        Assert.Empty(harness.Backend.Started);
    }

    [Fact(Timeout = 30_000)]
    public async Task OversizedMessageClosesTheConnectionAndTheNextFrontendIsServed()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        harness.Frontend.SendRaw((uint)VhostUserRequest.SetFeatures, 0x1, 1_000_000, new byte[64]);
        Assert.True(harness.Frontend.WaitClosed(TimeSpan.FromSeconds(10)), "the backend must close after a size it cannot frame");
        Harness.WaitUntil(() => harness.Backend.ResetCount == 1, "reset after the oversized message");
        Assert.True(harness.Logger.Contains("exceeds the 4096-byte limit"), harness.Logger.Dump());

        harness.Reconnect();
        harness.Handshake();
    }

    [Fact(Timeout = 30_000)]
    public async Task TruncatedMessageThenHangUpResetsTheDevice()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        harness.Frontend.SendRaw((uint)VhostUserRequest.SetMemTable, 0x1, 40, new byte[10], harness.RamFd);
        harness.Frontend.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        Assert.True(harness.Frontend.WaitClosed(TimeSpan.FromSeconds(10)));
        Harness.WaitUntil(() => harness.Backend.ResetCount == 1, "reset after hang-up");
        Assert.Null(harness.Backend.Memory);
        Harness.WaitUntil(() => harness.Logger.Contains("frontend closed the connection while reading a message payload"), "the disconnect log line");
    }

    [Fact(Timeout = 30_000)]
    public async Task MessagesSplitAcrossWritesAreReassembled()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        byte[] message = new byte[20];
        BitConverter.TryWriteBytes(message.AsSpan(0), (uint)VhostUserRequest.SetVringNum);
        BitConverter.TryWriteBytes(message.AsSpan(4), 0x9u);
        BitConverter.TryWriteBytes(message.AsSpan(8), 8u);
        FakeFrontend.State(1, 32).CopyTo(message, 12);
        foreach (byte b in message)
        {
            Assert.Equal(0, SocketChannel.SendWithFds((int)harness.Frontend.Socket.SafeHandle.DangerousGetHandle(), [b], []));

            // The backend read this byte on its own before the next is written: the message really arrives in pieces.
            Harness.WaitUntil(() => UnixSocketQueue.UnreadByPeer(harness.Frontend.Socket) == 0, "the backend to read the byte");
        }

        Assert.Equal(0UL, harness.Frontend.ReceiveReplyTo(VhostUserRequest.SetVringNum).U64);
    }
}
