using System.Net.Sockets;
using System.Text;

namespace Vsock.Net.Tests;

/// <summary>
/// A fake hybrid vsock device on a real Unix socket in a fresh temp directory: accepts one connection,
/// reads the command line byte by byte and hands the line and the socket to a script. Owns the directory.
/// </summary>
internal sealed class ScriptedDevice : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly Task _run;

    public ScriptedDevice(Func<string, Socket, Task> script)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("vnt").FullName;
        UdsPath = Path.Combine(Directory, "v.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(UdsPath));
        _listener.Listen(4);
        _run = Task.Run(async () =>
        {
            using Socket s = await _listener.AcceptAsync(TestContext.Current.CancellationToken);
            var line = new StringBuilder();
            byte[] one = new byte[1];
            while (line.Length < 100 && await s.ReceiveAsync(one, SocketFlags.None) == 1 && one[0] != '\n')
            {
                line.Append((char)one[0]);
            }

            await script(line.ToString(), s);
        });
    }

    public string Directory { get; }

    public string UdsPath { get; }

    /// <summary>The script's end (its exceptions too), bounded.</summary>
    public Task Completion => _run.WaitAsync(TimeSpan.FromSeconds(10));

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        try
        {
            await _run.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception)
        {
        }

        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
