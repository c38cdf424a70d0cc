using Virtio.Vsock;
using VirtioVsock.Fuzz.Engine;
using VirtioVsock.Fuzz.Targets;

namespace VirtioVsock.Fuzz.Corpus;

/// <summary>Writes <c>device-tx</c> programs (the encoding <see cref="DeviceTxProgram"/> documents).</summary>
internal sealed class DeviceScript
{
    private readonly FuzzWriter _writer = new();

    public DeviceScript(byte options)
    {
        _writer.U8(options);
    }

    /// <summary>A well-formed packet from guest port 1000 + <paramref name="guestPort"/> to host port 5000 + <paramref name="hostPort"/>.</summary>
    public DeviceScript Packet(VsockOp op, VsockType type = VsockType.Stream, byte guestPort = 0, byte hostPort = 0, byte[]? payload = null, byte layout = 0, uint flags = 0, uint bufAlloc = 64 * 1024, uint fwdCnt = 0, byte piece = 0)
    {
        payload ??= [];
        bool credit = bufAlloc != 64 * 1024 || fwdCnt != 0;
        byte sel = (byte)((flags != 0 ? 16 : 0) | (credit ? 32 : 0));
        _writer.U8(0).U8(sel).U8(guestPort).U8(hostPort).U8((byte)(type == VsockType.Stream ? 0 : 1)).U8((byte)op);
        if (flags != 0)
        {
            _writer.U32(flags);
        }

        if (credit)
        {
            _writer.U32(bufAlloc).U32(fwdCnt);
        }

        _writer.U16((ushort)payload.Length).Bytes(payload).U8(layout);
        if (layout == 2)
        {
            _writer.U8(piece);
        }

        return this;
    }

    /// <summary>A packet with every header field given (any CIDs and ports, and a <c>len</c> that may lie).</summary>
    public DeviceScript RawHeader(VsockHeader header, byte[] payload, byte layout = 0)
    {
        _writer.U8(1).U8(0x7f).U64(header.SrcCid).U64(header.DstCid).U32(header.SrcPort).U32(header.DstPort)
            .U16((ushort)header.Type).U8((byte)header.Op).U32(header.Flags).U32(header.BufAlloc).U32(header.FwdCnt)
            .U16((ushort)payload.Length).Bytes(payload).U32(header.Len).U8(layout);
        if (layout == 2)
        {
            _writer.U8(7);
        }

        return this;
    }

    /// <summary>A raw chain of buffers (<c>a</c> bytes as documented) with optional corruption.</summary>
    public DeviceScript RawChain(bool indirect, Action<FuzzWriter> buffers, int count, byte corrupt = 0, Action<FuzzWriter>? corruption = null)
    {
        _writer.U8((byte)(indirect ? 0x83 : 3)).U8((byte)(count - 1));
        buffers(_writer);
        _writer.U8(corrupt);
        corruption?.Invoke(_writer);
        return this;
    }

    /// <summary>Host step: accept, then act on stream <paramref name="stream"/>.</summary>
    public DeviceScript Host(int action, byte stream = 0, ushort bytes = 0, bool endOfRecord = false)
    {
        _writer.U8(4).U8((byte)((action << 3) | (endOfRecord ? 1 : 0))).U8(stream);
        if (action is 0 or 4)
        {
            _writer.U16(bytes);
        }

        return this;
    }

    public DeviceScript Drain()
    {
        _writer.U8(5);
        return this;
    }

    public DeviceScript Connect(byte guestPort, bool seqpacket = false)
    {
        _writer.U8((byte)(seqpacket ? 0x86 : 6)).U8(guestPort);
        return this;
    }

    public DeviceScript Guest(byte action, byte argument = 0)
    {
        _writer.U8(7).U8(action);
        if (action == 3)
        {
            _writer.U8(argument);
        }

        return this;
    }

    public byte[] Build() => _writer.ToArray();
}
