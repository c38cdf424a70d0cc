namespace VirtioVsock.Fuzz.Engine;

/// <summary>A fuzz target's entry point: runs one input and throws on a finding.</summary>
/// <param name="input">The input bytes.</param>
public delegate void FuzzAction(ReadOnlySpan<byte> input);
