using Virtio.Memory;
using Virtio.Queue;
using Virtio.Vsock;
using VirtioVsock.Fuzz.Engine;

namespace VirtioVsock.Fuzz.Targets;

/// <summary>
/// <c>packet-tx</c> and <c>packet-rx</c>: guest memory, a descriptor table and an available ring straight
/// from the input (<see cref="QueueImage"/>); every available chain is popped with <see cref="VirtQueue"/>,
/// parsed with <see cref="VsockPacket.TryParseTx"/> / <see cref="VsockPacket.TryParseRx"/>, run through the
/// data helpers, and returned to the used ring.
/// </summary>
/// <remarks>
/// Invariants besides "never throws": the ring model (a valid queue pops exactly <c>avail.idx - next</c>
/// chains, or reports <see cref="QueueError.AvailIndexInvalid"/> when that is more than the size); the parse
/// succeeds exactly when <see cref="ReferenceChain"/> says the chain holds a packet; a parsed packet's header
/// and payload are the chain's bytes; the data helpers agree with each other and refuse out-of-range offsets;
/// <see cref="VirtQueue.AddUsed"/> accepts every head below the queue size.
/// </remarks>
public static class PacketTargets
{
    private const int MaxCheckedData = 256 * 1024;

    /// <summary>The <c>packet-tx</c> target.</summary>
    /// <param name="input">The input.</param>
    public static void PacketTx(ReadOnlySpan<byte> input) => Run(input, tx: true);

    /// <summary>The <c>packet-rx</c> target.</summary>
    /// <param name="input">The input.</param>
    public static void PacketRx(ReadOnlySpan<byte> input) => Run(input, tx: false);

    private static void Run(ReadOnlySpan<byte> input, bool tx)
    {
        var reader = new FuzzReader(input);
        using QueueImage image = QueueImage.Decode(ref reader);
        GuestMemory memory = image.Memory;
        VirtQueue queue = image.Queue;
        QueueError configuration = queue.Validate(memory);
        ushort start = queue.NextAvail;
        int distance = (ushort)(image.AvailIndex - start);
        var packet = new VsockPacket();
        int popped = 0;

        // RX buffers may alias the rings (a hostile driver may point them anywhere), so once the device
        // wrote into guest memory the ring model is checked against what the ring holds now.
        bool wrote = false;
        for (int attempt = 0; attempt <= queue.Size + 1; attempt++)
        {
            if (!queue.TryPopChain(memory, out DescriptorChain chain, out QueueError error))
            {
                if (configuration != QueueError.None)
                {
                    FuzzInvariantException.Check(error != QueueError.None, $"a queue that does not validate ({configuration}) popped nothing without an error");
                    break;
                }

                FuzzInvariantException.Check(
                    memory.ReadU16(queue.AvailRing.CheckedAdd(SplitRing.IndexOffset), out ushort availNow) == MemoryError.None,
                    "the avail ring of a valid queue cannot be read");
                int ahead = (ushort)(availNow - queue.NextAvail);
                if (ahead > queue.Size)
                {
                    FuzzInvariantException.Check(error == QueueError.AvailIndexInvalid, $"avail.idx {ahead} ahead of a size-{queue.Size} ring gave {error}");
                }
                else
                {
                    FuzzInvariantException.Check(error == QueueError.None && ahead == 0, $"TryPopChain found nothing ({error}) with avail.idx {ahead} ahead");
                    FuzzInvariantException.Check(wrote || popped == distance, $"popped {popped} chains, {distance} were available");
                }

                break;
            }

            FuzzInvariantException.Check(configuration == QueueError.None, $"a queue that does not validate ({configuration}) popped a chain");
            FuzzInvariantException.Check(wrote || (popped < distance && distance <= queue.Size), $"chain {popped} popped with {distance} available on a size-{queue.Size} ring");
            popped++;
            ReferenceChain model = ReferenceChain.Walk(memory, queue.DescriptorTable, queue.Size, chain.HeadIndex, queue.IndirectDescriptors);
            uint used = tx ? CheckTx(memory, ref chain, model, packet, image.MaxData) : CheckRx(memory, ref chain, model, packet, image.MaxData);
            wrote |= used != 0;
            QueueError returned = queue.AddUsed(memory, chain.HeadIndex, used);
            FuzzInvariantException.Check(
                returned == (chain.HeadIndex < queue.Size ? QueueError.None : QueueError.HeadIndexOutOfRange),
                $"AddUsed of head {chain.HeadIndex} on a size-{queue.Size} ring gave {returned}");
            _ = queue.NeedsNotification(memory);
        }

        FuzzInvariantException.Check(wrote || popped <= queue.Size, "more chains popped than the ring holds");
        _ = queue.EnableNotification(memory, out _);
        _ = queue.DisableNotification(memory);
    }

