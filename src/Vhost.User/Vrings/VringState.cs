using Virtio.Memory;

namespace Vhost.User;

/// <summary>What the frontend has told the connection about one queue. Touched by the control thread only.</summary>
internal sealed class VringState : IDisposable
{
    /// <summary>SET_VRING_NUM; 0 until set.</summary>
    internal ushort Size { get; set; }

    /// <summary>SET_VRING_BASE, or the index GET_VRING_BASE reported.</summary>
    internal ushort NextAvailableIndex { get; set; }

    /// <summary>Whether SET_VRING_ADDR was received.</summary>
    internal bool HasAddresses { get; set; }

    /// <summary>Descriptor table (guest physical).</summary>
    internal GuestAddress DescriptorTable { get; set; }

    /// <summary>Available ring (guest physical).</summary>
    internal GuestAddress AvailableRing { get; set; }

    /// <summary>Used ring (guest physical).</summary>
    internal GuestAddress UsedRing { get; set; }

    /// <summary>Whether the backend runs the queue (between StartQueue and StopQueue).</summary>
    internal bool Started { get; set; }

    /// <summary>The last SET_VRING_ENABLE value.</summary>
    internal bool EnableRequested { get; set; }

    /// <summary>The kick thread of a started queue.</summary>
    internal KickWaiter? Kicker { get; set; }

    /// <summary>The queue's call notifier; lives as long as the connection, its descriptor changes.</summary>
    internal CallNotifier Call { get; } = new();

    /// <summary>Stops the kick thread (joining it) without touching the backend.</summary>
    internal void StopKicker()
    {
        Kicker?.Dispose();
        Kicker = null;
    }

    /// <summary>Forgets everything (device reset); the kick thread must be stopped first.</summary>
    internal void Clear()
    {
        StopKicker();
        Call.SetFd(null);
        Size = 0;
        NextAvailableIndex = 0;
        HasAddresses = false;
        DescriptorTable = default;
        AvailableRing = default;
        UsedRing = default;
        Started = false;
        EnableRequested = false;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        StopKicker();
        Call.Dispose();
    }
}
