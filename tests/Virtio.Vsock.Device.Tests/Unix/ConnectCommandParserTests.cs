using System.Text;
using Virtio.Vsock.Backends.Unix;

namespace Virtio.Vsock.Device.Tests.Unix;

public sealed class ConnectCommandParserTests
{
    private static ConnectParseResult ParseAll(string text) => ParseAll(Encoding.ASCII.GetBytes(text));

    private static ConnectParseResult ParseAll(byte[] bytes)
    {
        var parser = default(ConnectCommandParser);
        return parser.Feed(bytes);
    }

    [Theory]
    [InlineData("CONNECT 1234\n", 1234u)]
    [InlineData("connect 1234\n", 1234u)]
    [InlineData("CoNnEcT 1\n", 1u)]
    [InlineData("CONNECT 0\n", 0u)]
    [InlineData("CONNECT 0007\n", 7u)]
    [InlineData("CONNECT 4294967295\n", 4294967295u)]
    [InlineData("CONNECT 52\r\n", 52u)]
    [InlineData("CONNECT   52\n", 52u)]
    [InlineData("CONNECT\t52\t\n", 52u)]
    [InlineData("CONNECT 52   \r\n", 52u)]
    public void Accepts_valid_lines(string line, uint port)
    {
        ConnectParseResult result = ParseAll(line);
        Assert.Equal(ConnectParseStatus.Complete, result.Status);
        Assert.Equal(port, result.Port);
        Assert.Equal(line.Length, result.BytesConsumed);
        Assert.Equal(ConnectCommandError.None, result.Error);
    }

    [Theory]
    [InlineData("CONNECT 4294967296\n", ConnectCommandError.PortOverflow)]
    [InlineData("CONNECT 99999999999\n", ConnectCommandError.PortOverflow)]
    [InlineData("CONNECT +5\n", ConnectCommandError.InvalidPort)]
    [InlineData("CONNECT -5\n", ConnectCommandError.InvalidPort)]
    [InlineData("CONNECT 5a\n", ConnectCommandError.InvalidPort)]
    [InlineData("CONNECT 0x10\n", ConnectCommandError.InvalidPort)]
    [InlineData("CONNECT 1\0\n", ConnectCommandError.InvalidPort)]
    [InlineData("CONNECT \n", ConnectCommandError.MissingPort)]
    [InlineData("CONNECT \r\n", ConnectCommandError.MissingPort)]
    [InlineData("CONNECT\n", ConnectCommandError.MissingPort)]
    [InlineData("CONNECT 5 6\n", ConnectCommandError.UnexpectedCharacter)]
    [InlineData("CONNECT 5 x\n", ConnectCommandError.UnexpectedCharacter)]
    [InlineData("CONNECT 5\rX", ConnectCommandError.UnexpectedCharacter)]
    [InlineData("CONNECT 5\r\r\n", ConnectCommandError.UnexpectedCharacter)]
    [InlineData("CONNECT5\n", ConnectCommandError.NotConnectCommand)]
    [InlineData("CONNECTS 5\n", ConnectCommandError.NotConnectCommand)]
    [InlineData(" CONNECT 5\n", ConnectCommandError.NotConnectCommand)]
    [InlineData("\n", ConnectCommandError.NotConnectCommand)]
    [InlineData("GET / HTTP/1.1\r\n", ConnectCommandError.NotConnectCommand)]
    [InlineData("OK 5\n", ConnectCommandError.NotConnectCommand)]
    public void Rejects_invalid_lines(string line, object expected)
    {
        var error = (ConnectCommandError)expected; // the parser is internal: xunit hands the enum over boxed
        ConnectParseResult result = ParseAll(line);
        Assert.Equal(ConnectParseStatus.Invalid, result.Status);
        Assert.Equal(error, result.Error);
        Assert.Equal(0u, result.Port);
        Assert.True(result.BytesConsumed <= line.Length);
    }

    [Fact]
    public void Rejects_garbage_at_the_first_wrong_byte_without_waiting_for_a_newline()
    {
        var parser = default(ConnectCommandParser);
        ConnectParseResult result = parser.Feed("GET /"u8);
        Assert.Equal(ConnectParseStatus.Invalid, result.Status);
        Assert.Equal(1, result.BytesConsumed);

        parser.Reset();
        result = parser.Feed("CONNEX"u8);
        Assert.Equal(ConnectParseStatus.Invalid, result.Status);
        Assert.Equal(6, result.BytesConsumed);
    }

    [Fact]
    public void Stops_right_after_the_newline_so_following_bytes_stay_stream_data()
    {
        var parser = default(ConnectCommandParser);
        byte[] chunk = "CONNECT 5\nhello\n\xff garbage"u8.ToArray();
        ConnectParseResult result = parser.Feed(chunk);
        Assert.Equal(ConnectParseStatus.Complete, result.Status);
        Assert.Equal(5u, result.Port);
        Assert.Equal(10, result.BytesConsumed);
        Assert.Equal("hello\n\xff garbage"u8.ToArray(), chunk[result.BytesConsumed..]);
    }

