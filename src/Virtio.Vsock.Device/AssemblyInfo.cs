using System.Runtime.CompilerServices;

// The loop, the timer queue, the buffer budget and the connection engine are internal; their tests are white-box.
[assembly: InternalsVisibleTo("Virtio.Vsock.Device.Tests")]
