"""AGI wire protocol: command encoding and reply parsing.

Everything here is pure (no I/O) so that it can be tested against the captured
Asterisk 22 transcripts byte for byte. The rules come from ``res/res_agi.c``
(``parse_args`` at lines 4158-4219, the reply forms at 2529-3902) as recorded in
``shared/asterisk/PROTOCOL.md``.

Wire samples (``<<`` Asterisk to us, ``>>`` us to Asterisk)::

    >> b'GET DATA beep 3000 4\\n'
    << b'200 result=12 (timeout)\\n'
    >> b'RECORD FILE /rec/x wav "#" 5000 0 BEEP s=2\\n'
    << b'200 result=35 (dtmf) endpos=9612\\n'
    >> b'GET DATA\\n'
    << b'520-Invalid command syntax.  Proper usage follows:\\n'
    << b'Stream the given <replaceable>file</replaceable>, and receive DTMF data.\\n'
    << b'520 End of proper usage.\\n'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

#: Asterisk reads a command with fgets into AGI_BUF_LEN bytes: 8192 in 22.x but
#: 2048 in every earlier release; a longer line is executed truncated and the
#: rest runs as a second command (res_agi.c:4416-4434). 2000 is safe everywhere.
MAX_COMMAND_BYTES = 2000
#: parse_args keeps at most 127 words, the command words included, and drops
#: the rest silently (res_agi.c:4201-4204); a quoted 128th word even overruns
#: its argv array (4166-4176, 4216).
MAX_WORDS = 127

HANGUP_LINE = b"HANGUP\n"
USAGE_BLOCK_START = "520-"
USAGE_BLOCK_END = "520 End of proper usage."

#: Commands Asterisk still executes on a hung-up channel (res_agi.c:3911-3958).
DEAD_CHANNEL_COMMANDS = frozenset(
    {
        "ASYNCAGI BREAK",
        "DATABASE DEL",
        "DATABASE DELTREE",
        "DATABASE GET",
        "DATABASE PUT",
        "EXEC",
        "GET FULL VARIABLE",
        "GET VARIABLE",
        "NOOP",
        "SET VARIABLE",
        "VERBOSE",
    }
)


class AGIError(Exception):
    """Asterisk refused or failed a command; carries the raw reply."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class InvalidCommand(AGIError):
    """``510 Invalid or unknown command``."""


class DeadChannel(AGIError):
    """``511 Command Not Permitted on a dead channel or intercept routine``."""


class UsageError(AGIError):
    """``520`` (single line or a ``520-`` block): the command's syntax was wrong."""

    def __init__(self, message: str, raw: str = "", usage: str = "") -> None:
        super().__init__(message, raw)
        self.usage = usage


class ApplicationError(AGIError):
    """A ``200`` reply whose result says the command itself failed (e.g. EXEC -2)."""


class UnexpectedReply(AGIError):
    """A reply code this implementation does not know (503, garbage, ...)."""


class CommandRejected(ValueError):
    """We refused to send a command: it could not be encoded safely."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful (``200``) reply.

    ``result`` is the raw token after ``result=`` (it may be empty: GET DATA
    sends ``200 result= (timeout)`` when nothing was keyed). ``data`` is the text
    in parentheses, if any (``timeout``, ``dtmf``, a variable's value), and
    ``fields`` holds trailing ``key=value`` pairs such as ``endpos``.
    """

    result: str
    data: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    raw: str = ""

    @property
    def number(self) -> int | None:
        """The result as an integer, or None when it is not one (GET DATA digits are)."""
        return int(self.result) if _INTEGER.fullmatch(self.result) else None

    @property
    def endpos(self) -> int | None:
        value = self.fields.get("endpos")
        return int(value) if value is not None and _INTEGER.fullmatch(value) else None


_INTEGER = re.compile(r"-?[0-9]{1,18}")
_RESULT = re.compile(r"^200 result=(?P<result>\S*)(?P<rest>.*)$", re.DOTALL)
_FIELD = re.compile(r"(\w+)=(\S*)")


def decode_line(raw: bytes) -> str:
    """Decode one line from Asterisk. Never raises: bytes that are not UTF-8
    (a Latin-1 caller name, say) become U+FFFD, so the text is safe to store,
    log and send back."""
    return raw.decode("utf-8", errors="replace").rstrip("\n")


