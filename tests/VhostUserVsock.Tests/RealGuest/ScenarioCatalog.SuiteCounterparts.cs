using System.Net.Sockets;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// Host &lt;-&gt; guest counterparts of checks the kernel's vsock suite makes between two guests and the
/// other scenarios do not: SHUT_RD makes the peer's send fail with EPIPE (both ways), MSG_PEEK after a
/// partial read, SO_RCVLOWAT with credit updates, backpressure with small packets, and the device
/// never sending beyond the guest's credit (TX credit bounds).
/// </summary>
public static partial class ScenarioCatalog
{
    /// <summary>Guest shuts down reading; the host's sends must then fail with EPIPE (the device tells the host socket).</summary>
    public static GuestScenario ShutRdGuestThenHostSendFails(string name, uint port) => new()
    {
        Name = name,
        Description = "guest shutdown(SHUT_RD): the host's send fails with EPIPE",
        Commands = [Cmd(name, "-a", "60", "-t", "20", "-T", "60", "shutrd-server", port)],
        Host = async ctx =>
        {
            await ctx.WaitListeningAsync(name);
            var attempt = await GuestConnector.ConnectAsync(ctx.UdsPath, port, SocketType.Stream, ctx.Cancellation);
            using var conn = attempt.Socket!;
            await ctx.Guest.WaitForOutputAsync(name, "SHUTRD", TimeSpan.FromSeconds(60), ctx.Cancellation);
            // SHUTDOWN(RCV) reaches the device after the guest printed SHUTRD: keep sending (bounded)
            // until a send fails; every send before that may succeed.
            // Non-blocking sends, each after the socket polled writable (at most 1 s each, 20 s in all): a
            // host socket the device never shuts would fill up, not fail.
            var chunk = new byte[1024];
            SocketError error = SocketError.Success;
            long sent = 0;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            conn.Blocking = false;
            while (DateTime.UtcNow < deadline && error == SocketError.Success)
            {
                if (!conn.Poll(TimeSpan.FromSeconds(1), SelectMode.SelectWrite) && !conn.Poll(TimeSpan.Zero, SelectMode.SelectError))
                    continue;
                int n = conn.Send(chunk, 0, chunk.Length, SocketFlags.None, out error);
                sent += Math.Max(0, n);
                if (error == SocketError.WouldBlock)
                    error = SocketError.Success;
            }
            conn.Blocking = true;
            ctx.Log($"host sent {sent} bytes, then {error}");
            conn.Dispose();
            // the second connection tells the guest the host is done
            var done = await GuestConnector.ConnectAsync(ctx.UdsPath, port, SocketType.Stream, ctx.Cancellation);
            done.Socket!.Dispose();
            await ctx.ExpectOkAsync(name);
            ctx.Check(error == SocketError.Shutdown, $"the host's send after the guest's SHUT_RD ended with {error} after {sent} bytes, expected EPIPE (Shutdown)");
        },
    };

    /// <summary>Host shuts down reading; the guest's sends must then fail with EPIPE.</summary>
    public static GuestScenario ShutRdHostThenGuestSendFails(string name, uint port) => new()
    {
        Name = name,
        Description = "host shutdown(SHUT_RD): the guest's send fails with EPIPE",
        Commands = [Cmd(name, "-t", "20", "-T", "60", "send-until-epipe", HostCid, port)],
        Prepare = ctx => ctx.Listen(port),
        Host = async ctx =>
        {
            using var conn = await ctx.Listener(port).AcceptAsync(ctx.Cancellation);
            conn.Shutdown(SocketShutdown.Receive);
            await HostStreams.SendAllAsync(conn, "G"u8.ToArray(), ctx.Cancellation);
            ctx.Log("host shut down reading and sent the go byte");
            var r = await ctx.ExpectOkAsync(name);
            ctx.Log($"guest: {r}");
            conn.Dispose();
        },
    };

    /// <summary>The host sends <paramref name="bytes"/>; the guest reads 1000, peeks the rest (must match from offset 1000), reads it.</summary>
    public static GuestScenario PeekAfterPartialRead(string name, uint port, long bytes) => new()
    {
        Name = name,
        Description = "MSG_PEEK after a partial read returns the unread bytes",
        Commands = [Cmd(name, "-t", "20", "-T", "60", "peek-partial", HostCid, port, bytes)],
        Prepare = ctx => ctx.Listen(port),
        Host = async ctx =>
        {
            using var conn = await ctx.Listener(port).AcceptAsync(ctx.Cancellation);
            var sent = await HostStreams.SendPatternAsync(conn, bytes, 0, shutdown: true, ctx.Cancellation);
            ctx.Log($"host sent {sent}");
            var r = await ctx.ExpectOkAsync(name);
            ctx.Check(r.Bytes == bytes, $"guest read {r.Bytes} bytes, expected {bytes}");
            conn.Dispose();
        },
    };

