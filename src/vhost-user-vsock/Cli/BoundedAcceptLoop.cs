using System.Net.Sockets;

namespace VhostUserVsock.Cli;

/// <summary>
/// The accept loop of the daemon's operator sockets (the control socket, the metrics endpoint): at most as many
/// clients at once as <c>slots</c> allows (the rest wait in the kernel's backlog), each served on the thread pool,
/// accept errors logged and retried after a pause (out of descriptors must not spin), and every client finished
/// before the loop returns. The serve function releases its slot when its client is done.
/// </summary>
internal static class BoundedAcceptLoop
{
    /// <summary>Accepts until <paramref name="stop"/> is cancelled or the listener is closed.</summary>
    /// <param name="listener">A listening socket.</param>
    /// <param name="slots">One slot per client served at once; <paramref name="serve"/> releases it.</param>
    /// <param name="serve">Serves one client (and releases its slot when done).</param>
    /// <param name="acceptFailed">Logs an accept failure.</param>
    /// <param name="stop">Stops the loop.</param>
    /// <returns>A task that completes when the loop and every client are done.</returns>
    public static async Task RunAsync(Socket listener, SemaphoreSlim slots, Func<Socket, Task> serve, Action<string> acceptFailed, CancellationToken stop)
    {
        var clients = new List<Task>();
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await slots.WaitAsync(stop).ConfigureAwait(false);
                Socket client = await listener.AcceptAsync(stop).ConfigureAwait(false);
                clients.RemoveAll(task => task.IsCompleted);
                clients.Add(Task.Run(() => serve(client), CancellationToken.None));
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                break;
            }
            catch (SocketException ex)
            {
                slots.Release();
                acceptFailed(ex.Message);
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
            }
        }

        await Task.WhenAll(clients).ConfigureAwait(false);
    }
}
