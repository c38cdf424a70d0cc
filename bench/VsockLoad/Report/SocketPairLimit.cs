using System.Diagnostics;
using System.Runtime.InteropServices;
using VsockLoad.Guest;

namespace VsockLoad.Report;

/// <summary>
/// The limit a vsock path is compared with: the same work over a Unix stream socketpair on this
/// machine, with the same write sizes, the same pattern fill and check, one thread per end (as the
/// backend and the driver have). Blocking descriptors; bounded by the byte or operation count. Rates
/// are the best of <see cref="Repeats"/> runs (a limit: what the machine can do between other load).
/// </summary>
internal static unsafe class SocketPairLimit
{
    /// <summary>Timed runs per rate limit; the best counts.</summary>
    public const int Repeats = 3;

    /// <summary>
    /// Streams <paramref name="bytes"/> in <paramref name="writeSize"/> writes; returns MiB/s, the rate
    /// over the first <paramref name="coldBytes"/> of a fresh socketpair (the machine's own cold start:
    /// fresh socket, fresh buffers), both the best of <see cref="Repeats"/> runs, and the reading and the
    /// writing thread's kernel CPU seconds per GiB (the least of the runs): what the kernel alone charges each
    /// end for <paramref name="writeSize"/> writes, the floor of any backend that plays that end on a Unix socket.
    /// </summary>
    /// <param name="bytes">Bytes.</param>
    /// <param name="writeSize">Bytes per write.</param>
    /// <param name="coldBytes">Bytes of the cold-start window.</param>
    /// <returns>The steady rate and the cold-window rate (0 when <paramref name="bytes"/> is shorter).</returns>
    public static (double Rate, double ColdRate, double ReaderKernelSecondsPerGiB, double WriterKernelSecondsPerGiB) Stream(long bytes, int writeSize, long coldBytes)
    {
        _ = Measure(Math.Min(bytes, 32L << 20), writeSize, coldBytes); // untimed: JIT and page cache warm
        double best = 0;
        double bestCold = 0;
        double leastReader = double.MaxValue;
        double leastWriter = double.MaxValue;
        for (int i = 0; i < Repeats; i++)
        {
            (double rate, double cold, double reader, double writer) = Measure(bytes, writeSize, coldBytes);
            best = Math.Max(best, rate);
            bestCold = Math.Max(bestCold, cold);
            leastReader = Math.Min(leastReader, reader);
            leastWriter = Math.Min(leastWriter, writer);
        }

        double perGiB = (double)(1L << 30) / bytes;
        return (best, bestCold, leastReader * perGiB, leastWriter * perGiB);
    }

    private static (double Rate, double ColdRate, double ReaderKernelSeconds, double WriterKernelSeconds) Measure(long bytes, int writeSize, long coldBytes)
    {
        (int reader, int writer) = Pair();
        try
        {
            double writerKernel = 0;
            var thread = new Thread(() =>
            {
                double kernelStart = ThreadKernelSeconds();
                byte[] chunk = new byte[writeSize];
                long offset = 0;
                while (offset < bytes)
                {
                    int length = (int)Math.Min(writeSize - (offset % writeSize), bytes - offset);
                    Pattern.Fill(chunk.AsSpan(0, length), offset, 7);
                    int done = 0;
                    while (done < length)
                    {
                        fixed (byte* p = &chunk[done])
                        {
                            nint sent = Interop.Sys.Write(writer, p, (nuint)(length - done));
                            if (sent <= 0)
                            {
                                return;
                            }

                            done += (int)sent;
                        }
                    }

                    offset += length;
                }

                writerKernel = ThreadKernelSeconds() - kernelStart;
            }) { IsBackground = true };
            byte[] buffer = new byte[256 * 1024];
            double kernelStart = ThreadKernelSeconds();
            long start = Stopwatch.GetTimestamp();
            thread.Start();
            long received = 0;
            long coldEnd = 0;
            while (received < bytes)
            {
                nint read;
                fixed (byte* p = buffer)
                {
                    read = Interop.Sys.Read(reader, p, (nuint)buffer.Length);
                }

                if (read <= 0)
                {
                    throw new IOException("socketpair limit: read failed");
                }

                if (Pattern.FirstMismatch(buffer.AsSpan(0, (int)read), received, 7) >= 0)
                {
                    throw new IOException("socketpair limit: pattern mismatch");
                }

                received += read;
                if (coldEnd == 0 && received >= coldBytes)
                {
                    coldEnd = Stopwatch.GetTimestamp();
                }
            }

            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            double kernelSeconds = ThreadKernelSeconds() - kernelStart;
            thread.Join();
            double coldSeconds = (coldEnd - start) / (double)Stopwatch.Frequency;
            return (bytes / seconds / (1 << 20), bytes >= coldBytes ? coldBytes / coldSeconds / (1 << 20) : 0, kernelSeconds, writerKernel);
        }
        finally
        {
            _ = Interop.Sys.Close(reader);
            _ = Interop.Sys.Close(writer);
        }
    }

