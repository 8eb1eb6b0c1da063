"""Live events for the board: ``GET /api/events``, server-sent events.

Event types (each ``data:`` is one JSON object):

==================== =====================================================================
``snapshot``         first on every connection: the calls in progress now (``calls``),
                     the server's clock (``at``) and ``resync`` (true when events since the
                     client's ``Last-Event-ID`` are lost: reload tickets and alarms)
``call.started``     a call began (again for the same ``uniqueid`` when more is known)
``call.updated``     a call of this process moved to another step of its flow
``call.ended``       a call ended (``outcome``, ``step``)
``ticket.created``   a ticket appeared (every call is one)
``ticket.updated``   a ticket changed (a call's checkpoint, a staff update)
``alarm.raised``     an unanswered emergency
``alarm.updated``    an alarm moved on (exhausted, callbacks placed)
``alarm.acknowledged`` someone acknowledged an alarm (by phone or in the web app)
==================== =====================================================================

Where the news comes from:

* Calls of this process: the call handler publishes on ``services.events``
  (``ivr.eventbus``). With AMI connected, ``Newchannel``/``Hangup`` add the calls
  Asterisk is carrying elsewhere (another ``ivr serve``): a call is the channel
  that started it (``Uniqueid == Linkedid``); further legs (the officer's phone,
  the halves of a ``Local`` channel) belong to it and are not shown.
* Tickets and alarms: several ``ivr serve`` processes share one database, so one
  task per app polls it (``updated_at`` since the last look, with an overlap for
  transactions that commit late) and announces what changed, wherever it changed.

Each client gets a bounded queue: a client that cannot keep up is disconnected
(its browser reconnects with ``Last-Event-ID`` and is replayed what the hub still
holds) rather than growing this process's memory. A client that goes away is
noticed within a second and forgotten; heartbeat comments keep proxies from
closing a quiet stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr import aio
from ivr.call import Call
from ivr.eventbus import CallEnded, CallStarted, LiveEvent
from ivr.records import STORAGE_ERRORS
from ivr.storage.models import Office, Ticket
from ivr.storage.roster_models import EmergencyAlarm
from ivr.web import RUNTIME, WebRuntime
from ivr.web.api import READ, _iso, _ticket_summary
from ivr.web.openapi import add_documented_routes
from ivr.web.roster_api import _alarm_body, _placed_column, _ticket_number_column

log = logging.getLogger("ivr.web.events")

#: How often the database is polled for tickets and alarms, and calls for their step.
POLL_SECONDS: Final = 2.0
#: How long closing waits for a poll in progress before cutting it short.
CLOSE_SECONDS: Final = 5.0
#: A comment line this often keeps the stream open through proxies.
HEARTBEAT_SECONDS: Final = 15.0
#: What a browser waits before reconnecting (the SSE ``retry:`` field).
RETRY_MILLISECONDS: Final = 3000
#: Events waiting for one client; past this the client is disconnected.
CLIENT_QUEUE: Final = 256
#: Events kept for clients that reconnect with ``Last-Event-ID``.
REPLAY_BUFFER: Final = 1000
#: Rows written this long before the last one seen are read again: a
#: transaction that stamped ``updated_at`` earlier may commit later.
OVERLAP: Final = timedelta(seconds=10)
#: Rows read per poll and table.
POLL_BATCH: Final = 500
#: How often the handler checks whether its client is still there.
LIVENESS_SECONDS: Final = 1.0
#: With nobody listening this long, the database is left alone (``updated_at``
#: has no index: each poll reads the recent rows of a large table).
IDLE_SECONDS: Final = 60.0
#: The AMI fields Asterisk sends when it has no caller ID.
_NO_CALLER_ID: Final = frozenset({"", "<unknown>"})


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class LiveCall:
    """A call shown on the board. ``call`` is set for this process's own calls
    (their step is read from it); AMI-only calls carry what the event said."""

    payload: dict[str, Any]
    source: str
    call: Call | None = None

    def step(self) -> str | None:
        return str(self.call.step) if self.call is not None else None


class _Closed:
    """Put in a client's queue to end its stream."""


