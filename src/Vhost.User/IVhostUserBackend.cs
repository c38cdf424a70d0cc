using System.Runtime.InteropServices;
using Virtio.Memory;

namespace Vhost.User;

/// <summary>
/// A virtio device as the vhost-user protocol layer drives it. The device implements this interface;
/// <see cref="VhostUserConnection"/> (one frontend) and <see cref="VhostUserServer"/> (a listening socket)
/// translate protocol messages into these calls after validating them, so every value a backend receives
/// has already been range-checked.
/// </summary>
/// <remarks>
/// <para><b>Threading.</b> Two kinds of thread call a backend:</para>
/// <list type="bullet">
/// <item><description>The <em>control thread</em> of the connection calls everything except
/// <see cref="Kick"/>, one call at a time, in protocol order. A server serves one frontend at a time, so
/// control calls of two connections never overlap either.</description></item>
/// <item><description>One <em>kick thread</em> per started queue calls <see cref="Kick"/> for that queue
/// only, unless the backend took the queue's kick descriptor (<see cref="TryTakeKick"/>): that queue then has
/// no kick thread and no <see cref="Kick"/> calls. Kicks of different queues may run in parallel with each other and with control calls
/// (<see cref="SetMemory"/>, <see cref="SetFeatures"/>, <see cref="SetQueueEnabled"/>, and start/stop of
/// <em>other</em> queues). A queue's kicks never overlap its own <see cref="StartQueue"/>,
/// <see cref="StopQueue"/> or <see cref="Reset"/>: its kick thread starts after <see cref="StartQueue"/>
/// returned and is joined before <see cref="StopQueue"/> or <see cref="Reset"/> is called.</description></item>
/// </list>
/// <para>No call may block for long: a slow control call stalls the frontend (QEMU waits for replies),
/// and a slow <see cref="Kick"/> delays the next kick and the stop of its queue. Exceptions from a
/// backend are caught, logged and turned into an error reply; they never end the process.</para>
/// <para><b>Lifecycle.</b> A queue is <em>stopped</em> until <see cref="StartQueue"/>, <em>started but
/// disabled</em> until <see cref="SetQueueEnabled"/>(index, <see langword="true"/>), and
/// <em>stopped</em> again after <see cref="StopQueue"/> or <see cref="Reset"/>. A started, disabled queue
/// is processed without side effects (drain what the driver offers, supply nothing new), as the
/// vhost-user specification requires.</para>
/// </remarks>
public interface IVhostUserBackend
{
    /// <summary>
    /// The virtio feature bits the device offers (for example VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX).
    /// Bit 30 is reserved for the protocol and is ignored here; the protocol layer adds it.
    /// </summary>
    ulong Features { get; }

    /// <summary>
    /// The protocol features the device wants offered, for example
    /// <c>Mq | Config | ReplyAck | ConfigureMemSlots | ResetDevice</c>. Bits the protocol layer does not
    /// implement (<see cref="VhostUserConnection.SupportedProtocolFeatures"/>) are not advertised.
    /// </summary>
    VhostUserProtocolFeatures ProtocolFeatures { get; }

    /// <summary>The number of virtqueues the frontend may configure (1 to 256; queue indices are 0-based).</summary>
    int QueueCount { get; }

    /// <summary>The largest queue size accepted by <c>SET_VRING_NUM</c>: a power of two, at most 32768.</summary>
    ushort MaxQueueSize { get; }

    /// <summary>The driver's accepted virtio features (a subset of <see cref="Features"/>, bit 30 removed).</summary>
    /// <param name="acked">The accepted feature bits.</param>
    /// <remarks>Arrives before the queues start; may arrive again while they run.</remarks>
    void SetFeatures(ulong acked);

    /// <summary>Reads <c>destination.Length</c> bytes of the device configuration space at <paramref name="offset"/>.</summary>
    /// <param name="offset">The byte offset in the configuration space.</param>
    /// <param name="destination">Where the bytes go (1 to 256 bytes).</param>
    /// <returns><see langword="false"/> when the range is outside the configuration space; the frontend then gets an error reply.</returns>
    bool ReadConfig(uint offset, Span<byte> destination);

    /// <summary>Writes to the device configuration space (<c>SET_CONFIG</c>).</summary>
    /// <param name="offset">The byte offset in the configuration space.</param>
    /// <param name="source">The bytes (1 to 256).</param>
    /// <param name="migration"><see langword="true"/> when the frontend restores state during live migration,
    /// which may also set read-only fields; otherwise only fields the driver may write are accepted.</param>
    /// <returns><see langword="false"/> to refuse (read-only field, bad range).</returns>
    bool WriteConfig(uint offset, ReadOnlySpan<byte> source, bool migration);

    /// <summary>
    /// Hands over a new guest memory table (<c>SET_MEM_TABLE</c>, <c>ADD_MEM_REG</c>, <c>REM_MEM_REG</c>),
    /// or <see langword="null"/> when the frontend removed every region.
    /// </summary>
    /// <param name="memory">The new memory, or <see langword="null"/>.</param>
    /// <remarks>
    /// <para>The object is only guaranteed alive during this call. To keep using it, take a lease
    /// (<see cref="GuestMemory.TryAcquire"/>) before returning, move the queues over, and
    /// <see cref="GuestMemory.Release"/> the lease of the previous table once no queue uses it any more
    /// (and on <see cref="Reset"/>). The protocol layer drops its own reference right after this call; the
    /// host mapping of a region goes away when the last table using it is released, so a queue still
    /// working on the old table never touches unmapped memory.</para>
    /// <para>May arrive while queues run (memory hot-plug); ring addresses stay valid guest physical
    /// addresses. A started queue's rings are checked against the table current at its start only.</para>
    /// </remarks>
    void SetMemory(GuestMemory? memory);

