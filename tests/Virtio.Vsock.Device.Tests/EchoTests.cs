using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests;

public sealed class EchoTests
{
    public static TheoryData<GuestBufferLayout, GuestBufferLayout, bool> Layouts => new()
    {
        { GuestBufferLayout.Linear, GuestBufferLayout.Linear, true },
        { GuestBufferLayout.HeaderAndData, GuestBufferLayout.HeaderAndData, false },
        { GuestBufferLayout.Scattered, GuestBufferLayout.Linear, true },
        { GuestBufferLayout.Indirect, GuestBufferLayout.HeaderAndData, true },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task GuestToHostEcho(GuestBufferLayout tx, GuestBufferLayout rx, bool eventIdx)
    {
        using var harness = new Harness(guestOptions: new GuestSimulatorOptions { TxLayout = tx, RxLayout = rx, EventIdx = eventIdx });
        CancellationToken token = Harness.Timeout();
        using VsockListener listener = harness.Backend.Listen(1234);
        Task server = Task.Run(async () =>
        {
            await using VsockStream stream = await listener.AcceptAsync(token);
            Assert.Equal(3UL, stream.RemoteCid);
            byte[] buffer = new byte[8192];
            int n;
            while ((n = await stream.ReadAsync(buffer, token)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, n), token);
            }
        }, token);

        GuestSocket socket = await harness.Guest.ConnectAsync(1234, cancellationToken: token);
        byte[] message = Helpers.Pattern(100_000, 1);
        Task send = socket.SendAsync(message, token);
        byte[] echoed = await Helpers.ReadExactly(socket, message.Length, token);
        await send;
        Assert.Equal(message, echoed);
        socket.Shutdown(ShutdownFlags.Send);
        await server.WaitAsync(token);
        Assert.Equal(0, await socket.ReceiveAsync(new byte[16], token));
        await socket.CloseAsync();
        Assert.False(socket.WasReset);
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0, what: "connection removed");
        await Harness.WaitUntil(() => harness.Guest.OutstandingTxChains == 0, what: "every TX chain returned to the guest");
        Assert.Equal(0, harness.Guest.MalformedRxPackets);
        Assert.Equal(1, harness.Metrics.ConnectionsOpened);
        Assert.Equal(0, harness.Metrics.TxInvalidChains);
    }

    [Fact]
    public async Task HostToGuestEcho()
    {
        using var harness = new Harness();
        CancellationToken token = Harness.Timeout();
        using GuestListener listener = harness.Guest.Listen(5000);
        Task server = Task.Run(async () =>
        {
            GuestSocket socket = await listener.AcceptAsync(token);
            byte[] buffer = new byte[8192];
            int n;
            while ((n = await socket.ReceiveAsync(buffer, token)) > 0)
            {
                await socket.SendAsync(buffer.AsMemory(0, n), token);
            }

            await socket.CloseAsync();
        }, token);

        await using VsockStream stream = await harness.Backend.ConnectAsync(5000, cancellationToken: token);
        Assert.True(stream.LocalPort >= 1u << 30);
        byte[] message = Helpers.Pattern(300_000, 2);
        Task send = stream.WriteAsync(message, token).AsTask();
        byte[] echoed = await Helpers.ReadExactly(stream, message.Length, token);
        await send;
        Assert.Equal(message, echoed);
        stream.CompleteWrites();
        Assert.Equal(0, await stream.ReadAsync(new byte[16], token));
        await server.WaitAsync(token);
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0, what: "connection removed");
        Assert.Equal(0, harness.Guest.MalformedRxPackets);
    }
}
