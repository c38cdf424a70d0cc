using System.Globalization;
using Virtio.Vsock;

namespace VhostUserVsock.Configuration;

/// <summary>
/// The ranges a VM's settings must fall in, each with the one-line description of a value that
/// does not. Used when a value is parsed and again when a whole configuration is validated, so a
/// configuration built in code is held to the same rules as one from the command line.
/// </summary>
public static class VmLimits
{
    /// <summary>The largest queue size (split virtqueues hold at most 32768 descriptors).</summary>
    public const uint MaxQueueSize = 32768;

    /// <summary>The smallest tx buffer size in bytes (the device's smallest per-connection buffer, 4 KiB).</summary>
    public const uint MinTxBufferSize = 4096;

    /// <summary>The largest tx buffer size in bytes (the device's largest per-connection buffer, 16 MiB).</summary>
    public const uint MaxTxBufferSize = 16 * 1024 * 1024;

    /// <summary>
    /// The longest Unix socket path in bytes (UTF-8): <c>sun_path</c> holds 108 bytes including the
    /// terminating NUL.
    /// </summary>
    public const int MaxUnixSocketPathBytes = 107;

    /// <summary>Describes what is wrong with a guest CID, or returns <see langword="null"/> when it is usable.</summary>
    /// <param name="cid">The candidate guest CID.</param>
    /// <returns>A one-line problem description, or <see langword="null"/>.</returns>
    public static string? DescribeGuestCidProblem(ulong cid)
    {
        if (VsockCid.IsValidGuestCid(cid))
        {
            return null;
        }

        string why = cid switch
        {
            VsockCid.Hypervisor => "reserved for the hypervisor",
            VsockCid.Local => "reserved for local loopback",
            VsockCid.Host => "the host's CID",
            VsockCid.Any => "reserved (VMADDR_CID_ANY)",
            _ => "above 32 bits",
        };
        return string.Create(
            CultureInfo.InvariantCulture,
            $"guest CID {cid} is {why}; a guest CID is {VsockCid.FirstGuest} to {VsockCid.Any - 1}");
    }

    /// <summary>Describes what is wrong with a tx buffer size, or returns <see langword="null"/> when it is usable.</summary>
    /// <param name="size">The candidate size in bytes.</param>
    /// <returns>A one-line problem description, or <see langword="null"/>.</returns>
    public static string? DescribeTxBufferSizeProblem(ulong size) =>
        size is >= MinTxBufferSize and <= MaxTxBufferSize
            ? null
            : string.Create(
                CultureInfo.InvariantCulture,
                $"tx buffer size {size} is out of range; it is {MinTxBufferSize} to {MaxTxBufferSize} bytes (4 KiB to 16 MiB)");

    /// <summary>Describes what is wrong with a queue size, or returns <see langword="null"/> when it is usable.</summary>
    /// <param name="size">The candidate queue size.</param>
    /// <returns>A one-line problem description, or <see langword="null"/>.</returns>
    public static string? DescribeQueueSizeProblem(ulong size) =>
        size is >= 1 and <= MaxQueueSize && ulong.IsPow2(size)
            ? null
            : string.Create(
                CultureInfo.InvariantCulture,
                $"queue size {size} is not a power of two from 1 to {MaxQueueSize}");

    /// <summary>Describes what is wrong with a group name, or returns <see langword="null"/> when it is usable.</summary>
    /// <param name="name">The candidate group name.</param>
    /// <returns>A one-line problem description, or <see langword="null"/>.</returns>
    public static string? DescribeGroupNameProblem(string name)
    {
        if (name.Length == 0)
        {
            return "empty group name (groups are names joined by '+', e.g. groups=a+b)";
        }

        foreach (char c in name)
        {
            if (c is '+' or ',' or '=' || char.IsWhiteSpace(c) || char.IsControl(c))
            {
                return $"group name '{ConfigText.Printable(name)}' contains '{ConfigText.Printable(c.ToString())}'; "
                    + "a group name has no spaces, '+', ',' or '='";
            }
        }

        return null;
    }
}
