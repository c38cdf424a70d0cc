namespace Virtio.Vsock.Testing;

/// <summary>Configuration of a <see cref="GuestSimulator"/>.</summary>
public sealed class GuestSimulatorOptions
{
    /// <summary>The size of each of the three queues. Default 256.</summary>
    public ushort QueueSize { get; set; } = 256;

    /// <summary>Negotiate VIRTIO_F_EVENT_IDX. Default true.</summary>
    public bool EventIdx { get; set; } = true;

    /// <summary>Negotiate VIRTIO_VSOCK_F_SEQPACKET. Default true.</summary>
    public bool SeqPacket { get; set; } = true;

    /// <summary>How TX packets are laid out. Default <see cref="GuestBufferLayout.Linear"/>.</summary>
    public GuestBufferLayout TxLayout { get; set; } = GuestBufferLayout.Linear;

    /// <summary>How RX buffers are laid out (<see cref="GuestBufferLayout.Linear"/>: one 44 + 4096 descriptor;
    /// otherwise header + 4096 data descriptors). Default linear.</summary>
    public GuestBufferLayout RxLayout { get; set; } = GuestBufferLayout.Linear;

    /// <summary>The payload size of an RX buffer. Default 4096 (Linux).</summary>
    public int RxBufferSize { get; set; } = 4096;

    /// <summary>The largest RW payload the guest sends in one packet. Default 64 KiB (Linux).</summary>
    public int MaxTxPayload { get; set; } = 64 * 1024;

    /// <summary>The guest's per-socket receive buffer (<c>buf_alloc</c>). Default 256 KiB (Linux).</summary>
    public uint BufferSize { get; set; } = 256 * 1024;

    /// <summary>How many bytes an application may queue for sending per socket before SendAsync waits. Default 256 KiB.</summary>
    public int SendBufferSize { get; set; } = 256 * 1024;

    /// <summary>How long a guest connect waits for RESPONSE. Default 2 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long Close waits for the device's RST before sending one. Default 2 s.</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Guest memory size. Default 64 MiB.</summary>
    public ulong MemorySize { get; set; } = 64UL * 1024 * 1024;

    /// <summary>Record every RX packet header in <see cref="GuestSimulator.ReceivedLog"/> (bounded to 100 000). Default false.</summary>
    public bool LogReceived { get; set; }
}
