using System.Buffers.Binary;

namespace Vhost.User;

/// <summary>
/// GET_CONFIG and SET_CONFIG: checks the configuration header (offset, size at most <see cref="MaxConfigSize"/>,
/// flags, overflow) and hands the range to the backend, which owns the configuration space. Touched by the control
/// thread only; must never read or write the configuration itself.
/// </summary>
internal sealed class DeviceConfigRequests(RequestContext context, IVhostUserBackend backend)
{
    /// <summary>The largest configuration range one message reads or writes.</summary>
    internal const int MaxConfigSize = 256;

    /// <summary>GET_CONFIG: replies with the header and the bytes the backend read.</summary>
    /// <param name="payload">The request payload.</param>
    /// <returns>Whether it succeeded (a failure gets the empty error reply).</returns>
    internal bool HandleGetConfig(ReadOnlySpan<byte> payload)
    {
        if (!TryReadConfigHeader(payload, out uint offset, out uint size, out _) || !context.ExpectNoFds())
        {
            return false;
        }

        Span<byte> reply = stackalloc byte[12 + MaxConfigSize];
        reply = reply[..(12 + (int)size)];
        payload[..12].CopyTo(reply);
        Span<byte> data = reply[12..];
        data.Clear();
        if (!backend.ReadConfig(offset, data))
        {
            return context.Refuse($"configuration range [{offset}, +{size}) is outside the device configuration space");
        }

        return context.Channel.SendReply(VhostUserRequest.GetConfig, reply);
    }

    /// <summary>SET_CONFIG: hands the bytes to the backend.</summary>
    /// <param name="payload">The request payload.</param>
    /// <returns>Whether the backend accepted them.</returns>
    internal bool HandleSetConfig(ReadOnlySpan<byte> payload)
    {
        if (!TryReadConfigHeader(payload, out uint offset, out _, out uint flags) || !context.ExpectNoFds())
        {
            return false;
        }

        if (flags > 1)
        {
            return context.Refuse($"configuration flags 0x{flags:x} (only 0 = writable fields and 1 = migration are defined)");
        }

        return backend.WriteConfig(offset, payload[12..], migration: flags == 1)
            || context.Refuse($"the device refused a write of {payload.Length - 12} bytes at configuration offset {offset}");
    }

    private bool TryReadConfigHeader(ReadOnlySpan<byte> payload, out uint offset, out uint size, out uint flags)
    {
        offset = size = flags = 0;
        if (!context.RequireOffered(VhostUserProtocolFeatures.Config))
        {
            return false;
        }

        if (payload.Length < 12)
        {
            return context.Refuse($"payload of {payload.Length} bytes is shorter than the 12-byte configuration header");
        }

        offset = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        size = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
        flags = BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]);
        if (size == 0 || size > MaxConfigSize)
        {
            return context.Refuse($"configuration size {size} is outside 1..{MaxConfigSize}");
        }

        if (payload.Length != 12 + size)
        {
            return context.Refuse($"payload of {payload.Length} bytes does not match the configuration size {size} (+12)");
        }

        if ((ulong)offset + size > uint.MaxValue)
        {
            return context.Refuse($"configuration range [{offset}, +{size}) overflows");
        }

        return true;
    }
}
