namespace Virtio.Vsock.Testing;

/// <summary>How the simulated driver splits a packet into descriptors (the layouts Linux guests use).</summary>
public enum GuestBufferLayout
{
    /// <summary>Header and payload in one descriptor (Linux &gt;= 6.2).</summary>
    Linear,

    /// <summary>A header descriptor and one payload descriptor (older Linux).</summary>
    HeaderAndData,

    /// <summary>A header descriptor and the payload over 4 KiB descriptors (Linux &gt;= 6.17 nonlinear TX).</summary>
    Scattered,

    /// <summary>Like <see cref="HeaderAndData"/>, through an indirect descriptor table.</summary>
    Indirect,
}