CLOSED: Final = _Closed()


@dataclass(eq=False)
class Client:
    queue: asyncio.Queue[str | _Closed] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))

    def offer(self, message: str) -> bool:
        """Queue ``message``; False when the queue is full (the client is too slow)."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

    def close(self) -> None:
        """Drop what is queued (nobody will read it) and end the stream."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(CLOSED)


def encode(event_id: str | None, event_type: str, data: Mapping[str, Any]) -> str:
    """One SSE message. JSON escapes newlines, so ``data`` is a single line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"{head}event: {event_type}\ndata: {body}\n\n"


class _Event:
    """An event kept for replay, encoded only when a client needs it: most
    calls start and end with no board open."""

    __slots__ = ("_text", "data", "event_id", "event_type")

    def __init__(self, event_id: str, event_type: str, data: Mapping[str, Any]) -> None:
        # A copy: a live call's payload changes in place (its step) after it is sent.
        self.event_id, self.event_type, self.data = event_id, event_type, dict(data)
        self._text: str | None = None

    def text(self) -> str:
        if self._text is None:
            self._text = encode(self.event_id, self.event_type, self.data)
        return self._text


class EventHub:
    """One per web app: the clients, the calls in progress, and the poller."""

    def __init__(
        self,
        runtime: WebRuntime,
        *,
        poll_seconds: float = POLL_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.runtime = runtime
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.idle_seconds = idle_seconds
        #: Event ids are ``<epoch>-<n>``: an id from before a restart, or from
        #: another process behind the same balancer, is recognised as foreign.
        self.epoch = secrets.token_hex(4)
        self.clients: set[Client] = set()
        self.calls: dict[str, LiveCall] = {}
        self.dropped_clients = 0
        self._sequence = 0
        self._buffer: deque[tuple[int, _Event]] = deque(maxlen=REPLAY_BUFFER)
        self._task: asyncio.Task[None] | None = None
        self._stops: list[Callable[[], None]] = []
        self._ticket_max_id: int | None = None
        self._alarm_max_id: int | None = None
        self._ticket_seen: dict[int, datetime] = {}
        self._alarm_seen: dict[int, tuple[datetime, str]] = {}
        self._ticket_since: datetime | None = None
        self._alarm_since: datetime | None = None
        self._database_ok = True
        self._ticked = asyncio.Event()
        self._closing = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        self._stops.append(self.runtime.services.events.listen(self._on_call_event))
        # Calls that began before the web app did (``ivr serve`` starts FastAGI first).
        for uniqueid, call in list(self.runtime.calls.active.items()):
            if isinstance(call, Call):
                self._on_call_event(CallStarted(uniqueid, call))
        ami = self.runtime.services.ami
        if ami is not None:
            self._stops.append(ami.subscribe("Newchannel", self._on_newchannel))
            self._stops.append(ami.subscribe("Hangup", self._on_hangup))
        self._closing.clear()
        self._task = asyncio.create_task(self._run(), name="web-events-poller")

    def disconnect_all(self) -> None:
        """At shutdown: end every stream so the server need not wait for them."""
        for client in list(self.clients):
            client.close()
        self.clients.clear()

    async def close(self) -> None:
        for stop in self._stops:
            stop()
        self._stops.clear()
        if self._task is not None:
            # A poll in progress may finish: a query cancelled midway would
            # still complete in aiosqlite's thread, after the loop is gone.
            self._closing.set()
            try:
                await aio.wait_for(asyncio.shield(self._task), CLOSE_SECONDS)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.disconnect_all()

    # -- publishing --------------------------------------------------------------
    def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        self._sequence += 1
        event = _Event(f"{self.epoch}-{self._sequence}", event_type, data)
        self._buffer.append((self._sequence, event))
        for client in list(self.clients):
            if not client.offer(event.text()):
                self.dropped_clients += 1
                log.warning("live events: a client fell %d events behind; disconnected", CLIENT_QUEUE)
                self.clients.discard(client)
                client.close()

    def connect(self, last_event_id: str | None) -> tuple[Client, list[str], bool]:
        """A new client, the events it missed, and whether it must reload
        instead (its ``Last-Event-ID`` is foreign or older than the buffer)."""
        client = Client()
        self.clients.add(client)
        if not last_event_id:
            return client, [], False
        epoch, _, number = last_event_id.partition("-")
        if epoch != self.epoch or not (number.isascii() and number.isdigit() and len(number) <= 18):
            return client, [], True
        if int(number) > self._sequence:
            return client, [], True
        seen = int(number)
        oldest = self._buffer[0][0] if self._buffer else self._sequence + 1
        if seen + 1 < oldest:
            return client, [], True
        return client, [event.text() for sequence, event in self._buffer if sequence > seen], False

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)

    def snapshot(self) -> dict[str, Any]:
        return {"at": _iso(_now(), self.runtime.settings.zone), "calls": [c.payload for c in self.calls.values()]}

    # -- calls ---------------------------------------------------------------------
    def _on_call_event(self, event: LiveEvent) -> None:
        if isinstance(event, CallStarted):
            live = LiveCall(self._agi_payload(event.uniqueid, event.call), "agi", event.call)
            self.calls[event.uniqueid] = live
            self.emit("call.started", live.payload)
        elif isinstance(event, CallEnded):
            self._end_call(event.uniqueid, event.outcome, event.step)

    def _agi_payload(self, uniqueid: str, call: Call) -> dict[str, Any]:
        record = call.record.snapshot
        caller = call.caller
        return {
            "uniqueid": uniqueid,
            "source": "agi",
            "script": record.script,
            "channel": record.channel,
            "caller_number": record.caller_number,
            "caller_e164": record.caller_e164,
            "caller_name": caller.caller_name or record.caller_name or None,
            "registered": caller.registered,
            "office": caller.office_name,
            "step": call.step,
            "started_at": _iso(record.started_at, self.runtime.settings.zone),
        }

    def _end_call(self, uniqueid: str, outcome: str, step: str) -> None:
        if self.calls.pop(uniqueid, None) is None:
            return
        self.emit(
            "call.ended",
            {
                "uniqueid": uniqueid,
                "outcome": outcome,
                "step": step,
                "ended_at": _iso(_now(), self.runtime.settings.zone),
            },
        )

    async def _on_newchannel(self, event: dict[str, str]) -> None:
        uniqueid = event.get("Uniqueid", "")
        if not uniqueid or event.get("Linkedid") != uniqueid or uniqueid in self.calls:
            return
        number = event.get("CallerIDNum", "")
        name = event.get("CallerIDName", "")
        payload = {
            "uniqueid": uniqueid,
            "source": "ami",
            "script": None,
            "channel": event.get("Channel", ""),
            "caller_number": "" if number in _NO_CALLER_ID else number,
            "caller_e164": None,
            "caller_name": None if name in _NO_CALLER_ID else name,
            "registered": False,
            "office": None,
            "step": None,
            "started_at": _iso(_now(), self.runtime.settings.zone),
        }
        self.calls[uniqueid] = LiveCall(payload, "ami")
        self.emit("call.started", payload)

    async def _on_hangup(self, event: dict[str, str]) -> None:
        live = self.calls.get(event.get("Uniqueid", ""))
        # This process's own calls end when their flow does (CallEnded).
        if live is not None and live.source == "ami":
            self._end_call(event["Uniqueid"], "hangup", event.get("Cause-txt", ""))

    def _check_calls(self) -> None:
        """Steps of this process's calls; AMI calls forgotten while AMI is down
        (their Hangup may never come)."""
        for uniqueid, live in list(self.calls.items()):
            if live.source == "ami":
                ami = self.runtime.services.ami
                if ami is None or ami.state != "connected":
                    self._end_call(uniqueid, "unknown", "")
                continue
            step = live.step()
            if step != live.payload["step"]:
                live.payload["step"] = step
                self.emit("call.updated", live.payload)

    # -- the database --------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        listened_at = loop.time()
        while True:
            self._check_calls()
            if self.clients:
                listened_at = loop.time()
            if loop.time() - listened_at <= self.idle_seconds:
                await self._poll_safely()
            else:
                self._forget_position()
            ticked, self._ticked = self._ticked, asyncio.Event()
            ticked.set()
            try:
                await aio.wait_for(self._closing.wait(), self.poll_seconds)
                return
            except TimeoutError:
                pass

    async def _poll_safely(self) -> None:
        try:
            await self.poll_database()
            if not self._database_ok:
                log.info("live events: database back")
            self._database_ok = True
        except STORAGE_ERRORS as exc:
            if self._database_ok:
                log.warning("live events: database unavailable (%s); tickets and alarms wait", type(exc).__name__)
            self._database_ok = False
        except Exception:
            log.exception("live events: poll failed")

    def _forget_position(self) -> None:
        """Stop following the database until someone listens again. What happens
        meanwhile is never announced, so no client may be replayed across the
        gap: the buffer goes, and the sequence skips one (older ids resync)."""
        if self._ticket_max_id is None:
            return
        self._ticket_max_id = self._alarm_max_id = None
        self._ticket_seen.clear()
        self._alarm_seen.clear()
        self._buffer.clear()
        self._sequence += 1

    @property
    def following(self) -> bool:
        """Whether the database is being polled (not while nobody listens)."""
        return self._ticket_max_id is not None

    async def wait_ticks(self, count: int = 1) -> None:
        """Wait until the loop finished ``count`` more passes (tests)."""
        for _ in range(count):
            await self._ticked.wait()

    async def poll_database(self) -> None:
        async with asyncio.timeout(max(self.poll_seconds, 5.0)), self.runtime.sessions() as session:
            if self._ticket_max_id is None or self._alarm_max_id is None:
                # Start from now: what existed before this process started is not news.
                self._ticket_max_id = await session.scalar(select(func.coalesce(func.max(Ticket.id), 0))) or 0
                self._alarm_max_id = await session.scalar(select(func.coalesce(func.max(EmergencyAlarm.id), 0))) or 0
                self._ticket_since = self._alarm_since = _now()
                return
            await self._poll_tickets(session)
            await self._poll_alarms(session)

    async def _poll_tickets(self, session: AsyncSession) -> None:
        assert self._ticket_since is not None and self._ticket_max_id is not None
        low = self._ticket_since - OVERLAP
        rows = (
            await session.execute(
                select(Ticket, Office.name)
                .outerjoin(Office, Office.id == Ticket.office_id)
                .where(Ticket.number.is_not(None), Ticket.updated_at >= low)
                .order_by(Ticket.updated_at, Ticket.id)
                .limit(POLL_BATCH)
            )
        ).all()
        zone = self.runtime.settings.zone
        for ticket, office in rows:
            if self._ticket_seen.get(ticket.id) == ticket.updated_at:
                continue
            self._ticket_seen[ticket.id] = ticket.updated_at
            created = ticket.id > self._ticket_max_id
            self._ticket_max_id = max(self._ticket_max_id, ticket.id)
            self.emit("ticket.created" if created else "ticket.updated", _ticket_summary(ticket, office, zone))
        self._ticket_since = self._advance(self._ticket_since, [t.updated_at for t, _ in rows], len(rows))
        floor = self._ticket_since - OVERLAP
        self._ticket_seen = {k: v for k, v in self._ticket_seen.items() if v >= floor}

    async def _poll_alarms(self, session: AsyncSession) -> None:
        assert self._alarm_since is not None and self._alarm_max_id is not None
        low = self._alarm_since - OVERLAP
        rows = (
            await session.execute(
                select(EmergencyAlarm, _ticket_number_column(), _placed_column())
                .where(EmergencyAlarm.updated_at >= low)
                .order_by(EmergencyAlarm.updated_at, EmergencyAlarm.id)
                .limit(POLL_BATCH)
            )
        ).all()
        zone = self.runtime.settings.zone
        for alarm, ticket, placed in rows:
            before = self._alarm_seen.get(alarm.id)
            if before == (alarm.updated_at, alarm.state):
                continue
            self._alarm_seen[alarm.id] = (alarm.updated_at, alarm.state)
            body = _alarm_body(alarm, ticket, placed, zone)
            if alarm.id > self._alarm_max_id:
                self._alarm_max_id = alarm.id
                self.emit("alarm.raised", body)
            elif alarm.state != "acknowledged":
                self.emit("alarm.updated", body)
            if alarm.state == "acknowledged" and (before is None or before[1] != "acknowledged"):
                self.emit("alarm.acknowledged", body)
        self._alarm_since = self._advance(self._alarm_since, [a.updated_at for a, _, _ in rows], len(rows))
        floor = self._alarm_since - OVERLAP
        self._alarm_seen = {k: v for k, v in self._alarm_seen.items() if v[0] >= floor}

    @staticmethod
    def _advance(since: datetime, stamps: list[datetime], count: int) -> datetime:
        """The next poll's starting point. After a full batch, continue right
        after it (with the overlap the same rows would come back forever)."""
        if not stamps:
            return since
        newest = max(stamps)
        if count >= POLL_BATCH:
            return newest + OVERLAP
        return max(since, newest)


HUB: Final[web.AppKey[EventHub]] = web.AppKey("event_hub")


async def stream_events(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    # ivr.live() appends the id it saw last on a reconnect: the last one counts.
    last = request.headers.get("Last-Event-ID") or request.query.getall("last_event_id", [""])[-1]
    client, missed, resync = hub.connect(last)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "X-Accel-Buffering": "no"}
    )
    try:
        await response.prepare(request)
        snapshot = {**hub.snapshot(), "resync": resync}
        await response.write((f"retry: {RETRY_MILLISECONDS}\n\n" + encode(None, "snapshot", snapshot)).encode())
        for message in missed:
            await response.write(message.encode())
        await _pump(request, response, client, hub.heartbeat_seconds)
    except ConnectionError:
        pass  # the client went away; nothing to tell it
    finally:
        hub.disconnect(client)
    return response


async def _pump(request: web.Request, response: web.StreamResponse, client: Client, heartbeat: float) -> None:
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        try:
            async with asyncio.timeout(min(LIVENESS_SECONDS, heartbeat)):
                message = await client.queue.get()
        except TimeoutError:
            if loop.time() - quiet_since >= heartbeat:
                await response.write(b": ping\n\n")
                quiet_since = loop.time()
            continue
        if isinstance(message, _Closed):
            return
        await response.write(message.encode())
        quiet_since = loop.time()


async def _hub_lifecycle(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    await hub.start()
    yield
    await hub.close()


async def _disconnect_streams(app: web.Application) -> None:
    app[HUB].disconnect_all()


def add_event_routes(app: web.Application) -> None:
    """Register ``GET /api/events`` (after ``ivr.web.api.setup``) and run the hub with the app."""
    app[HUB] = EventHub(app[RUNTIME])
    app.cleanup_ctx.append(_hub_lifecycle)
    app.on_shutdown.append(_disconnect_streams)
    add_documented_routes(app, [("GET", "/api/events", stream_events, READ)], _OPERATIONS, {})


_OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("GET", "/api/events"): {
        "summary": "Live events (server-sent events) for the board",
        "description": (
            "`text/event-stream`. First a `snapshot` event (`at`, `calls` in progress, `resync`), then "
            "`call.started`, `call.updated`, `call.ended` (payload: the call, or `uniqueid`, `outcome`, `step`), "
            "`ticket.created`, `ticket.updated` (a TicketSummary), `alarm.raised`, `alarm.updated`, "
            "`alarm.acknowledged` (an Alarm), each with an `id`. Comment lines every 15 s keep the stream open. "
            "Reconnect with `Last-Event-ID` (or `?last_event_id=`) to be replayed what was missed; "
            "`resync: true` means the events are gone and lists must be reloaded. Tickets and alarms changed "
            "by another server on the same database arrive within a few seconds."
        ),
        "parameters": [
            {
                "name": "last_event_id",
                "in": "query",
                "required": False,
                "description": "as the Last-Event-ID header (for clients that cannot set headers); the last one counts",
                "schema": {"type": "string"},
            }
        ],
        "responses": {
            "200": {
                "description": "the event stream (never ends by itself)",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    }
}
