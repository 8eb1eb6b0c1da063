"""One FastAGI connection: the environment block and strict request/reply.

Asterisk's side of the conversation is one reply per command, except for the
unsolicited ``HANGUP`` line, which may arrive before any reply (or while we are
idle) and must not be taken for the reply itself (panoramisk bug F2)::

    >> b'STREAM FILE demo-congrats ""\\n'
    << b'200 result=-1 endpos=20000\\n'
    << b'HANGUP\\n'                                  (about 40 ms later)
    >> b'ANSWER\\n'
    << b'511 Command Not Permitted on a dead channel or intercept routine\\n'
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from ivr.agi import protocol
from ivr.agi.protocol import Reply

log = logging.getLogger("ivr.agi")

#: The environment is about 24 lines plus one per dialplan argument (at most 127).
MAX_ENV_LINES = 200
MAX_ENV_BYTES = 16 * 1024
#: Longest reply line we accept: GET VARIABLE truncates at 1023 bytes, but
#: GET FULL VARIABLE and usage text do not.
MAX_REPLY_LINE = 64 * 1024


class CallerHungUp(Exception):
    """The caller's channel is gone. Raised wherever a flow waits on Asterisk."""


class ConnectionLost(CallerHungUp):
    """Asterisk closed the socket, or it broke, or it sent something we cannot frame."""


class CommandTimeout(Exception):
    """Asterisk did not answer a command in time; the session is unusable."""


class BadEnvironment(Exception):
    """The peer did not send a well-formed AGI environment block."""


@dataclass(frozen=True)
class Environment:
    """The ``agi_*`` block Asterisk sends first, with the script path parsed.

    ``agi_network_script: main?lang=id`` gives ``script='main'`` and
    ``options={'lang': 'id'}``; ``agi_arg_1..N`` become ``args``.
    """

    variables: dict[str, str]
    script: str
    options: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()

    def get(self, name: str, default: str = "") -> str:
        return self.variables.get(f"agi_{name}", default)

    @property
    def uniqueid(self) -> str:
        return self.get("uniqueid")

    @property
    def channel(self) -> str:
        return self.get("channel")

    @classmethod
    def from_lines(cls, lines: list[str]) -> Environment:
        variables: dict[str, str] = {}
        for line in lines:
            key, sep, value = line.partition(":")
            if not sep or not key.startswith("agi_"):
                continue
            # ``agi_accountcode: `` is sent with the space and an empty value.
            variables[key] = value[1:] if value.startswith(" ") else value
        path, _, query = variables.get("agi_network_script", "").partition("?")
        options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        args = []
        index = 1
        while f"agi_arg_{index}" in variables:
            args.append(variables[f"agi_arg_{index}"])
            index += 1
        return cls(variables=variables, script=path.strip("/"), options=options, args=tuple(args))


async def read_environment(reader: asyncio.StreamReader, timeout: float) -> Environment:
    """Read the environment block, up to and including the first empty line.

    Whatever follows the blank line (an early ``HANGUP``) stays in the stream.
    EOF, an over-long block or a slow peer raise ``BadEnvironment``; nothing here
    can spin on a closed socket (panoramisk bug F1). The block arrives in one or
    two segments, so it is taken whole (two reads) rather than line by line
    (about 25 reads, each a round through the event loop).
    """
    async with asyncio.timeout(timeout):
        try:
            first = await reader.readexactly(1)
            if first == b"\n":  # an empty block
                return Environment.from_lines([])
            block = first + await reader.readuntil(b"\n\n")
        except asyncio.IncompleteReadError as exc:
            raise BadEnvironment("connection closed before the environment ended") from exc
        except (ValueError, asyncio.LimitOverrunError) as exc:
            raise BadEnvironment("environment line too long") from exc
    # Decoding the block at once gives the same text as line by line: a
    # newline is never part of a multi-byte UTF-8 sequence.
    lines = protocol.decode_line(block[:-2]).split("\n")
    if len(lines) > MAX_ENV_LINES or len(block) - 1 > MAX_ENV_BYTES:
        raise BadEnvironment("environment block too large")
    return Environment.from_lines(lines)