    [Fact]
    public void Handles_a_line_split_into_one_byte_feeds_with_data_after_it()
    {
        byte[] input = "connect 4294967295\r\nXYZ"u8.ToArray();
        var parser = default(ConnectCommandParser);
        int newline = Array.IndexOf(input, (byte)'\n');
        for (int i = 0; i < newline; i++)
        {
            ConnectParseResult partial = parser.Feed(input.AsSpan(i, 1));
            Assert.Equal(ConnectParseStatus.NeedMore, partial.Status);
            Assert.Equal(1, partial.BytesConsumed);
        }

        ConnectParseResult result = parser.Feed(input.AsSpan(newline, 1));
        Assert.Equal(new ConnectParseResult(ConnectParseStatus.Complete, uint.MaxValue, 1, ConnectCommandError.None), result);
        Assert.Equal(newline + 1, parser.BytesConsumed);

        // Once complete, nothing more is consumed: "XYZ" belongs to the stream.
        ConnectParseResult after = parser.Feed(input.AsSpan(newline + 1));
        Assert.Equal(ConnectParseStatus.Complete, after.Status);
        Assert.Equal(0, after.BytesConsumed);
        Assert.Equal(uint.MaxValue, after.Port);
    }

    [Fact]
    public void Every_two_way_split_of_a_line_with_trailing_data_gives_the_same_result()
    {
        byte[] input = "CONNECT   0001234 \r\nstream bytes"u8.ToArray();
        int lineLength = Array.IndexOf(input, (byte)'\n') + 1;
        for (int split = 0; split <= input.Length; split++)
        {
            var parser = default(ConnectCommandParser);
            ConnectParseResult first = parser.Feed(input.AsSpan(0, split));
            if (split < lineLength)
            {
                Assert.Equal(ConnectParseStatus.NeedMore, first.Status);
                Assert.Equal(split, first.BytesConsumed);
                ConnectParseResult second = parser.Feed(input.AsSpan(split));
                Assert.Equal(ConnectParseStatus.Complete, second.Status);
                Assert.Equal(lineLength - split, second.BytesConsumed);
                Assert.Equal(1234u, second.Port);
            }
            else
            {
                Assert.Equal(ConnectParseStatus.Complete, first.Status);
                Assert.Equal(lineLength, first.BytesConsumed);
                Assert.Equal(1234u, first.Port);
            }
        }
    }

    [Fact]
    public void A_32_byte_line_is_accepted_and_a_33_byte_one_is_too_long()
    {
        string exactly32 = "CONNECT " + new string('0', 22) + "9\n";
        Assert.Equal(32, exactly32.Length);
        ConnectParseResult ok = ParseAll(exactly32);
        Assert.Equal(ConnectParseStatus.Complete, ok.Status);
        Assert.Equal(9u, ok.Port);

        string crlf33 = "CONNECT " + new string('0', 22) + "9\r\n";
        ConnectParseResult tooLong = ParseAll(crlf33);
        Assert.Equal(ConnectParseStatus.Invalid, tooLong.Status);
        Assert.Equal(ConnectCommandError.TooLong, tooLong.Error);
        Assert.Equal(ConnectCommandParser.MaxLineLength, tooLong.BytesConsumed);
    }

    [Fact]
    public void An_overlong_line_fails_after_exactly_32_bytes_even_across_feeds()
    {
        var parser = default(ConnectCommandParser);
        Assert.Equal(ConnectParseStatus.NeedMore, parser.Feed("CONNECT"u8).Status);
        byte[] spaces = new byte[100];
        spaces.AsSpan().Fill((byte)' ');
        ConnectParseResult result = parser.Feed(spaces);
        Assert.Equal(ConnectParseStatus.Invalid, result.Status);
        Assert.Equal(ConnectCommandError.TooLong, result.Error);
        Assert.Equal(32 - 7, result.BytesConsumed);
        Assert.Equal(32, parser.BytesConsumed);
        Assert.Equal(0, parser.Feed(spaces).BytesConsumed);
    }

    [Fact]
    public void End_of_stream_before_the_newline_is_invalid_and_after_it_changes_nothing()
    {
        var parser = default(ConnectCommandParser);
        Assert.Equal(ConnectParseStatus.NeedMore, parser.Feed("CONNECT 12"u8).Status);
        ConnectParseResult eof = parser.EndOfStream();
        Assert.Equal(ConnectParseStatus.Invalid, eof.Status);
        Assert.Equal(ConnectCommandError.EndOfStream, eof.Error);

        var empty = default(ConnectCommandParser);
        Assert.Equal(ConnectCommandError.EndOfStream, empty.EndOfStream().Error);

        var done = default(ConnectCommandParser);
        done.Feed("CONNECT 12\n"u8);
        ConnectParseResult still = done.EndOfStream();
        Assert.Equal(ConnectParseStatus.Complete, still.Status);
        Assert.Equal(12u, still.Port);
    }

