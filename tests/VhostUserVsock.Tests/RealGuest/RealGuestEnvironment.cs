using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// Finds what a real-guest test needs. Missing pieces skip the test locally (naming the package or
/// script that provides them) and fail it in CI (<c>CI=true</c>), where
/// <see cref="GuestImage.InstallScript"/> must have provided them.
/// </summary>
public static class RealGuestEnvironment
{
    /// <summary>True when running in CI.</summary>
    public static bool InCi => Environment.GetEnvironmentVariable("CI") == "true";

    /// <summary>
    /// Null when the guest of <paramref name="suite"/> and QEMU are there; else why not, for
    /// <see cref="SkipOrFail"/>.
    /// </summary>
    public static string? Missing(string suite, out GuestImage? image)
    {
        image = GuestImage.TryLocate(suite, out var missing);
        return image is null ? missing : null;
    }

    /// <summary>
    /// Skips (locally, or for an <paramref name="optional"/> guest anywhere) or fails (CI) because
    /// of <paramref name="missing"/>.
    /// </summary>
    public static void SkipOrFail(string suite, string missing, bool optional = false)
    {
        if (InCi && !optional)
            Assert.Fail($"The real-guest tests cannot run in CI: {missing}. {GuestImage.InstallScript} must install QEMU and build the {suite} guest.");
        Assert.Skip($"Real-guest test skipped ({suite} guest): {missing}" + (optional ? " (optional guest; build it with tests/guest/build-guest.sh .work/guest " + suite + ")" : ""));
    }

    /// <summary>The guest of <paramref name="suite"/>, or skip/fail as <see cref="SkipOrFail"/> says.</summary>
    public static GuestImage Require(string suite, bool optional = false)
    {
        if (Missing(suite, out var image) is { } missing)
            SkipOrFail(suite, missing, optional);
        return image!;
    }
}
