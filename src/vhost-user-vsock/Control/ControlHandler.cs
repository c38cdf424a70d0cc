using System.Text.Json;
using Virtio.Vsock.Device;

namespace VhostUserVsock.Control;

/// <summary>
/// Answers one control request line against a <see cref="VmRegistry"/>. Never throws for bad input: a line that
/// is not a request gets an error reply. Must never wait for a device loop longer than <see cref="SnapshotWait"/>.
/// </summary>
/// <param name="registry">The running VMs.</param>
public sealed class ControlHandler(VmRegistry registry)
{
    /// <summary>How long a <c>connections</c> request waits for each device loop.</summary>
    public static readonly TimeSpan SnapshotWait = TimeSpan.FromSeconds(2);

    /// <summary>Answers one request line with one reply line (no newline).</summary>
    /// <param name="line">The request.</param>
    /// <returns>The reply, JSON.</returns>
    public async Task<string> HandleAsync(string line)
    {
        ControlReply reply;
        ControlRequest? request = null;
        try
        {
            request = JsonSerializer.Deserialize(line, ControlJson.Default.ControlRequest);
        }
        catch (JsonException ex)
        {
            reply = Failed($"not a JSON request: {ex.Message}");
            return JsonSerializer.Serialize(reply, ControlJson.Default.ControlReply);
        }

        reply = request?.Command switch
        {
            "connections" => await ConnectionsAsync(request.Cid).ConfigureAwait(false),
            "capture-start" => StartCapture(request),
            "capture-stop" => StopCapture(request),
            null => Failed("the request has no \"command\" (connections, capture-start, capture-stop)"),
            string other => Failed($"unknown command: {other} (known: connections, capture-start, capture-stop)"),
        };
        return JsonSerializer.Serialize(reply, ControlJson.Default.ControlReply);
    }

    private static ControlReply Failed(string error) => new() { Ok = false, Error = error };

    private async Task<ControlReply> ConnectionsAsync(ulong? cid)
    {
        IEnumerable<VmHandle> vms = registry.Vms;
        if (cid is ulong one)
        {
            VmHandle? vm = registry.Find(one);
            if (vm is null)
            {
                return Failed($"no running VM with guest CID {one}");
            }

            vms = [vm];
        }

        var result = new List<ControlVm>();
        foreach (VmHandle vm in vms)
        {
            VsockDeviceSnapshot? snapshot = null;
            try
            {
                snapshot = await vm.Device.SnapshotAsync().WaitAsync(SnapshotWait).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // The device loop did not answer: report the VM without connections.
            }

            result.Add(new ControlVm
            {
                Cid = vm.Device.GuestCid,
                RxBuffersAvailable = snapshot?.RxBuffersAvailable ?? 0,
                TxChainsWaiting = snapshot?.TxChainsWaiting ?? 0,
                SiblingConnections = snapshot?.SiblingConnections ?? vm.Device.SiblingConnectionCount,
                Capture = vm.CapturePath,
                Queues = snapshot?.Queues,
                Connections = snapshot?.Connections,
            });
        }

        return new ControlReply { Ok = true, Vms = result };
    }

    private ControlReply StartCapture(ControlRequest request)
    {
        if (Target(request, out VmHandle? vm) is { } error)
        {
            return error;
        }

        if (string.IsNullOrEmpty(request.Path) || !System.IO.Path.IsPathRooted(request.Path))
        {
            return Failed("capture-start needs an absolute \"path\"");
        }

        int snap = request.SnapLength ?? Virtio.Vsock.Device.Diagnostics.Capture.VsockPacketCapture.DefaultSnapLength;
        if (snap is < 0 or > Virtio.Vsock.Device.Diagnostics.Capture.VsockPacketCapture.DefaultSnapLength)
        {
            return Failed($"\"snapLength\" must be 0 to {Virtio.Vsock.Device.Diagnostics.Capture.VsockPacketCapture.DefaultSnapLength}");
        }

        string? refused = vm!.StartCapture(request.Path, snap);
        return refused is null ? new ControlReply { Ok = true } : Failed(refused);
    }

    private ControlReply StopCapture(ControlRequest request)
    {
        if (Target(request, out VmHandle? vm) is { } error)
        {
            return error;
        }

        (long Captured, long Dropped)? stopped = vm!.StopCapture();
        return stopped is { } counts
            ? new ControlReply { Ok = true, Captured = counts.Captured, Dropped = counts.Dropped }
            : Failed($"VM {vm.Device.GuestCid} is not capturing");
    }

    private ControlReply? Target(ControlRequest request, out VmHandle? vm)
    {
        vm = null;
        if (request.Cid is not ulong cid)
        {
            return Failed($"{request.Command} needs the VM's \"cid\"");
        }

        vm = registry.Find(cid);
        return vm is null ? Failed($"no running VM with guest CID {cid}") : null;
    }
}
