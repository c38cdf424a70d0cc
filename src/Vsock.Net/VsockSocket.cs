using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Vsock.Net;

/// <summary>
/// AF_VSOCK sockets inside a Linux guest (or on a host with a vsock transport): create, connect with a
/// timeout and cancellation, the local CID, and the vsock socket options. The result is an ordinary
/// <see cref="Socket"/> (send, receive, async, <see cref="NetworkStream"/>). Everything here calls the
/// kernel's AF_VSOCK: nothing of it may run where vsock belongs to someone else.
/// </summary>
public static class VsockSocket
{
    /// <summary>Linux <c>AF_VSOCK</c>.</summary>
    public const int AfVsock = 40;

    /// <summary><c>AF_VSOCK</c> as an <see cref="System.Net.Sockets.AddressFamily"/> (the enum has no member for it).</summary>
    public const AddressFamily AddressFamily = (AddressFamily)AfVsock;

    /// <summary>The <c>setsockopt</c> level of the vsock options (<c>AF_VSOCK</c>).</summary>
    public const int OptionLevel = AfVsock;

    /// <summary><c>SO_VM_SOCKETS_BUFFER_SIZE</c>: the receive buffer of a stream socket (u64, bytes).</summary>
    public const int BufferSizeOption = 0;

    /// <summary><c>SO_VM_SOCKETS_BUFFER_MIN_SIZE</c> (u64, bytes).</summary>
    public const int BufferMinSizeOption = 1;

    /// <summary><c>SO_VM_SOCKETS_BUFFER_MAX_SIZE</c> (u64, bytes).</summary>
    public const int BufferMaxSizeOption = 2;

    /// <summary><c>SO_VM_SOCKETS_CONNECT_TIMEOUT</c> on 64-bit Linux (a <c>struct timeval</c>).</summary>
    public const int ConnectTimeoutOption = 6;

    /// <summary>The connect timeout used when none is given: 10 seconds.</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>A new, unconnected vsock socket (<c>socket(AF_VSOCK, type, 0)</c>), in blocking mode like any new <see cref="Socket"/>.</summary>
    /// <param name="type"><see cref="SocketType.Stream"/> or <see cref="SocketType.Seqpacket"/>.</param>
    /// <returns>The socket; bind it with <see cref="Socket.Bind"/> and a <see cref="VsockEndPoint"/>, or use <see cref="ConnectAsync"/>.</returns>
    /// <exception cref="SocketException">No vsock transport (<see cref="SocketError.AddressFamilyNotSupported"/>) or another error.</exception>
    public static Socket Create(SocketType type = SocketType.Stream)
    {
        VsockDescriptor descriptor = VsockDescriptor.Create(type);
        try
        {
            return descriptor.ToSocket();
        }
        finally
        {
            descriptor.Dispose();
        }
    }