    private static double ThreadKernelSeconds()
    {
        Interop.Sys.RUsage usage;
        return Interop.Sys.GetRusage(Interop.Sys.RusageThread, &usage) == 0 ? usage.System : 0;
    }

    /// <summary>1-byte ping-pong between two threads; returns the round-trip times in Stopwatch ticks.</summary>
    /// <param name="count">Round trips.</param>
    /// <returns>The times.</returns>
    public static long[] RoundTrips(long count)
    {
        (int a, int b) = Pair();
        try
        {
            var echo = new Thread(() =>
            {
                byte one;
                for (long i = 0; i < count; i++)
                {
                    if (Interop.Sys.Read(b, &one, 1) != 1 || Interop.Sys.Write(b, &one, 1) != 1)
                    {
                        return;
                    }
                }
            }) { IsBackground = true };
            echo.Start();
            long[] times = new long[count];
            byte value = 1;
            for (long i = 0; i < count; i++)
            {
                long start = Stopwatch.GetTimestamp();
                if (Interop.Sys.Write(a, &value, 1) != 1 || Interop.Sys.Read(a, &value, 1) != 1)
                {
                    throw new IOException("socketpair limit: ping-pong failed");
                }

                times[i] = Stopwatch.GetTimestamp() - start;
            }

            echo.Join();
            return times;
        }
        finally
        {
            _ = Interop.Sys.Close(a);
            _ = Interop.Sys.Close(b);
        }
    }

    /// <summary>Creates, writes <paramref name="bytes"/> through, and closes <paramref name="count"/> socketpairs; returns per second.</summary>
    /// <param name="count">Connections.</param>
    /// <param name="bytes">Bytes per connection.</param>
    /// <returns>The rate.</returns>
    public static double Connections(long count, int bytes)
    {
        double best = 0;
        for (int i = 0; i < Repeats; i++)
        {
            best = Math.Max(best, MeasureConnections(count, bytes));
        }

        return best;
    }

    private static double MeasureConnections(long count, int bytes)
    {
        byte[] buffer = new byte[Math.Max(bytes, 1)];
        long start = Stopwatch.GetTimestamp();
        for (long i = 0; i < count; i++)
        {
            (int a, int b) = Pair();
            Pattern.Fill(buffer, 0, 3);
            fixed (byte* p = buffer)
            {
                int done = 0;
                while (done < bytes)
                {
                    nint sent = Interop.Sys.Write(a, p + done, (nuint)(bytes - done));
                    nint read = Interop.Sys.Read(b, p, (nuint)buffer.Length);
                    if (sent <= 0 || read <= 0)
                    {
                        throw new IOException("socketpair limit: connection failed");
                    }

                    done += (int)sent;
                }
            }

            _ = Interop.Sys.Close(a);
            _ = Interop.Sys.Close(b);
        }

        return count / Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static (int, int) Pair()
    {
        int* fds = stackalloc int[2];
        if (Interop.Sys.SocketPair(Interop.Sys.AfUnix, Interop.Sys.SockStream | Interop.Sys.SockCloexec, 0, fds) != 0)
        {
            throw new IOException($"socketpair failed: errno {Marshal.GetLastPInvokeError()}");
        }

        return (fds[0], fds[1]);
    }
}
