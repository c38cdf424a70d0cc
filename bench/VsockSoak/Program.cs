using System.Globalization;
using VsockSoak;

// The soak's entry point: parses options, runs, prints the figures, the verdict and one JSON line
// (SOAK-RESULT) for the CI test; exit code 0 passed, 1 failed, 2 usage.
SoakOptions? options = SoakOptions.Parse(args, out string? error);
if (options is null)
{
    Console.Error.WriteLine(error);
    Console.Error.WriteLine(SoakOptions.Usage);
    return 2;
}

if (Environment.GetEnvironmentVariable("VSOCK_SOAK_TRACE_LOADS") == "1")
{
    AppDomain.CurrentDomain.AssemblyLoad += (_, e) =>
        Console.Error.WriteLine($"assembly load: {e.LoadedAssembly.GetName().Name}\n{new System.Diagnostics.StackTrace(false)}");
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"VsockSoak: pid {Environment.ProcessId}, in process (VsockDevice + UnixSocketBackend + simulated Linux driver), {options.Connections} connections, {options.Duration.TotalSeconds:F0} s, reconnect every {options.ReconnectEvery.TotalSeconds:F0} s, max size {options.MaxSize}, seed {options.Seed}"));
SoakReport report = await SoakRunner.RunAsync(options, Console.Out);
Console.WriteLine(report.ToText());
Console.WriteLine("SOAK-RESULT " + report.ToJson());
return report.Passed ? 0 : 1;
