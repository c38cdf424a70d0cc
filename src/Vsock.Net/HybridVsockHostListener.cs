using System.Globalization;
using System.Net.Sockets;

namespace Vsock.Net;

/// <summary>
/// Listens for guest-initiated connections behind a hybrid vsock device: a guest connecting to host
/// port P reaches the Unix socket <c>uds_path_P</c>, so this binds that path (removing a stale socket
/// file first) and accepts Unix connections. Owns the listening socket and the path (removed on dispose).
/// Host-side Kestrel needs none of this: <c>ListenUnixSocket(HybridVsockHostListener.PathFor(udsPath, port))</c>.
/// </summary>
public sealed class HybridVsockHostListener : IDisposable
{
    private readonly Socket _socket;
    private bool _disposed;

    /// <summary>Binds <c>udsPath_port</c> and listens.</summary>
    /// <param name="udsPath">The device's <c>uds_path</c>.</param>
    /// <param name="port">The host vsock port guests connect to.</param>
    /// <param name="backlog">Pending connections the kernel queues.</param>
    /// <exception cref="SocketException">The path cannot be bound.</exception>
    public HybridVsockHostListener(string udsPath, uint port, int backlog = 128)
    {
        ArgumentException.ThrowIfNullOrEmpty(udsPath);
        ArgumentOutOfRangeException.ThrowIfLessThan(backlog, 1);
        Path = PathFor(udsPath, port);
        Port = port;
        RemoveStaleSocket(Path);
        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            _socket.Bind(new UnixDomainSocketEndPoint(Path));
            _socket.Listen(backlog);
        }
        catch
        {
            _socket.Dispose();
            throw;
        }
    }

    /// <summary>The Unix socket path bound (<c>udsPath_port</c>).</summary>
    public string Path { get; }

    /// <summary>The host vsock port.</summary>
    public uint Port { get; }

    /// <summary>The path a guest connection to host port <paramref name="port"/> goes to: <c>udsPath + "_" + port</c>.</summary>
    /// <param name="udsPath">The device's <c>uds_path</c>.</param>
    /// <param name="port">The host port.</param>
    /// <returns>The path.</returns>
    public static string PathFor(string udsPath, uint port) => string.Create(CultureInfo.InvariantCulture, $"{udsPath}_{port}");

    /// <summary>Waits for the next guest connection.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The connected socket.</returns>
    public async Task<Socket> AcceptAsync(CancellationToken cancellationToken = default) =>
        await _socket.AcceptAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>Stops listening and removes the socket file.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _socket.Dispose();
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void RemoveStaleSocket(string path)
    {
        var info = new FileInfo(path);
        if (info.Exists && (info.Attributes & FileAttributes.Directory) == 0 && IsStale(path))
        {
            File.Delete(path);
        }
    }

    private static bool IsStale(string path)
    {
        // A socket file nobody listens on refuses connections; a live one accepts: never remove a live one.
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            throw new SocketException((int)SocketError.AddressAlreadyInUse);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return true;
        }
    }
}
