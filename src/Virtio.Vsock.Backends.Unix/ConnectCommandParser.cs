namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Incremental, allocation-free parser of the host's hybrid-vsock handshake line
/// <c>CONNECT &lt;port&gt;\n</c> (Firecracker / vhost-device-vsock / Cloud Hypervisor compatible).
/// Owns only its small parse state (a mutable struct: keep it in one variable or field and never
/// copy it mid-line). It must never look at a byte past the <c>\n</c> that ends the line (those are
/// stream data), never accept more than <see cref="MaxLineLength"/> bytes, never allocate or throw.
/// </summary>
/// <remarks>
/// <para>Accepted grammar (ABNF; the whole line, <c>\n</c> included, is at most 32 bytes):</para>
/// <code>
/// line    = keyword 1*WSP port *WSP [CR] LF
/// keyword = "CONNECT"             ; ASCII case-insensitive: connect, Connect, cOnNeCt ...
/// WSP     = SP / HTAB             ; any number of spaces or tabs between and after the tokens
/// port    = 1*DIGIT               ; decimal, leading zeros allowed, value at most 4294967295
/// </code>
/// <para>Tolerance policy: like Firecracker's whitespace splitting, several spaces or tabs between
/// the tokens and trailing spaces or tabs are accepted, and so is <c>\r\n</c> (a single <c>\r</c>
/// directly before <c>\n</c>). Stricter than Firecracker: leading whitespace, a bare <c>\r</c>,
/// signs (<c>+5</c>, <c>-5</c>), extra tokens and any other byte are rejected, as soon as they
/// arrive (a hostile peer is not waited for). Port 4294967295 (VMADDR_PORT_ANY) parses; whether it
/// can be connected to is the engine's decision.</para>
/// <para>Usage: call <see cref="Feed"/> with each chunk received. On
/// <see cref="ConnectParseStatus.Complete"/>, the bytes of that chunk from
/// <see cref="ConnectParseResult.BytesConsumed"/> on are the first stream bytes. On end of stream
/// before completion call <see cref="EndOfStream"/>. Once complete or invalid the parser stays so
/// (further <see cref="Feed"/> calls consume nothing) until <see cref="Reset"/>.</para>
/// </remarks>
internal struct ConnectCommandParser
{
    /// <summary>The longest line accepted, the terminating <c>\n</c> included (Firecracker's limit).</summary>
    public const int MaxLineLength = 32;

    private const int KeywordLength = 7;

    private State _state;
    private int _length;
    private uint _port;
    private ConnectCommandError _error;

    private enum State : byte
    {
        Keyword = 0,
        FirstSeparator,
        BeforePort,
        Port,
        AfterPort,
        CarriageReturn,
        Complete,
        Invalid,
    }

    /// <summary>Bytes of the line consumed so far (at most <see cref="MaxLineLength"/>).</summary>
    public readonly int BytesConsumed => _length;

    /// <summary>The current status: still reading, complete, or invalid.</summary>
    public readonly ConnectParseStatus Status => _state switch
    {
        State.Complete => ConnectParseStatus.Complete,
        State.Invalid => ConnectParseStatus.Invalid,
        _ => ConnectParseStatus.NeedMore,
    };

    /// <summary>The parsed port once complete; 0 otherwise.</summary>
    public readonly uint Port => _state == State.Complete ? _port : 0;

    /// <summary>Why the line was rejected, once invalid.</summary>
    public readonly ConnectCommandError Error => _error;

    /// <summary>Forgets everything, ready for a new line.</summary>
    public void Reset() => this = default;

