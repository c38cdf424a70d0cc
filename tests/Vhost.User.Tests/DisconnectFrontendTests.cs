namespace Vhost.User.Tests;

/// <summary><see cref="VhostUserServer.DisconnectFrontend"/>: how a daemon ends the session of a device that can no longer serve it.</summary>
public sealed class DisconnectFrontendTests
{
    [Fact(Timeout = 30_000)]
    public async Task TheSessionEndsWithAResetAndTheNextFrontendIsServed()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        harness.StartDevice(true, 0, 1);

        Assert.True(harness.Server.DisconnectFrontend());
        Harness.WaitUntil(() => harness.Server.FrontendsServed == 1 && !harness.Server.IsFrontendConnected, "the session to end");
        Assert.Equal(1, harness.Backend.ResetCount);
        Assert.Null(harness.Backend.Memory);

        // No frontend now (the old session ended, the test has not reconnected): nothing to disconnect.
        Assert.False(harness.Server.DisconnectFrontend());
        Assert.Equal(1, harness.Backend.ResetCount);

        harness.Reconnect();
        harness.Handshake();
        harness.StartDevice(true, 0, 1);
        Assert.True(harness.Server.IsFrontendConnected);
        Assert.True(harness.Backend.Enabled[0]);
    }
}
