using System.Runtime.CompilerServices;

// Only the backend, its options, its counters and the path convention are public; the pieces (handshake
// parser, listener, connector, socket I/O, endpoints) are internal and tested white-box.
[assembly: InternalsVisibleTo("Virtio.Vsock.Device.Tests")]
[assembly: InternalsVisibleTo("VirtioVsock.Fuzz")]
