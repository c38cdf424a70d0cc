using System.Diagnostics;
using Virtio.Vsock.Device.Backends.InProcess;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>CREDIT_REQUEST as Linux would want it: only after a stall that no CREDIT_UPDATE ended, then backing off.</summary>
public sealed class CreditRequestTests
{
    private const uint GuestPort = 9300;
    private const uint HostPort = 6300;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static VsockHeader Header(VsockOp op, uint bufAlloc, uint fwdCnt = 0) => new()
    {
        SrcCid = 3,
        DstCid = VsockCid.Host,
        SrcPort = GuestPort,
        DstPort = HostPort,
        Type = VsockType.Stream,
        Op = op,
        BufAlloc = bufAlloc,
        FwdCnt = fwdCnt,
    };

    [Fact]
    public async Task AStalledConnectionAsksOnlyAfterTheDelayThenBacksOff()
    {
        var delay = TimeSpan.FromMilliseconds(150);
        using var harness = new Harness(new VsockDeviceOptions { CreditRequestDelay = delay });
        using VsockListener listener = harness.Backend.Listen(HostPort);
        harness.Guest.ClaimRawPort(GuestPort);
        harness.Guest.SendRaw(Header(VsockOp.Request, bufAlloc: 4096));
        Assert.NotNull(await harness.Guest.WaitRawAsync(h => h.DstPort == GuestPort && h.Op == VsockOp.Response, TimeSpan.FromSeconds(20)));
        await using VsockStream host = await listener.AcceptAsync(Token);

        // The host has more than the guest's 4 KiB of credit: the device sends 4 KiB and stalls. Times are taken
        // from before the write: the stall (and so every request) can only come after it, whatever the load.
        long writtenAt = Stopwatch.GetTimestamp();
        await host.WriteAsync(new byte[16 * 1024], Token);
        VsockHeader? data = await WaitRw(harness, 4096);
        Assert.NotNull(data);

        VsockHeader? request = await harness.Guest.WaitRawAsync(h => h.DstPort == GuestPort && h.Op == VsockOp.CreditRequest, TimeSpan.FromSeconds(20));
        TimeSpan firstAfter = Stopwatch.GetElapsedTime(writtenAt);
        Assert.NotNull(request);
        Assert.True(firstAfter >= delay * 0.9, $"CREDIT_REQUEST {firstAfter.TotalMilliseconds} ms into the stall, before the {delay.TotalMilliseconds} ms delay");

        // No answer: the next request comes twice the delay later, not sooner.
        int requests = Requests(harness);
        await Harness.WaitUntil(() => Requests(harness) > requests, 20_000, "a second CREDIT_REQUEST");
        TimeSpan secondAfter = Stopwatch.GetElapsedTime(writtenAt);
        Assert.True(secondAfter >= delay * 2.7, $"second CREDIT_REQUEST {secondAfter.TotalMilliseconds} ms after the write; expected the delay plus twice the delay ({3 * delay.TotalMilliseconds} ms)");

        // The guest's update ends the stall: data flows and nothing more is asked.
        harness.Guest.SendRaw(Header(VsockOp.CreditUpdate, bufAlloc: 4096, fwdCnt: 4096));
        Assert.NotNull(await WaitRw(harness, 8192));
    }

    [Fact]
    public async Task AGuestThatUpdatesByItselfIsNeverAsked()
    {
        using var harness = new Harness(new VsockDeviceOptions { CreditRequestDelay = TimeSpan.FromSeconds(30) });
        using VsockListener listener = harness.Backend.Listen(HostPort);
        var guest = await harness.Guest.ConnectAsync(HostPort, cancellationToken: Token);
        await using VsockStream host = await listener.AcceptAsync(Token);
        byte[] payload = Helpers.Pattern(8 << 20, 11);
        Task write = host.WriteAsync(payload, Token).AsTask();
        Assert.Equal(payload, await Helpers.ReadExactly(guest, payload.Length, Token));
        await write;
        Assert.True(harness.Metrics.CreditStalls > 0, "the transfer outran the guest's credit at least once");
        Assert.Equal(0, harness.Metrics.CreditRequestsSent);
    }

    private static int Requests(Harness harness) => harness.Guest.RawReceived.Count(h => h.DstPort == GuestPort && h.Op == VsockOp.CreditRequest);

    private static async Task<VsockHeader?> WaitRw(Harness harness, long total)
    {
        long deadline = Environment.TickCount64 + 20_000;
        while (Environment.TickCount64 < deadline)
        {
            long received = harness.Guest.RawReceived.Where(h => h.DstPort == GuestPort && h.Op == VsockOp.Rw).Sum(h => (long)h.Len);
            if (received >= total)
            {
                return harness.Guest.RawReceived.Last(h => h.DstPort == GuestPort && h.Op == VsockOp.Rw);
            }

            await Task.Delay(2, Token); // poll interval under the 20 s deadline above
        }

        return null;
    }
}
