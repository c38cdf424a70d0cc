namespace VhostUserVsock.Configuration;

/// <summary>How settings are written where they come from, so messages name them the way the user wrote them.</summary>
public enum VmSettingStyle
{
    /// <summary>One-VM options: <c>--guest-cid 4 --socket PATH …</c>.</summary>
    Options,

    /// <summary>A <c>--vm key=value,…</c> argument.</summary>
    KeyValue,

    /// <summary>An entry under <c>vms:</c> in a YAML config file.</summary>
    ConfigFile,
}
