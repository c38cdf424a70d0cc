using System.Globalization;

namespace VhostUserVsock.Tests.Guest;

/// <summary>
/// The guest's <c>GUEST-READY cid=&lt;cid|none&gt; kernel=&lt;release&gt; vsock-device=&lt;0|1&gt; uptime=&lt;s&gt;</c>
/// line: modules loaded, commands about to run.
/// </summary>
/// <param name="Cid">The guest's local CID, or null when it has no vsock transport.</param>
/// <param name="Kernel">uname -r.</param>
/// <param name="VsockDevice">A virtio device with id 0x0013 is on the guest's virtio bus.</param>
/// <param name="UptimeSeconds">Guest uptime when the line was printed.</param>
public sealed record GuestReadyInfo(uint? Cid, string Kernel, bool VsockDevice, double UptimeSeconds)
{
    /// <summary>Parses a serial line; null if it is not a GUEST-READY line.</summary>
    public static GuestReadyInfo? TryParse(string line)
    {
        if (!line.StartsWith("GUEST-READY", StringComparison.Ordinal))
            return null;
        uint? cid = null;
        string kernel = "";
        bool device = false;
        double uptime = 0;
        foreach (var word in line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1))
        {
            int eq = word.IndexOf('=');
            if (eq <= 0)
                continue;
            var (key, value) = (word[..eq], word[(eq + 1)..]);
            switch (key)
            {
                case "cid" when uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var c):
                    cid = c;
                    break;
                case "kernel":
                    kernel = value;
                    break;
                case "vsock-device":
                    device = value == "1";
                    break;
                case "uptime":
                    double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out uptime);
                    break;
            }
        }
        return new GuestReadyInfo(cid, kernel, device, uptime);
    }
}
