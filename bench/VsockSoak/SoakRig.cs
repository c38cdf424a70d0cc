using System.Net.Sockets;
using System.Text;
using Virtio.Vsock;
using Virtio.Vsock.Device;
using Virtio.Vsock.Backends.Unix;
using Virtio.Vsock.Testing;

namespace VsockSoak;

/// <summary>
/// The system under soak, all in this process: a <see cref="VsockDevice"/> with the Unix hybrid backend
/// (real Unix sockets in a fresh temp directory) driven by the guest simulator, plus one host listener
/// (<c>uds_path_PORT</c>) and one guest listener per worker. Owns all of them and the directory, and the
/// frontend reconnect (device reset and re-attach). It must never open an AF_VSOCK socket.
/// </summary>
internal sealed class SoakRig : IAsyncDisposable
{
    /// <summary>The first port; worker i uses host port and guest port <c>BasePort + i</c>.</summary>
    public const uint BasePort = 20000;

    private readonly Socket[] _hostListeners;
    private readonly GuestListener[] _guestListeners;
    private int _epoch;

    public SoakRig(SoakOptions options)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("vsoak").FullName;
        UdsPath = Path.Combine(Directory, "v.sock");
        Backend = new UnixSocketBackend(new UnixSocketBackendOptions
        {
            UdsPath = UdsPath,
            SeqPacketListener = false,
            GuestConnectTimeout = options.Timeout,
        });
        var deviceOptions = new VsockDeviceOptions
        {
            GuestCid = 3,
            ConnectTimeout = options.Timeout,
            ShutdownTimeout = options.Timeout,
        };
        var guestOptions = new GuestSimulatorOptions
        {
            ConnectTimeout = options.Timeout,
            CloseTimeout = options.Timeout,
        };
        (Guest, Device) = GuestSimulator.Create(deviceOptions, Backend, guestOptions);
        Backend.Start();
        _hostListeners = new Socket[options.Connections];
        _guestListeners = new GuestListener[options.Connections];
        for (int i = 0; i < options.Connections; i++)
        {
            uint port = BasePort + (uint)i;
            var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(UdsPath + "_" + port));
            listener.Listen(16);
            _hostListeners[i] = listener;
            _guestListeners[i] = Guest.Listen(port, VsockType.Stream);
        }
    }

    public string Directory { get; }

    public string UdsPath { get; }

    public UnixSocketBackend Backend { get; }

    public GuestSimulator Guest { get; }

    public VsockDevice Device { get; }

    /// <summary>Changes twice per reconnect (odd while one is under way); a connection that saw it change overlapped one.</summary>
    public int Epoch => Volatile.Read(ref _epoch);

    /// <summary>The frontend disconnects and reconnects: device reset, then memory and queues set up again.</summary>
    public void Reconnect()
    {
        Interlocked.Increment(ref _epoch);
        try
        {
            Guest.Reattach();
        }
        finally
        {
            Interlocked.Increment(ref _epoch);
        }
    }

    /// <summary>Accepts the host end of a guest-to-host connection on worker <paramref name="worker"/>'s port.</summary>
    public async Task<Socket> AcceptOnHostAsync(int worker, CancellationToken token) =>
        await _hostListeners[worker].AcceptAsync(token).ConfigureAwait(false);

    /// <summary>Accepts the guest end of a host-to-guest connection on worker <paramref name="worker"/>'s port.</summary>
    public ValueTask<GuestSocket> AcceptOnGuestAsync(int worker, CancellationToken token) => _guestListeners[worker].AcceptAsync(token);

    /// <summary>A host program connects to guest port <c>BasePort + worker</c> through the hybrid listener.</summary>
    /// <returns>The connected socket, or null when the device refused (no <c>OK</c>).</returns>
    public async Task<Socket?> ConnectToGuestAsync(int worker, CancellationToken token)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(UdsPath), token).ConfigureAwait(false);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {BasePort + (uint)worker}\n"), SocketFlags.None, token).ConfigureAwait(false);
            string reply = await ReadLineAsync(socket, token).ConfigureAwait(false);
            if (reply.StartsWith("OK ", StringComparison.Ordinal))
            {
                return socket;
            }
        }
        catch (Exception exception) when (Transfer.IsConnectionEnd(exception))
        {
        }

        socket.Dispose();
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (Socket listener in _hostListeners)
        {
            listener?.Dispose();
        }

        foreach (GuestListener listener in _guestListeners)
        {
            listener?.Dispose();
        }

        await Backend.DisposeAsync().ConfigureAwait(false);
        Device.Dispose();
        Guest.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static async Task<string> ReadLineAsync(Socket socket, CancellationToken token)
    {
        // One byte at a time, so nothing after the line is consumed.
        var line = new StringBuilder();
        byte[] one = new byte[1];
        while (line.Length < 64)
        {
            int n = await socket.ReceiveAsync(one, SocketFlags.None, token).ConfigureAwait(false);
            if (n == 0 || one[0] == (byte)'\n')
            {
                break;
            }

            line.Append((char)one[0]);
        }

        return line.ToString();
    }
}
