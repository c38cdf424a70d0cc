using System.Diagnostics;
using System.Net.Sockets;
using VsockLoad.Frontend;
using VsockLoad.Guest;
using VsockLoad.Host;
using VsockLoad.Report;

namespace VsockLoad.Scenarios;

/// <summary>
/// The single-threaded loop every mode runs: guest RX and TX processing, then one <c>poll</c> over the two
/// call eventfds and the host sockets (sleeping only when nothing progressed, with notifications enabled
/// the way Linux's virtqueue callbacks are), then host socket I/O. Subclasses say what the guest and
/// the host peer do. Owns the host sockets and the listener.
/// </summary>
internal abstract unsafe class Scenario : IGuestApp, IDisposable
{
    private const short PollIn = 0x1;
    private const short PollOut = 0x4;
    private const short PollErrHup = 0x8 | 0x10;

    private Interop.Sys.PollFd[] _pollFds = new Interop.Sys.PollFd[8];
    private HostEnd?[] _pollHosts = new HostEnd?[8];
    private string? _listenerPath;
    private bool _hostProgress;

    /// <summary>Creates the scenario.</summary>
    /// <param name="options">The run's options.</param>
    /// <param name="checks">Where violations go.</param>
    /// <param name="cpuTicks">Reads the backend's CPU time, all and in the kernel, in clock ticks (or returns -1s).</param>
    protected Scenario(LoadOptions options, Checks checks, Func<(long Total, long Kernel)> cpuTicks)
    {
        Options = options;
        Checks = checks;
        CpuTicks = cpuTicks;
    }

    /// <summary>The options.</summary>
    protected LoadOptions Options { get; }

    /// <summary>Violations and checked bytes.</summary>
    protected Checks Checks { get; }

    /// <summary>The backend CPU clock.</summary>
    protected Func<(long Total, long Kernel)> CpuTicks { get; }

    /// <summary>The guest driver (set by <see cref="Run"/>).</summary>
    protected VsockGuest Guest { get; private set; } = null!;

    /// <summary>The host sockets.</summary>
    protected List<HostEnd> Hosts { get; } = [];

    /// <summary>A listener on <c>uds_path_port</c>, when the mode has one.</summary>
    protected Socket? Listener { get; private set; }

    /// <summary>Scratch space for host reads and writes.</summary>
    protected byte[] Scratch { get; } = new byte[256 * 1024];

    /// <summary>Set when the mode is done.</summary>
    protected bool Finished { get; set; }

    /// <summary>Start of the timed window (Stopwatch ticks), 0 before.</summary>
    public long StartTicks { get; private set; }

    /// <summary>End of the timed window.</summary>
    public long EndTicks { get; private set; }

    /// <summary>Backend CPU ticks at the start.</summary>
    public long CpuStart { get; private set; } = -1;

    /// <summary>Backend CPU ticks at the end.</summary>
    public long CpuEnd { get; private set; } = -1;

    /// <summary>Backend kernel CPU ticks at the start of the window, or -1.</summary>
    public long KernelCpuStart { get; private set; } = -1;

    /// <summary>Backend kernel CPU ticks at the end of the window, or -1.</summary>
    public long KernelCpuEnd { get; private set; } = -1;

    /// <summary>Process CPU time of the load generator itself at the start of the window.</summary>
    public TimeSpan DriverCpuStart { get; private set; }

    /// <summary>Process CPU time of the load generator itself at the end of the window.</summary>
    public TimeSpan DriverCpuEnd { get; private set; }

    /// <summary>Times the loop slept a whole poll timeout (no notification, no socket event) with work pending.</summary>
    public long IdleTimeouts { get; private set; }

    /// <summary>Idle timeouts after which used buffers were found that no call notification announced
    /// (with notifications enabled): a missed or late call (late is possible on a loaded machine).</summary>
    public long LateNotifications { get; private set; }

    /// <summary>Loop iterations in the timed window.</summary>
    public long Iterations { get; private set; }

    /// <summary>Bytes the load generator allocated in the timed window (all threads).</summary>
    public long AllocatedBytes { get; private set; }

    /// <summary>Bytes of the cold-start window: the first 64 MiB after the connection opened.</summary>
    public const long ColdWindowBytes = 64L << 20;

    /// <summary>When the stream's first byte was sent (Stopwatch ticks), 0 before.</summary>
    public long StreamOpenedTicks { get; private set; }

    /// <summary>When the receiver had the first <see cref="ColdWindowBytes"/>, 0 before (or never).</summary>
    public long ColdWindowEndTicks { get; private set; }

    /// <summary>Bytes (or operations) the timed window covers.</summary>
    public long MeasuredUnits { get; protected set; }

    /// <summary>Whether every connection ended with the RST / close exchange.</summary>
    public bool CleanClose { get; protected set; }

