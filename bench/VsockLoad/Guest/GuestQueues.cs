using Virtio.Memory;
using Virtio.Queue.Testing;

namespace VsockLoad.Guest;

/// <summary>What the guest driver works on: guest memory, the RX and TX queue drivers, the kick eventfds (-1: no kicks, for tests) and the guest CID.</summary>
/// <param name="Memory">The guest memory.</param>
/// <param name="Rx">The RX queue (0).</param>
/// <param name="Tx">The TX queue (1).</param>
/// <param name="RxKick">The RX kick eventfd, or -1.</param>
/// <param name="TxKick">The TX kick eventfd, or -1.</param>
/// <param name="GuestCid">The guest CID.</param>
internal sealed record GuestQueues(GuestMemory Memory, TestDriver Rx, TestDriver Tx, int RxKick, int TxKick, ulong GuestCid);
