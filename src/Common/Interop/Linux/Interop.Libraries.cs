/// <summary>
/// Linux system calls the .NET runtime does not expose, declared once for every assembly of the stack.
/// </summary>
/// <remarks>
/// <para>The files under <c>src/Common/Interop/Linux</c> are linked (compiled) into each assembly that needs
/// them, one file per system call, as dotnet/runtime does it: every assembly keeps its interop internal (no
/// public P/Invoke surface, no extra assembly to ship), and each call is still written exactly once. A project
/// lists only the calls it makes (<c>&lt;Compile Include="$(LinuxInteropPath)Interop.EpollWait.cs" /&gt;</c>).</para>
/// <para>Layouts and constants are the generic Linux ones, identical on x86-64 and arm64 except where a file
/// says otherwise (<c>epoll_event</c> is packed on x86-64). Functions return the raw result; callers read
/// <see cref="System.Runtime.InteropServices.Marshal.GetLastPInvokeError"/> for errno.</para>
/// </remarks>
internal static partial class Interop
{
    /// <summary>Whether the layouts declared here hold: Linux with 64-bit pointers.</summary>
    internal static readonly bool IsSupported = OperatingSystem.IsLinux() && IntPtr.Size == 8;

    /// <summary>The shared libraries the declarations bind to.</summary>
    internal static class Libraries
    {
        /// <summary>The C library (glibc or musl).</summary>
        internal const string Libc = "libc";
    }
}
