namespace VhostUserVsock.Tests.Guest;

/// <summary>How a <see cref="QemuGuest"/> run ended (the <see cref="QemuGuest.Completion"/> value).</summary>
public enum GuestOutcome
{
    /// <summary>The guest printed GUEST-DONE: every command ran and reported its RESULT.</summary>
    Done,

    /// <summary>QEMU exited before GUEST-DONE (startup error, guest crash, guest deadline).</summary>
    Exited,

    /// <summary>The hard timeout expired; QEMU was killed.</summary>
    TimedOut,

    /// <summary><see cref="QemuGuest.Kill"/> was called before GUEST-DONE.</summary>
    Killed,
}
