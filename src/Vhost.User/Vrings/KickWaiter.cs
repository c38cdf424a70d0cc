using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Vhost.User;

/// <summary>
/// Waits for kicks of one queue on a dedicated thread that sleeps in <c>poll</c> on the kick eventfd and a
/// stop eventfd (no polling loop, no CPU while idle), drains the counter and calls
/// <see cref="IVhostUserBackend.Kick"/>. <see cref="Dispose"/> stops and joins the thread, so no kick is
/// delivered after it returns.
/// </summary>
internal sealed unsafe class KickWaiter : IDisposable
{
    private readonly SafeFileDescriptor _kick;
    private readonly SafeFileDescriptor _stop;
    private readonly IVhostUserBackend _backend;
    private readonly ILogger _logger;
    private readonly int _index;
    private readonly Thread _thread;
    private int _disposed;

    /// <summary>Takes ownership of <paramref name="kick"/> and starts the thread.</summary>
    /// <exception cref="IOException">No eventfd could be created for stopping.</exception>
    internal KickWaiter(int index, SafeFileDescriptor kick, IVhostUserBackend backend, ILogger logger)
    {
        _index = index;
        _kick = kick;
        _backend = backend;
        _logger = logger;
        try
        {
            _stop = Descriptors.Create(nonBlocking: true);
        }
        catch (IOException)
        {
            kick.Dispose();
            throw;
        }

        _thread = new Thread(Run) { IsBackground = true, Name = $"vu-kick-{index}" };
        _thread.Start();
    }

    /// <summary>Stops the thread and waits for it (a running <see cref="IVhostUserBackend.Kick"/> completes first), then closes the kick descriptor.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Descriptors.Signal(_stop.Fd);
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }

        _kick.Dispose();
        _stop.Dispose();
    }

    private void Run()
    {
        DeliverKick();
        Interop.Sys.PollFd* polls = stackalloc Interop.Sys.PollFd[2];
        while (true)
        {
            polls[0] = new Interop.Sys.PollFd { Fd = _kick.Fd, Events = Interop.Sys.PollIn };
            polls[1] = new Interop.Sys.PollFd { Fd = _stop.Fd, Events = Interop.Sys.PollIn };
            int ready = Interop.Sys.Poll(polls, 2, -1);
            if (ready < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Interop.Errors.EINTR)
                {
                    continue;
                }

                Log.KickWaitFailed(_logger, _index, $"poll failed with errno {errno}");
                return;
            }

            if (polls[1].ReturnedEvents != 0)
            {
                return;
            }

            short events = polls[0].ReturnedEvents;
            if ((events & Interop.Sys.PollIn) != 0)
            {
                int read = Descriptors.Drain(_kick.Fd, out _);
                if (read == 0)
                {
                    Log.KickWaitFailed(_logger, _index, "the kick descriptor reached end of file");
                    return;
                }

                if (read < 0 && read != -Interop.Errors.EAGAIN)
                {
                    Log.KickWaitFailed(_logger, _index, $"read failed with errno {-read}");
                    return;
                }

                if (read > 0)
                {
                    DeliverKick();
                }
            }
            else if ((events & (Interop.Sys.PollErr | Interop.Sys.PollHup | Interop.Sys.PollNval)) != 0)
            {
                Log.KickWaitFailed(_logger, _index, $"the kick descriptor reported poll events 0x{events:x}");
                return;
            }
        }
    }

    private void DeliverKick()
    {
        try
        {
            _backend.Kick(_index);
        }
#pragma warning disable CA1031 // A backend fault must not kill the kick thread's process; it is logged.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            Log.BackendKickFailed(_logger, _index, exception);
        }
    }
}
