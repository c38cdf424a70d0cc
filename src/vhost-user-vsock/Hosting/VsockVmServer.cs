using Microsoft.Extensions.Logging;
using Vhost.User;
using Virtio.Vsock.Device;
using Virtio.Vsock.Device.Backends.Unix;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Hosting;

/// <summary>
/// The daemon's real server: for each VM, a <see cref="VsockDevice"/> whose host side is the Unix-socket
/// backend at the VM's <c>uds-path</c>, presented to QEMU through a <see cref="VhostUserServer"/> on the
/// VM's vhost-user socket.
/// </summary>
/// <remarks>
/// Each VM is independent: its own device loop, its own vhost-user connection thread, its own host
/// listener; a failure in one VM's frontend or host peers never reaches another VM. A frontend that
/// disconnects (QEMU killed, guest rebooted) resets the device, which closes that guest's host
/// connections, and the same socket accepts the next frontend.
/// </remarks>
public sealed partial class VsockVmServer : IVmServer
{
    /// <inheritdoc/>
    public async Task RunAsync(VmConfig vm, ILoggerFactory logs, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(logs);
        ILogger logger = logs.CreateLogger($"VhostUserVsock.Vm{vm.GuestCid}");

        var backendOptions = new UnixSocketBackendOptions
        {
            UdsPath = vm.UdsPath,
            Logger = logs.CreateLogger<UnixSocketBackend>(),
        };
        await using var hostSide = new UnixSocketBackend(backendOptions);
        var adapter = new VhostUserVsockBackend(checked((ushort)vm.QueueSize));
        var deviceOptions = new VsockDeviceOptions
        {
            GuestCid = vm.GuestCid,
            BufferSize = vm.TxBufferSize,
            Logger = logs.CreateLogger<VsockDevice>(),
        };
        using var device = new VsockDevice(deviceOptions, hostSide, adapter);
        adapter.Attach(device);

        await using var server = new VhostUserServer(vm.SocketPath, adapter, logs.CreateLogger<VhostUserServer>());
        server.Start();
        hostSide.Start();
        LogServing(logger, vm.GuestCid, vm.SocketPath, vm.UdsPath);

        Task stopped = Task.Delay(Timeout.Infinite, stop);
        Task finished = await Task.WhenAny(server.Completion, stopped).ConfigureAwait(false);
        if (finished == server.Completion && !stop.IsCancellationRequested)
        {
            await server.Completion.ConfigureAwait(false);
            throw new InvalidOperationException($"The vhost-user server of VM {vm.GuestCid} stopped on its own.");
        }

        LogStopping(logger, vm.GuestCid);
        await server.StopAsync().ConfigureAwait(false);
        device.Reset();
    }

    [LoggerMessage(EventId = 40, Level = LogLevel.Information, Message = "VM {GuestCid}: serving vhost-user on {SocketPath}, host connections on {UdsPath}")]
    private static partial void LogServing(ILogger logger, ulong guestCid, string socketPath, string udsPath);

    [LoggerMessage(EventId = 41, Level = LogLevel.Information, Message = "VM {GuestCid}: stopping")]
    private static partial void LogStopping(ILogger logger, ulong guestCid);
}
