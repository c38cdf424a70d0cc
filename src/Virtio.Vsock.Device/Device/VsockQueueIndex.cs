namespace Virtio.Vsock.Device;

/// <summary>The queue indices of the virtio socket device.</summary>
public static class VsockQueueIndex
{
    /// <summary>Queue 0: device to driver packets.</summary>
    public const int Rx = 0;

    /// <summary>Queue 1: driver to device packets.</summary>
    public const int Tx = 1;

    /// <summary>Queue 2: events (TRANSPORT_RESET).</summary>
    public const int Event = 2;

    /// <summary>The number of queues.</summary>
    public const int Count = 3;

    /// <summary>The queue's name as diagnostics show it: <c>rx</c>, <c>tx</c> or <c>event</c>.</summary>
    /// <param name="queueIndex">0, 1 or 2.</param>
    /// <returns>The name, or the number for any other value.</returns>
    public static string Name(int queueIndex) => queueIndex switch
    {
        Rx => "rx",
        Tx => "tx",
        Event => "event",
        _ => queueIndex.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
