using Microsoft.Extensions.Logging;

namespace Vhost.User;

/// <summary>
/// What every request handler of one connection shares: the message in hand (its name, its descriptors), the
/// features negotiated so far, and the checks that refuse a malformed request with a logged reason. Touched by the
/// control thread only. Must never talk to the backend nor decide what a request does (the handlers do).
/// </summary>
internal sealed class RequestContext
{
    /// <summary>Creates the context of a connection.</summary>
    /// <param name="channel">The message channel.</param>
    /// <param name="logger">Where refusals go.</param>
    /// <param name="offeredFeatures">The virtio features offered (bit 30 included).</param>
    /// <param name="offeredProtocol">The protocol features offered.</param>
    internal RequestContext(MessageChannel channel, ILogger logger, ulong offeredFeatures, VhostUserProtocolFeatures offeredProtocol)
    {
        Channel = channel;
        Logger = logger;
        OfferedFeatures = offeredFeatures;
        OfferedProtocol = offeredProtocol;
    }

    /// <summary>The message channel (descriptors of the message in hand, replies).</summary>
    internal MessageChannel Channel { get; }

    /// <summary>The connection's logger.</summary>
    internal ILogger Logger { get; }

    /// <summary>The name of the request in hand (for example <c>SET_VRING_KICK</c>).</summary>
    internal string CurrentRequest { get; set; } = string.Empty;

    /// <summary>The virtio features offered (bit 30 included).</summary>
    internal ulong OfferedFeatures { get; }

    /// <summary>The protocol features offered.</summary>
    internal VhostUserProtocolFeatures OfferedProtocol { get; }

    /// <summary>The virtio features the frontend set (0 until SET_FEATURES, and after a reset).</summary>
    internal ulong AckedFeatures { get; set; }

    /// <summary>The protocol features the frontend set.</summary>
    internal VhostUserProtocolFeatures AckedProtocol { get; set; }

    /// <summary>Whether VHOST_USER_F_PROTOCOL_FEATURES (bit 30) was acknowledged.</summary>
    internal bool ProtocolFeaturesNegotiated => (AckedFeatures & VhostUserConnection.ProtocolFeaturesBit) != 0;

    /// <summary>Whether REPLY_ACK was negotiated.</summary>
    internal bool ReplyAckNegotiated => (AckedProtocol & VhostUserProtocolFeatures.ReplyAck) != 0;

    /// <summary>The number of descriptors that came with the message in hand.</summary>
    internal int FdCount => Channel.Fds.Count;

    /// <summary>Logs why the request in hand is refused.</summary>
    /// <param name="reason">The reason.</param>
    /// <returns>Always false (the handler's result).</returns>
    internal bool Refuse(string reason)
    {
        Log.Refused(Logger, CurrentRequest, reason);
        return false;
    }

    /// <summary>Refuses unless <paramref name="feature"/> is offered.</summary>
    /// <param name="feature">The protocol feature.</param>
    /// <returns>Whether the request may go on.</returns>
    internal bool RequireOffered(VhostUserProtocolFeatures feature) =>
        (OfferedProtocol & feature) != 0 || Refuse($"protocol feature {feature} is not offered");

    /// <summary>Refuses unless <paramref name="feature"/> was negotiated.</summary>
    /// <param name="feature">The protocol feature.</param>
    /// <returns>Whether the request may go on.</returns>
    internal bool RequireNegotiated(VhostUserProtocolFeatures feature) =>
        (AckedProtocol & feature) != 0 || Refuse($"protocol feature {feature} was not negotiated");

    /// <summary>Refuses unless the payload is exactly <paramref name="size"/> bytes.</summary>
    /// <param name="payload">The payload.</param>
    /// <param name="size">The size the request defines.</param>
    /// <returns>Whether the request may go on.</returns>
    internal bool ExpectSize(ReadOnlySpan<byte> payload, int size) =>
        payload.Length == size || Refuse($"payload of {payload.Length} bytes, expected {size}");

    /// <summary>Refuses when descriptors came with the message.</summary>
    /// <returns>Whether the request may go on.</returns>
    internal bool ExpectNoFds() => ExpectFds(0);

    /// <summary>Refuses unless exactly <paramref name="count"/> descriptors came with the message.</summary>
    /// <param name="count">The number the request defines.</param>
    /// <returns>Whether the request may go on.</returns>
    internal bool ExpectFds(int count) =>
        FdCount == count || Refuse($"{FdCount} descriptors attached, expected {count} (all closed)");
}
