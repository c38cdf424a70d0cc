using System.Globalization;

namespace Vhost.User.Tests;

/// <summary>Process-wide measurements (open descriptors, thread CPU time): run alone, not beside other tests.</summary>
[CollectionDefinition(nameof(ResourceTests), DisableParallelization = true)]
public sealed class ResourceTestsCollection;

[Collection(nameof(ResourceTests))]
public sealed class ResourceTests
{
    [Fact(Timeout = 60_000)]
    public async Task RefusedAndConsumedDescriptorsAreAllClosed()
    {
        await Task.Yield();
        await using (Harness warmup = Harness.Start())
        {
            warmup.Handshake();
            warmup.StartDevice(true, 0, 1);
        }

        int before = OpenDescriptors();
        await using (Harness harness = Harness.Start())
        {
            harness.Handshake();
            for (int round = 0; round < 3; round++)
            {
                var rings = harness.StartDevice(true, 0, 1);
                SendAndClose(harness, VhostUserRequest.SetOwner, [], 1);
                SendAndClose(harness, VhostUserRequest.SetVringCall, FakeFrontend.U64(0), 9);
                SendAndClose(harness, VhostUserRequest.SetVringCall, FakeFrontend.U64(0), 40);
                SendAndClose(harness, VhostUserRequest.SetLogBase, new byte[16], 1);
                SendAndClose(harness, VhostUserRequest.SetVringKick, FakeFrontend.U64(7), 1);
                SendAndClose(harness, VhostUserRequest.SetBackendReqFd, [], 1);
                SendAndClose(harness, VhostUserRequest.SetVringErr, FakeFrontend.U64(0), 1);
                SendAndClose(harness, (VhostUserRequest)77, [], 2);
                harness.Frontend.SendRaw((uint)VhostUserRequest.SetOwner, 0x2, 0, [], harness.NewEventFd().Fd);
                harness.Frontend.Send(VhostUserRequest.GetVringBase, FakeFrontend.State(0, 0));
                harness.Frontend.ReceiveReplyTo(VhostUserRequest.GetVringBase);
                harness.Frontend.Send(VhostUserRequest.GetVringBase, FakeFrontend.State(1, 0));
                harness.Frontend.ReceiveReplyTo(VhostUserRequest.GetVringBase);
                _ = rings;
            }

            Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.ResetDevice, []));
        }

        // Deterministic: the server was stopped and awaited, so every descriptor is closed now, not whenever
        // a finalizer would get to a leaked handle.
        Assert.Equal(before, OpenDescriptors());
    }

    [Fact(Timeout = 60_000)]
    public async Task IdleKickThreadsSleepWithoutUsingCpu()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start(new FakeBackend(queueCount: 8));
        harness.Handshake();
        var rings = harness.StartDevice(true, 6, 7);
        Harness.WaitUntil(() => harness.Backend.Kicks(6) >= 1 && harness.Backend.Kicks(7) >= 1, "initial kicks");

        int[] threads = FindThreads("vu-kick-6").Concat(FindThreads("vu-kick-7")).Concat(FindThreads("vu-control")).ToArray();
        Assert.True(threads.Length >= 3, $"expected kick and control threads, found {threads.Length}");

        // Settle: the initial kicks' handling ends (its CPU time stops growing; a spinning thread never settles and
        // fails at the deadline). Then a measuring window: the verdict is the threads' own CPU time and the kick
        // counters, which a loaded machine cannot make grow (it only delays the threads).
        long start = Harness.WaitQuiet(() => threads.Sum(CpuTicks), TimeSpan.FromMilliseconds(200), "kick/control thread CPU time after start");
        int kicks6 = harness.Backend.Kicks(6), kicks7 = harness.Backend.Kicks(7);
        Harness.HoldFor(TimeSpan.FromMilliseconds(500), () =>
        {
            Assert.Equal(kicks6, harness.Backend.Kicks(6));
            Assert.Equal(kicks7, harness.Backend.Kicks(7));
        });
        long idle = threads.Sum(CpuTicks) - start;
        Assert.True(idle <= 1, $"idle vhost-user threads used {idle} clock ticks in a 500 ms window");

        // And they wake up on a kick.
        int before = harness.Backend.Kicks(7);
        Descriptors.Signal(rings[1].Kick.Fd);
        Harness.WaitUntil(() => harness.Backend.Kicks(7) > before, "kick after idling");

        harness.Frontend.Dispose();
        Harness.WaitUntil(() => FindThreads("vu-kick-6").Length == 0 && FindThreads("vu-kick-7").Length == 0, "kick threads to exit after disconnect");
    }

    private static void SendAndClose(Harness harness, VhostUserRequest request, byte[] payload, int fdCount)
    {
        var fds = Enumerable.Range(0, fdCount).Select(_ => Descriptors.Create(nonBlocking: true)).ToArray();
        harness.Frontend.Send(request, payload, true, fds.Select(fd => fd.Fd).ToArray());
        foreach (SafeFileDescriptor fd in fds)
        {
            fd.Dispose();
        }

        harness.Frontend.ReceiveReplyTo(request);
    }

    private static int OpenDescriptors() => Directory.GetFileSystemEntries("/proc/self/fd").Length;

    private static int[] FindThreads(string name) =>
        Directory.GetDirectories("/proc/self/task")
            .Where(task => ReadOrEmpty(Path.Combine(task, "comm")).Trim() == name)
            .Select(task => int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture))
            .ToArray();

    private static long CpuTicks(int tid)
    {
        string stat = ReadOrEmpty($"/proc/self/task/{tid}/stat");
        if (stat.Length == 0)
        {
            return 0;
        }

        // Fields after the parenthesised name: state is field 3; utime and stime are fields 14 and 15.
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }
}