    /// <summary>
    /// Starts queue <paramref name="index"/> (on <c>SET_VRING_KICK</c>). The queue starts disabled; the
    /// protocol layer calls <see cref="SetQueueEnabled"/> right after when it must run enabled.
    /// </summary>
    /// <param name="index">The queue index, below <see cref="QueueCount"/>; the queue is stopped.</param>
    /// <param name="config">Ring addresses (guest physical) and the next available index.</param>
    /// <param name="call">Signals the driver; valid until the queue stops (later calls do nothing harmful).</param>
    /// <remarks>Throwing refuses the start: the queue stays stopped.</remarks>
    void StartQueue(int index, VringConfig config, IVringNotifier call);

    /// <summary>
    /// Stops queue <paramref name="index"/> (<c>GET_VRING_BASE</c>) and returns the free-running index of
    /// the next available-ring entry it would have processed. Must return only when the queue is no longer
    /// processed: no further access to its rings, no further use of its notifier.
    /// </summary>
    /// <param name="index">A started queue.</param>
    /// <returns>The next available index, reported to the frontend so that the queue can resume there.</returns>
    ushort StopQueue(int index);

    /// <summary>Enables or disables a started queue (<c>SET_VRING_ENABLE</c>, or implicitly at start when the
    /// frontend did not negotiate protocol features).</summary>
    /// <param name="index">A started queue.</param>
    /// <param name="enabled">The new state.</param>
    void SetQueueEnabled(int index, bool enabled);

    /// <summary>
    /// The driver kicked queue <paramref name="index"/>: new available buffers may be there. Called on the
    /// queue's kick thread; also called once when the queue starts, as the driver may have added buffers
    /// before the kick eventfd was handed over. Must return quickly (typically: wake the queue's worker).
    /// </summary>
    /// <param name="index">A started queue.</param>
    void Kick(int index);

    /// <summary>
    /// Offers the backend the kick descriptor of queue <paramref name="index"/>, so that it waits on it itself (for
    /// example in the epoll loop of its device thread) instead of a kick thread calling <see cref="Kick"/>.
    /// </summary>
    /// <param name="index">A started queue.</param>
    /// <param name="kick">The kick descriptor the frontend sent: an eventfd (or the read end of a pipe), already
    /// non-blocking. Its number is <see cref="SafeHandle.DangerousGetHandle"/>.</param>
    /// <returns><see langword="true"/> when the backend took ownership of <paramref name="kick"/>;
    /// <see langword="false"/> (the default implementation) to keep today's kick thread.</returns>
    /// <remarks>
    /// <para><b>When.</b> On the control thread, when the frontend sends <c>SET_VRING_KICK</c> with a descriptor:
    /// right after <see cref="StartQueue"/> (and the implicit <see cref="SetQueueEnabled"/>) when the message starts
    /// the queue, or while the queue runs when the frontend replaces its kick descriptor.</para>
    /// <para><b>True: the backend owns the descriptor.</b> It waits for it to become readable, drains it (one 8-byte
    /// read of an eventfd; a pipe until EAGAIN) and processes the queue. The protocol layer starts no kick thread
    /// for the queue and never calls <see cref="Kick"/> for it, not even the initial kick a kick thread delivers at
    /// start: the backend processes the queue once after taking the descriptor, as the driver may have added buffers
    /// before handing it over. The backend stops waiting on the descriptor and disposes it, at the latest:
    /// <list type="bullet">
    /// <item><description>in <see cref="StopQueue"/> of that queue, before returning (<c>GET_VRING_BASE</c>);</description></item>
    /// <item><description>in <see cref="Reset"/> (disconnect, <c>RESET_OWNER</c>, <c>RESET_DEVICE</c>);</description></item>
    /// <item><description>when a later <see cref="TryTakeKick"/> for the same queue offers a replacement, whatever it
    /// answers (answering false then means the backend holds no kick for the queue and a kick thread takes
    /// over).</description></item>
    /// </list></para>
    /// <para><b>False: the protocol layer keeps the descriptor</b> and runs a kick thread that calls
    /// <see cref="Kick"/> as described in the threading remarks. The backend must neither keep nor dispose it.</para>
    /// <para><b>Throwing</b> refuses the message: the descriptor is closed (the backend must not keep it), and a
    /// queue this message was starting is stopped again with <see cref="StopQueue"/>.</para>
    /// </remarks>
    bool TryTakeKick(int index, SafeHandle kick) => false;

    /// <summary>
    /// Returns the device to its initial state: every queue stopped, memory released, negotiated features
    /// forgotten, and any host-side state (for vsock: every host connection of this guest) closed. Called
    /// when the frontend disconnects, and on <c>RESET_OWNER</c> / <c>RESET_DEVICE</c>. Must be idempotent.
    /// </summary>
    void Reset();
}
