using System.Collections.Concurrent;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Tests.Cli;

/// <summary>
/// A fake server: records each VM, leaves a socket file at both of its paths (as a server that
/// does not clean up would), and behaves per VM as told: wait for the stop, fail, or return at once.
/// </summary>
internal sealed class RecordingVmServer(int expectedVms) : IVmServer, IDisposable
{
    private readonly TaskCompletionSource _allStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _started;

    public ConcurrentDictionary<ulong, VmConfig> Started { get; } = new();

    public ConcurrentDictionary<ulong, bool> PathsWereFreeAtStart { get; } = new();

    public ConcurrentDictionary<ulong, bool> Stopped { get; } = new();

    public ulong? FailCid { get; init; }

    public ulong? ReturnCid { get; init; }

    public bool Disposed { get; private set; }

    public Task AllStarted => _allStarted.Task;

    public async Task RunAsync(VmConfig vm, ILoggerFactory logs, CancellationToken stop)
    {
        PathsWereFreeAtStart[vm.GuestCid] = !File.Exists(vm.SocketPath) && !File.Exists(vm.UdsPath);
        UnixSockets.CreateStale(vm.SocketPath);
        UnixSockets.CreateStale(vm.UdsPath);
        Started[vm.GuestCid] = vm;
        if (Interlocked.Increment(ref _started) == expectedVms)
        {
            _allStarted.TrySetResult();
        }

        if (vm.GuestCid == FailCid)
        {
            await AllStarted.ConfigureAwait(false);
            throw new SocketException((int)SocketError.AddressAlreadyInUse);
        }

        if (vm.GuestCid == ReturnCid)
        {
            await AllStarted.ConfigureAwait(false);
            return;
        }

        try
        {
            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
        }
        finally
        {
            Stopped[vm.GuestCid] = true;
        }
    }

    public void Dispose() => Disposed = true;
}