def parse_success(line: str) -> Reply:
    """Parse a ``200 result=...`` line.

    >>> parse_success("200 result=-1 (hangup) endpos=11212")
    Reply(result='-1', data='hangup', fields={'endpos': '11212'}, raw='200 result=-1 (hangup) endpos=11212')
    >>> parse_success("200 result= (timeout)").data
    'timeout'
    """
    match = _RESULT.match(line)
    if match is None:
        raise UnexpectedReply(f"unparseable reply: {line!r}", line)
    rest = match.group("rest").strip()
    data: str | None = None
    if rest.startswith("("):
        # A variable's value is not escaped and may itself hold ')': the data
        # runs to the last ')' on the line (GET VARIABLE has no trailing fields).
        close = rest.rfind(")")
        if close == -1:
            data, rest = rest[1:], ""
        else:
            data, rest = rest[1:close], rest[close + 1 :]
    fields = dict(_FIELD.findall(rest))
    return Reply(result=match.group("result"), data=data, fields=fields, raw=line)


def classify_status(line: str) -> str:
    """The reply's kind from its first line: '200', '100', '510', '511',
    '520-' (block follows), '520', or 'other'."""
    if line.startswith(USAGE_BLOCK_START):
        return "520-"
    code = line[:3]
    if code in {"200", "100", "510", "511", "520"} and (len(line) == 3 or line[3] == " "):
        return code
    return "other"


def error_for(status: str, first_line: str, usage_lines: Iterable[str] = ()) -> AGIError:
    """Build the typed exception for an error reply."""
    if status == "510":
        return InvalidCommand("invalid or unknown command", first_line)
    if status == "511":
        return DeadChannel("command not permitted on a dead channel", first_line)
    if status in {"520", "520-"}:
        usage = "\n".join(usage_lines)
        return UsageError("invalid command syntax", first_line, usage)
    return UnexpectedReply(f"unexpected reply: {first_line!r}", first_line)


def ends_usage_block(line: str) -> bool:
    """True for the last line of a ``520-`` block. Before Asterisk 13.17 the
    terminator was glued to the usage text, so match the line's end."""
    return line.endswith(USAGE_BLOCK_END)


def quote(argument: str | int) -> str:
    """Quote one argument the way ``parse_args`` reads it back.

    ``"`` toggles quoting and ``\\`` escapes the next character, inside and
    outside quotes; nothing can escape a newline, so CR, LF and NUL are refused.

    >>> quote('say "hi" C:\\\\tmp')
    '"say \\\\"hi\\\\" C:\\\\\\\\tmp"'
    """
    text = str(argument)
    if any(ch in text for ch in "\r\n\0"):
        raise CommandRejected("AGI arguments cannot contain CR, LF or NUL")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_command(verb: str, *arguments: str | int, raw: Iterable[str] = ()) -> bytes:
    """Encode a command line. ``verb`` is our own constant (``"STREAM FILE"``);
    every argument is quoted; ``raw`` tokens (numbers, ``BEEP``, ``s=2``) that
    we build ourselves are appended unquoted after being checked.

    >>> encode_command("GET DATA", "/r/p/menu", raw=["5000", "1"])
    b'GET DATA "/r/p/menu" 5000 1\\n'
    """
    raw_tokens = list(raw)
    for token in raw_tokens:
        if not token or any(ch in token for ch in ' \t"\\\r\n\0'):
            raise CommandRejected(f"unsafe raw token {token!r}")
    if len(verb.split()) + len(arguments) + len(raw_tokens) > MAX_WORDS:
        raise CommandRejected("too many AGI arguments")
    parts = [verb, *(quote(a) for a in arguments), *raw_tokens]
    line = (" ".join(parts) + "\n").encode("utf-8", errors="replace")
    if len(line) > MAX_COMMAND_BYTES:
        raise CommandRejected(f"AGI command of {len(line)} bytes exceeds {MAX_COMMAND_BYTES}")
    return line


def command_verb(line: bytes) -> str:
    """The command words of an encoded line, upper-cased (for the dead-channel check)."""
    words = line.decode("utf-8", errors="replace").split()
    for size in (3, 2, 1):
        candidate = " ".join(words[:size]).upper()
        if candidate in DEAD_CHANNEL_COMMANDS:
            return candidate
    return " ".join(words[:2]).upper()


def digit_from_code(code: int | None) -> str | None:
    """WAIT FOR DIGIT, STREAM FILE and RECORD FILE report a key as its ASCII code."""
    if code is None or not 0 < code < 128:
        return None
    return chr(code)
