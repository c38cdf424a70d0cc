using System.Buffers.Binary;

namespace Vhost.User.Tests;

/// <summary>A message the backend sent back.</summary>
internal sealed record Reply(uint Request, uint Flags, byte[] Payload)
{
    public ulong U64
    {
        get
        {
            Assert.Equal(8, Payload.Length);
            return BinaryPrimitives.ReadUInt64LittleEndian(Payload);
        }
    }
}
