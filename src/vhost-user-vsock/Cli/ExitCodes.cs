namespace VhostUserVsock.Cli;

/// <summary>The daemon's exit codes.</summary>
public static class ExitCodes
{
    /// <summary>Stopped cleanly (SIGINT/SIGTERM), or printed help or the version.</summary>
    public const int Success = 0;

    /// <summary>A VM's server failed, VMs did not stop in time, or an unexpected error.</summary>
    public const int Failure = 1;

    /// <summary>The command line or configuration is unusable; nothing was started.</summary>
    public const int Usage = 2;
}
