r"""A fake Asterisk Manager (AMI) server for tests, grown from the captured transcripts.

It listens on 127.0.0.1 (ephemeral port) and speaks the framing of Asterisk
22.10.1 byte for byte, with the header orders and values copied from
``shared/asterisk/transcripts/ami-*.txt``::

    << b'Asterisk Call Manager/11.0.0\r\n'                         banner, no blank line after it
    >> b'Action: Login\r\nUsername: ivr\r\nSecret: wrong\r\nActionID: bad-1\r\n\r\n'
    << b'Response: Error\r\nActionID: bad-1\r\nMessage: Authentication failed\r\n\r\n'   after 1 s, then EOF
    >> b'Action: Ping\r\nActionID: pre-1\r\n\r\n'                  before Login
    << b'Response: Error\r\nActionID: pre-1\r\nMessage: Permission denied\r\n\r\n'

Scriptable from the test: originate outcomes per channel (success with a
Uniqueid, or ``Response: Failure`` with Reason 0/3/5/8 and ``Uniqueid: <unknown>``),
actions that never get a reply or get it late, injected events (filtered by the
session's ``Events:`` mask like manager.c does), ``Shutdown`` then EOF, a
connection dropped mid-message, a silent (half-open) peer, a UTF-8 character
split across two TCP writes, and refused connections.

Every wait in here has a timeout; tests wait on :meth:`FakeAMI.wait_until`,
never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
MAX_LINE = 1024  # manager.c inbuf[1025]

Fields = Iterable[tuple[str, str]] | Mapping[str, str]

# Event bodies copied from ami-originate.txt / ami-restart.txt (order and values).
EVENT_SAMPLES: dict[str, list[tuple[str, str]]] = {
    "Newchannel": [
        ("Channel", "Local/ami_call@ivr-in-0000002c;1"),
        ("ChannelState", "0"),
        ("ChannelStateDesc", "Down"),
        ("CallerIDNum", "<unknown>"),
        ("CallerIDName", "<unknown>"),
        ("ConnectedLineNum", "<unknown>"),
        ("ConnectedLineName", "<unknown>"),
        ("Language", "en"),
        ("AccountCode", ""),
        ("Context", "ivr-in"),
        ("Exten", "ami_call"),
        ("Priority", "1"),
        ("Uniqueid", "1796312906.88"),
        ("Linkedid", "1796312906.88"),
    ],
    "Newstate": [
        ("Channel", "Local/ami_call@ivr-in-0000002c;2"),
        ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "081298765432"),
        ("CallerIDName", "Siti Aminah"),
        ("ConnectedLineNum", "081298765432"),
        ("ConnectedLineName", "Siti Aminah"),
        ("Language", "en"),
        ("AccountCode", ""),
        ("Context", "ivr-in"),
        ("Exten", "ami_call"),
        ("Priority", "3"),
        ("Uniqueid", "1796312906.89"),
        ("Linkedid", "1796312906.88"),
    ],
    "DialBegin": [
        ("Channel", "Local/ami_call@ivr-in-0000002c;2"),
        ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "081298765432"),
        ("CallerIDName", "Siti Aminah"),
        ("ConnectedLineNum", "081298765432"),
        ("ConnectedLineName", "Siti Aminah"),
        ("Language", "en"),
        ("AccountCode", ""),
        ("Context", "ivr-in"),
        ("Exten", "ami_call"),
        ("Priority", "4"),
        ("Uniqueid", "1796312906.89"),
        ("Linkedid", "1796312906.88"),
        ("DestChannel", "Local/100@officer-0000002d;1"),
        ("DestChannelState", "0"),
        ("DestChannelStateDesc", "Down"),
        ("DestCallerIDNum", "ami_call"),
        ("DestCallerIDName", "Siti Aminah"),
        ("DestConnectedLineNum", "081298765432"),
        ("DestConnectedLineName", "Siti Aminah"),
        ("DestLanguage", "en"),
        ("DestAccountCode", ""),
        ("DestContext", "officer"),
        ("DestExten", "ami_call"),
        ("DestPriority", "1"),
        ("DestUniqueid", "1796312910.90"),
        ("DestLinkedid", "1796312906.88"),
        ("DialString", "100@officer"),
    ],
    "DialEnd": [
        ("Channel", "Local/ami_call@ivr-in-0000002c;2"),
        ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "081298765432"),
        ("CallerIDName", "Siti Aminah"),
        ("ConnectedLineNum", "081298765432"),
        ("ConnectedLineName", "Siti Aminah"),
        ("Language", "en"),
        ("AccountCode", ""),
        ("Context", "ivr-in"),
        ("Exten", "ami_call"),
        ("Priority", "4"),
        ("Uniqueid", "1796312906.89"),
        ("Linkedid", "1796312906.88"),
        ("DestChannel", "Local/100@officer-0000002d;1"),
        ("DestChannelState", "6"),
        ("DestChannelStateDesc", "Up"),
        ("DestCallerIDNum", "ami_call"),
        ("DestCallerIDName", "Siti Aminah"),
        ("DestConnectedLineNum", "081298765432"),
        ("DestConnectedLineName", "Siti Aminah"),
        ("DestLanguage", "en"),
        ("DestAccountCode", ""),
        ("DestContext", "officer"),
        ("DestExten", ""),
        ("DestPriority", "1"),
        ("DestUniqueid", "1796312910.90"),
        ("DestLinkedid", "1796312906.88"),
        ("DialStatus", "ANSWER"),
    ],
    "BridgeEnter": [
        ("BridgeUniqueid", "d504006a-e7c6-437c-828f-8f1e0a6df397"),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", "<unknown>"),
        ("BridgeName", "<unknown>"),
        ("BridgeNumChannels", "1"),
        ("BridgeVideoSourceMode", "none"),
        ("Channel", "Local/100@officer-0000002d;1"),
        ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "ami_call"),
        ("CallerIDName", "Siti Aminah"),
        ("ConnectedLineNum", "081298765432"),
        ("ConnectedLineName", "Siti Aminah"),
        ("Language", "en"),
        ("AccountCode", ""),
        ("Context", "officer"),
        ("Exten", ""),
        ("Priority", "1"),
        ("Uniqueid", "1796312910.90"),
        ("Linkedid", "1796312906.88"),
    ],
    "BridgeLeave": [
        ("BridgeUniqueid", "d504006a-e7c6-437c-828f-8f1e0a6df397"),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", "<unknown>"),
        ("BridgeName", "<unknown>"),
        ("BridgeNumChannels", "1"),
        ("BridgeVideoSourceMode", "none"),
        ("Channel", "Local/100@officer-0000002d;1"),
        ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "ami_call"),
        ("CallerIDName", "Siti Aminah"),
        ("ConnectedLineNum", "081298765432"),
        ("ConnectedLineName", "Siti Aminah"),
        ("Language", "en"),
        ("AccountCode", ""),
        ("Context", "officer"),
        ("Exten", ""),
        ("Priority", "1"),
        ("Uniqueid", "1796312910.90"),
        ("Linkedid", "1796312906.88"),
    ],
    "Hangup": [
        ("Channel", "Local/100@officer-0000002d;2"),
        ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "081298765432"),
        ("CallerIDName", "Siti Aminah"),
        ("ConnectedLineNum", "ami_call"),
        ("ConnectedLineName", "Siti Aminah"),
        ("Language", "en"),
        ("AccountCode", ""),
        ("Context", "officer"),
        ("Exten", "100"),
        ("Priority", "3"),
        ("Uniqueid", "1796312910.91"),
        ("Linkedid", "1796312906.88"),
        ("Cause", "16"),
        ("Cause-txt", "Normal Clearing"),
    ],
}

#: The class an event is sent under (``Privilege:``), as seen in the transcripts.
EVENT_CLASS = {"FullyBooted": "system", "Shutdown": "system", "SuccessfulAuth": "security", "Reload": "system"}

# The CoreShowChannel rows of ami-actions.txt (csc-1).
CORE_SHOW_CHANNEL_SAMPLE: list[tuple[str, str]] = [
    ("Channel", "Local/ami_long@ivr-in-0000002e;1"),
    ("ChannelState", "6"),
    ("ChannelStateDesc", "Up"),
    ("CallerIDNum", "0811111111"),
    ("CallerIDName", "Test Caller"),
    ("ConnectedLineNum", "0811111111"),
    ("ConnectedLineName", "Test Caller"),
    ("Language", "en"),
    ("AccountCode", ""),
    ("Context", "caller-sim"),
    ("Exten", "ami_long"),
    ("Priority", "1"),
    ("Uniqueid", "1796312918.92"),
    ("Linkedid", "1796312918.92"),
    ("Application", "Wait"),
    ("ApplicationData", "120"),
    ("Duration", "00:00:01"),
    ("BridgeId", ""),
]


def event_sample(name: str, **overrides: str) -> list[tuple[str, str]]:
    """A transcript event body with some fields replaced: ``event_sample("Hangup", Uniqueid="1.2")``."""
    fields = [(k, overrides.pop(k, v)) for k, v in EVENT_SAMPLES[name]]
    fields.extend(overrides.items())
    return fields


def encode(headers: Iterable[tuple[str, str]]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in headers) + b"\r\n"


def _pairs(fields: Fields) -> list[tuple[str, str]]:
    return list(fields.items()) if isinstance(fields, Mapping) else list(fields)


def _true(value: str) -> bool:
    # ast_true(): yes, true, y, t, 1, on (case-insensitive).
    return value.strip().lower() in {"yes", "true", "y", "t", "1", "on"}


@dataclass
class OriginateOutcome:
    """What the fake PBX does with an async Originate to one channel.

    Reasons as in ami-originate-fail.txt: 4 answered, 0 no such context,
    3 no answer, 5 busy, 8 congestion.
    """

    response: str = "Success"
    reason: int = 4
    delay: float = 0.0
    uniqueid: str | None = None
    #: No OriginateResponse at all (the PBX died mid-call, say).
    never: bool = False


class FakeConnection:
    """One client connection, with what it sent recorded."""

    def __init__(self, server: FakeAMI, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.actions: list[dict[str, str]] = []
        self.raw_actions: list[bytes] = []
        #: Every write to the client, in order.
        self.sent: list[bytes] = []
        self.logged_in = False
        self.events_mask: set[str] | None = set()
        self.silent = False
        self.closed = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- writing ------------------------------------------------------------------
    async def write(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        async with self._write_lock:
            self.writer.write(data)
            self.sent.append(data)
            self.server._notify()
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()

    async def write_chunks(self, chunks: Iterable[bytes], pause: float = 0.05) -> None:
        """Several TCP writes with a pause between them, so the client's
        ``data_received`` sees them separately (a network, not a test sync)."""
        async with self._write_lock:
            for index, chunk in enumerate(chunks):
                if index:
                    await asyncio.sleep(pause)
                self.writer.write(chunk)
                self.sent.append(chunk)
                with contextlib.suppress(ConnectionError):
                    await self.writer.drain()

    async def reply(self, action: Mapping[str, str], headers: Fields) -> None:
        """``Response: ...``, then ``ActionID`` only if the action had one (manager.c:1889-1917)."""
        pairs = _pairs(headers)
        action_id = action.get("actionid")
        if action_id is not None:
            pairs.insert(1, ("ActionID", action_id))
        await self.write(encode(pairs))

    def wants(self, privilege: str) -> bool:
        if not self.logged_in:
            return False
        if self.events_mask is None:
            return True
        return privilege.split(",")[0] in self.events_mask

    async def send_event(self, name: str, fields: Fields = (), privilege: str | None = None) -> bool:
        privilege = privilege or f"{EVENT_CLASS.get(name, 'call')},all"
        if not self.wants(privilege):
            return False
        await self.write(encode([("Event", name), ("Privilege", privilege), *_pairs(fields)]))
        return True

    def abort(self) -> None:
        """Drop the TCP connection (RST), like a crashed PBX or a dead link."""
        transport = self.writer.transport
        transport.abort()
        self.closed.set()

    async def close(self) -> None:
        """Close after flushing: the client reads EOF."""
        if self.closed.is_set():
            return
        self.closed.set()
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def drop_mid_message(self, partial: bytes = b"Event: Newchannel\r\nPrivilege: call,all\r\nChan") -> None:
        await self.write(partial)
        self.abort()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a delayed reply; the connection owns the task and cancels it on close."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # -- reading ------------------------------------------------------------------
    async def run(self) -> None:
        await self.write(self.server.banner)
        try:
            while not self.closed.is_set():
                message = await self._read_message()
                if message is None:
                    break
                raw, lines, too_long = message
                if self.silent:
                    continue
                await self._handle(raw, lines, too_long)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed.set()
            self.writer.close()

    async def _read_message(self) -> tuple[bytes, list[tuple[str, str]], bool] | None:
        raw = b""
        lines: list[tuple[str, str]] = []
        too_long = False
        while True:
            line = await self.reader.readline()
            if not line:
                return None  # EOF
            raw += line
            if len(line) > MAX_LINE:
                too_long = True
            text = line.rstrip(b"\r\n").decode("utf-8", "replace")  # get_input accepts a bare LF too
            if not text:
                if lines or too_long:
                    return raw, lines, too_long
                continue
            key, _, value = text.partition(":")
            lines.append((key.strip(), value.strip()))

    async def _handle(self, raw: bytes, lines: list[tuple[str, str]], too_long: bool) -> None:
        action = {k.lower(): v for k, v in lines}  # astman_get_header is case-insensitive
        self.raw_actions.append(raw)
        self.actions.append({k: v for k, v in lines})
        self.server._notify()
        if too_long:
            # manager.c:7250-7255, 7396-7398
            await self.reply(action, [("Response", "Error"), ("Message", "Failed to parse message: line too long")])
            return
        name = action.get("action", "")
        if not name:
            await self.write(encode([("Response", "Error"), ("Message", "Missing action in request")]))
            return
        key = name.lower()
        if key in self.server.hold_actions:
            return  # never answered (an action the PBX is stuck on)
        delay = self.server.reply_delays.get(key)
        if delay:
            self.spawn(self._delayed(delay, action, name))
            return
        await self._dispatch(action, name)

    async def _delayed(self, delay: float, action: dict[str, str], name: str) -> None:
        await asyncio.sleep(delay)
        await self._dispatch(action, name)

    async def _dispatch(self, action: dict[str, str], name: str) -> None:
        key = name.lower()
        if key == "login":
            await self._login(action)
        elif key == "logoff":
            await self.reply(action, [("Response", "Goodbye"), ("Message", "Thanks for all the fish.")])
            await self.close()
        elif not self.logged_in:
            await self.reply(action, [("Response", "Error"), ("Message", "Permission denied")])
        elif key == "ping":
            await self.reply(action, [("Response", "Success"), ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")])
        elif key == "originate":
            await self._originate(action)
        elif key == "command":
            await self._command(action)
        elif key == "coreshowchannels":
            await self._core_show_channels(action)
        elif key == "getvar":
            await self._getvar(action)
        elif key == "hangup":
            if action.get("channel") in self.server.live_channels:
                await self.reply(action, [("Response", "Success"), ("Message", "Channel Hungup")])
            else:
                await self.reply(action, [("Response", "Error"), ("Message", "No such channel")])
        elif key == "dbget":
            await self.reply(action, [("Response", "Error"), ("Message", "Database entry not found")])
        elif key == "userevent":
            await self.reply(action, [("Response", "Success")])
        else:
            message = f"Invalid/unknown command: {name}. Use Action: ListCommands to show available commands."
            await self.reply(action, [("Response", "Error"), ("Message", message)])

    async def _login(self, action: dict[str, str]) -> None:
        server = self.server
        if action.get("username") != server.username or action.get("secret") != server.secret:
            # manager.c:3416-3419: sleep 1 s, answer, close the session.
            await asyncio.sleep(server.auth_fail_delay)
            await self.reply(action, [("Response", "Error"), ("Message", "Authentication failed")])
            await self.close()
            return
        events = action.get("events")
        if events is None or events.lower() in {"on", "all", "yes", "true"}:
            self.events_mask = None
        elif events.lower() in {"off", "no", "false"}:
            self.events_mask = set()
        else:
            self.events_mask = {part.strip().lower() for part in events.split(",") if part.strip()}
        self.logged_in = True
        await self.reply(action, [("Response", "Success"), ("Message", "Authentication accepted")])
        server._notify()
        # FullyBooted only if the mask includes system (manager.c:3427-3451).
        await self.send_event(
            "FullyBooted",
            [("Uptime", str(server.uptime)), ("LastReload", str(server.uptime)), ("Status", "Fully Booted")],
        )
        # SuccessfulAuth only with the security class (not with "call,system": ami-restart-during-call.txt).
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        local = self.writer.get_extra_info("sockname")
        remote = self.writer.get_extra_info("peername")
        await self.send_event(
            "SuccessfulAuth",
            [
                ("EventTV", now),
                ("Severity", "Informational"),
                ("Service", "AMI"),
                ("EventVersion", "1"),
                ("AccountID", server.username),
                ("SessionID", f"0x{id(self):012x}"),
                ("LocalAddress", f"IPV4/TCP/{local[0]}/{local[1]}"),
                ("RemoteAddress", f"IPV4/TCP/{remote[0]}/{remote[1]}"),
                ("UsingPassword", "0"),
                ("SessionTV", now),
            ],
        )

    async def _originate(self, action: dict[str, str]) -> None:
        channel = action.get("channel", "")
        if not channel:
            await self.reply(action, [("Response", "Error"), ("Message", "Channel not specified")])
            return
        if channel.startswith("Bogus/"):
            await self.reply(action, [("Response", "Error"), ("Message", "Originate failed")])
            return
        outcome = self.server.originate_outcomes.get(channel, self.server.default_outcome)
        if not _true(action.get("async", "")):
            # Sync (the default): the reply waits for the call; no event follows (manager.c:5444-5466).
            self.spawn(self._sync_originate(action, outcome))
            return
        await self.reply(action, [("Response", "Success"), ("Message", "Originate successfully queued")])
        if not outcome.never:
            self.spawn(self._originate_response(action, outcome))

    async def _sync_originate(self, action: dict[str, str], outcome: OriginateOutcome) -> None:
        await asyncio.sleep(outcome.delay)
        if outcome.response == "Success":
            await self.reply(action, [("Response", "Success"), ("Message", "Originate successfully queued")])
        else:
            await self.reply(action, [("Response", "Error"), ("Message", "Originate failed")])

    async def _originate_response(self, action: dict[str, str], outcome: OriginateOutcome) -> None:
        await asyncio.sleep(outcome.delay)
        server = self.server
        channel = action.get("channel", "")
        success = outcome.response == "Success"
        name, number = _parse_callerid(action.get("callerid", ""))
        uniqueid = outcome.uniqueid or (server.next_uniqueid() if success else "<unknown>")
        fields: list[tuple[str, str]] = []
        if "actionid" in action:
            fields.append(("ActionID", action["actionid"]))
        fields += [
            ("Response", outcome.response),
            ("Channel", f"{channel}-0000002c;1" if success else channel),
            ("Context", action.get("context", "")),
            ("Exten", action.get("exten", "")),
            ("Reason", str(outcome.reason)),
            ("Uniqueid", uniqueid),
            ("CallerIDNum", number if success and number else "<unknown>"),
            ("CallerIDName", name if success and name else "<unknown>"),
        ]
        await self.send_event("OriginateResponse", fields)

    async def _command(self, action: dict[str, str]) -> None:
        command = action.get("command", "")
        output = self.server.commands.get(command)
        if output is None:
            words = command.split()
            hint = " ".join(words[:2])
            lines = [f"No such command '{command}' (type 'core show help {hint}' for other possible commands)"]
            response = "Error"
        else:
            lines, response = output, "Success"
        headers = [("Response", response), ("Message", "Command output follows")]
        headers += [("Output", line) for line in lines]
        await self.reply(action, headers)

    async def _core_show_channels(self, action: dict[str, str]) -> None:
        await self.reply(action, [("Response", "Success"), ("EventList", "start"), ("Message", "Channels will follow")])
        id_field = [("ActionID", action["actionid"])] if "actionid" in action else []
        rows = self.server.channels
        for row in rows:
            await self.write(encode([("Event", "CoreShowChannel"), *id_field, *row]))
        await self.write(
            encode(
                [
                    ("Event", "CoreShowChannelsComplete"),
                    *id_field,
                    ("EventList", "Complete"),
                    ("ListItems", str(len(rows))),
                ]
            )
        )

    async def _getvar(self, action: dict[str, str]) -> None:
        channel = action.get("channel")
        if channel is not None and channel not in self.server.live_channels:
            await self.reply(action, [("Response", "Error"), ("Message", "No such channel")])
            return
        variable = action.get("variable", "")
        value = self.server.variables.get(variable, "")
        await self.reply(action, [("Response", "Success"), ("Variable", variable), ("Value", value)])


def _parse_callerid(value: str) -> tuple[str, str]:
    match = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', value)
    if match:
        return match.group(1), match.group(2)
    return "", value.strip()


class FakeAMI:
    """The fake PBX. Use as ``async with FakeAMI() as fake: ... fake.port``."""

    def __init__(
        self,
        *,
        username: str = "ivr",
        secret: str = "ivrsecret",
        auth_fail_delay: float = 1.0,
        uptime: int = 285,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.username = username
        self.secret = secret
        self.auth_fail_delay = auth_fail_delay
        self.uptime = uptime
        #: What a new connection gets first (something else plays a non-AMI service).
        self.banner = BANNER
        self.connections: list[FakeConnection] = []
        #: Loop times at which a connection was accepted (also the rejected ones).
        self.accept_times: list[float] = []
        #: New connections are reset at once (Asterisk restarting: ami-restart.txt).
        self.reject_connections = False
        self.originate_outcomes: dict[str, OriginateOutcome] = {}
        self.default_outcome = OriginateOutcome()
        #: Lower-case action names that never get a reply.
        self.hold_actions: set[str] = set()
        #: Lower-case action name -> seconds before the reply.
        self.reply_delays: dict[str, float] = {}
        self.commands: dict[str, list[str]] = {
            "core show uptime": ["System uptime: 4 minutes, 45 seconds", "Last reload: 4 minutes, 45 seconds"],
        }
        self.channels: list[list[tuple[str, str]]] = []
        self.live_channels: set[str] = set()
        self.variables: dict[str, str] = {}
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()
        self._uniqueid = 1796312906.88

    async def __aenter__(self) -> FakeAMI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in self.connections:
            await conn.cancel_tasks()
            if not conn.closed.is_set():
                conn.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def next_uniqueid(self) -> str:
        self._uniqueid = round(self._uniqueid + 0.01, 2)
        return f"{self._uniqueid:.2f}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accept_times.append(asyncio.get_running_loop().time())
        if self.reject_connections:
            writer.transport.abort()
            self._notify()
            return
        conn = FakeConnection(self, reader, writer)
        self.connections.append(conn)
        self._notify()
        try:
            await conn.run()
        finally:
            await conn.cancel_tasks()
            self._notify()

    # -- waiting (tests synchronise on these, never on sleeps) -------------------------
    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_until(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    async def wait_connection(self, number: int = 1, *, logged_in: bool = True, timeout: float = 5.0) -> FakeConnection:
        """The ``number``-th connection (1-based), once it has logged in."""

        def ready() -> bool:
            return len(self.connections) >= number and (not logged_in or self.connections[number - 1].logged_in)

        await self.wait_until(ready, timeout)
        return self.connections[number - 1]

    async def wait_action(self, name: str, *, count: int = 1, timeout: float = 5.0) -> list[dict[str, str]]:
        """All recorded actions called ``name`` once there are at least ``count``."""
        await self.wait_until(lambda: len(self.actions_named(name)) >= count, timeout)
        return self.actions_named(name)

    def actions_named(self, name: str) -> list[dict[str, str]]:
        return [a for c in self.connections for a in c.actions if a.get("Action", "").lower() == name.lower()]

    @property
    def logged_in(self) -> list[FakeConnection]:
        return [c for c in self.connections if c.logged_in and not c.closed.is_set()]

    # -- scripted PBX behaviour -------------------------------------------------------
    async def send_event(self, name: str, fields: Fields = (), privilege: str | None = None) -> int:
        """Send an event to every logged-in session whose mask takes it; returns how many."""
        sent = 0
        for conn in self.logged_in:
            sent += await conn.send_event(name, fields, privilege)
        return sent

    async def shutdown(self, restart: bool = True) -> None:
        """``core restart now``: ``Event: Shutdown`` to every session, then EOF (ami-restart.txt)."""
        for conn in list(self.logged_in):
            await conn.send_event("Shutdown", [("Shutdown", "Cleanly"), ("Restart", "True" if restart else "False")])
            await conn.close()