    /// <summary>
    /// Consumes bytes of the line from the start of <paramref name="data"/>, stopping right after the
    /// <c>\n</c>, at the first byte that makes the line invalid, or when
    /// <see cref="MaxLineLength"/> bytes have been consumed without a <c>\n</c>.
    /// </summary>
    /// <param name="data">The next bytes received from the host (may be empty).</param>
    /// <returns>
    /// <see cref="ConnectParseStatus.NeedMore"/> (all of <paramref name="data"/> consumed),
    /// <see cref="ConnectParseStatus.Complete"/> with the port and the bytes consumed up to and
    /// including <c>\n</c>, or <see cref="ConnectParseStatus.Invalid"/> with the reason.
    /// </returns>
    public ConnectParseResult Feed(ReadOnlySpan<byte> data)
    {
        if (_state is State.Complete or State.Invalid)
        {
            return Result(0);
        }

        for (int i = 0; i < data.Length; i++)
        {
            byte b = data[i];
            _length++;
            Step(b);
            if (_state is State.Complete or State.Invalid)
            {
                return Result(i + 1);
            }

            if (_length >= MaxLineLength)
            {
                Fail(ConnectCommandError.TooLong);
                return Result(i + 1);
            }
        }

        return Result(data.Length);
    }

    /// <summary>
    /// Tells the parser the peer closed. An unfinished line becomes invalid with
    /// <see cref="ConnectCommandError.EndOfStream"/>; a finished parser keeps its result.
    /// </summary>
    /// <returns>The final result (nothing is consumed).</returns>
    public ConnectParseResult EndOfStream()
    {
        if (_state is not (State.Complete or State.Invalid))
        {
            Fail(ConnectCommandError.EndOfStream);
        }

        return Result(0);
    }

    private readonly ConnectParseResult Result(int consumed) =>
        new(Status, Port, consumed, _error);

    private void Fail(ConnectCommandError error)
    {
        _state = State.Invalid;
        _error = error;
        _port = 0;
    }

    private void Step(byte b)
    {
        switch (_state)
        {
            case State.Keyword:
                // _length is already 1-based: the index of b in "connect" is _length - 1.
                if ((b | 0x20) != "connect"u8[_length - 1])
                {
                    Fail(ConnectCommandError.NotConnectCommand);
                }
                else if (_length == KeywordLength)
                {
                    _state = State.FirstSeparator;
                }

                break;

            case State.FirstSeparator:
                if (IsSpace(b))
                {
                    _state = State.BeforePort;
                }
                else if (b is (byte)'\n' or (byte)'\r')
                {
                    Fail(ConnectCommandError.MissingPort);
                }
                else
                {
                    Fail(ConnectCommandError.NotConnectCommand);
                }

                break;

            case State.BeforePort:
                if (IsDigit(b))
                {
                    _port = (uint)(b - '0');
                    _state = State.Port;
                }
                else if (b is (byte)'\n' or (byte)'\r')
                {
                    Fail(ConnectCommandError.MissingPort);
                }
                else if (!IsSpace(b))
                {
                    Fail(ConnectCommandError.InvalidPort);
                }

                break;

            case State.Port:
                if (IsDigit(b))
                {
                    ulong next = (_port * 10UL) + (uint)(b - '0');
                    if (next > uint.MaxValue)
                    {
                        Fail(ConnectCommandError.PortOverflow);
                    }
                    else
                    {
                        _port = (uint)next;
                    }
                }
                else
                {
                    AfterPortByte(b, ConnectCommandError.InvalidPort);
                }

                break;

            case State.AfterPort:
                AfterPortByte(b, ConnectCommandError.UnexpectedCharacter);
                break;

            case State.CarriageReturn:
                if (b == (byte)'\n')
                {
                    _state = State.Complete;
                }
                else
                {
                    Fail(ConnectCommandError.UnexpectedCharacter);
                }

                break;
        }
    }

    private void AfterPortByte(byte b, ConnectCommandError otherwise)
    {
        if (b == (byte)'\n')
        {
            _state = State.Complete;
        }
        else if (b == (byte)'\r')
        {
            _state = State.CarriageReturn;
        }
        else if (IsSpace(b))
        {
            _state = State.AfterPort;
        }
        else
        {
            Fail(otherwise);
        }
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t';

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;
}