    private static uint CheckTx(GuestMemory memory, ref DescriptorChain chain, ReferenceChain model, VsockPacket packet, uint maxData)
    {
        VsockPacketError error = packet.TryParseTx(memory, ref chain, maxData);
        _ = error.Describe();
        _ = packet.ToString();

        // The model: the header is the first 44 bytes of the leading device-readable buffers; the payload
        // (when len != 0 and len <= max) the next len bytes; the whole chain must be well-formed and
        // device-readable, buffers after the bytes needed included (their bytes are ignored).
        ulong readable = model.RunLength(writable: false, out bool mixed);
        bool expected;
        byte[] flat = model.Flatten(memory, writable: false, VsockHeader.Size);
        VsockHeader modelHeader = default;
        if (readable < VsockHeader.Size || model.Failed || mixed)
        {
            expected = false;
            if (readable >= VsockHeader.Size)
            {
                modelHeader = VsockHeader.Read(flat);
            }
        }
        else
        {
            modelHeader = VsockHeader.Read(flat);
            expected = modelHeader.Len == 0 || (modelHeader.Len <= maxData && readable >= VsockHeader.Size + (ulong)modelHeader.Len);
        }

        FuzzInvariantException.Check(
            expected == !error.IsError,
            $"TX parse of head {chain.HeadIndex} gave {(error.IsError ? error.Describe() : "success")}, the model expected {(expected ? "success" : "an error")} " +
            $"({model.Buffers.Count} buffers, {readable} readable bytes, chain {(model.Failed ? "broken" : "well-formed")}, len {modelHeader.Len}, max {maxData})");
        if (error.IsError)
        {
            return 0;
        }

        FuzzInvariantException.Check(packet.Header == modelHeader, $"TX header {packet.Header} differs from the chain's bytes {modelHeader}");
        FuzzInvariantException.Check(packet.HeadIndex == chain.HeadIndex, "packet head index differs from the chain's");
        uint len = packet.Len;
        FuzzInvariantException.Check(packet.DataCapacity == (int)len, $"TX data capacity {packet.DataCapacity} differs from len {len}");
        CheckDataHelpers(memory, model, packet, writable: false);

        // Writing the same header back must leave guest memory as it was.
        packet.SetHeader(packet.Header);
        byte[] again = model.Flatten(memory, writable: false, VsockHeader.Size);
        FuzzInvariantException.Check(again.AsSpan().SequenceEqual(flat), "rewriting the TX header with itself changed guest memory");
        return 0;
    }

    private static uint CheckRx(GuestMemory memory, ref DescriptorChain chain, ReferenceChain model, VsockPacket packet, uint maxData)
    {
        VsockPacketError error = packet.TryParseRx(memory, ref chain, maxData);
        _ = error.Describe();

        // The model: a well-formed chain of device-writable buffers only, 44 header bytes, 1..max data bytes.
        ulong writable = model.RunLength(writable: true, out bool mixed);
        bool expected = !model.Failed && !mixed && writable > VsockHeader.Size && writable - VsockHeader.Size <= maxData;
        FuzzInvariantException.Check(
            expected == !error.IsError,
            $"RX parse of head {chain.HeadIndex} gave {(error.IsError ? error.Describe() : "success")}, the model expected {(expected ? "success" : "an error")} " +
            $"({model.Buffers.Count} buffers, {writable} writable bytes, readable among them {mixed}, chain {(model.Failed ? "broken" : "well-formed")}, max {maxData})");
        if (error.IsError)
        {
            return 0;
        }

        FuzzInvariantException.Check(packet.Header == default, "an RX header copy does not start zeroed");
        FuzzInvariantException.Check((ulong)packet.DataCapacity == writable - VsockHeader.Size, $"RX data capacity {packet.DataCapacity}, the chain has {writable - VsockHeader.Size}");

        var header = new VsockHeader
        {
            SrcCid = 2,
            DstCid = 3,
            SrcPort = 0x0102_0304,
            DstPort = 0x0506_0708,
            Len = (uint)Math.Min(packet.DataCapacity, 64),
            Type = VsockType.Stream,
            Op = VsockOp.Rw,
            Flags = 0x0a0b_0c0d,
            BufAlloc = 0x1111_2222,
            FwdCnt = 0x3333_4444,
        };
        packet.SetHeader(header);
        packet.SetFwdCnt(0x5555_6666).SetFlag(0x10).SetBufAlloc(0x7777_8888);
        header.FwdCnt = 0x5555_6666;
        header.Flags |= 0x10;
        header.BufAlloc = 0x7777_8888;
        FuzzInvariantException.Check(packet.Header == header, "the RX header copy does not follow the setters");
        if (!model.HasOverlaps())
        {
            byte[] written = model.Flatten(memory, writable: true, VsockHeader.Size);
            FuzzInvariantException.Check(VsockHeader.Read(written) == header, $"the RX header in guest memory {VsockHeader.Read(written)} differs from the one set {header}");
        }

        CheckDataHelpers(memory, model, packet, writable: true);
        return (uint)(VsockHeader.Size + header.Len);
    }

