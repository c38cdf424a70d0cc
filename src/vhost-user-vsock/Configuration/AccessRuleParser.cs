using System.Globalization;
using Virtio.Vsock.Backends.Unix.Access;

namespace VhostUserVsock.Configuration;

/// <summary>
/// Parses <c>--allow</c> rules into <see cref="VsockAccessRules"/>: <c>guest-to-host:PORTS</c> (host ports the guest
/// may connect to) and <c>host-to-guest:PORTS[,uid=N][,gid=N]</c> (guest ports host programs may connect to, only
/// for that uid/gid when given); PORTS is <c>N</c> or <c>N-M</c>. Text in, rules or a one-line error out.
/// </summary>
public static class AccessRuleParser
{
    /// <summary>Parses every rule.</summary>
    /// <param name="rules">The rules as written.</param>
    /// <returns>The rules, or <see langword="null"/> when none was given (everything allowed).</returns>
    /// <exception cref="ConfigurationException">A rule is malformed.</exception>
    public static VsockAccessRules? Parse(IReadOnlyList<string> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        if (rules.Count == 0)
        {
            return null;
        }

        var guestToHost = new List<PortRange>();
        var hostToGuest = new List<HostToGuestRule>();
        foreach (string rule in rules)
        {
            int colon = rule.IndexOf(':', StringComparison.Ordinal);
            string direction = colon < 0 ? rule : rule[..colon];
            string[] parts = colon < 0 ? [] : rule[(colon + 1)..].Split(',');
            if (parts.Length == 0)
            {
                throw Bad(rule, "expected guest-to-host:PORTS or host-to-guest:PORTS[,uid=N][,gid=N]");
            }

            PortRange ports = Ports(rule, parts[0]);
            switch (direction)
            {
                case "guest-to-host" when parts.Length == 1:
                    guestToHost.Add(ports);
                    break;
                case "guest-to-host":
                    throw Bad(rule, "uid/gid conditions apply to host-to-guest rules only (the host program's credentials)");
                case "host-to-guest":
                    uint? uid = null, gid = null;
                    foreach (string condition in parts.Skip(1))
                    {
                        if (condition.StartsWith("uid=", StringComparison.Ordinal))
                        {
                            uid = Id(rule, condition[4..]);
                        }
                        else if (condition.StartsWith("gid=", StringComparison.Ordinal))
                        {
                            gid = Id(rule, condition[4..]);
                        }
                        else
                        {
                            throw Bad(rule, $"unknown condition '{condition}' (uid=N, gid=N)");
                        }
                    }

                    hostToGuest.Add(new HostToGuestRule(ports, uid, gid));
                    break;
                default:
                    throw Bad(rule, "the direction is guest-to-host or host-to-guest");
            }
        }

        return new VsockAccessRules(guestToHost, hostToGuest);
    }

    private static PortRange Ports(string rule, string text)
    {
        string[] ends = text.Split('-');
        if (ends.Length is 1 or 2
            && uint.TryParse(ends[0], NumberStyles.None, CultureInfo.InvariantCulture, out uint first)
            && uint.TryParse(ends[^1], NumberStyles.None, CultureInfo.InvariantCulture, out uint last)
            && first <= last)
        {
            return new PortRange(first, last);
        }

        throw Bad(rule, $"'{text}' is not a port or a range N-M");
    }

    private static uint Id(string rule, string text) =>
        uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint id) ? id : throw Bad(rule, $"'{text}' is not a numeric id");

    private static ConfigurationException Bad(string rule, string why) =>
        new($"--allow: '{ConfigText.OneLine(rule)}': {why}");
}
