internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>SOL_SOCKET</c>: the socket-level option namespace (for the runtime's <c>SetRawSocketOption</c>).</summary>
        internal const int SolSocket = 1;

        /// <summary><c>SO_PASSCRED</c>: every received message carries the sender's credentials (SCM_CREDENTIALS).</summary>
        internal const int SoPassCred = 16;
    }
}
