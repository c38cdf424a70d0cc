using Vhost.User;
using VirtioVsock.Fuzz.Vhost;
using VirtioVsock.Fuzz.Engine;

namespace VirtioVsock.Fuzz.Corpus;

/// <summary>Writes vhost-user message streams (<c>vhost-user-message</c> seeds) the way QEMU frames them.</summary>
internal sealed class VhostMessages
{
    public const ulong UserBase = 0x7f00_0000_0000;
    public const ulong RamSize = 0x10_0000;

    private readonly FuzzWriter _writer = new();

    public VhostMessages(byte options)
    {
        _writer.U8(options);
    }

    public VhostMessages Message(VhostRequest request, ReadOnlySpan<byte> payload = default, bool needReply = false, uint? flags = null)
    {
        _writer.U32((uint)request).U32(flags ?? (needReply ? 0x9u : 0x1u)).U32((uint)payload.Length).Bytes(payload);
        return this;
    }

    public VhostMessages U64(VhostRequest request, ulong value, bool needReply = false) =>
        Message(request, new FuzzWriter().U64(value).ToArray(), needReply);

    public VhostMessages State(VhostRequest request, uint index, uint num, bool needReply = false) =>
        Message(request, new FuzzWriter().U32(index).U32(num).ToArray(), needReply);

    public VhostMessages MemTable(params (ulong Guest, ulong Size, ulong User, ulong Offset)[] regions)
    {
        var payload = new FuzzWriter().U32((uint)regions.Length).U32(0);
        foreach (var region in regions)
        {
            payload.U64(region.Guest).U64(region.Size).U64(region.User).U64(region.Offset);
        }

        return Message(VhostRequest.SetMemTable, payload.ToArray(), needReply: true);
    }

    public VhostMessages MemRegion(VhostRequest request, ulong guest, ulong size, ulong user, ulong offset) =>
        Message(request, new FuzzWriter().U64(0).U64(guest).U64(size).U64(user).U64(offset).ToArray(), needReply: true);

    /// <summary>SET_VRING_NUM, _BASE, _ADDR, _KICK, _CALL for ring <paramref name="index"/> in the first region.</summary>
    public VhostMessages StartRing(uint index, uint size = 256)
    {
        ulong rings = UserBase + 0x1_0000 + (index * 0x1_0000UL);
        State(VhostRequest.SetVringNum, index, size);
        State(VhostRequest.SetVringBase, index, 0);
        Message(VhostRequest.SetVringAddr, new FuzzWriter().U32(index).U32(0).U64(rings).U64(rings + 0x8000).U64(rings + 0x4000).U64(0).ToArray());
        U64(VhostRequest.SetVringKick, index);
        return U64(VhostRequest.SetVringCall, index);
    }

    public VhostMessages Config(VhostRequest request, uint offset, uint size, uint flags = 0)
    {
        var payload = new FuzzWriter().U32(offset).U32(size).U32(flags).Bytes(new byte[size]);
        return Message(request, payload.ToArray());
    }

    public VhostMessages Raw(ReadOnlySpan<byte> bytes)
    {
        _writer.Bytes(bytes);
        return this;
    }

    public byte[] Build() => _writer.ToArray();
}
