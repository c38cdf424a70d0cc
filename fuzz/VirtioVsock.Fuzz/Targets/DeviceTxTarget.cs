using System.Buffers.Binary;
using Virtio.Memory;
using Virtio.Queue;
using Virtio.Queue.Testing;
using Virtio.Vsock;
using Virtio.Vsock.Device;
using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;
using VirtioVsock.Fuzz.Engine;

namespace VirtioVsock.Fuzz.Targets;

/// <summary>
/// <c>device-tx</c>: a <see cref="VsockDevice"/> with the in-process backend, driven by the
/// <see cref="GuestSimulator"/>'s raw hooks: the input is a small program of guest TX chains (well-formed
/// packets with any header, in any descriptor layout, and raw hostile chains), host-side socket actions
/// and guest driver events.
/// </summary>
/// <remarks>
/// <para>Input: <c>u8 options</c>, then up to <see cref="MaxOps"/> operations of one op byte each (see
/// <see cref="DeviceTxProgram"/> for the encoding). The guest ports <c>1000..1007</c> are claimed raw (the
/// simulator does not answer for them) and the host listens on stream ports <c>5000..5003</c> and seqpacket
/// ports <c>5000..5001</c>.</para>
/// <para>Invariants: every TX chain comes back in the used ring once the guest takes RX buffers, with no
/// <see cref="DrainDeadline"/> going by without progress (no hang); no exception escapes the device (on the loop thread it would end
/// the process) or the driver (a used head that is not outstanding throws there); no used RX buffer is
/// malformed; connections stay within the limit; managed memory stays bounded.</para>
/// </remarks>
public static class DeviceTxTarget
{
    /// <summary>The most operations one input runs.</summary>
    public const int MaxOps = 64;

    /// <summary>The first raw guest port (eight are claimed).</summary>
    public const uint GuestPortBase = 1000;

    /// <summary>The first host listening port.</summary>
    public const uint HostPortBase = 5000;

    /// <summary>How long outstanding TX chains may go without one of them coming back (a hang, not a slow machine).</summary>
    public static readonly TimeSpan DrainDeadline = TimeSpan.FromSeconds(3);

    /// <summary>How long a drain may take at most, progress or not.</summary>
    public static readonly TimeSpan DrainCap = TimeSpan.FromSeconds(20);

    private const long MaxManagedGrowth = 256L * 1024 * 1024;

    /// <summary>The <c>device-tx</c> target.</summary>
    /// <param name="input">The input.</param>
    public static void Run(ReadOnlySpan<byte> input)
    {
        long managedBefore = GC.GetTotalMemory(false);
        var reader = new FuzzReader(input);
        byte options = reader.U8();
        var deviceOptions = new VsockDeviceOptions
        {
            GuestCid = 3,
            BufferSize = (options & 0x01) != 0 ? 4096u : 64 * 1024,
            MaxConnections = (options & 0x02) != 0 ? 4 : 1023,
            MaxPendingResets = (options & 0x04) != 0 ? 2 : 256,
            TxBatch = (options & 0x08) != 0 ? 3 : 256,
            MaxBufferedMessages = (options & 0x04) != 0 ? 2 : 256,
        };
        var guestOptions = new GuestSimulatorOptions
        {
            QueueSize = 64,
            EventIdx = (options & 0x10) != 0,
            SeqPacket = (options & 0x20) == 0,
            RxLayout = (options & 0x40) != 0 ? GuestBufferLayout.HeaderAndData : GuestBufferLayout.Linear,
            RxBufferSize = (options & 0x80) != 0 ? 64 : 4096,
            MaxTxPayload = 4096,
            MemorySize = 8UL * 1024 * 1024,
            LogReceived = true,
        };

        var backend = new InProcessBackend(16 * 1024);
        (GuestSimulator guest, VsockDevice device) = GuestSimulator.Create(deviceOptions, backend, guestOptions);
        using var program = new DeviceTxProgram(guest, device, backend);
        try
        {
            program.Execute(ref reader);
            program.Drain("at the end of the input");
            // Length mismatches are counted on the simulator's thread as they come, so a count above 0 is a device bug
            // whenever it is read. Addresses are checked on a snapshot of the log instead of against the simulator's
            // count of them: an answer from a CID the guest made up (an RST to a packet for CID 0x1234_5678_9abc comes
            // from that CID, as in Linux) is allowed, and such an answer may still be on its way after the drain (the
            // drain waits for TX chains, not for their answers), so comparing two counts read at different moments
            // reported one that arrived in between (seed 31, mutation 46193).
            FuzzInvariantException.Check(guest.RxLengthMismatches == 0, $"{guest.RxLengthMismatches} used RX buffers did not hold the packet their header describes");
            VsockHeader[] received = [.. guest.ReceivedLog];
            VsockHeader[] misaddressed = [.. received.Where(h => h.DstCid != guest.GuestCid)];
            FuzzInvariantException.Check(misaddressed.Length == 0, $"the device sent packets to another CID: {string.Join("; ", misaddressed.Take(4))}");
            FuzzInvariantException.Check(device.ConnectionCount <= deviceOptions.MaxConnections, $"{device.ConnectionCount} connections, the limit is {deviceOptions.MaxConnections}");
            long growth = GC.GetTotalMemory(false) - managedBefore;
            FuzzInvariantException.Check(growth < MaxManagedGrowth, $"managed memory grew by {growth / (1024 * 1024)} MiB in one input");
        }
        finally
        {
            device.Dispose();
            program.CloseHost();
            guest.Dispose();
        }
    }
}
