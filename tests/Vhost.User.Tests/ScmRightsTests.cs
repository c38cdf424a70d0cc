namespace Vhost.User.Tests;

/// <summary>The SCM_RIGHTS control-message writer and parser shared by every assembly that passes descriptors.</summary>
public sealed class ScmRightsTests
{
    [Fact]
    public void WrittenDescriptorsAreReadBackInOrder()
    {
        Span<byte> control = stackalloc byte[ScmRights.SpaceFor(3)];
        control.Fill(0xAA);
        int length = ScmRights.Write(control, [7, 8, 9]);

        Assert.Equal(16 + 16, length);
        Assert.Equal([7, 8, 9], Collect(control[..length]));
    }

    [Fact]
    public void OtherControlMessagesAreSkippedAndEveryRightsMessageIsRead()
    {
        // A 20-byte SOL_SOCKET/SCM_CREDENTIALS-like message (type 2), padded to 24, then rights with 2 descriptors.
        byte[] control = new byte[24 + ScmRights.SpaceFor(2)];
        BitConverter.TryWriteBytes(control.AsSpan(0), 20UL);
        BitConverter.TryWriteBytes(control.AsSpan(8), ScmRights.SolSocket);
        BitConverter.TryWriteBytes(control.AsSpan(12), 2);
        ScmRights.Write(control.AsSpan(24), [41, 42]);

        Assert.Equal([41, 42], Collect(control));
    }

    [Fact]
    public void LengthsPastTheDataOrBelowTheHeaderStopTheWalk()
    {
        byte[] control = new byte[ScmRights.SpaceFor(2)];
        ScmRights.Write(control, [5, 6]);

        // cmsg_len claims more than the buffer holds: only the descriptors actually there are read.
        BitConverter.TryWriteBytes(control.AsSpan(0), 1000UL);
        Assert.Equal([5, 6], Collect(control));

        // Cut inside the second descriptor: the partial one is not read.
        Assert.Equal([5], Collect(control.AsSpan(0, 16 + 6)));

        // A length below the header size ends the walk (no endless loop on a zero length).
        BitConverter.TryWriteBytes(control.AsSpan(0), 0UL);
        Assert.Empty(Collect(control));
        Assert.Empty(Collect([]));
    }

    private static List<int> Collect(ReadOnlySpan<byte> control)
    {
        var fds = new List<int>();
        foreach (int fd in ScmRights.Received(control))
        {
            fds.Add(fd);
        }

        return fds;
    }
}
