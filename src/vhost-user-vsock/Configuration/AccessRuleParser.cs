using System.Collections.Immutable;
using System.Globalization;
using Virtio.Vsock.Backends.Unix.Access;

namespace VhostUserVsock.Configuration;

/// <summary>
/// Parses access rules (<c>--allow RULE</c>, or an entry of a VM's <c>allow</c> list in the config file) into
/// <see cref="AccessRules"/>: <c>guest-to-host:PORTS</c> (host ports the guest may connect to),
/// <c>host-to-guest:PORTS[,uid=N][,gid=N]</c> (guest ports host programs may connect to, only for that uid/gid
/// when given) and <c>sibling:CID[,CID...]</c> (sibling guests it may talk with); PORTS is <c>N</c> or <c>N-M</c>.
/// Text in, rules or a one-line error out; must never decide anything about a connection.
/// </summary>
public static class AccessRuleParser
{
    private const string Syntax = "guest-to-host:PORTS, host-to-guest:PORTS[,uid=N][,gid=N] or sibling:CID[,CID...]";

    /// <summary>Parses every <c>--allow</c> rule.</summary>
    /// <param name="rules">The rules as written.</param>
    /// <returns>The rules, or <see langword="null"/> when none was given (everything allowed).</returns>
    /// <exception cref="ConfigurationException">A rule is malformed.</exception>
    public static AccessRules? Parse(IReadOnlyList<string> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        if (rules.Count == 0)
        {
            return null;
        }

        AccessRules access = AccessRules.None;
        foreach (string rule in rules)
        {
            access = access.Union(ParseRule(rule, "--allow"));
        }

        return access;
    }

    /// <summary>Parses one rule.</summary>
    /// <param name="rule">The rule as written.</param>
    /// <param name="origin">Where it was written, the start of any error message (e.g. <c>--allow</c>).</param>
    /// <returns>The rule.</returns>
    /// <exception cref="ConfigurationException">The rule is malformed.</exception>
    public static AccessRules ParseRule(string rule, string origin)
    {
        ArgumentNullException.ThrowIfNull(rule);
        ArgumentNullException.ThrowIfNull(origin);
        int colon = rule.IndexOf(':', StringComparison.Ordinal);
        string direction = colon < 0 ? rule : rule[..colon];
        string[] parts = colon < 0 ? [] : rule[(colon + 1)..].Split(',');
        if (parts.Length == 0)
        {
            throw Bad(origin, rule, $"expected {Syntax}");
        }

        switch (direction)
        {
            case "sibling":
                ImmutableSortedSet<ulong>.Builder cids = ImmutableSortedSet.CreateBuilder<ulong>();
                foreach (string part in parts)
                {
                    cids.Add(Cid(origin, rule, part));
                }

                return new AccessRules { Siblings = cids.ToImmutable() };
            case "guest-to-host" when parts.Length == 1:
                return new AccessRules { GuestToHost = [Ports(origin, rule, parts[0])] };
            case "guest-to-host":
                throw Bad(origin, rule, "uid/gid conditions apply to host-to-guest rules only (the host program's credentials)");
            case "host-to-guest":
                PortRange ports = Ports(origin, rule, parts[0]);
                uint? uid = null, gid = null;
                foreach (string condition in parts.Skip(1))
                {
                    if (condition.StartsWith("uid=", StringComparison.Ordinal))
                    {
                        uid = Id(origin, rule, condition[4..]);
                    }
                    else if (condition.StartsWith("gid=", StringComparison.Ordinal))
                    {
                        gid = Id(origin, rule, condition[4..]);
                    }
                    else
                    {
                        throw Bad(origin, rule, $"unknown condition '{ConfigText.Printable(condition)}' (uid=N, gid=N)");
                    }
                }

                return new AccessRules { HostToGuest = [new HostToGuestRule(ports, uid, gid)] };
            default:
                throw Bad(origin, rule, "the direction is guest-to-host, host-to-guest or sibling");
        }
    }

    private static PortRange Ports(string origin, string rule, string text)
    {
        string[] ends = text.Split('-');
        if (ends.Length is 1 or 2
            && uint.TryParse(ends[0], NumberStyles.None, CultureInfo.InvariantCulture, out uint first)
            && uint.TryParse(ends[^1], NumberStyles.None, CultureInfo.InvariantCulture, out uint last)
            && first <= last)
        {
            return new PortRange(first, last);
        }

        throw Bad(origin, rule, $"'{ConfigText.Printable(text)}' is not a port or a range N-M");
    }

    private static ulong Cid(string origin, string rule, string text)
    {
        if (!ConfigText.TryParseUnsigned(text, out ulong cid, out _))
        {
            throw Bad(origin, rule, $"'{ConfigText.Printable(text)}' is not a guest CID");
        }

        return VmLimits.DescribeGuestCidProblem(cid) is { } problem ? throw Bad(origin, rule, problem) : cid;
    }

    private static uint Id(string origin, string rule, string text) =>
        uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint id)
            ? id
            : throw Bad(origin, rule, $"'{ConfigText.Printable(text)}' is not a numeric id");

    private static ConfigurationException Bad(string origin, string rule, string why) =>
        new($"{origin}: '{ConfigText.Printable(ConfigText.OneLine(rule))}': {why}");
}
