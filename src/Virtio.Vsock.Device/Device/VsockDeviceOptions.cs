using Microsoft.Extensions.Logging;
using Virtio.Vsock.Device.Siblings;

namespace Virtio.Vsock.Device;

/// <summary>Configuration of a <see cref="VsockDevice"/>. Validated when the device is created.</summary>
public sealed class VsockDeviceOptions
{
    /// <summary>The guest's context id (config space <c>guest_cid</c>). Reserved CIDs (0, 1, 2, 0xffffffff, above 32 bits) are rejected.</summary>
    public ulong GuestCid { get; set; } = 3;

    /// <summary>The receive buffer we advertise per connection (<c>buf_alloc</c>), and the most guest-to-host
    /// bytes we ever hold for one connection. Default 64 KiB; 4 KiB to 16 MiB.</summary>
    public uint BufferSize { get; set; } = 64 * 1024;

    /// <summary>The largest payload of one packet, either direction (<c>max_data_size</c>). Default 64 KiB.</summary>
    public uint MaxPacketData { get; set; } = 64 * 1024;

    /// <summary>The most connections at once, either direction; requests beyond it get RST. Default 1023 (Firecracker's).</summary>
    public int MaxConnections { get; set; } = 1023;

    /// <summary>How long a connection attempt may wait for the other side. Default 2 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a close may wait for the guest's RST, or for the host to take more of the data the guest sent
    /// before closing (counted from the host's last progress, so a slow reader is not cut off). Default 2 s.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a connection that ran out of the guest's credit waits for the guest's own CREDIT_UPDATE
    /// before it sends CREDIT_REQUEST (then twice as long before each further request of the same stall, up to
    /// 64 times this). A Linux guest updates by itself as its reader frees space, so a request is rarely
    /// needed. Default 100 ms.</summary>
    public TimeSpan CreditRequestDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The most RSTs for unknown connections held while the guest posts no RX buffers; TX processing
    /// pauses when it is full. Default 256.</summary>
    public int MaxPendingResets { get; set; } = 256;

    /// <summary>The most TX chains handled per loop turn before other work gets a chance. Default 256.</summary>
    public int TxBatch { get; set; } = 256;

    /// <summary>
    /// The longest the device's loop polls for its next event before it sleeps, once events have been arriving that
    /// soon after it ran out of work (adaptive polling, as QEMU's <c>poll-max-ns</c>: the loop polls only as long as
    /// recent waits show it pays, and an idle device sleeps). Polling spares the wake-up of a sleeping thread, which a
    /// request/response exchange pays on every message (on a virtual machine host it costs tens of microseconds of
    /// latency), at the price of CPU time spent polling while busy. Default 32 us; <see cref="TimeSpan.Zero"/> turns
    /// polling off; at most 1 ms.
    /// </summary>
    public TimeSpan PollMax { get; set; } = DefaultPollMax;

    /// <summary>The default <see cref="PollMax"/>: 32 us, QEMU's default for its I/O threads.</summary>
    public static TimeSpan DefaultPollMax { get; } = TimeSpan.FromMicroseconds(32);

    /// <summary>The largest <see cref="PollMax"/> accepted: 1 ms.</summary>
    public static TimeSpan MaxPollMax { get; } = TimeSpan.FromMilliseconds(1);

    /// <summary>The most messages a SEQPACKET connection buffers toward a slow host. Default 256.</summary>
    public int MaxBufferedMessages { get; set; } = 256;

    /// <summary>The most bytes the device holds for its guest at once, over all connections: guest-to-host data the
    /// host endpoints have not taken yet, and payloads queued for sibling guests. A connection whose data would
    /// pass it is reset (counted in <see cref="VsockMetrics.BufferLimitResets"/>). Default: 1/16 of the memory
    /// available to the process, between 64 MiB and 2 GiB.</summary>
    public long MaxBufferedBytes { get; set; } = DefaultMaxBufferedBytes();

    /// <summary>The CID map shared with the devices whose guests this guest may reach by CID (sibling
    /// communication), or <see langword="null"/> (default) when the guest reaches only the host. The device joins
    /// the map under <see cref="GuestCid"/> when created (a CID already in the map is refused) and leaves it when
    /// disposed.</summary>
    public VsockCidMap? Siblings { get; set; }

    /// <summary>The sibling groups of this guest: it reaches the guests of the <see cref="Siblings"/> map that have
    /// a group in common with it. Default: <see cref="VsockCidMap.DefaultGroup"/> alone.</summary>
    public IReadOnlyCollection<string> SiblingGroups { get; set; } = [VsockCidMap.DefaultGroup];

    /// <summary>Optional logger.</summary>
    public ILogger? Logger { get; set; }

    internal void Validate()
    {
        if (!VsockCid.IsValidGuestCid(GuestCid))
        {
            throw new ArgumentOutOfRangeException(nameof(GuestCid), GuestCid, "Reserved or out-of-range guest CID (must be 3..0xfffffffe).");
        }

        if (BufferSize < 4096 || BufferSize > 16 * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(BufferSize), BufferSize, "Buffer size must be 4 KiB to 16 MiB.");
        }

        if (MaxPacketData < 4096 || MaxPacketData > 16 * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPacketData), MaxPacketData, "Max packet data must be 4 KiB to 16 MiB.");
        }

        if (MaxConnections < 1 || MaxPendingResets < 1 || TxBatch < 1 || MaxBufferedMessages < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConnections), "Limits must be positive.");
        }

        if (ConnectTimeout <= TimeSpan.Zero || ShutdownTimeout <= TimeSpan.Zero || CreditRequestDelay <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ConnectTimeout), "Timeouts must be positive.");
        }

        if (PollMax < TimeSpan.Zero || PollMax > MaxPollMax)
        {
            throw new ArgumentOutOfRangeException(nameof(PollMax), PollMax, "The polling maximum must be from 0 to 1 ms.");
        }

        if (MaxBufferedBytes < BufferSize)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBufferedBytes), MaxBufferedBytes, "The buffered-bytes limit must hold at least one connection's buffer (BufferSize).");
        }

        if (Siblings is not null && (SiblingGroups is null || SiblingGroups.Count == 0 || SiblingGroups.Any(string.IsNullOrEmpty)))
        {
            throw new ArgumentOutOfRangeException(nameof(SiblingGroups), "A device in a CID map needs at least one non-empty sibling group.");
        }
    }

    private static long DefaultMaxBufferedBytes() =>
        Math.Clamp(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 16, 64L << 20, 2L << 30);
}
