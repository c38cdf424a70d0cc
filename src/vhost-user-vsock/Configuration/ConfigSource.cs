namespace VhostUserVsock.Configuration;

/// <summary>Where a <see cref="DaemonConfig"/>'s VMs came from.</summary>
public enum ConfigSource
{
    /// <summary>Built in code.</summary>
    Programmatic,

    /// <summary>No VM on the command line: one VM with the documented defaults under the runtime directory.</summary>
    Defaults,

    /// <summary>The one-VM options: <c>--guest-cid</c>, <c>--socket</c>, <c>--uds-path</c>, … .</summary>
    SingleVmOptions,

    /// <summary>One or more <c>--vm key=value,…</c> options.</summary>
    VmOptions,

    /// <summary>A YAML file given with <c>--config</c>.</summary>
    ConfigFile,
}
