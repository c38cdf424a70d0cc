using Vhost.User;
using VirtioVsock.Fuzz.Vhost;

namespace VirtioVsock.Fuzz.Corpus;

/// <summary>Seeds for <c>vhost-user-message</c>: QEMU's start sequence for vhost-user-vsock, memory slots,
/// resets, the legacy (no protocol features) start, and malformed headers.</summary>
internal static class VhostUserSeeds
{
    private const ulong Features = (1UL << 32) | (1UL << 29) | (1UL << 0);
    private const ulong ProtocolBit = 1UL << 30;

    public static IReadOnlyList<(string Name, byte[] Data)> All()
    {
        const ulong Protocol = (ulong)(VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config
            | VhostUserProtocolFeatures.ConfigureMemSlots | VhostUserProtocolFeatures.ResetDevice | VhostUserProtocolFeatures.Status);
        const ulong User = VhostMessages.UserBase;
        const ulong Ram = VhostMessages.RamSize;
        return
        [
            ("qemu-start-stop", Handshake(0x40, Protocol)
                .U64(VhostRequest.SetFeatures, Features | ProtocolBit)
                .MemTable((0, Ram, User, 0))
                .StartRing(0)
                .StartRing(1)
                .State(VhostRequest.SetVringEnable, 0, 1, needReply: true)
                .State(VhostRequest.SetVringEnable, 1, 1, needReply: true)
                .U64(VhostRequest.SetStatus, 0xf, needReply: true)
                .Message(VhostRequest.GetStatus)
                .State(VhostRequest.GetVringBase, 0, 0)
                .State(VhostRequest.GetVringBase, 1, 0)
                .Message(VhostRequest.ResetDevice)
                .Build()),
            ("memory-slots", Handshake(0x20, Protocol)
                .Message(VhostRequest.GetMaxMemSlots)
                .U64(VhostRequest.SetFeatures, Features | ProtocolBit)
                .MemRegion(VhostRequest.AddMemReg, 0, Ram, User, 0)
                .MemRegion(VhostRequest.AddMemReg, 0x1000_0000, 0x10000, User + 0x1000_0000, 0x2000)
                .StartRing(0)
                .MemRegion(VhostRequest.RemMemReg, 0x1000_0000, 0x10000, User + 0x1000_0000, 0x2000)
                .MemTable((0, Ram / 2, User, 0), (Ram / 2, Ram / 2, User + (Ram / 2), 0x1000))
                .State(VhostRequest.GetVringBase, 0, 0)
                .Build()),
            ("reset-and-config", Handshake(0x00, Protocol)
                .Message(VhostRequest.ResetOwner)
                .Config(VhostRequest.GetConfig, 4, 4)
                .Config(VhostRequest.GetConfig, 6, 8)
                .Config(VhostRequest.SetConfig, 0, 8)
                .Message(VhostRequest.GetQueueNum)
                .State(VhostRequest.SetVringNum, 2, 256)
                .State(VhostRequest.SetVringBase, 0, 0x10000)
                .U64(VhostRequest.SetVringCall, 0x100)
                .Build()),
            ("legacy-start", new VhostMessages(0x41)
                .Message(VhostRequest.GetFeatures)
                .Message(VhostRequest.SetOwner)
                .U64(VhostRequest.SetFeatures, Features)
                .MemTable((0, Ram, User, 0))
                .StartRing(0, 64)
                .StartRing(1, 1024)
                .State(VhostRequest.GetVringBase, 1, 0)
                .Build()),
            ("malformed-headers", new VhostMessages(0x1c)
                .Message(VhostRequest.GetFeatures, flags: 0)
                .Message(VhostRequest.GetFeatures, flags: 0x5)
                .Message(VhostRequest.SetOwner, new byte[8], flags: 0x9)
                .Message((VhostRequest)99, new byte[8], needReply: true)
                .MemTable((0, Ram, User, 0), (0x800, Ram, User + Ram, 0))
                .Raw([(byte)VhostRequest.GetFeatures, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0, 0])
                .Build()),
        ];
    }

    private static VhostMessages Handshake(byte options, ulong protocol) => new VhostMessages(options)
        .Message(VhostRequest.GetFeatures)
        .Message(VhostRequest.GetProtocolFeatures)
        .U64(VhostRequest.SetProtocolFeatures, protocol)
        .Message(VhostRequest.GetQueueNum)
        .Message(VhostRequest.SetOwner)
        .Config(VhostRequest.GetConfig, 0, 8);
}