    /// <summary>The data helpers against each other and against the model's bytes.</summary>
    private static void CheckDataHelpers(GuestMemory memory, ReferenceChain model, VsockPacket packet, bool writable)
    {
        int capacity = packet.DataCapacity;
        FuzzInvariantException.Check(packet.CopyDataTo(new byte[1], capacity).Kind == VsockPacketErrorKind.DataOutOfRange, "CopyDataTo past the end was not refused");
        FuzzInvariantException.Check(packet.CopyDataFrom(new byte[2], capacity - 1).Kind == VsockPacketErrorKind.DataOutOfRange, "CopyDataFrom past the end was not refused");
        FuzzInvariantException.Check(packet.CopyDataTo(new byte[1], -1).Kind == VsockPacketErrorKind.DataOutOfRange, "CopyDataTo at a negative offset was not refused");

        long spanned = 0;
        DataSpanEnumerator spans = packet.GetDataSpans(0, int.MaxValue);
        while (spans.MoveNext())
        {
            FuzzInvariantException.Check(!spans.Current.IsEmpty, "GetDataSpans yielded an empty span");
            spanned += spans.Current.Length;
        }

        FuzzInvariantException.Check(!spans.Error.IsError && spanned == capacity, $"GetDataSpans covered {spanned} of {capacity} bytes ({spans.Error})");
        int offset = capacity / 3;
        int count = capacity - offset + 5;
        long clamped = 0;
        foreach (Span<byte> span in packet.GetDataSpans(offset, count))
        {
            clamped += span.Length;
        }

        FuzzInvariantException.Check(clamped == capacity - offset, $"GetDataSpans({offset}, {count}) covered {clamped} bytes of a {capacity}-byte buffer");
        if (capacity > MaxCheckedData)
        {
            return;
        }

        byte[] data = new byte[capacity];
        VsockPacketError copied = packet.CopyDataTo(data);
        FuzzInvariantException.Check(!copied.IsError, $"CopyDataTo of the whole payload failed: {copied.Describe()}");
        byte[] joined = new byte[capacity];
        int at = 0;
        foreach (Span<byte> span in packet.GetDataSpans(0, int.MaxValue))
        {
            span.CopyTo(joined.AsSpan(at));
            at += span.Length;
        }

        FuzzInvariantException.Check(at == capacity && joined.AsSpan().SequenceEqual(data), "GetDataSpans joined differs from CopyDataTo");

        if (!writable)
        {
            byte[] flat = model.Flatten(memory, writable: false, VsockHeader.Size + capacity);
            FuzzInvariantException.Check(flat.AsSpan(VsockHeader.Size).SequenceEqual(data), "the TX payload differs from the chain's bytes after the header");
            return;
        }

        byte[] pattern = new byte[capacity];
        for (int i = 0; i < pattern.Length; i++)
        {
            pattern[i] = (byte)((i * 31) + 7);
        }

        VsockPacketError filled = packet.CopyDataFrom(pattern);
        FuzzInvariantException.Check(!filled.IsError, $"CopyDataFrom of the whole buffer failed: {filled.Describe()}");
        VsockPacketError tail = packet.CopyDataFrom(pattern.AsSpan(offset), offset);
        FuzzInvariantException.Check(!tail.IsError, $"CopyDataFrom of the tail at {offset} failed: {tail.Describe()}");

        if (!model.HasOverlaps())
        {
            byte[] back = new byte[capacity];
            FuzzInvariantException.Check(!packet.CopyDataTo(back).IsError && back.AsSpan().SequenceEqual(pattern), "RX payload read back differs from what was written");
            byte[] flat = model.Flatten(memory, writable: true, VsockHeader.Size + capacity);
            FuzzInvariantException.Check(flat.AsSpan(VsockHeader.Size).SequenceEqual(pattern), "the RX payload in guest memory differs from what was written");
        }
    }
}
