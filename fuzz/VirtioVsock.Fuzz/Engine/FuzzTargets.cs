using VirtioVsock.Fuzz.Corpus;
using VirtioVsock.Fuzz.Targets;

namespace VirtioVsock.Fuzz.Engine;

/// <summary>Every fuzz target, by name.</summary>
public static class FuzzTargets
{
    /// <summary>The targets, in the order <c>list</c> shows them.</summary>
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new("packet-tx", "TX chains from a raw guest memory image: VirtQueue pop + VsockPacket.TryParseTx + data helpers", PacketTargets.PacketTx, PacketSeeds.Tx),
        new("packet-rx", "RX chains from a raw guest memory image: VirtQueue pop + VsockPacket.TryParseRx + data helpers", PacketTargets.PacketRx, PacketSeeds.Rx),
        new("connect-line", "the host's CONNECT <port>\\n handshake parser, fed in chunks", ConnectLineTarget.Run, ConnectLineSeeds.All),
        new("device-tx", "a VsockDevice (in-process backend) fed raw TX chains through the guest simulator", DeviceTxTarget.Run, DeviceTxSeeds.All),
        new("vhost-user-message", "a vhost-user message stream from a QEMU-like frontend to a VhostUserConnection", VhostUserMessageTarget.Run, VhostUserSeeds.All),
    ];

    /// <summary>Finds a target by name.</summary>
    /// <param name="name">The name.</param>
    /// <returns>The target, or null.</returns>
    public static FuzzTarget? Find(string name) => All.FirstOrDefault(target => target.Name == name);
}
