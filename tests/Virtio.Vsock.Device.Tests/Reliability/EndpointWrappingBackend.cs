namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>
/// Passes guest connections to an inner backend and wraps every endpoint it accepts with, so a test can watch what the
/// device asks of an endpoint or make one fail. The wrapped endpoints are kept in the order they were accepted.
/// </summary>
/// <typeparam name="TEndpoint">The wrapper.</typeparam>
internal sealed class EndpointWrappingBackend<TEndpoint>(IVsockBackend inner, Func<IVsockEndpoint, TEndpoint> wrap) : IVsockBackend
    where TEndpoint : IVsockEndpoint
{
    private readonly List<TEndpoint> _endpoints = [];

    /// <summary>The wrapped endpoints, in accept order.</summary>
    public IReadOnlyList<TEndpoint> Endpoints
    {
        get
        {
            lock (_endpoints)
            {
                return [.. _endpoints];
            }
        }
    }

    public void Attach(IVsockBackendHost host) => inner.Attach(host);

    public void OnGuestConnect(IVsockIncomingConnection connection) => inner.OnGuestConnect(new Wrapped(connection, this));

    public void OnDeviceReset() => inner.OnDeviceReset();

    private sealed class Wrapped(IVsockIncomingConnection connection, EndpointWrappingBackend<TEndpoint> owner) : IVsockIncomingConnection
    {
        public uint LocalPort => connection.LocalPort;

        public ulong PeerCid => connection.PeerCid;

        public uint PeerPort => connection.PeerPort;

        public VsockType Type => connection.Type;

        public void Accept(IVsockEndpoint endpoint)
        {
            TEndpoint wrapped = owner.Wrap(endpoint);
            lock (owner._endpoints)
            {
                owner._endpoints.Add(wrapped);
            }

            connection.Accept(wrapped);
        }

        public void Refuse() => connection.Refuse();
    }

    private TEndpoint Wrap(IVsockEndpoint endpoint) => wrap(endpoint);
}
