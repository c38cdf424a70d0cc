using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Vhost.User;

/// <summary>
/// Serves one vhost-user frontend (for example QEMU) over a connected Unix stream socket: reads each
/// message with its SCM_RIGHTS descriptors, validates it, and drives an <see cref="IVhostUserBackend"/>.
/// </summary>
/// <remarks>
/// <para><b>The story of a session.</b> This class only tells it: a <see cref="MessageChannel"/> frames each
/// message, the <see cref="RequestDispatcher"/> routes it (features and status itself; rings to the
/// <see cref="VringTable"/>, memory to the <see cref="MemoryTable"/>, configuration to
/// <see cref="DeviceConfigRequests"/>), until the frontend leaves or <see cref="Stop"/> is called; then the
/// device is reset and everything released. It must never handle a request itself.</para>
/// <para><b>Hostile input.</b> Every message is checked before it reaches the backend: header version and
/// flags, payload size (exact per request; more than <see cref="MaxPayloadSize"/> closes the connection
/// because framing can no longer be trusted), descriptor count (at most 8; descriptors a request does not
/// expect are closed), queue indices, queue sizes, ring alignment, addresses against the memory table,
/// memory file sizes. A refused message is logged with the reason and, when the frontend asked for a
/// reply (REPLY_ACK with NEED_REPLY, or a request whose reply is mandatory), answered with an error:
/// a non-zero u64, or a reply without payload where the reply carries data (the vhost-user convention
/// for GET_CONFIG, which QEMU treats as an error for every request). The connection then reads the next
/// message.</para>
/// <para><b>Threading.</b> <see cref="Run"/> is the control thread: it blocks until the frontend goes away
/// or <see cref="Stop"/> is called, then resets the backend and releases every descriptor and mapping.
/// Each started queue has its own kick thread, unless the backend waits on the kick descriptor itself
/// (see <see cref="IVhostUserBackend.TryTakeKick"/>).</para>
/// </remarks>
public sealed class VhostUserConnection : IDisposable
{
    /// <summary>The protocol features this implementation can honour; a backend's other bits are not offered.</summary>
    public const VhostUserProtocolFeatures SupportedProtocolFeatures =
        VhostUserProtocolFeatures.Mq
        | VhostUserProtocolFeatures.ReplyAck
        | VhostUserProtocolFeatures.Config
        | VhostUserProtocolFeatures.ConfigureMemSlots
        | VhostUserProtocolFeatures.ResetDevice
        | VhostUserProtocolFeatures.Status;

    /// <summary>The number of memory regions accepted in total (the <c>GET_MAX_MEM_SLOTS</c> answer).</summary>
    public const int MaxMemorySlots = 32;

    /// <summary>The largest payload read at all; a larger size field closes the connection.</summary>
    public const int MaxPayloadSize = 4096;

    /// <summary><c>VHOST_USER_F_PROTOCOL_FEATURES</c>: virtio feature bit 30.</summary>
    public const ulong ProtocolFeaturesBit = 1UL << 30;

    private static readonly string[] RequestNames = BuildRequestNames();

    private readonly MessageChannel _channel;
    private readonly IVhostUserBackend _backend;
    private readonly ILogger _logger;
    private readonly RequestContext _context;
    private readonly MemoryTable _memory;
    private readonly VringTable _vrings;
    private readonly RequestDispatcher _dispatcher;
    private int _runState;

    /// <summary>Creates a connection; call <see cref="Run"/> to serve it.</summary>
    /// <param name="socket">A connected Unix stream socket; the connection owns it from now on.</param>
    /// <param name="backend">The device.</param>
    /// <param name="logger">Where refusals and lifecycle events go; none when <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">The backend reports an invalid queue count or queue size.</exception>
    /// <exception cref="IOException">No eventfd could be created.</exception>
    public VhostUserConnection(Socket socket, IVhostUserBackend backend, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(backend);
        ValidateBackend(backend);
        _backend = backend;
        _logger = logger ?? NullLogger.Instance;
        ulong offeredFeatures = (backend.Features & ~ProtocolFeaturesBit) | ProtocolFeaturesBit;
        _channel = new MessageChannel(socket, _logger);
        _context = new RequestContext(_channel, _logger, offeredFeatures, backend.ProtocolFeatures & SupportedProtocolFeatures);
        _memory = new MemoryTable(_context, backend);
        _vrings = new VringTable(_context, backend, _memory, backend.QueueCount, backend.MaxQueueSize);
        _dispatcher = new RequestDispatcher(_context, backend, _vrings, _memory, new DeviceConfigRequests(_context, backend), ResetDevice);
    }

