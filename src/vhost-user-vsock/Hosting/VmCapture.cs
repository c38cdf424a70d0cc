using Microsoft.Extensions.Logging;
using Virtio.Vsock.Device;
using Virtio.Vsock.Device.Diagnostics.Capture;

namespace VhostUserVsock.Hosting;

/// <summary>
/// One VM's packet capture (<c>--capture</c>): attaches a <see cref="VsockPacketCapture"/> to the device as its
/// packet tap, and on dispose detaches it, closes the file and logs what was written and dropped. Owns the
/// capture; must never leave the tap attached to a closed capture.
/// </summary>
public sealed partial class VmCapture : IDisposable
{
    private readonly VsockDevice _device;
    private readonly VsockPacketCapture _capture;
    private readonly ILogger _logger;
    private readonly string _path;

    private VmCapture(VsockDevice device, VsockPacketCapture capture, ILogger logger, string path)
    {
        _device = device;
        _capture = capture;
        _logger = logger;
        _path = path;
    }

    /// <summary>The capture file.</summary>
    public string Path => _path;

    /// <summary>Packets written so far.</summary>
    public long Captured => _capture.Captured;

    /// <summary>Packets dropped so far.</summary>
    public long Dropped => _capture.Dropped;

    /// <summary>Starts capturing a device's packets to a file.</summary>
    /// <param name="path">The pcap file.</param>
    /// <param name="snapLength">The most payload bytes kept per packet.</param>
    /// <param name="device">The VM's device.</param>
    /// <param name="logger">Where to log.</param>
    /// <returns>The capture.</returns>
    /// <exception cref="IOException">The file cannot be created.</exception>
    public static VmCapture Start(string path, int snapLength, VsockDevice device, ILogger logger)
    {
        var capture = VsockPacketCapture.CreateFile(path, snapLength);
        device.PacketTap = capture;
        LogStarted(logger, device.GuestCid, path, capture.SnapLength);
        return new VmCapture(device, capture, logger, path);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (ReferenceEquals(_device.PacketTap, _capture))
        {
            _device.PacketTap = null;
        }

        _capture.Dispose();
        LogStopped(_logger, _device.GuestCid, _path, _capture.Captured, _capture.Dropped, _capture.Error ?? "none");
    }

    [LoggerMessage(EventId = 50, Level = LogLevel.Information, Message = "VM {GuestCid}: capturing packets to {Path} (snap length {SnapLength})")]
    private static partial void LogStarted(ILogger logger, ulong guestCid, string path, int snapLength);

    [LoggerMessage(EventId = 51, Level = LogLevel.Information, Message = "VM {GuestCid}: capture {Path} closed: {Captured} packets, {Dropped} dropped, error {Error}")]
    private static partial void LogStopped(ILogger logger, ulong guestCid, string path, long captured, long dropped, string error);
}
