using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Virtio.Vsock.Testing;
using Vsock.Net.AspNetCore;
using VirtioVsock.Tests.Common;

namespace Vsock.Net.Tests;

/// <summary>
/// The README's "Use vsock from .NET" examples, compiled and run (the client against a real device with
/// a guest HTTP server, the server built without binding: there is no vsock on this host). The code
/// between the <c>README:</c> markers must appear verbatim in README.md.
/// </summary>
public sealed class ReadmeExamplesTests
{
    [Fact(Timeout = 30_000)]
    public async Task Client_example_calls_a_guest_service_through_the_hybrid_device()
    {
        await using var h = DeviceHarness.WithUnixBackend();
        using GuestListener listener = h.Guest.Listen(8080);
        var token = TestContext.Current.CancellationToken;
        Task server = Task.Run(async () => await DeviceHarness.ServeHttpAsync(await listener.AcceptAsync(token), (_, path, _) => "hello from " + path, token), token);
        string udsPath = h.UdsPath;
#pragma warning disable xUnit1051 // the README example is plain application code, without the test's token

        // README:client-begin
        using var http = new HttpClient(VsockHttpHandler.ForHybridVsock(udsPath, 8080)) { BaseAddress = new("http://guest") };
        string hello = await http.GetStringAsync("/hello");
        // README:client-end
#pragma warning restore xUnit1051

        Assert.Equal("hello from /hello", hello);
        http.Dispose();
        await server.WaitAsync(TimeSpan.FromSeconds(10), token);
    }

    [Fact]
    public void Server_example_registers_kestrel_on_vsock()
    {
        string[] args = [];

        // README:server-begin
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.WebHost.ListenVsock(8080);
        // README:server-end

        using var app = builder.Build();
        Assert.Single(app.Services.GetServices<IConnectionListenerFactory>().OfType<VsockConnectionListenerFactory>());
    }

    [Theory]
    [InlineData("client")]
    [InlineData("server")]
    public void The_readme_shows_exactly_this_code(string example) =>
        ReadmeSnippet.AssertShownInReadme(Path.Combine("tests", "Vsock.Net.Tests", "ReadmeExamplesTests.cs"), example);
}