    /// <summary>
    /// Serves the frontend on the calling thread until it disconnects, a framing error occurs, or
    /// <see cref="Stop"/> is called; then resets the backend, stops every kick thread, closes every
    /// descriptor, releases guest memory and closes the socket. Call at most once.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called twice, or after <see cref="Dispose"/>.</exception>
    public void Run()
    {
        if (Interlocked.CompareExchange(ref _runState, 1, 0) != 0)
        {
            throw new InvalidOperationException("A vhost-user connection is served once.");
        }

        try
        {
            while (_channel.CloseReason is null)
            {
                ServeOneMessage();
            }
        }
        finally
        {
            Teardown(_channel.CloseReason ?? "connection aborted");
        }
    }

    /// <summary>Makes <see cref="Run"/> return soon (it still resets the backend). Thread-safe, idempotent.</summary>
    public void Stop() => _channel.RequestStop();

    /// <summary>How many kick threads run now (queues whose kick the backend did not take). For tests.</summary>
    internal int KickWaiterCount => _vrings.KickWaiterCount;

    /// <summary>Stops serving; releases everything at once when <see cref="Run"/> was never called.</summary>
    public void Dispose()
    {
        if (Interlocked.CompareExchange(ref _runState, 2, 0) == 0)
        {
            Teardown("disposed before serving");
        }
        else
        {
            Stop();
        }
    }

    internal static void ValidateBackend(IVhostUserBackend backend)
    {
        int queues = backend.QueueCount;
        if (queues < 1 || queues > 256)
        {
            throw new ArgumentException($"Backend queue count {queues} is outside 1..256.", nameof(backend));
        }

        ushort size = backend.MaxQueueSize;
        if (size == 0 || (size & (size - 1)) != 0 || size > 32768)
        {
            throw new ArgumentException($"Backend max queue size {size} is not a power of two in 1..32768.", nameof(backend));
        }
    }

    internal static string RequestName(uint request) =>
        request < RequestNames.Length ? RequestNames[request] : $"request {request}";

    private static string[] BuildRequestNames()
    {
        var names = new string[(int)VhostUserRequest.CheckDeviceState + 1];
        for (uint i = 0; i < names.Length; i++)
        {
            string name = ((VhostUserRequest)i).ToString();
            var builder = new System.Text.StringBuilder(name.Length + 8);
            for (int c = 0; c < name.Length; c++)
            {
                if (c > 0 && char.IsUpper(name[c]))
                {
                    builder.Append('_');
                }

                builder.Append(char.ToUpperInvariant(name[c]));
            }

            names[i] = builder.ToString();
        }

        return names;
    }

    /// <summary>Reads one message and handles it; the channel's close reason is set when the connection must end.</summary>
    private void ServeOneMessage()
    {
        try
        {
            if (_channel.TryReceive(out uint request, out bool needReply, out Span<byte> payload, out bool fdsDropped))
            {
                _dispatcher.Dispatch((VhostUserRequest)request, needReply, payload, fdsDropped);
            }
        }
        finally
        {
            _channel.CloseUnusedFds();
        }
    }

    /// <summary>Stops every queue and forgets the device state; the connection itself stays up.</summary>
    private void ResetDevice(string cause)
    {
        Log.Lifecycle(_logger, $"{cause}: resetting the device");
        _vrings.StopKickers();
        try
        {
            _backend.Reset();
        }
        finally
        {
            _vrings.ClearAll();
            _memory.Dispose();
            _dispatcher.ResetNegotiation();
        }
    }

    private void Teardown(string reason)
    {
        _vrings.StopKickers();
        try
        {
            _backend.Reset();
        }
#pragma warning disable CA1031 // The connection must release its resources whatever the backend does.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            Log.BackendFailed(_logger, "reset after disconnect", exception);
        }

        _vrings.Dispose();
        _memory.Dispose();
        _channel.Dispose();
        Log.FrontendDisconnected(_logger, reason);
    }
}
