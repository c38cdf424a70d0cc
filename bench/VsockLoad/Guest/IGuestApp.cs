namespace VsockLoad.Guest;

/// <summary>What a scenario does on guest-side events (the "applications" in the guest).</summary>
internal interface IGuestApp
{
    /// <summary>A REQUEST arrived for a port nobody connected from: return a connection to accept it, or null to refuse (RST).</summary>
    /// <param name="localPort">The guest port asked for.</param>
    /// <param name="peerPort">The host's port.</param>
    /// <returns>The new connection, or null.</returns>
    GuestConnection? Accept(uint localPort, uint peerPort);

    /// <summary>A connection the guest opened got its RESPONSE.</summary>
    /// <param name="connection">The connection.</param>
    void Established(GuestConnection connection);

    /// <summary>Payload bytes were received and checked.</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="length">How many.</param>
    void Received(GuestConnection connection, int length);

    /// <summary>The connection reached <see cref="ConnectionState.Closed"/>.</summary>
    /// <param name="connection">The connection.</param>
    void Closed(GuestConnection connection);
}