    [Fact]
    public void Invalid_is_sticky_until_reset()
    {
        var parser = default(ConnectCommandParser);
        Assert.Equal(ConnectParseStatus.Invalid, parser.Feed("X"u8).Status);
        ConnectParseResult again = parser.Feed("CONNECT 1\n"u8);
        Assert.Equal(ConnectParseStatus.Invalid, again.Status);
        Assert.Equal(0, again.BytesConsumed);
        Assert.Equal(ConnectCommandError.NotConnectCommand, parser.Error);

        parser.Reset();
        Assert.Equal(ConnectParseStatus.NeedMore, parser.Status);
        Assert.Equal(1u, parser.Feed("CONNECT 1\n"u8).Port);
    }

    [Fact]
    public void Empty_feeds_consume_nothing()
    {
        var parser = default(ConnectCommandParser);
        ConnectParseResult result = parser.Feed(ReadOnlySpan<byte>.Empty);
        Assert.Equal(ConnectParseStatus.NeedMore, result.Status);
        Assert.Equal(0, result.BytesConsumed);
    }

    [Fact]
    public void Random_valid_lines_in_random_chunks_parse_to_their_port()
    {
        var random = new Random(4242);
        for (int iteration = 0; iteration < 2000; iteration++)
        {
            uint port = (uint)random.NextInt64(0, (long)uint.MaxValue + 1);
            var line = new StringBuilder();
            foreach (char c in "connect")
            {
                line.Append(random.Next(2) == 0 ? char.ToUpperInvariant(c) : c);
            }

            line.Append(random.Next(2) == 0 ? ' ' : '\t');
            line.Append(' ', random.Next(3));
            line.Append('0', random.Next(3));
            line.Append(port);
            line.Append(' ', random.Next(2));
            line.Append(random.Next(2) == 0 ? "\n" : "\r\n");
            byte[] bytes = Encoding.ASCII.GetBytes(line.ToString() + "tail");
            int lineLength = bytes.Length - 4;
            Assert.True(lineLength <= 32);

            var parser = default(ConnectCommandParser);
            int offset = 0;
            ConnectParseResult result;
            do
            {
                int chunk = Math.Min(random.Next(1, 6), bytes.Length - offset);
                result = parser.Feed(bytes.AsSpan(offset, chunk));
                offset += result.BytesConsumed;
            }
            while (result.Status == ConnectParseStatus.NeedMore);

            Assert.Equal(ConnectParseStatus.Complete, result.Status);
            Assert.Equal(port, result.Port);
            Assert.Equal(lineLength, offset);
        }
    }

    [Fact]
    public void Random_garbage_never_completes_unless_it_is_a_valid_line_and_never_passes_32_bytes()
    {
        var random = new Random(7);
        byte[] alphabet = "CONNECTconnect 0123456789\r\n\t+-x\0"u8.ToArray();
        for (int iteration = 0; iteration < 5000; iteration++)
        {
            byte[] bytes = new byte[random.Next(0, 48)];
            for (int i = 0; i < bytes.Length; i++)
            {
                bytes[i] = random.Next(4) == 0 ? (byte)random.Next(256) : alphabet[random.Next(alphabet.Length)];
            }

            var parser = default(ConnectCommandParser);
            ConnectParseResult result = parser.Feed(bytes);
            Assert.True(parser.BytesConsumed <= ConnectCommandParser.MaxLineLength);
            Assert.Equal(parser.BytesConsumed, result.BytesConsumed);
            if (result.Status == ConnectParseStatus.Complete)
            {
                Assert.Equal((byte)'\n', bytes[result.BytesConsumed - 1]);
                Assert.Equal(-1, Array.IndexOf(bytes, (byte)'\n', 0, result.BytesConsumed - 1));
            }
            else if (result.Status == ConnectParseStatus.NeedMore)
            {
                Assert.Equal(bytes.Length, result.BytesConsumed);
            }
        }
    }

    [Fact]
    public void Feeding_does_not_allocate()
    {
        byte[] input = "CONNECT 123456\r\ndata"u8.ToArray();

        // The same loop twice: the first run lets the JIT tier up (on-stack replacement may allocate on this
        // thread), the second is measured.
        FeedByteByByte(input, 10_000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        FeedByteByByte(input, 10_000);

        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }

    private static void FeedByteByByte(byte[] input, int rounds)
    {
        for (int i = 0; i < rounds; i++)
        {
            var parser = default(ConnectCommandParser);
            for (int j = 0; j < input.Length && parser.Status == ConnectParseStatus.NeedMore; j++)
            {
                parser.Feed(input.AsSpan(j, 1));
            }

            parser.EndOfStream();
        }
    }
}
