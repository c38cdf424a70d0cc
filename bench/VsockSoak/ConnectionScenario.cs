using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Virtio.Vsock;
using Virtio.Vsock.Testing;

namespace VsockSoak;

/// <summary>
/// One soak connection from connect to close: connects in the given direction (the initiator sends an
/// 8-byte id first, so stale sockets from failed attempts are told apart), moves pattern streams both ways
/// and ends the connection in the given <see cref="CloseMode"/>, then judges it: every byte of an orderly
/// connection must arrive, no byte anywhere may be wrong, and nothing may outlive its deadline. Owns the
/// connection's two ends; it must never leave either open.
/// </summary>
internal sealed class ConnectionScenario
{
    private const int MinAbortiveSize = 256 * 1024;

    private readonly SoakRig _rig;
    private readonly SoakTally _tally;
    private readonly SoakOptions _options;
    private readonly ConcurrentDictionary<long, LiveConnection> _live;

    public ConnectionScenario(SoakRig rig, SoakTally tally, SoakOptions options, ConcurrentDictionary<long, LiveConnection> live)
    {
        _rig = rig;
        _tally = tally;
        _options = options;
        _live = live;
    }

    /// <summary>Runs one connection.</summary>
    public async Task RunAsync(int worker, long id, bool guestToHost, CloseMode mode, Random random, Memory<byte>[] buffers)
    {
        int epochAtStart = _rig.Epoch;
        using var deadline = new CancellationTokenSource(_options.ConnectionDeadline);
        using var live = new LiveConnection();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, live.Grace.Token);
        CancellationToken token = linked.Token;
        _live[id] = live;
        _tally.OnStarted(guestToHost);
        string what = $"conn {id} worker {worker} {(guestToHost ? "g->h" : "h->g")} {mode}";
        try
        {
            (GuestEnd? guest, HostEnd? host) = guestToHost
                ? await ConnectFromGuestAsync(worker, id, token).ConfigureAwait(false)
                : await ConnectFromHostAsync(worker, id, token).ConfigureAwait(false);
            if (guest is null || host is null)
            {
                guest?.Dispose();
                host?.Dispose();
                if (Excused(live, epochAtStart))
                {
                    _tally.OnExcusedConnectFailure();
                }
                else
                {
                    _tally.OnConnectFailure($"{what}: connect failed{(deadline.IsCancellationRequested ? " (deadline)" : string.Empty)}");
                }

                return;
            }

            using (guest)
            using (host)
            {
                await ExchangeAsync(what, guest, host, id, mode, random, buffers, deadline, live, epochAtStart, token).ConfigureAwait(false);
            }
        }
        finally
        {
            _live.TryRemove(id, out _);
        }
    }

    private bool Excused(LiveConnection live, int epochAtStart) => live.Overlapped || _rig.Epoch != epochAtStart || (epochAtStart & 1) != 0;

    private async Task ExchangeAsync(
        string what, GuestEnd guest, HostEnd host, long id, CloseMode mode, Random random, Memory<byte>[] buffers,
        CancellationTokenSource deadline, LiveConnection live, int epochAtStart, CancellationToken token)
    {
        long toHost = PickSize(random);
        long toGuest = PickSize(random);
        if (!CloseModes.IsOrderly(mode))
        {
            toHost = Math.Max(toHost, MinAbortiveSize);
            toGuest = Math.Max(toGuest, MinAbortiveSize);
        }

        ulong seedToHost = Mix((ulong)id, 1);
        ulong seedToGuest = Mix((ulong)id, 2);
        long stopAt = 1 + random.NextInt64(Math.Max(1, (mode == CloseMode.GuestResetMidTransfer ? toGuest : toHost) - 1));
        var guestRandom = new Random(random.Next());
        var hostRandom = new Random(random.Next());
        var guestClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var hostClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        async Task<(long Sent, ReceiveResult Received)> GuestSide()
        {
            try
            {
                switch (mode)
                {
                    case CloseMode.OrderlyGuestFirst:
                    case CloseMode.OrderlyHostFirst:
                        {
                            Task<long> send = SendThenShutdownAsync(guest, seedToHost, toHost, buffers[0], guestRandom, token);
                            ReceiveResult received = await Transfer.ReceiveAsync(guest, seedToGuest, buffers[1], token).ConfigureAwait(false);
                            long sent = await send.ConfigureAwait(false);
                            if (mode == CloseMode.OrderlyHostFirst)
                            {
                                await hostClosed.Task.WaitAsync(token).ConfigureAwait(false);
                            }

                            await guest.CloseAsync().ConfigureAwait(false);
                            return (sent, received);
                        }

                    case CloseMode.GuestResetMidTransfer:
                        {
                            Task<long> send = Transfer.SendAsync(guest, seedToHost, toHost, buffers[0], guestRandom, token);
                            ReceiveResult received = await Transfer.ReceiveAsync(guest, seedToGuest, buffers[1], token, stopAt).ConfigureAwait(false);
                            guest.Abort();
                            return (await send.ConfigureAwait(false), received);
                        }

                    case CloseMode.HostCloseMidTransfer:
                        {
                            Task<long> send = Transfer.SendAsync(guest, seedToHost, toHost, buffers[0], guestRandom, token);
                            ReceiveResult received = await Transfer.ReceiveAsync(guest, seedToGuest, buffers[1], token).ConfigureAwait(false);
                            long sent = await send.ConfigureAwait(false);
                            await guest.CloseAsync().ConfigureAwait(false);
                            return (sent, received);
                        }

                    default:
                        {
                            ReceiveResult received = await Transfer.ReceiveAsync(guest, seedToGuest, buffers[1], token).ConfigureAwait(false);
                            long sent = await Transfer.SendAsync(guest, seedToHost, toHost, buffers[0], guestRandom, token).ConfigureAwait(false);
                            await guest.CloseAsync().ConfigureAwait(false);
                            return (sent, received);
                        }
                }
            }
            finally
            {
                guestClosed.TrySetResult();
            }
        }

        async Task<(long Sent, ReceiveResult Received)> HostSide()
        {
            try
            {
                switch (mode)
                {
                    case CloseMode.OrderlyGuestFirst:
                    case CloseMode.OrderlyHostFirst:
                        {
                            Task<long> send = SendThenShutdownAsync(host, seedToGuest, toGuest, buffers[2], hostRandom, token);
                            ReceiveResult received = await Transfer.ReceiveAsync(host, seedToHost, buffers[3], token).ConfigureAwait(false);
                            long sent = await send.ConfigureAwait(false);
                            if (mode == CloseMode.OrderlyGuestFirst)
                            {
                                await guestClosed.Task.WaitAsync(token).ConfigureAwait(false);
                            }

                            host.Dispose();
                            return (sent, received);
                        }

                    case CloseMode.HostCloseMidTransfer:
                        {
                            Task<long> send = Transfer.SendAsync(host, seedToGuest, toGuest, buffers[2], hostRandom, token);
                            ReceiveResult received = await Transfer.ReceiveAsync(host, seedToHost, buffers[3], token, stopAt).ConfigureAwait(false);
                            host.Dispose();
                            return (await send.ConfigureAwait(false), received);
                        }

                    case CloseMode.GuestResetMidTransfer:
                        {
                            Task<long> send = Transfer.SendAsync(host, seedToGuest, toGuest, buffers[2], hostRandom, token);
                            ReceiveResult received = await Transfer.ReceiveAsync(host, seedToHost, buffers[3], token).ConfigureAwait(false);
                            host.Dispose();
                            return (await send.ConfigureAwait(false), received);
                        }

                    default:
                        {
                            long sent = await SendThenShutdownAsync(host, seedToGuest, toGuest, buffers[2], hostRandom, token).ConfigureAwait(false);
                            ReceiveResult received = await Transfer.ReceiveAsync(host, seedToHost, buffers[3], token).ConfigureAwait(false);
                            host.Dispose();
                            return (sent, received);
                        }
                }
            }
            finally
            {
                hostClosed.TrySetResult();
            }
        }

        Task<(long Sent, ReceiveResult Received)> guestTask = Task.Run(GuestSide);
        Task<(long Sent, ReceiveResult Received)> hostTask = Task.Run(HostSide);
        bool finished = true;
        try
        {
            // The tasks watch the token themselves; this outer bound only catches one that does not.
            await Task.WhenAll(guestTask, hostTask).WaitAsync(_options.ConnectionDeadline + _options.Timeout + TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            finished = false;
        }
        catch (Exception exception) when (guestTask.IsCompleted && hostTask.IsCompleted)
        {
            _ = exception;
        }

        if (!finished || guestTask.IsFaulted || hostTask.IsFaulted || guestTask.IsCanceled || hostTask.IsCanceled)
        {
            guest.Abort();
            host.Abort();
            string why = !finished ? "did not end (hard timeout)" : $"guest: {Describe(guestTask)}; host: {Describe(hostTask)}";
            Judge(what, mode, live, epochAtStart, deadline, stuck: !finished || deadline.IsCancellationRequested, $"{why}");
            return;
        }

        (long guestSent, ReceiveResult guestReceived) = guestTask.Result;
        (long hostSent, ReceiveResult hostReceived) = hostTask.Result;
        _tally.OnCompleted(mode, hostReceived.Received, guestReceived.Received);
        string detail = $"to host {toHost} (sent {guestSent}, received {hostReceived}), to guest {toGuest} (sent {hostSent}, received {guestReceived}), guest reset={guest.Socket.WasReset}";
        if (guestReceived.BadOffset >= 0 || hostReceived.BadOffset >= 0)
        {
            _tally.OnCorrupted($"{what}: wrong byte: {detail}");
        }

        if (live.Overlapped && hostReceived.End is StreamEnd.EndOfStream or StreamEnd.Reset)
        {
            _tally.OnHostClosedByReset();
        }

        bool canceled = guestReceived.End == StreamEnd.Canceled || hostReceived.End == StreamEnd.Canceled;
        if (canceled)
        {
            Judge(what, mode, live, epochAtStart, deadline, stuck: deadline.IsCancellationRequested, $"receive canceled: {detail}");
            return;
        }

        if (CloseModes.IsOrderly(mode))
        {
            bool complete = guestSent == toHost && hostSent == toGuest
                && hostReceived is { End: StreamEnd.EndOfStream } && hostReceived.Received == toHost
                && guestReceived is { End: StreamEnd.EndOfStream } && guestReceived.Received == toGuest;
            if (complete)
            {
                _tally.OnOrderlyVerified();
            }
            else if (!Excused(live, epochAtStart))
            {
                _tally.OnOrderlyFailure($"{what}: bytes lost or connection reset: {detail}");
            }
        }
        else
        {
            _tally.OnAbortiveEndedCleanly();
        }
    }

    private void Judge(string what, CloseMode mode, LiveConnection live, int epochAtStart, CancellationTokenSource deadline, bool stuck, string why)
    {
        if (Excused(live, epochAtStart) && !deadline.IsCancellationRequested)
        {
            _tally.OnOrphaned();
            return;
        }

        if (stuck)
        {
            _tally.OnStuck($"{what}: stuck: {why}; device connections {_rig.Device.ConnectionCount}");
        }
        else if (CloseModes.IsOrderly(mode) && !Excused(live, epochAtStart))
        {
            _tally.OnOrderlyFailure($"{what}: failed: {why}");
        }
    }

    private static string Describe(Task<(long Sent, ReceiveResult Received)> task) =>
        task.IsCompletedSuccessfully ? $"sent {task.Result.Sent}, received {task.Result.Received}"
        : task.IsCanceled ? "canceled"
        : task.Exception?.GetBaseException().GetType().Name + ": " + task.Exception?.GetBaseException().Message;

    private static async Task<long> SendThenShutdownAsync(ISoakEnd end, ulong seed, long size, Memory<byte> buffer, Random random, CancellationToken token)
    {
        long sent = await Transfer.SendAsync(end, seed, size, buffer, random, token).ConfigureAwait(false);
        if (sent == size)
        {
            try
            {
                end.ShutdownSend();
            }
            catch (Exception exception) when (Transfer.IsConnectionEnd(exception))
            {
            }
        }

        return sent;
    }

    private long PickSize(Random random)
    {
        double u = random.NextDouble();
        long max = _options.MaxSize;
        return u switch
        {
            < 0.05 => 0,
            < 0.60 => random.NextInt64(1, Math.Min(max, 64 * 1024)),
            < 0.95 => random.NextInt64(1, Math.Min(max, 1024 * 1024)),
            _ => random.NextInt64(1, max + 1),
        };
    }

    private static ulong Mix(ulong id, ulong salt)
    {
        ulong z = (id * 0x9E3779B97F4A7C15UL) ^ (salt * 0xD1B54A32D192ED03UL);
        z = (z ^ (z >> 29)) * 0xBF58476D1CE4E5B9UL;
        return z ^ (z >> 32);
    }

    // ---------------------------------------------------------------- connecting

    private async Task<(GuestEnd?, HostEnd?)> ConnectFromGuestAsync(int worker, long id, CancellationToken token)
    {
        using var acceptCancel = CancellationTokenSource.CreateLinkedTokenSource(token);
        Task<Socket?> accept = AcceptHostAsync(worker, id, acceptCancel.Token);
        GuestSocket socket;
        try
        {
            socket = await _rig.Guest.ConnectAsync(SoakRig.BasePort + (uint)worker, VsockType.Stream, token).ConfigureAwait(false);
        }
        catch (Exception exception) when (Transfer.IsConnectionEnd(exception))
        {
            await acceptCancel.CancelAsync().ConfigureAwait(false);
            (await accept.ConfigureAwait(false))?.Dispose();
            return (null, null);
        }

        var guest = new GuestEnd(socket);
        byte[] idBytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(idBytes, id);
        try
        {
            await guest.SendAsync(idBytes, token).ConfigureAwait(false);
        }
        catch (Exception exception) when (Transfer.IsConnectionEnd(exception))
        {
        }

        Socket? hostSocket = await accept.ConfigureAwait(false);
        if (hostSocket is null)
        {
            guest.Dispose();
            return (null, null);
        }

        return (guest, new HostEnd(hostSocket));
    }

    private async Task<Socket?> AcceptHostAsync(int worker, long id, CancellationToken token)
    {
        byte[] idBytes = new byte[8];
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _rig.AcceptOnHostAsync(worker, token).ConfigureAwait(false);
            }
            catch (Exception exception) when (Transfer.IsConnectionEnd(exception))
            {
                return null;
            }

            var end = new HostEnd(socket);
            if (await Transfer.ReadExactlyAsync(end, idBytes, token).ConfigureAwait(false) && BinaryPrimitives.ReadInt64LittleEndian(idBytes) == id)
            {
                return socket;
            }

            // A stale socket from an earlier failed attempt (or the attempt failed): drop it.
            end.Dispose();
            if (token.IsCancellationRequested)
            {
                return null;
            }
        }
    }

    private async Task<(GuestEnd?, HostEnd?)> ConnectFromHostAsync(int worker, long id, CancellationToken token)
    {
        using var acceptCancel = CancellationTokenSource.CreateLinkedTokenSource(token);
        Task<GuestSocket?> accept = AcceptGuestAsync(worker, id, acceptCancel.Token);
        Socket? socket = await _rig.ConnectToGuestAsync(worker, token).ConfigureAwait(false);
        if (socket is null)
        {
            await acceptCancel.CancelAsync().ConfigureAwait(false);
            GuestSocket? orphan = await accept.ConfigureAwait(false);
            orphan?.Abort();
            return (null, null);
        }

        var host = new HostEnd(socket);
        byte[] idBytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(idBytes, id);
        try
        {
            await host.SendAsync(idBytes, token).ConfigureAwait(false);
        }
        catch (Exception exception) when (Transfer.IsConnectionEnd(exception))
        {
        }

        GuestSocket? guestSocket = await accept.ConfigureAwait(false);
        if (guestSocket is null)
        {
            host.Dispose();
            return (null, null);
        }

        return (new GuestEnd(guestSocket), host);
    }

    private async Task<GuestSocket?> AcceptGuestAsync(int worker, long id, CancellationToken token)
    {
        byte[] idBytes = new byte[8];
        while (true)
        {
            GuestSocket socket;
            try
            {
                socket = await _rig.AcceptOnGuestAsync(worker, token).ConfigureAwait(false);
            }
            catch (Exception exception) when (Transfer.IsConnectionEnd(exception) || exception is System.Threading.Channels.ChannelClosedException)
            {
                return null;
            }

            var end = new GuestEnd(socket);
            if (await Transfer.ReadExactlyAsync(end, idBytes, token).ConfigureAwait(false) && BinaryPrimitives.ReadInt64LittleEndian(idBytes) == id)
            {
                return socket;
            }

            end.Dispose();
            if (token.IsCancellationRequested)
            {
                return null;
            }
        }
    }
}
