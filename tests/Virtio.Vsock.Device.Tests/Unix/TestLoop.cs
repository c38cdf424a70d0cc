namespace Virtio.Vsock.Device.Tests.Unix;

/// <summary>
/// A device loop without a device, for the Unix backend's pieces tested alone (listener, connector): it watches
/// their descriptors and runs their timers exactly as a device's loop does.
/// </summary>
internal sealed class TestLoop : IDisposable
{
    private readonly DeviceEventLoop _loop = new("test-loop", 0, static _ => { }, static _ => { }, static () => long.MaxValue, static _ => { });

    public TestLoop() => _loop.Start();

    /// <summary>The loop as a backend sees it.</summary>
    public IVsockFdPoller Poller => _loop;

    /// <summary>Whether the caller runs on the loop thread.</summary>
    public bool IsLoopThread => _loop.IsLoopThread;

    /// <summary>Descriptors the loop watches right now.</summary>
    public int WatchCount => _loop.WatchCount;

    public void Dispose() => _loop.Dispose();
}
