namespace VhostUserVsock.Tests.Guest;

/// <summary>
/// Boots the real Debian guest (no vsock device yet): proves the image, QEMU command, serial
/// markers and command plumbing work before any device test relies on them.
/// </summary>
public sealed class GuestBootTests
{
    [Fact]
    public async Task Guest_boots_and_runs_commands()
    {
        var image = GuestImage.TryLocate(GuestSuite.Bookworm, out var missing);
        if (image is null)
        {
            if (Environment.GetEnvironmentVariable("CI") == "true")
                Assert.Fail($"The real-guest test cannot run in CI: {missing}. {GuestImage.InstallScript} must install and build it.");
            Assert.Skip($"Real-guest test skipped: {missing}");
        }

        var ct = TestContext.Current.CancellationToken;
        await using var guest = QemuGuest.Start(image, new QemuGuestOptions
        {
            Timeout = TimeSpan.FromSeconds(90),
            CommandTimeout = TimeSpan.FromSeconds(30),
            Commands =
            [
                GuestCommand.Vsocktest("cid", "cid"),
                new GuestCommand("shell", "echo hello from $(uname -r); exit 7"),
            ],
        });

        var outcome = await guest.Completion.WaitAsync(ct);

        Assert.True(outcome == GuestOutcome.Done, $"expected GUEST-DONE, got {outcome}.\n{guest.Describe()}");
        Assert.True(guest.Ready.IsCompletedSuccessfully, "no GUEST-READY line.\n" + guest.Describe());
        var ready = await guest.Ready;
        Assert.True(ready.Kernel.Length > 0, "GUEST-READY without kernel=.\n" + guest.Describe());
        Assert.False(ready.VsockDevice, "a vsock device without -device?\n" + guest.Describe());
        Assert.Null(ready.Cid);

        // vsocktest reports the missing device cleanly: exit 4, FAIL line naming the reason
        var cid = guest.Result("cid");
        Assert.True(cid is not null, "no RESULT for 'cid'.\n" + guest.Describe());
        Assert.Equal(4, cid.ExitCode);
        Assert.StartsWith("FAIL cid reason=no-transport", cid.Details);

        var shell = guest.Result("shell");
        Assert.True(shell is not null, "no RESULT for 'shell'.\n" + guest.Describe());
        Assert.Equal(7, shell.ExitCode);
        Assert.Equal($"hello from {ready.Kernel}", shell.Details);
        Assert.Contains($"OUT shell hello from {ready.Kernel}", guest.SerialLog);

        await guest.Exited.WaitAsync(TimeSpan.FromSeconds(15), ct);
        Assert.True(guest.ExitCode == 0, "QEMU did not power off cleanly.\n" + guest.Describe());
        TestContext.Current.SendDiagnosticMessage(
            $"{image}: GUEST-READY after {guest.BootTime?.TotalSeconds:0.00} s, done after {guest.Elapsed.TotalSeconds:0.00} s");
    }
}
