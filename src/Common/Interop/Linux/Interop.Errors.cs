internal static partial class Interop
{
    /// <summary>The <c>errno</c> values the stack tells apart (generic Linux numbering).</summary>
    internal static class Errors
    {
        internal const int ENOENT = 2;
        internal const int EINTR = 4;
        internal const int EBADF = 9;
        internal const int EAGAIN = 11;
        internal const int ENOMEM = 12;
        internal const int EACCES = 13;
        internal const int EEXIST = 17;
        internal const int ENOTDIR = 20;
        internal const int EINVAL = 22;
        internal const int ENFILE = 23;
        internal const int EMFILE = 24;
        internal const int EPIPE = 32;
        internal const int ENAMETOOLONG = 36;
        internal const int ENOSYS = 38;
        internal const int EMSGSIZE = 90;
        internal const int EPROTOTYPE = 91;
        internal const int EADDRINUSE = 98;
        internal const int ECONNABORTED = 103;
        internal const int ECONNRESET = 104;
        internal const int ENOBUFS = 105;
        internal const int ENOTCONN = 107;
        internal const int ECONNREFUSED = 111;
        internal const int EINPROGRESS = 115;
    }
}