class Session:
    """Sends commands and reads their replies, one at a time.

    ``hung_up`` turns true when Asterisk announces the hangup; the pending reply
    is still read. A short history of raw lines is kept for debugging desyncs.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        environment: Environment,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.environment = environment
        self.hung_up = False
        self.history: deque[bytes] = deque(maxlen=40)
        self._lock = asyncio.Lock()
        self._broken = False
        #: Told our think time before each command: seconds since Asterisk's last line (metrics).
        self.on_think: Callable[[float], None] | None = None
        self._heard_at = time.perf_counter()

    @property
    def usable(self) -> bool:
        return not self._broken

    async def command(self, line: bytes, timeout: float | None, *, secret: bool = False) -> Reply:
        """Send one encoded command and return its ``200`` reply.

        Raises the typed ``AGIError`` for 510/511/520, ``ConnectionLost`` on
        EOF and ``CommandTimeout`` when no reply came in time (the session is
        then marked broken: a late reply would desynchronise every later one).
        """
        if self._broken:
            raise ConnectionLost("session already broken")
        async with self._lock:
            self.history.append(b">> " + line)
            log.debug("agi >> %r", line)
            if self.on_think is not None:
                self.on_think(time.perf_counter() - self._heard_at)
            try:
                self.writer.write(line)
                await self.writer.drain()
                async with asyncio.timeout(timeout):
                    return await self._read_reply(secret)
            except TimeoutError as exc:
                self._broken = True
                raise CommandTimeout(f"no reply to {protocol.command_verb(line)} in {timeout}s") from exc
            except (ConnectionError, OSError) as exc:
                self._broken = True
                raise ConnectionLost(str(exc)) from exc
            except (ConnectionLost, asyncio.CancelledError):
                # A cancelled command's reply may still arrive and would be
                # taken for the next command's: the session cannot be reused.
                self._broken = True
                raise

    async def wait_for_hangup_line(self, timeout: float) -> bool:
        """After a ``-1`` result, Asterisk sends ``HANGUP`` about 40 ms later if
        the caller hung up; a missing file gives the same ``-1`` and no line.
        Returns whether the line (or EOF) came."""
        if self.hung_up:
            return True
        async with self._lock:
            try:
                async with asyncio.timeout(timeout):
                    raw = await self._readline()
            except TimeoutError:
                return False
            except ConnectionLost:
                # AGIEXITONHANGUP with AGISIGHUP=no: Asterisk just closes.
                self._broken = self.hung_up = True
                return True
            if raw == protocol.HANGUP_LINE:
                self.hung_up = True
                return True
            # Anything else here is unsolicited and cannot be matched to a command.
            self._broken = True
            raise ConnectionLost(f"unsolicited line {raw!r}")

    async def _readline(self, secret: bool = False) -> bytes:
        try:
            raw = await self.reader.readline()
        except (ValueError, asyncio.LimitOverrunError) as exc:
            raise ConnectionLost("reply line too long") from exc
        except (ConnectionError, OSError) as exc:
            raise ConnectionLost(str(exc)) from exc
        if not raw.endswith(b"\n"):
            # b'' is EOF; a partial line means EOF in the middle of a reply.
            raise ConnectionLost("Asterisk closed the connection")
        self._heard_at = time.perf_counter()
        shown = b"<reply withheld: caller's secret digits>\n" if secret else raw
        self.history.append(b"<< " + shown)
        log.debug("agi << %r", shown)
        return raw

    async def _read_reply(self, secret: bool = False) -> Reply:
        while True:
            raw = await self._readline(secret)
            if raw == protocol.HANGUP_LINE:
                self.hung_up = True
                continue
            line = protocol.decode_line(raw)
            status = protocol.classify_status(line)
            if status == "200":
                return protocol.parse_success(line)
            if status == "100":  # provisional (GOSUB "Trying..."): the real reply follows
                continue
            if status == "520-":
                usage: list[str] = []
                while True:
                    text = protocol.decode_line(await self._readline())
                    if protocol.ends_usage_block(text):
                        usage.append(text[: -len(protocol.USAGE_BLOCK_END)])
                        break
                    usage.append(text)
                raise protocol.error_for(status, line, [u for u in usage if u])
            raise protocol.error_for(status, line)

    async def finish(self, linger: float = 1.0) -> None:
        """End the session the way Asterisk expects: half-close our side, let
        Asterisk send its final ``HANGUP`` and close, then close the socket."""
        writer = self.writer
        try:
            if not writer.is_closing() and writer.can_write_eof():
                writer.write_eof()
                async with asyncio.timeout(linger):
                    while await self.reader.read(4096):
                        pass
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
