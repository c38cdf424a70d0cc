using Microsoft.Extensions.Logging;

namespace Vhost.User;

/// <summary>The log lines of the vhost-user backend (source-generated, allocation-free when disabled).</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "vhost-user server listening on {Path}")]
    internal static partial void Listening(ILogger logger, string path);

    [LoggerMessage(2, LogLevel.Information, "vhost-user frontend connected on {Path}")]
    internal static partial void FrontendConnected(ILogger logger, string path);

    [LoggerMessage(3, LogLevel.Information, "vhost-user frontend disconnected: {Reason}; device reset")]
    internal static partial void FrontendDisconnected(ILogger logger, string reason);

    [LoggerMessage(4, LogLevel.Warning, "vhost-user {Request} refused: {Reason}")]
    internal static partial void Refused(ILogger logger, string request, string reason);

    [LoggerMessage(5, LogLevel.Warning, "vhost-user message refused before dispatch (request {Request}, flags 0x{Flags:x}, size {Size}): {Reason}")]
    internal static partial void HeaderRefused(ILogger logger, uint request, uint flags, uint size, string reason);

    [LoggerMessage(6, LogLevel.Debug, "vhost-user <- {Request} flags 0x{Flags:x} size {Size} fds {FdCount}")]
    internal static partial void Received(ILogger logger, string request, uint flags, uint size, int fdCount);

    [LoggerMessage(7, LogLevel.Error, "vhost-user backend failed while handling {Request}")]
    internal static partial void BackendFailed(ILogger logger, string request, Exception exception);

    [LoggerMessage(8, LogLevel.Warning, "vhost-user kick wait for queue {Index} ended: {Reason}")]
    internal static partial void KickWaitFailed(ILogger logger, int index, string reason);

    [LoggerMessage(9, LogLevel.Error, "vhost-user backend failed on kick of queue {Index}")]
    internal static partial void BackendKickFailed(ILogger logger, int index, Exception exception);

    [LoggerMessage(10, LogLevel.Information, "vhost-user {Event}")]
    internal static partial void Lifecycle(ILogger logger, string @event);

    [LoggerMessage(11, LogLevel.Error, "vhost-user server on {Path} failed")]
    internal static partial void ServerFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(13, LogLevel.Warning, "vhost-user memory region {Region} is not sealed against shrinking (F_SEAL_SHRINK): a frontend that truncates its file while the guest runs makes this process fail with SIGBUS. QEMU seals its memfds; hugetlbfs files cannot be sealed. Shown once per connection.")]
    internal static partial void UnsealedRegion(ILogger logger, string region);

    [LoggerMessage(12, LogLevel.Debug, "vhost-user {Event}")]
    internal static partial void Trace(ILogger logger, string @event);

    [LoggerMessage(14, LogLevel.Debug, "vhost-user memory region {Region} prefaulted in {Milliseconds:F1} ms: {Result}")]
    internal static partial void Prefaulted(ILogger logger, string region, string result, double milliseconds);
}
