using System.Globalization;

namespace VsockSoak;

/// <summary>The soak's settings, parsed from the command line. Owns values only.</summary>
internal sealed class SoakOptions
{
    /// <summary>How long new connections keep being started. Default 60 s.</summary>
    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(60);

    /// <summary>Concurrent connections (one worker each). Default 64.</summary>
    public int Connections { get; private set; } = 64;

    /// <summary>Time between frontend disconnect/reconnects; zero for none. Default 60 s.</summary>
    public TimeSpan ReconnectEvery { get; private set; } = TimeSpan.FromSeconds(60);

    /// <summary>The largest payload one side sends on one connection. Default 4 MiB.</summary>
    public long MaxSize { get; private set; } = 4L * 1024 * 1024;

    /// <summary>The seed of every random choice. Default 1.</summary>
    public int Seed { get; private set; } = 1;

    /// <summary>Connect, close and shutdown timeouts of the device, the backend and the simulated guest. Default 10 s (a loaded box).</summary>
    public TimeSpan Timeout { get; private set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one connection may take before it counts as stuck. Default 120 s.</summary>
    public TimeSpan ConnectionDeadline { get; private set; } = TimeSpan.FromSeconds(120);

    /// <summary>How long a connection hit by a reconnect may take to end by itself before the application gives up on it. Default 15 s.</summary>
    public TimeSpan ReconnectGrace { get; private set; } = TimeSpan.FromSeconds(15);

    /// <summary>How often a progress line is printed. Default 30 s.</summary>
    public TimeSpan ReportEvery { get; private set; } = TimeSpan.FromSeconds(30);

    /// <summary>The usage text.</summary>
    public const string Usage =
        "VsockSoak [--duration 60s|30m] [--connections 64] [--reconnect-every 60s|0] [--max-size 4194304]\n" +
        "          [--seed 1] [--timeout 10s] [--deadline 120s] [--grace 15s] [--report-every 30s]";

    /// <summary>Parses <paramref name="args"/>.</summary>
    /// <returns>The options, or null with <paramref name="error"/> set.</returns>
    public static SoakOptions? Parse(string[] args, out string? error)
    {
        var options = new SoakOptions();
        error = null;
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            if (i + 1 >= args.Length)
            {
                error = $"{name} needs a value";
                return null;
            }

            string value = args[++i];
            bool ok = name switch
            {
                "--duration" => TryTime(value, v => options.Duration = v),
                "--connections" => TryInt(value, v => options.Connections = v) && options.Connections >= 1,
                "--reconnect-every" => TryTime(value, v => options.ReconnectEvery = v),
                "--max-size" => long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long size) && size >= 1024 && (options.MaxSize = size) > 0,
                "--seed" => TryInt(value, v => options.Seed = v),
                "--timeout" => TryTime(value, v => options.Timeout = v),
                "--deadline" => TryTime(value, v => options.ConnectionDeadline = v),
                "--grace" => TryTime(value, v => options.ReconnectGrace = v),
                "--report-every" => TryTime(value, v => options.ReportEvery = v),
                _ => false,
            };
            if (!ok)
            {
                error = $"bad option or value: {name} {value}";
                return null;
            }
        }

        return options;
    }

    /// <summary>Parses <c>90</c> (seconds), <c>90s</c>, <c>30m</c> or <c>1h</c>.</summary>
    public static bool TryParseTime(string text, out TimeSpan value)
    {
        value = default;
        if (text.Length == 0)
        {
            return false;
        }

        double scale = char.ToLowerInvariant(text[^1]) switch { 's' => 1, 'm' => 60, 'h' => 3600, _ => 0 };
        string number = scale == 0 ? text : text[..^1];
        scale = scale == 0 ? 1 : scale;
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double amount) || amount < 0)
        {
            return false;
        }

        value = TimeSpan.FromSeconds(amount * scale);
        return true;
    }

    private static bool TryTime(string text, Action<TimeSpan> set)
    {
        if (!TryParseTime(text, out TimeSpan value))
        {
            return false;
        }

        set(value);
        return true;
    }

    private static bool TryInt(string text, Action<int> set)
    {
        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value))
        {
            return false;
        }

        set(value);
        return true;
    }
}