    /// <summary>
    /// The suite's "virtio credit update + SO_RCVLOWAT" (<paramref name="low"/> false) or "+ low rx_bytes"
    /// (true) with the host as the sender: 128 KiB + 1 into a 128 KiB guest buffer; the last byte must
    /// arrive after the guest's credit update and wake its poll.
    /// </summary>
    public static GuestScenario RcvLowatCreditUpdate(string name, uint port, bool low) => new()
    {
        Name = name,
        Description = $"SO_RCVLOWAT with credit updates ({(low ? "low rx_bytes" : "default")}): the last byte arrives",
        Commands = [Cmd(name, "-a", "60", "-t", "20", "-T", "60", "rcvlowat-server", port, low ? "low" : "def")],
        Host = async ctx =>
        {
            await ctx.WaitListeningAsync(name);
            var attempt = await GuestConnector.ConnectAsync(ctx.UdsPath, port, SocketType.Stream, ctx.Cancellation);
            using var conn = attempt.Socket!;
            var go = new byte[1];
            var n = await conn.ReceiveAsync(go, SocketFlags.None, ctx.Cancellation);
            ctx.Check(n == 1, "no go byte from the guest");
            var sent = await HostStreams.SendPatternAsync(conn, (128 * 1024) + 1, 0, shutdown: true, ctx.Cancellation);
            ctx.Log($"host sent {sent}");
            var r = await ctx.ExpectOkAsync(name);
            ctx.Check(r.Bytes == (128 * 1024) + 1, $"guest read {r.Bytes} bytes, expected {(128 * 1024) + 1}");
            conn.Dispose();
        },
    };

    /// <summary>
    /// The guest sends <paramref name="count"/> packets of <paramref name="size"/> bytes while the host
    /// does not read until the guest's sends blocked (backpressure through the device); then every byte arrives.
    /// </summary>
    public static GuestScenario SmallPacketBackpressure(string name, uint port, int count, int size) => new()
    {
        Name = name,
        Description = $"backpressure with {count} packets of {size} bytes: the guest blocks, nothing is lost",
        Commands = [Cmd(name, "-t", "30", "-T", "120", "send-small", HostCid, port, count, size)],
        Prepare = ctx => ctx.Listen(port),
        Host = async ctx =>
        {
            using var conn = await ctx.Listener(port).AcceptAsync(ctx.Cancellation);
            var blocked = await ctx.Guest.WaitForOutputAsync(name, "BLOCKED", TimeSpan.FromSeconds(90), ctx.Cancellation);
            ctx.Log($"guest: {blocked}");
            var got = await HostStreams.ReceiveToEndAsync(conn, 0, ctx.Cancellation);
            ctx.Log($"host received {got}");
            conn.Dispose();
            var r = await ctx.ExpectOkAsync(name);
            long expected = (long)count * size;
            ctx.Check(got.Bytes == expected, $"host received {got.Bytes} bytes, expected {expected}");
            ctx.Check(got.MismatchAt < 0, $"received data differs from the pattern at offset {got.MismatchAt}");
            ctx.Check(r.Crc32 == got.Crc32, $"CRC-32 differs: guest sent {r.Value("crc32")}, host received {got.Crc32Hex}");
        },
    };

    /// <summary>
    /// The device must never send beyond the guest's credit: a <paramref name="bufferSize"/>-byte guest
    /// buffer read only half at a time never holds more than <paramref name="bufferSize"/> bytes, and
    /// every byte of <paramref name="bytes"/> arrives in order.
    /// </summary>
    public static GuestScenario TxCreditBounds(string name, uint port, int bufferSize, long bytes) => new()
    {
        Name = name,
        Description = $"TX credit bounds: {bytes} bytes into a {bufferSize}-byte guest buffer, never more queued",
        Commands = [Cmd(name, "-a", "60", "-t", "20", "-T", "120", "credit-bounds-server", port, bufferSize, bytes)],
        Host = async ctx =>
        {
            await ctx.WaitListeningAsync(name);
            var attempt = await GuestConnector.ConnectAsync(ctx.UdsPath, port, SocketType.Stream, ctx.Cancellation);
            using var conn = attempt.Socket!;
            var sent = await HostStreams.SendPatternAsync(conn, bytes, 0, shutdown: true, ctx.Cancellation);
            ctx.Log($"host sent {sent}");
            var r = await ctx.ExpectOkAsync(name);
            ctx.Log($"guest: {r}");
            ctx.Check(r.Bytes == bytes, $"guest read {r.Bytes} bytes, expected {bytes}");
            conn.Dispose();
        },
    };
}
