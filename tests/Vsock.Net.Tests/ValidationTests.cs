using System.Net.Sockets;

namespace Vsock.Net.Tests;

/// <summary>Arguments are checked before any AF_VSOCK socket would be opened (none is, on this host).</summary>
public sealed class ValidationTests
{
    [Fact]
    public void Vsock_calls_reject_bad_arguments_before_touching_the_kernel()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => VsockSocket.Create(SocketType.Dgram));
        Assert.Throws<ArgumentOutOfRangeException>(() => VsockSocket.Create(SocketType.Raw));
        Assert.Throws<ArgumentNullException>(() => { _ = VsockSocket.ConnectAsync(null!, cancellationToken: TestContext.Current.CancellationToken); });
        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = VsockSocket.ConnectAsync(new VsockEndPoint(2, 1), timeout: TimeSpan.Zero, cancellationToken: TestContext.Current.CancellationToken); });
        Assert.Throws<ArgumentOutOfRangeException>(() => VsockListener.Listen(1, backlog: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => VsockListener.Listen(1, SocketType.Dgram));
        Assert.Throws<ArgumentNullException>(() => VsockListener.Listen(null!));
    }

    [Fact]
    public void Socket_options_check_the_option_and_the_socket()
    {
        using var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        Assert.Throws<ArgumentOutOfRangeException>(() => VsockSocket.SetBufferOption(unix, 3, 4096));
        Assert.Throws<ArgumentOutOfRangeException>(() => VsockSocket.GetBufferOption(unix, 7));
        Assert.Throws<ArgumentNullException>(() => VsockSocket.SetBufferOption(null!, VsockSocket.BufferSizeOption, 4096));
        Assert.Throws<ArgumentOutOfRangeException>(() => VsockSocket.SetConnectTimeout(unix, TimeSpan.Zero));
        Assert.Equal(0, VsockSocket.BufferSizeOption);
        Assert.Equal(1, VsockSocket.BufferMinSizeOption);
        Assert.Equal(2, VsockSocket.BufferMaxSizeOption);
        Assert.Equal(6, VsockSocket.ConnectTimeoutOption);
    }

    [Fact]
    public async Task Hybrid_calls_reject_bad_arguments()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => HybridVsockClient.ConnectAsync("", 1, cancellationToken: TestContext.Current.CancellationToken));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => HybridVsockClient.ConnectAsync("/nonexistent", 1, TimeSpan.Zero, TestContext.Current.CancellationToken));
        Assert.Throws<ArgumentException>(() => VsockHttpHandler.ForHybridVsock("", 80));
        Assert.Throws<ArgumentNullException>(() => VsockHttpHandler.ForStream(null!));
        Assert.Throws<ArgumentException>(() => new HybridVsockHostListener("", 1));
        Assert.Equal("/run/vm.sock_6000", HybridVsockHostListener.PathFor("/run/vm.sock", 6000));
    }

    [Theory]
    [InlineData("OK 1024", true, 1024u)]
    [InlineData("OK 0", true, 0u)]
    [InlineData("OK 4294967295", true, uint.MaxValue)]
    [InlineData("OK 4294967296", false, 0u)]
    [InlineData("OK", false, 0u)]
    [InlineData("OK ", false, 0u)]
    [InlineData("OK -1", false, 0u)]
    [InlineData("OK +1", false, 0u)]
    [InlineData("OK 12a", false, 0u)]
    [InlineData("ok 12", false, 0u)]
    [InlineData("OK  12", false, 0u)]
    [InlineData("ERR 12", false, 0u)]
    public void Ok_line_parsing_is_strict(string line, bool ok, uint port)
    {
        Assert.Equal(ok, HybridVsockClient.TryParseOk(line, out uint parsed));
        Assert.Equal(port, parsed);
    }
}
