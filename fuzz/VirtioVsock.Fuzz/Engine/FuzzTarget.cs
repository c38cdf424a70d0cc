namespace VirtioVsock.Fuzz.Engine;

/// <summary>One fuzz target: a name for the command line and corpus folder, and the method that runs one input.</summary>
/// <param name="Name">The target name (<c>packet-tx</c>, ...), also the folder under <c>fuzz/corpus/</c>.</param>
/// <param name="Description">One line for <c>list</c>.</param>
/// <param name="Run">Runs one input; any exception is a finding.</param>
/// <param name="Seeds">Builds the seed corpus: file name and bytes.</param>
public sealed record FuzzTarget(string Name, string Description, FuzzAction Run, Func<IReadOnlyList<(string Name, byte[] Data)>> Seeds);
