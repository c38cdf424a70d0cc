using System.Text.Json.Serialization;
using Virtio.Vsock.Device;

namespace VhostUserVsock.Control;

/// <summary>
/// The control socket's messages: one JSON object per line each way. Requests name a <see cref="Command"/>
/// (<c>connections</c>, <c>capture-start</c>, <c>capture-stop</c>); every reply has <see cref="ControlReply.Ok"/>
/// and either the data or an <see cref="ControlReply.Error"/>. Serialised with source generation (AOT-safe).
/// </summary>
public sealed record ControlRequest
{
    /// <summary>What to do: <c>connections</c>, <c>capture-start</c> or <c>capture-stop</c>.</summary>
    public string? Command { get; init; }

    /// <summary>The VM (guest CID); for <c>connections</c>, none means every VM.</summary>
    public ulong? Cid { get; init; }

    /// <summary>The capture file (<c>capture-start</c>).</summary>
    public string? Path { get; init; }

    /// <summary>The most payload bytes kept per captured packet (<c>capture-start</c>; default whole packets).</summary>
    public int? SnapLength { get; init; }
}

/// <summary>A reply on the control socket.</summary>
public sealed record ControlReply
{
    /// <summary>Whether the request was carried out.</summary>
    public bool Ok { get; init; }

    /// <summary>Why not, when <see cref="Ok"/> is false.</summary>
    public string? Error { get; init; }

    /// <summary>The VMs (<c>connections</c>).</summary>
    public IReadOnlyList<ControlVm>? Vms { get; init; }

    /// <summary>Packets written by the stopped capture (<c>capture-stop</c>).</summary>
    public long? Captured { get; init; }

    /// <summary>Packets the stopped capture dropped (<c>capture-stop</c>).</summary>
    public long? Dropped { get; init; }
}

/// <summary>One VM in a <c>connections</c> reply.</summary>
public sealed record ControlVm
{
    /// <summary>The guest CID.</summary>
    public ulong Cid { get; init; }

    /// <summary>RX buffers the guest posted and the device has not used.</summary>
    public int RxBuffersAvailable { get; init; }

    /// <summary>TX chains the guest made available and the device has not taken yet.</summary>
    public int TxChainsWaiting { get; init; }

    /// <summary>Connections with sibling guests.</summary>
    public int SiblingConnections { get; init; }

    /// <summary>The device's queues (indices and notification counts); <see langword="null"/> when the device did not answer in time.</summary>
    public IReadOnlyList<VsockQueueInfo>? Queues { get; init; }

    /// <summary>The capture file, when capturing.</summary>
    public string? Capture { get; init; }

    /// <summary>The connections with host programs; <see langword="null"/> when the device did not answer in time.</summary>
    public IReadOnlyList<VsockConnectionInfo>? Connections { get; init; }
}

/// <summary>The source-generated JSON contract of the control socket.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlReply))]
public sealed partial class ControlJson : JsonSerializerContext;