    /// <summary>Connects to <paramref name="endPoint"/>.</summary>
    /// <param name="endPoint">Where: <see cref="VsockEndPoint.HostCid"/> and a port from a guest.</param>
    /// <param name="type"><see cref="SocketType.Stream"/> or <see cref="SocketType.Seqpacket"/>.</param>
    /// <param name="timeout">How long to wait for the peer's answer (default <see cref="DefaultConnectTimeout"/>).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The connected socket (<see cref="Socket.Connected"/> is true, <see cref="Socket.RemoteEndPoint"/> a <see cref="VsockEndPoint"/>).</returns>
    /// <exception cref="SocketException"><see cref="SocketError.ConnectionReset"/> or <see cref="SocketError.ConnectionRefused"/>
    /// when nothing listens, <see cref="SocketError.TimedOut"/> at the timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static Task<Socket> ConnectAsync(VsockEndPoint endPoint, SocketType type = SocketType.Stream, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        TimeSpan limit = timeout ?? DefaultConnectTimeout;
        if (limit != Timeout.InfiniteTimeSpan)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(limit, TimeSpan.Zero);
        }

        if (type is not (SocketType.Stream or SocketType.Seqpacket))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "vsock sockets are Stream or Seqpacket.");
        }

        return ConnectCoreAsync(endPoint, type, limit, cancellationToken);
    }

    private static async Task<Socket> ConnectCoreAsync(VsockEndPoint endPoint, SocketType type, TimeSpan limit, CancellationToken cancellationToken)
    {
        Socket socket = Create(type);
        using var timeoutSource = new CancellationTokenSource(limit);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutSource.Token);
        try
        {
            // The runtime's own non-blocking connect: the endpoint serializes to a sockaddr_vm.
            await socket.ConnectAsync(endPoint, linked.Token).ConfigureAwait(false);
            return socket;
        }
        catch (OperationCanceledException) when (timeoutSource.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw VsockErrors.Exception(110, $"connect({endPoint}) within {limit.TotalSeconds:0.###} s"); // ETIMEDOUT
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects to <paramref name="endPoint"/> and returns a stream that owns the socket.</summary>
    /// <param name="endPoint">Where.</param>
    /// <param name="timeout">How long to wait (default <see cref="DefaultConnectTimeout"/>).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The stream (not a <see cref="NetworkStream"/>: that one refuses sockets whose family the runtime does not know).</returns>
    public static async Task<Stream> ConnectStreamAsync(VsockEndPoint endPoint, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        GetStream(await ConnectAsync(endPoint, SocketType.Stream, timeout, cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// A stream over a connected vsock stream socket, owning it. Use this instead of <see cref="NetworkStream"/>,
    /// whose constructor checks <see cref="Socket.Connected"/>, which the runtime cannot tell for a socket
    /// made from an AF_VSOCK descriptor.
    /// </summary>
    /// <param name="socket">A connected stream socket.</param>
    /// <returns>The stream.</returns>
    public static Stream GetStream(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return new SocketStream(socket);
    }

    /// <summary>This machine's CID, from <c>IOCTL_VM_SOCKETS_GET_LOCAL_CID</c> on <c>/dev/vsock</c>.</summary>
    /// <returns>The CID (a guest's is 3 or more; <see cref="VsockEndPoint.HostCid"/> on a host).</returns>
    /// <exception cref="IOException"><c>/dev/vsock</c> cannot be opened or does not answer.</exception>
    public static unsafe uint GetLocalCid()
    {
        int fd = VsockNative.Open("/dev/vsock", VsockNative.ORdOnly | VsockNative.OCloexec);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"open(/dev/vsock): {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }

        try
        {
            uint cid = 0;
            if (VsockNative.Ioctl(fd, VsockNative.IoctlGetLocalCid, &cid) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new IOException($"ioctl(IOCTL_VM_SOCKETS_GET_LOCAL_CID): {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
            }

            return cid;
        }
        finally
        {
            VsockNative.Close(fd);
        }
    }

    /// <summary>Sets <c>SO_VM_SOCKETS_BUFFER_SIZE</c>, <c>_MIN_SIZE</c> or <c>_MAX_SIZE</c> (the kernel clamps size into min..max).</summary>
    /// <param name="socket">A vsock socket.</param>
    /// <param name="option"><see cref="BufferSizeOption"/>, <see cref="BufferMinSizeOption"/> or <see cref="BufferMaxSizeOption"/>.</param>
    /// <param name="bytes">The size.</param>
    public static void SetBufferOption(Socket socket, int option, ulong bytes)
    {
        ArgumentNullException.ThrowIfNull(socket);
        CheckBufferOption(option);
        Span<byte> value = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(value, bytes);
        socket.SetRawSocketOption(OptionLevel, option, value);
    }

    /// <summary>Reads a buffer option (see <see cref="SetBufferOption"/>).</summary>
    /// <param name="socket">A vsock socket.</param>
    /// <param name="option">The option.</param>
    /// <returns>The size in bytes.</returns>
    public static ulong GetBufferOption(Socket socket, int option)
    {
        ArgumentNullException.ThrowIfNull(socket);
        CheckBufferOption(option);
        Span<byte> value = stackalloc byte[8];
        int n = socket.GetRawSocketOption(OptionLevel, option, value);
        return n == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(value) : throw new InvalidOperationException($"vsock option {option} returned {n} bytes, not 8.");
    }

    /// <summary>Sets <c>SO_VM_SOCKETS_CONNECT_TIMEOUT</c> (for a blocking <see cref="Socket.Connect(System.Net.EndPoint)"/>).</summary>
    /// <param name="socket">A vsock socket.</param>
    /// <param name="timeout">Positive.</param>
    public static void SetConnectTimeout(Socket socket, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        Span<byte> value = stackalloc byte[16]; // struct timeval { long tv_sec; long tv_usec; }
        long micros = timeout.Ticks / 10;
        BinaryPrimitives.WriteInt64LittleEndian(value, micros / 1_000_000);
        BinaryPrimitives.WriteInt64LittleEndian(value[8..], micros % 1_000_000);
        socket.SetRawSocketOption(OptionLevel, ConnectTimeoutOption, value);
    }

    private static void CheckBufferOption(int option)
    {
        if (option is not (BufferSizeOption or BufferMinSizeOption or BufferMaxSizeOption))
        {
            throw new ArgumentOutOfRangeException(nameof(option), option, "Use BufferSizeOption, BufferMinSizeOption or BufferMaxSizeOption.");
        }
    }
}
