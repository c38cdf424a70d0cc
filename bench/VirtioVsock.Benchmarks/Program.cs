using BenchmarkDotNet.Running;

// Runs the benchmarks picked by the command line, e.g. `--filter '*Queue*'`.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
