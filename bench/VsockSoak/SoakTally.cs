using System.Collections.Concurrent;

namespace VsockSoak;

/// <summary>
/// The soak's counters, updated by every worker with interlocked operations and read by the reporter.
/// Owns counters and a bounded list of failure descriptions; it must never grow without bound.
/// </summary>
internal sealed class SoakTally
{
    private const int MaxFailureNotes = 40;

    private readonly long[] _byMode = new long[CloseModes.Count];
    private readonly ConcurrentQueue<string> _failures = new();
    private long _started;
    private long _completed;
    private long _guestToHost;
    private long _hostToGuest;
    private long _orderlyVerified;
    private long _orderlyFailures;
    private long _corrupted;
    private long _stuck;
    private long _overlapped;
    private long _orphaned;
    private long _connectFailures;
    private long _excusedConnectFailures;
    private long _bytesGuestToHost;
    private long _bytesHostToGuest;
    private long _hostClosedByReset;
    private long _abortiveEndedCleanly;
    private int _failureNotes;

    public long Started => Volatile.Read(ref _started);

    public long Completed => Volatile.Read(ref _completed);

    public long GuestToHost => Volatile.Read(ref _guestToHost);

    public long HostToGuest => Volatile.Read(ref _hostToGuest);

    public long OrderlyVerified => Volatile.Read(ref _orderlyVerified);

    public long OrderlyFailures => Volatile.Read(ref _orderlyFailures);

    public long Corrupted => Volatile.Read(ref _corrupted);

    public long Stuck => Volatile.Read(ref _stuck);

    public long OverlappedReconnect => Volatile.Read(ref _overlapped);

    public long OrphanedByReconnect => Volatile.Read(ref _orphaned);

    public long HostClosedByReset => Volatile.Read(ref _hostClosedByReset);

    public long ConnectFailures => Volatile.Read(ref _connectFailures);

    public long ExcusedConnectFailures => Volatile.Read(ref _excusedConnectFailures);

    public long BytesGuestToHost => Volatile.Read(ref _bytesGuestToHost);

    public long BytesHostToGuest => Volatile.Read(ref _bytesHostToGuest);

    public long AbortiveEndedCleanly => Volatile.Read(ref _abortiveEndedCleanly);

    public IReadOnlyCollection<string> FailureNotes => _failures.ToArray();

    public long CompletedIn(CloseMode mode) => Volatile.Read(ref _byMode[(int)mode]);

    public void OnStarted(bool guestToHost)
    {
        Interlocked.Increment(ref _started);
        Interlocked.Increment(ref guestToHost ? ref _guestToHost : ref _hostToGuest);
    }

    public void OnCompleted(CloseMode mode, long guestToHostBytes, long hostToGuestBytes)
    {
        Interlocked.Increment(ref _completed);
        Interlocked.Increment(ref _byMode[(int)mode]);
        Interlocked.Add(ref _bytesGuestToHost, guestToHostBytes);
        Interlocked.Add(ref _bytesHostToGuest, hostToGuestBytes);
    }

    public void OnOrderlyVerified() => Interlocked.Increment(ref _orderlyVerified);

    public void OnAbortiveEndedCleanly() => Interlocked.Increment(ref _abortiveEndedCleanly);

    public void OnOverlapped() => Interlocked.Increment(ref _overlapped);

    public void OnOrphaned() => Interlocked.Increment(ref _orphaned);

    public void OnHostClosedByReset() => Interlocked.Increment(ref _hostClosedByReset);

    public void OnExcusedConnectFailure() => Interlocked.Increment(ref _excusedConnectFailures);

    public void OnOrderlyFailure(string note)
    {
        Interlocked.Increment(ref _orderlyFailures);
        Note(note);
    }

    public void OnCorrupted(string note)
    {
        Interlocked.Increment(ref _corrupted);
        Note(note);
    }

    public void OnStuck(string note)
    {
        Interlocked.Increment(ref _stuck);
        Note(note);
    }

    public void OnConnectFailure(string note)
    {
        Interlocked.Increment(ref _connectFailures);
        Note(note);
    }

    private void Note(string note)
    {
        if (Interlocked.Increment(ref _failureNotes) <= MaxFailureNotes)
        {
            _failures.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {note}");
        }
    }
}