    /// <summary>The guest counters, after the run.</summary>
    public GuestCounters Counters => Guest.Counters;

    /// <summary>Runs the mode against a started device until done or <paramref name="timeout"/>.</summary>
    /// <param name="device">The device.</param>
    /// <param name="timeout">The deadline for the whole mode.</param>
    public void Run(DeviceSession device, TimeSpan timeout)
    {
        WarmHostPath(Scratch, Options.WriteSize);
        Guest = new VsockGuest(device.Queues, this, Checks);
        Guest.DisableInterrupts();
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        Begin();
        while (!Finished)
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                Checks.Add(Violation.Timeout, $"not finished after {timeout.TotalSeconds} s: {Progress()}");
                break;
            }

            if (Guest.Broken)
            {
                break;
            }

            if (StartTicks != 0 && EndTicks == 0)
            {
                Iterations++;
            }

            bool progress = Guest.ProcessRx() > 0;
            progress |= Guest.PumpTx();
            progress |= _hostProgress;
            _hostProgress = false;
            Tick();
            int wait = 0;
            if (!progress && !Finished)
            {
                wait = Guest.EnableInterrupts() ? 0 : (Guest.HasQueuedSenders ? 10 : 50);
            }

            PollOnce(device, wait);
            if (wait != 0 || !progress)
            {
                Guest.DisableInterrupts();
            }
        }
    }

    /// <summary>
    /// Runs the tool's own host-side path once over a private Unix socket pair before any backend traffic:
    /// the pattern table, the scratch buffer's pages and the socket send and receive paths. The cold-start
    /// window is meant to show the backend's cold start; without this it also held the tool's first touch
    /// of each (about 1 ms of a 35 ms window at 4 KiB guest->host).
    /// </summary>
    /// <param name="scratch">The scratch buffer the host ends use.</param>
    /// <param name="writeSize">The run's write size.</param>
    private static void WarmHostPath(byte[] scratch, int writeSize)
    {
        string directory = Directory.CreateTempSubdirectory("vsockload-warm-").FullName;
        try
        {
            string path = Path.Combine(directory, "s");
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            client.Connect(new UnixDomainSocketEndPoint(path));
            using HostEnd writer = HostEnd.Accepted(client);
            using HostEnd reader = HostEnd.Accepted(listener.Accept());
            writer.WriteSize = Math.Clamp(writeSize, 1, scratch.Length);
            writer.TxTarget = 4L * scratch.Length;
            var checks = new Checks();
            while (reader.RxOffset < writer.TxTarget && !reader.PeerClosed)
            {
                writer.Write(scratch);
                reader.Read(scratch, checks);
            }

            if (checks.Total != 0 || reader.RxOffset != writer.TxTarget)
            {
                throw new InvalidOperationException("the tool's warm-up stream did not arrive intact: " + string.Join("; ", checks.Messages));
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <inheritdoc/>
    public abstract GuestConnection? Accept(uint localPort, uint peerPort);

    /// <inheritdoc/>
    public virtual void Established(GuestConnection connection)
    {
    }

    /// <inheritdoc/>
    public virtual void Received(GuestConnection connection, int length)
    {
    }

    /// <inheritdoc/>
    public virtual void Closed(GuestConnection connection)
    {
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (HostEnd end in Hosts)
        {
            end.Dispose();
        }

        Hosts.Clear();
        Listener?.Dispose();
        if (_listenerPath is not null)
        {
            File.Delete(_listenerPath);
        }
    }

    /// <summary>Starts the mode (connect, listen).</summary>
    protected abstract void Begin();

    /// <summary>Called once per loop iteration.</summary>
    protected virtual void Tick()
    {
    }

    /// <summary>A description of how far the mode got (for a timeout).</summary>
    /// <returns>The description.</returns>
    protected abstract string Progress();

    /// <summary>A host socket was accepted on the listener.</summary>
    /// <param name="end">The new end (already in <see cref="Hosts"/>).</param>
    protected virtual void HostAccepted(HostEnd end)
    {
    }

    /// <summary>A host end got its OK line.</summary>
    /// <param name="end">The end.</param>
    protected virtual void HostConnected(HostEnd end)
    {
    }

    /// <summary>A host end read payload bytes.</summary>
    /// <param name="end">The end.</param>
    /// <param name="length">How many.</param>
    protected virtual void HostReceived(HostEnd end, int length)
    {
    }

    /// <summary>The backend closed a host end.</summary>
    /// <param name="end">The end.</param>
    protected virtual void HostClosed(HostEnd end)
    {
    }

    /// <summary>Listens on <c>uds_path_port</c> (guest-initiated connections land there).</summary>
    /// <param name="port">The host port.</param>
    protected void Listen(uint port)
    {
        _listenerPath = $"{Options.UdsPath}_{port}";
        File.Delete(_listenerPath);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(_listenerPath));
        listener.Listen(256);
        listener.Blocking = false;
        Listener = listener;
    }

    /// <summary>Closes and forgets a host end.</summary>
    /// <param name="end">The end.</param>
    protected void CloseHost(HostEnd end)
    {
        Hosts.Remove(end);
        end.Dispose();
    }

    /// <summary>Marks the moment the stream starts (for the cold-start window).</summary>
    protected void MarkStreamOpened()
    {
        if (StreamOpenedTicks == 0)
        {
            StreamOpenedTicks = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Notes the receiver's stream offset; closes the cold-start window when it passes 64 MiB.</summary>
    /// <param name="received">Bytes received so far.</param>
    protected void NoteReceived(long received)
    {
        if (ColdWindowEndTicks == 0 && received >= ColdWindowBytes)
        {
            ColdWindowEndTicks = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Marks the start of the timed window.</summary>
    protected void MarkStart()
    {
        if (StartTicks == 0)
        {
            DriverCpuStart = Environment.CpuUsage.TotalTime;
            AllocatedBytes = -GC.GetTotalAllocatedBytes(precise: true);
            StartTicks = Stopwatch.GetTimestamp();
            (CpuStart, KernelCpuStart) = CpuTicks();
        }
    }

    /// <summary>Marks the end of the timed window.</summary>
    protected void MarkEnd()
    {
        if (EndTicks == 0)
        {
            EndTicks = Stopwatch.GetTimestamp();
            (CpuEnd, KernelCpuEnd) = CpuTicks();
            DriverCpuEnd = Environment.CpuUsage.TotalTime;
            AllocatedBytes += GC.GetTotalAllocatedBytes(precise: true);
        }
    }

    /// <summary>Writes what a host end has to send, counting progress.</summary>
    /// <param name="end">The end.</param>
    protected void HostWrite(HostEnd end)
    {
        if (end.Write(Scratch) > 0)
        {
            _hostProgress = true;
        }
    }

    private void PollOnce(DeviceSession device, int timeoutMs)
    {
        int needed = 3 + Hosts.Count;
        if (_pollFds.Length < needed)
        {
            _pollFds = new Interop.Sys.PollFd[needed * 2];
            _pollHosts = new HostEnd?[needed * 2];
        }

        int count = 0;
        Add(device.RxCall, PollIn, null);
        Add(device.TxCall, PollIn, null);
        if (Listener is not null)
        {
            Add((int)Listener.Handle, PollIn, null);
        }

        int firstHost = count;
        foreach (HostEnd end in Hosts)
        {
            if (!end.PeerClosed)
            {
                Add(end.Fd, (short)(PollIn | (end.WantsWrite ? PollOut : 0)), end);
            }
        }

        int ready;
        fixed (Interop.Sys.PollFd* fds = _pollFds)
        {
            ready = Interop.Sys.Poll(fds, (nuint)count, timeoutMs);
        }

        if (ready <= 0)
        {
            if (ready == 0 && timeoutMs > 0 && StartTicks != 0 && EndTicks == 0)
            {
                IdleTimeouts++;
                if (Guest.HasUsedPending)
                {
                    LateNotifications++;
                }
            }

            return;
        }

        if (_pollFds[0].ReturnedEvents != 0)
        {
            DeviceSession.Drain(device.RxCall);
        }

        if (_pollFds[1].ReturnedEvents != 0)
        {
            DeviceSession.Drain(device.TxCall);
        }

        if (Listener is not null && _pollFds[2].ReturnedEvents != 0)
        {
            try
            {
                var end = HostEnd.Accepted(Listener.Accept());

                Hosts.Add(end);
                HostAccepted(end);
                _hostProgress = true;
            }
            catch (SocketException)
            {
                // another wake-up will retry
            }
        }

        for (int i = firstHost; i < count; i++)
        {
            short revents = _pollFds[i].ReturnedEvents;
            HostEnd end = _pollHosts[i]!;
            if (revents == 0 || !Hosts.Contains(end))
            {
                continue;
            }

            if ((revents & (PollIn | PollErrHup)) != 0)
            {
                bool awaiting = end.AwaitingOk;
                int read = end.Read(Scratch, Checks);
                if (awaiting && !end.AwaitingOk)
                {
                    HostConnected(end);
                }

                if (read > 0)
                {
                    _hostProgress = true;
                    HostReceived(end, read);
                }

                if (end.PeerClosed)
                {
                    HostClosed(end);
                    continue;
                }
            }

            if ((revents & PollOut) != 0 && Hosts.Contains(end))
            {
                HostWrite(end);
            }
        }

        void Add(int fd, short events, HostEnd? end)
        {
            _pollFds[count] = new Interop.Sys.PollFd { Fd = fd, Events = events, ReturnedEvents = 0 };
            _pollHosts[count] = end;
            count++;
        }
    }
}
