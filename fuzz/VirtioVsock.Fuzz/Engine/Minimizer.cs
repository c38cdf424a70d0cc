using System.Diagnostics;

namespace VirtioVsock.Fuzz.Engine;

/// <summary>
/// Shrinks an input that makes a target throw while it keeps throwing the same exception type with the
/// same first line of message: removes chunks (halving their size), then zeroes bytes, within a time cap.
/// </summary>
public static class Minimizer
{
    /// <summary>Minimizes <paramref name="finding"/>'s input.</summary>
    /// <param name="target">The target.</param>
    /// <param name="finding">The finding.</param>
    /// <param name="budget">A time cap.</param>
    /// <param name="attempts">How often a candidate is run before it counts as passing (above 1 for findings that depend on timing).</param>
    /// <returns>The smallest input found that still fails the same way.</returns>
    public static byte[] Minimize(FuzzTarget target, FuzzFinding finding, TimeSpan budget, int attempts = 1)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(finding);
        string signature = Signature(finding.Exception);
        byte[] best = finding.Input;
        var stopwatch = Stopwatch.StartNew();
        bool SameFailure(byte[] candidate)
        {
            for (int attempt = 0; attempt < attempts; attempt++)
            {
                if (MutationRun.RunOne(target, candidate, "minimizer") is { } again)
                {
                    return Signature(again.Exception) == signature;
                }
            }

            return false;
        }

        for (int chunk = Math.Max(best.Length / 2, 1); chunk >= 1 && stopwatch.Elapsed < budget; chunk /= 2)
        {
            for (int start = 0; start + chunk <= best.Length && stopwatch.Elapsed < budget;)
            {
                byte[] candidate = [.. best.AsSpan(0, start), .. best.AsSpan(start + chunk)];
                if (SameFailure(candidate))
                {
                    best = candidate;
                }
                else
                {
                    start += chunk;
                }
            }
        }

        for (int i = 0; i < best.Length && stopwatch.Elapsed < budget; i++)
        {
            if (best[i] == 0)
            {
                continue;
            }

            byte[] candidate = [.. best];
            candidate[i] = 0;
            if (SameFailure(candidate))
            {
                best = candidate;
            }
        }

        return best;
    }

    private static string Signature(Exception exception)
    {
        string message = exception.Message;
        int cut = message.IndexOfAny(['\n', '(', ':']);
        return exception.GetType().FullName + ": " + (cut < 0 ? message : message[..cut]);
    }
}
