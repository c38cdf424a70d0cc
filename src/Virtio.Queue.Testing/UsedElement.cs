namespace Virtio.Queue.Testing;

/// <summary>One element of the used ring as the driver reads it.</summary>
/// <param name="Id">The head index of the returned chain.</param>
/// <param name="Length">The number of bytes the device wrote into the chain.</param>
public readonly record struct UsedElement(uint Id, uint Length);
