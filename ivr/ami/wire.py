r"""AMI wire format: framing, parsing and encoding (pure, no I/O).

Everything here works on bytes so that it can be replayed against the captured
Asterisk 22.10.1 transcripts (``shared/asterisk/transcripts/ami-*.txt``) byte for
byte. The rules are ``main/manager.c`` as summarised in ``PROTOCOL.md`` A7.

Wire samples (``<<`` Asterisk to us, ``>>`` us to Asterisk)::

    << b'Asterisk Call Manager/11.0.0\r\n'                    (banner: one line, no blank line)
    >> b'Action: Login\r\nActionID: ivr-1a2b3c-1\r\nUsername: ivr\r\nSecret: ...\r\nEvents: call,system\r\n\r\n'
    << b'Response: Success\r\nActionID: ivr-1a2b3c-1\r\nMessage: Authentication accepted\r\n\r\n'
    << b'Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 277\r\nLastReload: 277\r\nStatus: Fully Booted\r\n\r\n'
    << b'Response: Success\r\nActionID: cmd-1\r\nMessage: Command output follows\r\n'
       b'Output: 2 active channels\r\nOutput: 2 active calls\r\n\r\n'

Why this module exists instead of panoramisk's parser (PROTOCOL.md M1, M14):
panoramisk 1.4 decodes every TCP chunk on its own with ``errors='ignore'``, so a
UTF-8 character split across two reads silently disappears. Here the stream is
framed on the *bytes* ``b"\r\n\r\n"`` and only whole messages are decoded, with
``errors="replace"`` (a Latin-1 caller name becomes U+FFFD instead of vanishing
or raising). A repeated header (``Output:``, ``ChanVariable:``) is always one
string, its values joined by ``"\n"``, never sometimes a list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BANNER_PREFIX = b"Asterisk Call Manager/"
LINE_END = b"\r\n"
MESSAGE_END = b"\r\n\r\n"

#: manager.c reads an input line into ``inbuf[1025]``; a line that does not fit
#: (terminator included) gets ``Message: Failed to parse message: line too long``
#: (PROTOCOL.md A7, manager.c:289, 7250-7255). We refuse such lines before sending.
MAX_LINE_BYTES = 1024
#: manager.c accepts at most 128 headers per action (``Too many lines in message``, 7388).
MAX_HEADERS = 128
#: Upper bound for one message from Asterisk. ``Command`` output can be large
#: (``core show channels`` with many calls), but an endless message without the
#: blank line means a broken peer: we drop the connection instead of growing memory.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: The banner is one short line; anything longer without a CRLF is not Asterisk.
MAX_BANNER_BYTES = 1024

_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_FORBIDDEN = ("\r", "\n", "\0")


class AMIProtocolError(Exception):
    """The peer sent something that is not AMI (bad banner, runaway message)."""


class AMIEncodingError(ValueError):
    """An action was refused before sending: CR/LF/NUL in a header (injection,
    PROTOCOL.md M10), a line over 1024 bytes, a bad key or too many headers."""


@dataclass(frozen=True, slots=True)
class AMIMessage:
    """One message from Asterisk: a response or an event.

    ``raw`` holds the exact bytes, terminating blank line included, so a
    transcript replay can check that framing kept every message whole.
    ``headers`` keeps order and repeats, exactly as on the wire.
    """

    raw: bytes
    headers: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str | None = None) -> str | None:
        """First value of ``key`` (case-insensitive, as manager.c's
        ``astman_get_header`` matches names)."""
        wanted = key.lower()
        for name, value in self.headers:
            if name.lower() == wanted:
                return value
        return default

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    @property
    def is_event(self) -> bool:
        # ``Event: OriginateResponse`` also carries a ``Response:`` header, so
        # the presence of ``Event`` decides (manager.c:4477-4511).
        return self.event is not None

    @property
    def is_response(self) -> bool:
        return not self.is_event and self.response is not None

    def as_dict(self) -> dict[str, str]:
        r"""Headers as a plain dict. A repeated header becomes one string with its
        values joined by ``"\n"`` (``Output:`` lines of ``Command``)::

            Output: 2 active channels      ->  {"Output": "2 active channels\n2 active calls"}
            Output: 2 active calls
        """
        result: dict[str, str] = {}
        canonical: dict[str, str] = {}
        for name, value in self.headers:
            if not name:
                continue
            key = canonical.setdefault(name.lower(), name)
            if key in result:
                result[key] = result[key] + "\n" + value
            else:
                result[key] = value
        return result


def parse_message(raw: bytes) -> AMIMessage:
    r"""Parse one framed message (``raw`` ends with ``b"\r\n\r\n"``).

    The whole message is decoded at once with ``errors="replace"``: a name sent
    in Latin-1, ``b'CallerIDName: Caf\xe9\r\n'``, becomes ``"Caf\ufffd"``.
    Values keep their trailing spaces (CLI tables in ``Output:``); only the one
    space after the colon is removed (manager.c writes ``"%s: %s\r\n"``).
    A line without a colon is kept under the empty key so nothing is lost.
    """
    text = raw.decode("utf-8", errors="replace")
    headers: list[tuple[str, str]] = []
    for line in text.split("\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            headers.append(("", line))
            continue
        headers.append((name.strip(), value[1:] if value.startswith(" ") else value))
    return AMIMessage(raw=raw, headers=tuple(headers))


class AMIFramer:
    r"""Incremental framer: feed it TCP chunks, get whole messages back.

    ``feed(b'Asterisk Call Manager/11.0.0\r\nResponse: Succ')`` returns ``[]``
    and sets ``banner``; ``feed(b'ess\r\nPing: Pong\r\n\r\n')`` returns the
    Ping response. Raises :class:`AMIProtocolError` for a stream that is not
    AMI; the caller must then drop the connection.
    """

    def __init__(self, *, expect_banner: bool = True, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.banner: str | None = None if expect_banner else ""
        self._buffer = bytearray()
        self._scan_from = 0
        self._max = max_message_bytes

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[AMIMessage]:
        self._buffer += data
        messages: list[AMIMessage] = []
        if self.banner is None and not self._take_banner():
            return messages
        buffer = self._buffer
        while True:
            end = buffer.find(MESSAGE_END, self._scan_from)
            if end < 0:
                break
            raw = bytes(buffer[: end + len(MESSAGE_END)])
            del buffer[: end + len(MESSAGE_END)]
            self._scan_from = 0
            message = parse_message(raw)
            if message.headers:  # a stray blank line is not a message
                messages.append(message)
        if len(buffer) > self._max:
            raise AMIProtocolError(f"message larger than {self._max} bytes without a blank line")
        # The terminator may straddle two chunks: rescan the last 3 bytes only.
        self._scan_from = max(0, len(buffer) - (len(MESSAGE_END) - 1))
        return messages

    def _take_banner(self) -> bool:
        end = self._buffer.find(LINE_END)
        if end < 0:
            if len(self._buffer) > MAX_BANNER_BYTES or not BANNER_PREFIX.startswith(
                bytes(self._buffer[: len(BANNER_PREFIX)])
            ):
                raise AMIProtocolError(f"not an AMI banner: {bytes(self._buffer[:80])!r}")
            return False
        line = bytes(self._buffer[:end])
        if not line.startswith(BANNER_PREFIX):
            raise AMIProtocolError(f"not an AMI banner: {line[:80]!r}")
        del self._buffer[: end + len(LINE_END)]
        self.banner = line.decode("utf-8", errors="replace")
        return True


def check_header(name: str, value: str) -> bytes:
    r"""Encode one ``Name: value`` line or refuse it (PROTOCOL.md M10).

    CR, LF or NUL in a value would let the value start a new header or a whole
    second action, e.g. ``Value: x\r\nAction: Command\r\nCommand: core stop now``.
    """
    if not _KEY_RE.fullmatch(name):
        raise AMIEncodingError(f"invalid AMI header name {name!r}")
    for bad in _FORBIDDEN:
        if bad in value:
            raise AMIEncodingError(f"AMI header {name!r} contains {bad!r}; refused (header injection)")
    line = f"{name}: {value}".encode() + LINE_END
    if len(line) > MAX_LINE_BYTES:
        raise AMIEncodingError(
            f"AMI header {name!r} is {len(line)} bytes; Asterisk accepts at most {MAX_LINE_BYTES} per line"
        )
    return line


def encode_headers(headers: Iterable[tuple[str, str]]) -> bytes:
    r"""Encode an ordered list of headers (repeats allowed, ``Variable:``) as one
    action, ended by the blank line::

        [("Action", "Ping"), ("ActionID", "ping-1")]  ->  b'Action: Ping\r\nActionID: ping-1\r\n\r\n'
    """
    lines = [check_header(name, value) for name, value in headers]
    if not lines:
        raise AMIEncodingError("empty action")
    if len(lines) > MAX_HEADERS:
        raise AMIEncodingError(f"{len(lines)} headers; Asterisk accepts at most {MAX_HEADERS}")
    return b"".join(lines) + LINE_END


def encode_action(
    name: str,
    action_id: str,
    fields: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> bytes:
    """``Action`` and ``ActionID`` first, then ``fields`` in order.

    ``Action``/``ActionID`` inside ``fields`` are refused: the adapter owns the
    correlation id (PROTOCOL.md M3/M4)."""
    pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    for key, _ in pairs:
        if key.lower() in ("action", "actionid"):
            raise AMIEncodingError(f"{key!r} is set by the adapter, not by the caller")
    return encode_headers([("Action", name), ("ActionID", action_id), *pairs])


MASKED_HEADERS = frozenset({"secret", "key"})


def describe(headers: Iterable[tuple[str, str]]) -> str:
    """A one-line form of an action for debug logs, with ``Secret``/``Key`` masked."""
    return ", ".join(f"{k}={'***' if k.lower() in MASKED_HEADERS else v!r}" for k, v in headers)
