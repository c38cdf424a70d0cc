using SharpFuzz;
using VirtioVsock.Fuzz.Engine;

// The fuzzing command line; fuzz/README.md has the AFL and libFuzzer recipes.
const string Usage = """
    usage:
      VirtioVsock.Fuzz <target>                 run under afl-fuzz (SharpFuzz out-of-process fork server; reads stdin once otherwise)
      VirtioVsock.Fuzz <target> --libfuzzer     run under libfuzzer-dotnet (reads the file named by the first argument otherwise)
      VirtioVsock.Fuzz run <target> <file|dir>...            replay inputs in-process; exit 1 on the first finding
      VirtioVsock.Fuzz mutate <target> [-n N] [--seed S] [--seconds T] [--corpus DIR] [--skip-known]
                                                deterministic mutations of the corpus, no AFL (what CI runs)
      VirtioVsock.Fuzz minimize <target> <file> [<out>]      shrink an input that fails
      VirtioVsock.Fuzz corpus [DIR]             (re)write the seed corpus (default fuzz/corpus)
      VirtioVsock.Fuzz list                     the targets
    """;

if (args.Length == 0)
{
    Console.Error.WriteLine(Usage);
    return 2;
}

FuzzTarget Target(string name) =>
    FuzzTargets.Find(name) ?? throw new ArgumentException($"unknown target '{name}'; try 'list'");

string DefaultCorpus(string target) => Path.Combine("fuzz", "corpus", target);

try
{
    switch (args[0])
    {
        case "list":
            foreach (FuzzTarget target in FuzzTargets.All)
            {
                Console.WriteLine($"{target.Name,-20} {target.Description}");
            }

            return 0;

        case "corpus":
            {
                string root = args.Length > 1 ? args[1] : Path.Combine("fuzz", "corpus");
                Console.WriteLine($"wrote {CorpusFiles.WriteSeeds(root)} seed files under {root}");
                return 0;
            }

        case "run":
            {
                FuzzTarget target = Target(args[1]);
                int count = 0;
                foreach (string path in args.Skip(2))
                {
                    IEnumerable<(string Name, byte[] Data)> inputs = Directory.Exists(path)
                        ? CorpusFiles.Read(path)
                        : [(path, File.ReadAllBytes(path))];
                    foreach ((string name, byte[] data) in inputs)
                    {
                        count++;
                        if (MutationRun.RunOne(target, data, name) is { } finding)
                        {
                            Console.Error.WriteLine(finding);
                            return 1;
                        }
                    }
                }

                Console.WriteLine($"{target.Name}: {count} inputs, no finding");
                return 0;
            }

        case "mutate":
            {
                FuzzTarget target = Target(args[1]);
                int iterations = 5000;
                int seed = 1;
                double seconds = 600;
                string corpus = DefaultCorpus(target.Name);
                bool skipKnown = args.Contains("--skip-known");
                string[] options = [.. args.Skip(2).Where(arg => arg != "--skip-known")];
                for (int i = 0; i + 1 < options.Length; i += 2)
                {
                    switch (options[i])
                    {
                        case "-n":
                            iterations = int.Parse(options[i + 1], System.Globalization.CultureInfo.InvariantCulture);
                            break;
                        case "--seed":
                            seed = int.Parse(options[i + 1], System.Globalization.CultureInfo.InvariantCulture);
                            break;
                        case "--seconds":
                            seconds = double.Parse(options[i + 1], System.Globalization.CultureInfo.InvariantCulture);
                            break;
                        case "--corpus":
                            corpus = options[i + 1];
                            break;
                        default:
                            throw new ArgumentException($"unknown option {options[i]}");
                    }
                }

                IReadOnlyList<(string Name, byte[] Data)> inputs = CorpusFiles.Read(corpus);
                if (inputs.Count == 0)
                {
                    inputs = CorpusFiles.Seeds(target);
                }

                var stopwatch = System.Diagnostics.Stopwatch.StartNew();
                FuzzFinding? finding = MutationRun.Run(
                    target, inputs, iterations, seed, TimeSpan.FromSeconds(seconds), out int executed, skipKnown ? KnownFindings.IsKnown : null, out int knownHits,
                    out int mutations, skipKnown ? input => KnownFindings.AvoidOpen(target.Name, input) : null);
                string capped = finding is null && mutations < iterations
                    ? $"; the {seconds} s time cap stopped it at {mutations} of {iterations} mutations ({100.0 * mutations / Math.Max(iterations, 1):F0}% of the budget)"
                    : $"; {mutations} of {iterations} mutations";
                Console.WriteLine($"{target.Name}: {executed} inputs in {stopwatch.Elapsed.TotalSeconds:F1} s{capped}{(skipKnown ? $", {knownHits} hit a known open finding" : string.Empty)}");
                if (finding is not null)
                {
                    string path = Path.Combine(Path.GetTempPath(), $"{target.Name}-finding-{Environment.ProcessId}.bin");
                    File.WriteAllBytes(path, finding.Input);
                    Console.Error.WriteLine(finding);
                    Console.Error.WriteLine($"input saved to {path}");
                    return 1;
                }

                return 0;
            }

        case "minimize":
            {
                FuzzTarget target = Target(args[1]);
                byte[] input = File.ReadAllBytes(args[2]);

                // A finding that depends on timing may need several runs: as many attempts per candidate
                // as three times the runs it took to fail here.
                FuzzFinding? finding = null;
                int runs = 0;
                while (finding is null && runs < 50)
                {
                    runs++;
                    finding = MutationRun.RunOne(target, input, args[2]);
                }

                if (finding is null)
                {
                    Console.Error.WriteLine("the input does not fail (50 runs)");
                    return 1;
                }

                Console.WriteLine($"failed on run {runs}: {finding.Exception.Message}");
                byte[] smallest = Minimizer.Minimize(target, finding, TimeSpan.FromMinutes(3), attempts: Math.Min(3 * runs, 30));
                string output = args.Length > 3 ? args[3] : args[2] + ".min";
                File.WriteAllBytes(output, smallest);
                Console.WriteLine($"{input.Length} -> {smallest.Length} bytes: {output}");
                Console.WriteLine(Convert.ToHexString(smallest));
                Console.WriteLine(MutationRun.RunOne(target, smallest, output));
                return 0;
            }

        default:
            {
                FuzzTarget target = Target(args[0]);
                if (args.Contains("--libfuzzer"))
                {
                    Fuzzer.LibFuzzer.Run(span => target.Run(span));
                }
                else
                {
                    Fuzzer.OutOfProcess.Run(stream =>
                    {
                        using var buffer = new MemoryStream();
                        stream.CopyTo(buffer);
                        target.Run(buffer.ToArray());
                    });
                }

                return 0;
            }
    }
}
catch (ArgumentException exception)
{
    Console.Error.WriteLine(exception.Message);
    Console.Error.WriteLine(Usage);
    return 2;
}
