using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>
/// A stream connection's data packets of one TX batch reach an endpoint that writes from many packets in one call
/// (the TX run): in order, every byte, also when the endpoint takes only part of a run, and before a SHUTDOWN or a
/// RST the guest queued behind them.
/// </summary>
public sealed class TxRunTests
{
    private const uint Port = 5400;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RunsOfSmallPacketsArriveWholeAndInOrder()
    {
        await using var setup = await Setup.Start(takeAtMost: int.MaxValue);
        await setup.StreamAndCheck(4 << 20, seed: 21);

        Assert.True(setup.Endpoint.MostPacketsInOneWrite > 1, $"one write carried at most {setup.Endpoint.MostPacketsInOneWrite} packet(s)");
        Assert.True(setup.Endpoint.MostPacketsInOneWrite <= TxRun.MaxPackets, $"one write carried {setup.Endpoint.MostPacketsInOneWrite} packets");
        Assert.Equal(0, setup.Device.Metrics.CreditViolations);
    }

    [Fact]
    public async Task WhatARunWriteDoesNotTakeIsBufferedAndDelivered()
    {
        // 5000 bytes per call: most runs are taken in part (mid-packet), the rest waits in the connection's buffer.
        await using var setup = await Setup.Start(takeAtMost: 5000);
        await setup.StreamAndCheck(2 << 20, seed: 22);

        Assert.True(setup.Endpoint.PartialRunWrites > 0, "no run write was partial");
        Assert.Equal(0, setup.Device.Metrics.CreditViolations);
    }

    [Fact]
    public async Task DataQueuedBeforeACloseIsWrittenBeforeTheClose()
    {
        await using var setup = await Setup.Start(takeAtMost: int.MaxValue);
        byte[] data = Helpers.Pattern(48 * 1024, 23);
        await setup.Guest.SendAsync(data, Token);
        await setup.Guest.CloseAsync();

        byte[] received = await Helpers.ReadAll(setup.Host, Token);
        Assert.Equal(data, received);
    }

    private sealed class Setup : IAsyncDisposable
    {
        private readonly GuestSimulator _simulator;
        private readonly VsockListener _listener;

        private Setup(GuestSimulator simulator, VsockDevice device, VsockListener listener, EndpointWrappingBackend<RunEndpoint> backend)
        {
            _simulator = simulator;
            Device = device;
            _listener = listener;
            Backend = backend;
        }

        public VsockDevice Device { get; }

        public EndpointWrappingBackend<RunEndpoint> Backend { get; }

        public GuestSocket Guest { get; private set; } = null!;

        public VsockStream Host { get; private set; } = null!;

        public RunEndpoint Endpoint => Backend.Endpoints[0];

        public static async Task<Setup> Start(int takeAtMost)
        {
            var inner = new InProcessBackend();
            var backend = new EndpointWrappingBackend<RunEndpoint>(inner, endpoint => new RunEndpoint(endpoint, takeAtMost));
            VsockListener listener = inner.Listen(Port);
            (GuestSimulator guest, VsockDevice device) = GuestSimulator.Create(
                new VsockDeviceOptions(),
                backend,
                new GuestSimulatorOptions { MaxTxPayload = 4096 });
            var setup = new Setup(guest, device, listener, backend);
            setup.Guest = await guest.ConnectAsync(Port, cancellationToken: Token);
            setup.Host = await listener.AcceptAsync(Token);
            return setup;
        }

        /// <summary>The guest streams <paramref name="size"/> pattern bytes and shuts down; the host gets them all, in order.</summary>
        public async Task StreamAndCheck(int size, int seed)
        {
            Task<(long, uint)> hostReceives = Helpers.ReceiveAndHash(m => Host.ReadAsync(m, Token).AsTask());
            uint sentCrc = await Helpers.SendPattern(m => Guest.SendAsync(m, Token), size, seed);
            Guest.Shutdown(ShutdownFlags.Send);
            (long count, uint crc) = await hostReceives;
            Assert.Equal(size, count);
            Assert.Equal(sentCrc, crc);
        }

        public async ValueTask DisposeAsync()
        {
            await Host.DisposeAsync();
            _listener.Dispose();
            _simulator.Dispose();
            Device.Dispose();
        }
    }

    /// <summary>
    /// Writes runs by copying the packets' payloads into the inner endpoint (at most <c>takeAtMost</c> bytes a call),
    /// and records how many packets each call carried.
    /// </summary>
    private sealed class RunEndpoint(IVsockEndpoint inner, int takeAtMost) : IVsockEndpoint
    {
        private readonly byte[] _staging = new byte[TxRun.MaxPackets * 64 * 1024];

        public int MostPacketsInOneWrite { get; private set; }

        public int PartialRunWrites { get; private set; }

        public bool WritesFromManyPackets => true;

        public void Start(IVsockEndpointEvents events) => inner.Start(events);

        public EndpointResult Write(ReadOnlySpan<VsockPacket> packets)
        {
            MostPacketsInOneWrite = Math.Max(MostPacketsInOneWrite, packets.Length);
            int staged = 0;
            foreach (VsockPacket packet in packets)
            {
                DataSpanEnumerator spans = packet.GetDataSpans(0, (int)packet.Len);
                while (spans.MoveNext())
                {
                    spans.Current.CopyTo(_staging.AsSpan(staged));
                    staged += spans.Current.Length;
                }

                Assert.False(spans.Error.IsError);
            }

            int take = Math.Min(staged, takeAtMost);
            EndpointResult result = inner.Write(_staging.AsSpan(0, take), SeqPacketFlags.None);
            if (result.Status == EndpointStatus.Ok && result.Bytes < staged)
            {
                PartialRunWrites++;
            }

            return result;
        }

        public EndpointResult Write(VsockPacket packet, int offset, SeqPacketFlags boundary) => inner.Write(packet, offset, boundary);

        public EndpointResult Write(ReadOnlySpan<byte> data, SeqPacketFlags boundary) => inner.Write(data, boundary);

        public EndpointResult Read(VsockPacket packet, int maxBytes) => inner.Read(packet, maxBytes);

        public void RequestReadable() => inner.RequestReadable();

        public void RequestWritable() => inner.RequestWritable();

        public void ShutdownSend() => inner.ShutdownSend();

        public void Close(bool abort) => inner.Close(abort);
    }
}
