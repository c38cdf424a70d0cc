namespace VhostUserVsock.Tests.Guest;

/// <summary>How <see cref="QemuGuest.Start"/> runs a guest.</summary>
public sealed record QemuGuestOptions
{
    /// <summary>
    /// The vhost-user backend's listening Unix socket. When set, QEMU gets
    /// <c>-chardev socket,id=vsock0,path=... -device vhost-user-vsock-pci,chardev=vsock0</c>;
    /// the backend must already listen (QEMU exits at once otherwise). Null: no vsock device.
    /// </summary>
    public string? VhostUserSocketPath { get; init; }

    /// <summary>
    /// Seconds between QEMU's attempts to reconnect the vhost-user chardev when the backend goes away
    /// (<c>reconnect=N</c>, QEMU 7.2; QEMU 9.2+ also has <c>reconnect-ms</c>). Null: no reconnect.
    /// </summary>
    public int? VhostUserReconnectSeconds { get; init; }

    /// <summary>The QEMU device: vhost-user-vsock-pci (default) or -pci-non-transitional.</summary>
    public string VsockDevice { get; init; } = "vhost-user-vsock-pci";

    /// <summary>Commands the guest's /init runs after GUEST-READY, in order.</summary>
    public IReadOnlyList<GuestCommand> Commands { get; init; } = [];

    /// <summary>Hard limit for the whole run: QEMU is killed after it (outcome TimedOut).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>Per-command limit inside the guest (vsocktest.timeout; the command is killed, exit 137).</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Guest memory (shared memfd backend of the same size).</summary>
    public int MemoryMiB { get; init; } = 256;

    /// <summary>Load vsock_loopback in the guest (CID 1 within the guest).</summary>
    public bool LoadLoopback { get; init; }

    /// <summary>Print the whole kernel log (KMSG lines) before GUEST-DONE, not just warnings.</summary>
    public bool FullKernelLog { get; init; }

    /// <summary>
    /// Let a guest reboot in place (no <c>-no-reboot</c>): QEMU and its vhost-user connection stay, the
    /// guest boots again and runs the same commands. Off: a reboot ends QEMU.
    /// </summary>
    public bool AllowReboot { get; init; }

    /// <summary>More kernel command line words.</summary>
    public IReadOnlyList<string> ExtraKernelArguments { get; init; } = [];

    /// <summary>More QEMU arguments, appended last (e.g. a <c>-netdev</c> and its NIC).</summary>
    public IReadOnlyList<string> ExtraQemuArguments { get; init; } = [];

    /// <summary>Where QEMU writes the serial console; null: a temporary file deleted on dispose.</summary>
    public string? SerialLogPath { get; init; }

    /// <summary>The QEMU binary.</summary>
    public string QemuBinary { get; init; } = GuestImage.QemuBinary;
}
