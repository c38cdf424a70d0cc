namespace Virtio.Vsock.Tests;

/// <summary>The header values the tests write and expect back.</summary>
internal static class Samples
{
    public static readonly VsockHeader TxHeader = new()
    {
        SrcCid = 3,
        DstCid = 2,
        SrcPort = 1024,
        DstPort = 1234,
        Len = 0,
        Type = VsockType.Stream,
        Op = VsockOp.Rw,
        Flags = 0,
        BufAlloc = 65536,
        FwdCnt = 77,
    };

    public static byte[] Encode(VsockHeader header)
    {
        byte[] raw = new byte[VsockHeader.Size];
        header.Write(raw);
        return raw;
    }

    public static byte[] Payload(int length, int seed = 1)
    {
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }
}
