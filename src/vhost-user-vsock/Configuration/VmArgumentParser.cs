namespace VhostUserVsock.Configuration;

/// <summary>
/// Parses a <c>--vm</c> argument: comma-separated <c>key=value</c> pairs, as rust-vmm's
/// vhost-device-vsock takes them (<c>guest-cid=3,socket=/tmp/vhost3.socket,uds-path=/tmp/vm3.vsock,groups=a+b</c>;
/// keys with '-' or '_'). A value runs to the next ',' (so paths cannot contain ','; they may
/// contain '='). Unlike rust-vmm, a key given twice is refused rather than the last one winning.
/// </summary>
public static class VmArgumentParser
{
    /// <summary>Parses one <c>--vm</c> argument.</summary>
    /// <param name="argument">The argument after <c>--vm</c>.</param>
    /// <param name="origin">Where it was written, the start of any error message (e.g. <c>--vm #2</c>).</param>
    /// <returns>The VM's configuration, defaults filled in.</returns>
    /// <exception cref="ConfigurationException">The argument is malformed, names an unknown key, misses a required one or has a bad value.</exception>
    public static VmConfig Parse(string argument, string origin)
    {
        ArgumentNullException.ThrowIfNull(argument);
        string trimmed = argument.Trim();
        if (trimmed.Length == 0)
        {
            throw new ConfigurationException(
                $"{origin}: empty; expected key=value pairs like guest-cid=3,socket=PATH,uds-path=PATH");
        }

        var builder = new VmConfigBuilder(VmSettingStyle.KeyValue);
        foreach (string pair in trimmed.Split(','))
        {
            int equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (pair.Trim().Length == 0)
            {
                throw new ConfigurationException($"{origin}: empty key=value pair (a stray ',' in '{ConfigText.Printable(trimmed)}')");
            }

            if (equals < 0)
            {
                throw new ConfigurationException($"{origin}: '{ConfigText.Printable(pair.Trim())}' is not a key=value pair");
            }

            string key = pair[..equals].Trim();
            if (key.Length == 0)
            {
                throw new ConfigurationException($"{origin}: '{ConfigText.Printable(pair.Trim())}' has no key before '='");
            }

            builder.Set(key, pair[(equals + 1)..], origin);
        }

        return builder.Build(origin);
    }
}
