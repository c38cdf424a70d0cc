using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Cli;

/// <summary>
/// Stands in for the vhost-user server until it is wired into <c>Program.cs</c>: it binds both
/// sockets of a VM (so the paths are claimed and removed at stop as they will be), logs that it
/// would serve the VM, closes every connection it gets at once, and waits for the stop.
/// </summary>
public sealed partial class PlaceholderVmServer : IVmServer
{
    /// <inheritdoc/>
    public async Task RunAsync(VmConfig vm, ILoggerFactory logs, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(logs);
        ILogger logger = logs.CreateLogger<PlaceholderVmServer>();
        using Socket vhostUser = Listen(vm.SocketPath);
        using Socket hostSide = Listen(vm.UdsPath);
        LogNotWired(logger, vm.GuestCid, vm.SocketPath, vm.UdsPath);
        await Task.WhenAll(RefuseAsync(vhostUser, logger, vm.GuestCid, stop), RefuseAsync(hostSide, logger, vm.GuestCid, stop))
            .ConfigureAwait(false);
    }

    private static Socket Listen(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen();
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task RefuseAsync(Socket listener, ILogger logger, ulong guestCid, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            LogRefused(logger, guestCid);
            connection.Dispose();
        }
    }

    [LoggerMessage(EventId = 30, Level = LogLevel.Warning, Message = "VM {GuestCid}: the vhost-user server is not wired in yet; would serve vhost-user on {SocketPath} and host connections on {UdsPath}")]
    private static partial void LogNotWired(ILogger logger, ulong guestCid, string socketPath, string udsPath);

    [LoggerMessage(EventId = 31, Level = LogLevel.Warning, Message = "VM {GuestCid}: connection closed, the vhost-user server is not wired in yet")]
    private static partial void LogRefused(ILogger logger, ulong guestCid);
}
