using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Vhost.User;
using Virtio.Vsock.Device;
using Virtio.Vsock.Backends.Unix;
using Virtio.Vsock.Device.Siblings;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;
using VhostUserVsock.Control;
using VhostUserVsock.Systemd;

namespace VhostUserVsock.Hosting;

/// <summary>
/// The daemon's real server: for each VM, a <see cref="VsockDevice"/> whose host side is the Unix-socket
/// backend at the VM's <c>uds-path</c>, presented to QEMU through a <see cref="VhostUserServer"/> on the
/// VM's vhost-user socket.
/// </summary>
/// <remarks>
/// <para>Each VM is independent: its own device loop, its own vhost-user connection thread, its own host
/// listener; a failure in one VM's frontend or host peers never reaches another VM. A frontend that
/// disconnects (QEMU killed, guest rebooted) resets the device, which closes that guest's host
/// connections and its connections with sibling guests, and the same socket accepts the next frontend.</para>
/// <para><b>Siblings.</b> Created from the daemon's configuration, the server owns one <see cref="VsockCidMap"/>
/// that every VM's device joins with the VM's groups, so guests with a group in common reach each other by
/// CID (<c>--vm ...,groups=a+b</c>; every VM without <c>groups</c> is in <c>default</c>), exactly the pairs
/// <see cref="DaemonConfig.SiblingsOf"/> names. Devices exchange packets through the map's bounded routes and
/// never wait for each other, so one VM's frontend or guest cannot stall another.</para>
/// <para><b>Owns:</b> the CID map. <b>Must never:</b> share it beyond this server's VMs, or connect two VMs
/// other than through it.</para>
/// </remarks>
public sealed partial class VsockVmServer : IVmServer
{
    private readonly DaemonConfig? _config;
    private readonly VsockCidMap? _siblings;

    /// <summary>Creates a server whose guests reach only the host.</summary>
    public VsockVmServer()
    {
    }

    /// <summary>Creates the server of a whole daemon: guests of VMs with a group in common reach each other by CID.</summary>
    /// <param name="config">The daemon's configuration (every VM <see cref="RunAsync(VmConfig, ILoggerFactory, CancellationToken)"/> will be called for).</param>
    public VsockVmServer(DaemonConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _siblings = new VsockCidMap { Access = config.SiblingAccess() };
    }

    /// <summary>The CID map the VMs' devices join, or <see langword="null"/> when guests reach only the host.</summary>
    public VsockCidMap? Siblings => _siblings;

    /// <summary>The running VMs, for the control socket.</summary>
    public VmRegistry Registry { get; } = new();

    /// <summary>The sockets systemd passed (socket activation); a VM whose vhost-user socket, host-side socket
    /// (<c>uds-path</c>) or host-side SEQPACKET socket (<c>uds-path.seqpacket</c>) is among them uses it.</summary>
    public SocketActivation Activation { get; init; } = SocketActivation.None;

    /// <inheritdoc/>
    public Task RunAsync(VmConfig vm, ILoggerFactory logs, CancellationToken stop) => RunAsync(vm, logs, static () => { }, stop);

    /// <inheritdoc/>
    public async Task RunAsync(VmConfig vm, ILoggerFactory logs, Action listening, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(listening);
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(logs);
        ILogger logger = logs.CreateLogger($"VhostUserVsock.Vm{vm.GuestCid}");

        var backendOptions = new UnixSocketBackendOptions
        {
            UdsPath = vm.UdsPath,
            Logger = logs.CreateLogger<UnixSocketBackend>(),
            Access = _config?.AccessOf(vm).ForHostSide(),
            PassedListener = path => TakeActivated(path, vm.GuestCid, logger),
        };
        await using var hostSide = new UnixSocketBackend(backendOptions);
        var adapter = new VhostUserVsockBackend(checked((ushort)vm.QueueSize));
        var deviceOptions = new VsockDeviceOptions
        {
            GuestCid = vm.GuestCid,
            BufferSize = vm.TxBufferSize,
            Logger = logs.CreateLogger<VsockDevice>(),
            Siblings = _siblings,
            SiblingGroups = vm.Groups,
            PollMax = _config?.Operations.PollMax ?? VsockDeviceOptions.DefaultPollMax,
        };
        using var device = new VsockDevice(deviceOptions, hostSide, adapter);
        adapter.Attach(device);
        using IDisposable metrics = VsockMeter.Register(device, () => hostSide.Counters.ForMeter());
        VmHandle handle = Registry.Add(device, logger);
        using var unregister = new Unregister(Registry, handle);
        if (_config?.Operations.CaptureFileOf(vm.GuestCid) is { } capturePath)
        {
            string? refused = handle.StartCapture(capturePath, _config.Operations.CaptureSnapLength);
            if (refused is not null)
            {
                throw new IOException(refused);
            }
        }

        await using var server = new VhostUserServer(vm.SocketPath, adapter, logs.CreateLogger<VhostUserServer>());

        // A device that stopped after an internal fault waits for a reset: end the frontend's session (off the
        // device's loop thread) so that a reconnecting QEMU starts over with a reset device. Other VMs go on.
        device.Faulted += (_, _) => ThreadPool.QueueUserWorkItem(static s => ((VhostUserServer)s!).DisconnectFrontend(), server);
        Socket? activated = Activation.Take(vm.SocketPath);
        if (activated is not null)
        {
            server.Start(activated);
            LogActivated(logger, vm.GuestCid, vm.SocketPath);
        }
        else
        {
            server.Start();
        }

        hostSide.Start();
        listening();
        LogServing(logger, vm.GuestCid, vm.SocketPath, vm.UdsPath);
        if (_config is not null)
        {
            string siblings = string.Join(", ", _config.SiblingsOf(vm).Select(other => other.GuestCid));
            LogSiblings(logger, vm.GuestCid, string.Join('+', vm.Groups), siblings.Length == 0 ? "none" : siblings);
        }

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

    private Socket? TakeActivated(string path, ulong guestCid, ILogger logger)
    {
        Socket? socket = Activation.Take(path);
        if (socket is not null)
        {
            LogActivatedHostSide(logger, guestCid, path);
        }

        return socket;
    }

    [LoggerMessage(EventId = 44, Level = LogLevel.Information, Message = "VM {GuestCid}: host-side socket {Path} passed by systemd (socket activation); its file is left to systemd")]
    private static partial void LogActivatedHostSide(ILogger logger, ulong guestCid, string path);

    [LoggerMessage(EventId = 40, Level = LogLevel.Information, Message = "VM {GuestCid}: serving vhost-user on {SocketPath}, host connections on {UdsPath}")]
    private static partial void LogServing(ILogger logger, ulong guestCid, string socketPath, string udsPath);

    private sealed class Unregister(VmRegistry registry, VmHandle handle) : IDisposable
    {
        public void Dispose() => registry.Remove(handle);
    }

    [LoggerMessage(EventId = 43, Level = LogLevel.Information, Message = "VM {GuestCid}: vhost-user socket {SocketPath} passed by systemd (socket activation); its file is left to systemd")]
    private static partial void LogActivated(ILogger logger, ulong guestCid, string socketPath);

    [LoggerMessage(EventId = 41, Level = LogLevel.Information, Message = "VM {GuestCid}: stopping")]
    private static partial void LogStopping(ILogger logger, ulong guestCid);

    [LoggerMessage(EventId = 42, Level = LogLevel.Information, Message = "VM {GuestCid}: groups {Groups}; sibling CIDs it can reach: {Siblings}")]
    private static partial void LogSiblings(ILogger logger, ulong guestCid, string groups, string siblings);
}
