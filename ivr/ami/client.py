r"""AMI client: panoramisk 1.4's ``Manager`` behind an adapter that fixes M1-M17.

One ``AMIClient`` owns one Asterisk Manager connection at a time and keeps it up:

* connect, read the banner, ``Login`` with an ``Events:`` mask, then serve;
* reconnect with exponential backoff and jitter after EOF, a ``Shutdown`` event,
  a reset or a missed Ping; stop for good on ``Authentication failed`` (M9);
* every action carries our own ``ActionID`` and a timeout, and its pending entry
  is removed whatever happens (M3, M4);
* while no session is logged in, actions raise :class:`AMIUnavailable` at once;
  nothing is queued and nothing is re-sent after a reconnect (M7, M8);
* ``Originate`` is always ``Async: true`` and is answered by its own
  ``OriginateResponse`` event, matched on ActionID (M2, M3, M11);
* events go to async callbacks through one bounded queue and one worker task per
  subscription; a callback that raises is logged and the next event still comes (M5).

What panoramisk still does here: ``Manager.connect()`` opens the TCP connection
through its ``protocol_factory`` hook; ``AMIProtocol`` is the base of our
protocol; ``Manager.register_event`` compiles the fnmatch patterns our
``subscribe`` routes on. Its byte handling, action bookkeeping, pinger,
reconnect timer, login and re-send queue are switched off (see
:class:`_PanoramiskManager`) because each of them is one of the defects in
``PROTOCOL.md`` (b).

A session on the wire (``<<`` Asterisk, ``>>`` us; from ami-originate.txt)::

    << b'Asterisk Call Manager/11.0.0\r\n'
    >> b'Action: Login\r\nActionID: ivr-5e1f0a-1\r\nUsername: ivr\r\nSecret: ...\r\nEvents: call,system\r\n\r\n'
    << b'Response: Success\r\nActionID: ivr-5e1f0a-1\r\nMessage: Authentication accepted\r\n\r\n'
    << b'Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 285\r\nLastReload: 285\r\nStatus: Fully Booted\r\n\r\n'
    >> b'Action: Originate\r\nActionID: ivr-5e1f0a-2\r\nChannel: Local/ami_call@ivr-in\r\n...Async: true\r\n\r\n'
    << b'Response: Success\r\nActionID: ivr-5e1f0a-2\r\nMessage: Originate successfully queued\r\n\r\n'
    << b'Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: ivr-5e1f0a-2\r\nResponse: Success\r\n'
       b'Channel: Local/ami_call@ivr-in-0000002c;1\r\nContext: caller-sim\r\nExten: script\r\nReason: 4\r\n'
       b'Uniqueid: 1796312906.88\r\nCallerIDNum: 081298765432\r\nCallerIDName: Siti Aminah\r\n\r\n'
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import random
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from panoramisk import Manager  # type: ignore[import-untyped]
from panoramisk.ami_protocol import AMIProtocol  # type: ignore[import-untyped]

from ivr import aio
from ivr.ami.wire import (
    AMIEncodingError,
    AMIFramer,
    AMIMessage,
    AMIProtocolError,
    check_header,
    describe,
    encode_action,
)

log = logging.getLogger("ivr.ami")

EventCallback = Callable[[dict[str, str]], Awaitable[None]]

#: ``Uniqueid`` of a failed originate: ``<unknown>`` in 22.x, ``<null>`` in older
#: releases (PROTOCOL.md A7, manager.c:4477-4511).
_NO_UNIQUEID = frozenset({"", "<unknown>", "<null>"})
#: Characters refused inside an Originate ``Variable:``. manager.c's
#: ``man_do_variable_value`` splits each header value with AST_STANDARD_APP_ARGS,
#: so a ``,`` starts another variable, and quotes and backslashes are eaten.
_VARIABLE_FORBIDDEN = (",", '"', "\\")
#: How long ``close()`` waits for the ``Logoff`` goodbye before dropping the socket.
_LOGOFF_TIMEOUT = 1.0

STATES = ("disabled", "connecting", "connected", "auth_failed", "down")


@dataclass(frozen=True)
class AMIConfig:
    """Validated once; the secret is never logged (``repr`` hides it)."""

    host: str
    port: int = 5038
    username: str = ""
    secret: str = field(default="", repr=False)
    #: ``Events:`` mask sent with Login. Keep ``system`` to get ``FullyBooted``
    #: and ``Shutdown`` (manager.c:3427-3451, PROTOCOL.md M8).
    events: str = "call,system"
    ping_interval: float = 20
    action_timeout: float = 10
    reconnect_min: float = 1
    reconnect_max: float = 60

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"AMI port out of range: {self.port}")
        for name in ("ping_interval", "action_timeout", "reconnect_min", "reconnect_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"AMI {name} must be > 0")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("AMI reconnect_max must be >= reconnect_min")
        # Refuse CR/LF/NUL here rather than at every login attempt (M10).
        check_header("Username", self.username)
        check_header("Secret", self.secret)
        check_header("Events", self.events)


class AMIUnavailable(Exception):
    """No logged-in AMI session: the action was **not** sent. Safe to retry later."""


class AMIConnectionLost(Exception):
    """The session dropped after the action was written; its outcome is unknown.

    Deliberately not an :class:`AMIUnavailable`: an Originate that Asterisk may
    already have executed must not be retried by a generic "AMI is down, try
    again" handler (PROTOCOL.md M8: a duplicate would call an officer twice).
    """


class AMIAuthError(Exception):
    """``Message: Authentication failed``; the client stops reconnecting (M9)."""


class AMIActionError(Exception):
    r"""Asterisk answered ``Response: Error``; carries its ``Message`` and the whole response::

    << b'Response: Error\r\nActionID: fail-2\r\nMessage: No such channel\r\n\r\n'
    """

    def __init__(self, message: str, response: dict[str, str]) -> None:
        super().__init__(message)
        self.message = message
        self.response = response


class AMITimeout(TimeoutError):
    """No reply in time. The pending entry has been removed (M4); a late reply is dropped."""


@dataclass(frozen=True)
class OriginateResult:
    """The ``OriginateResponse`` event of one async Originate.

    ``reason`` is the AST_CONTROL code Asterisk reports: 4 answered, 0 no such
    extension/context, 3 no answer, 5 busy, 8 congestion (ami-originate-fail.txt).
    ``uniqueid`` is ``None`` when Asterisk says ``<unknown>`` or ``<null>``.
    """

    success: bool
    reason: int | None
    uniqueid: str | None
    channel: str | None
    response: dict[str, str]


def backoff_delay(attempt: int, minimum: float, maximum: float, rng: random.Random) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based): exponential, capped,
    with "equal jitter" so that many clients do not reconnect in step after an
    Asterisk restart. ``attempt`` 0 -> [min/2, min], then doubling up to ``max``."""
    ceiling = min(maximum, minimum * 2 ** min(attempt, 32))
    return rng.uniform(ceiling / 2, ceiling)


def _originate_result(event: dict[str, str]) -> OriginateResult:
    reason = event.get("Reason", "")
    uniqueid = event.get("Uniqueid", "")
    return OriginateResult(
        success=event.get("Response", "").lower() == "success",
        reason=int(reason) if reason.lstrip("-").isdigit() else None,
        uniqueid=None if uniqueid in _NO_UNIQUEID else uniqueid,
        channel=event.get("Channel") or None,
        response=event,
    )


def _checked(message: AMIMessage) -> dict[str, str]:
    fields = message.as_dict()
    if (message.response or "").lower() == "error":
        raise AMIActionError(fields.get("Message", ""), fields)
    return fields


def _retrieved(fut: asyncio.Future[Any]) -> None:
    """Mark a failed future's exception as seen, so that a waiter that never
    comes (the originate event after a failed response) logs no warning."""
    if fut.done() and not fut.cancelled():
        fut.exception()


class _Pending:
    """What one ActionID waits for: its response, plus the OriginateResponse
    event or the events of a list action, depending on the action."""

    def __init__(self, *, originate: bool = False, collect: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.response: asyncio.Future[AMIMessage] = loop.create_future()
        self.originate: asyncio.Future[AMIMessage] | None = loop.create_future() if originate else None
        self.complete: asyncio.Future[AMIMessage] | None = loop.create_future() if collect else None
        self.items: list[dict[str, str]] = []

    def on_response(self, message: AMIMessage) -> None:
        if not self.response.done():
            self.response.set_result(message)

    def on_event(self, message: AMIMessage) -> None:
        if self.originate is not None and message.event == "OriginateResponse":
            if not self.originate.done():
                self.originate.set_result(message)
        elif self.complete is not None:
            # ``Event: CoreShowChannelsComplete`` / ``EventList: Complete`` (manager.c:1967-1997)
            if (message.get("EventList") or "").lower() == "complete":
                if not self.complete.done():
                    self.complete.set_result(message)
            else:
                self.items.append(message.as_dict())

    def fail(self, exc: Exception) -> None:
        for fut in (self.response, self.originate, self.complete):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
                _retrieved(fut)


class _Subscription:
    """One ``subscribe()``: a bounded queue and the worker task that drains it.

    ``data_received`` only does ``put_nowait``; it never runs user code (M5). When
    the queue is full the event is dropped and counted, rather than blocking the
    socket: Asterisk drops a client that stalls a write for 100 ms (PROTOCOL.md A7).
    """

    def __init__(self, pattern: str, callback: EventCallback, max_queue: int) -> None:
        self.pattern = pattern
        self.callback = callback
        self.queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(max_queue)
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0

    def offer(self, event: dict[str, str]) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("AMI subscriber %r is too slow: %d events dropped", self.pattern, self.dropped)

    async def run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                result = self.callback(event)
                if inspect.isawaitable(result):
                    await result
                else:
                    log.error("AMI callback for %r is not async; its result was ignored", self.pattern)
            except asyncio.CancelledError:
                # Our own cancellation (unsubscribe/close) must win; a callback that
                # raised CancelledError by itself is just a failed callback.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                log.error("AMI callback for %r was cancelled on %s", self.pattern, event.get("Event"))
            except Exception:
                log.exception("AMI callback for %r failed on %s", self.pattern, event.get("Event"))


class _Session:
    """One TCP connection to Asterisk: framing, ActionID correlation, shutdown."""

    def __init__(self, client: AMIClient) -> None:
        loop = asyncio.get_running_loop()
        self._client = client
        self.framer = AMIFramer()
        self.transport: asyncio.Transport | None = None
        self.banner: asyncio.Future[str] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.close_reason: str | None = None
        self.logged_in = False
        self.pending: dict[str, _Pending] = {}

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing() and not self.closed.done()

    # -- called by the protocol -------------------------------------------------
    def on_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def on_data(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except AMIProtocolError as exc:
            self.abort(f"protocol error: {exc}")
            return
        if self.framer.banner is not None and not self.banner.done():
            log.info("AMI banner %r", self.framer.banner)
            self.banner.set_result(self.framer.banner)
        for message in messages:
            try:
                self._route(message)
            except Exception:  # never let one message end the connection (M5)
                log.exception("AMI message could not be handled: %r", message.raw[:200])

    def on_lost(self, exc: BaseException | None) -> None:
        if self.close_reason is None:
            self.close_reason = "EOF from Asterisk" if exc is None else f"connection lost: {exc!r}"
        self.logged_in = False
        lost = AMIConnectionLost(f"AMI connection lost before the reply ({self.close_reason}); not re-sent")
        if not self.banner.done():
            self.banner.set_exception(ConnectionError(self.close_reason))
            _retrieved(self.banner)
        for pending in self.pending.values():
            pending.fail(lost)
        if not self.closed.done():
            self.closed.set_result(None)
        self._client._on_session_lost(self)

    # -- routing ---------------------------------------------------------------
    def _route(self, message: AMIMessage) -> None:
        action_id = message.action_id
        pending = self.pending.get(action_id) if action_id else None
        if message.is_event:
            if pending is not None:
                pending.on_event(message)
            # Every event also reaches the subscribers, ours included (M11).
            self._client._dispatch(message)
            if message.event == "Shutdown":
                # ``Shutdown: Cleanly`` / ``Restart: True`` then EOF (ami-restart.txt).
                self.abort(
                    f"Asterisk shutdown (Shutdown: {message.get('Shutdown')}, Restart: {message.get('Restart')})",
                    graceful=True,
                )
        elif message.is_response:
            if pending is not None:
                pending.on_response(message)
            elif action_id:
                log.debug("AMI reply for ActionID %s that no one waits for (late, after a timeout?)", action_id)
            else:
                # ``Message: Missing action in request`` has no ActionID (ami-actions.txt).
                log.warning("AMI reply without ActionID: %s", message.as_dict())
        else:
            log.warning("AMI message is neither a response nor an event: %r", message.raw[:200])

    # -- sending ---------------------------------------------------------------
    def send(self, action_id: str, data: bytes, headers: str, pending: _Pending) -> None:
        if not self.is_open or self.transport is None:
            raise AMIUnavailable("AMI connection is closing")
        self.pending[action_id] = pending
        log.debug("AMI >> %s", headers)
        self.transport.write(data)

    def abort(self, reason: str, *, graceful: bool = False) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self.logged_in = False
        if self.transport is not None and not self.transport.is_closing():
            if graceful:
                self.transport.close()
            else:
                self.transport.abort()


class _AMIProtocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol with our byte-level ``data_received`` (M1, M5).

    panoramisk 1.4 decodes each chunk separately with ``errors='ignore'`` and
    lets exceptions from message handling escape ``data_received``, which makes
    asyncio close the transport. Here nothing escapes.
    """

    def __init__(self, session: _Session) -> None:
        super().__init__()
        self.session = session

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            except OSError:  # pragma: no cover - platform specific
                pass
        assert isinstance(transport, asyncio.Transport)
        self.session.on_made(transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.session.on_data(data)
        except Exception:
            log.exception("AMI data handling failed; dropping the connection")
            self.session.abort("internal error while reading")

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.session.on_lost(exc)

    def send(self, data: Any, as_list: bool = False) -> Any:
        raise NotImplementedError("use AMIClient.action(): panoramisk's send path is unsafe (M2-M4, M10)")

    def close(self) -> None:
        self.session.abort("closed")


class _PanoramiskManager(Manager):  # type: ignore[misc]
    """panoramisk 1.4 ``Manager`` reduced to what it does well.

    Kept: ``connect()`` (``loop.create_connection`` through ``protocol_factory``),
    ``register_event`` (fnmatch patterns). Switched off, with the defect each one has:
    the automatic Login (M9: no error on failure), ``ping`` (M6: fire-and-forget,
    Pong never checked), ``connection_lost`` (M9: fixed-delay reconnect forever),
    ``send_awaiting_actions`` (M8: re-sends a possibly executed Originate) and the
    synchronous ``dispatch`` (M5).
    """

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        # Drop the FullyBooted -> send_awaiting_actions hook (M8).
        self.callbacks.clear()
        self.patterns.clear()

    def connection_made(self, future: Any) -> None:
        """Done-callback of ``connect()``'s task; ``AMIClient`` awaits the task itself."""

    def ping(self) -> None:
        """Never used: ``AMIClient._watchdog`` pings and checks the Pong (M6)."""

    async def send_awaiting_actions(self, *_: Any) -> None:
        """Never re-send anything after a reconnect (M8)."""

    def connection_lost(self, exc: Any) -> None:
        """Reconnecting is ``AMIClient._run``'s job (backoff, auth stop; M9)."""

    def unregister(self, pattern: str, subscription: _Subscription) -> None:
        callbacks = self.callbacks.get(pattern)
        if callbacks and subscription in callbacks:
            callbacks.remove(subscription)
        if pattern in self.callbacks and not self.callbacks[pattern]:
            del self.callbacks[pattern]
            self.patterns[:] = [(p, regexp) for p, regexp in self.patterns if p != pattern]

    def dispatch(self, event: AMIMessage) -> list[str]:
        """Hand ``event`` to every matching subscription's queue; runs no callback."""
        name = event.event or ""
        fields: dict[str, str] | None = None
        matched = []
        for pattern, regexp in self.patterns:
            if regexp.match(name) is None:
                continue
            matched.append(pattern)
            for subscription in self.callbacks[pattern]:
                if fields is None:
                    fields = event.as_dict()
                subscription.offer(dict(fields))
        return matched


class AMIClient:
    """The AMI connection of one ``ivr serve`` process.

    ``start()`` returns at once; the owned task connects and reconnects in the
    background. ``state`` is one of ``disabled`` (no host configured),
    ``connecting`` (connecting, logging in, or waiting to retry), ``connected``,
    ``auth_failed`` (terminal until restarted with a new secret) and ``down``
    (not started, or closed).
    """

    def __init__(self, config: AMIConfig) -> None:
        self.config = config
        self._manager = _PanoramiskManager(
            host=config.host,
            port=config.port,
            events=config.events,
            protocol_factory=self._make_protocol,
            loop=None,  # set to the running loop in start() (M17)
        )
        self._state = "disabled" if not config.host else "down"
        self._state_changed = asyncio.Event()
        self._session: _Session | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._subscriptions: list[_Subscription] = []
        self._closed = False
        self._reconnects = 0
        self._last_error: str | None = None
        self._connected_since: datetime | None = None
        self._ids = itertools.count(1)
        self._id_prefix = f"ivr-{secrets.token_hex(3)}"
        self._rng = random.Random()

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("AMIClient was closed; build a new one")
        if self._supervisor is not None:
            return
        for subscription in self._subscriptions:
            self._start_worker(subscription)
        if not self.config.host:
            log.info("AMI disabled: no host configured")
            return
        self._manager.loop = asyncio.get_running_loop()
        self._set_state("connecting")  # before returning, so wait_connected() does not see "down"
        self._supervisor = asyncio.create_task(self._run(), name="ami-supervisor")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        session = self._session
        if session is not None and session.logged_in:
            try:
                await self._request(session, "Logoff", (), timeout=min(_LOGOFF_TIMEOUT, self.config.action_timeout))
            except (AMIActionError, AMITimeout, AMIConnectionLost, AMIUnavailable) as exc:
                log.debug("AMI Logoff: %s", exc)
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait([self._supervisor])
        if session is not None:
            session.abort("client closed")
        workers = list(self._workers)
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.wait(workers)
        self._set_state("disabled" if not self.config.host else "down")

    @property
    def state(self) -> str:
        return self._state

    def health(self) -> dict[str, Any]:
        """For ``/api/health``; never contains the secret::

        {"state": "connected", "reconnects": 1, "last_error": "EOF from Asterisk",
         "connected_since": "2026-12-03T15:49:12+00:00", "pending_actions": 0, "events_dropped": 0}
        """
        session = self._session
        return {
            "state": self._state,
            "reconnects": self._reconnects,
            "last_error": self._last_error,
            "connected_since": self._connected_since.isoformat(timespec="seconds") if self._connected_since else None,
            "pending_actions": len(session.pending) if session is not None else 0,
            "events_dropped": sum(s.dropped for s in self._subscriptions),
        }

    async def wait_connected(self, timeout: float) -> bool:
        """True once logged in; False after ``timeout`` or as soon as the state is
        terminal (``auth_failed``, ``disabled``, ``down``)."""
        return await self.wait_state(("connected", "auth_failed", "disabled", "down"), timeout) and (
            self._state == "connected"
        )

    async def wait_state(self, states: str | Iterable[str], timeout: float) -> bool:
        """Wait until ``state`` is one of ``states``; False on timeout."""
        wanted = {states} if isinstance(states, str) else set(states)
        unknown = wanted - set(STATES)
        if unknown:
            raise ValueError(f"unknown AMI states {sorted(unknown)}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._state not in wanted:
            changed = self._state_changed
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await aio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return self._state in wanted
        return True

    # -- actions ---------------------------------------------------------------
    async def action(self, name: str, fields: dict[str, str], timeout: float | None = None) -> dict[str, str]:
        r"""Send one single-response action and return its response.

        >> b'Action: Getvar\r\nActionID: ivr-5e1f0a-7\r\nChannel: Local/ami_long@ivr-in-0000002e;2\r\n'
           b'Variable: CALLERID(all)\r\n\r\n'
        << b'Response: Success\r\nActionID: ivr-5e1f0a-7\r\nVariable: CALLERID(all)\r\n'
           b'Value: "Test Caller" <0811111111>\r\n\r\n'

        Raises :class:`AMIActionError` on ``Response: Error``, :class:`AMITimeout`,
        :class:`AMIUnavailable` (not sent), :class:`AMIConnectionLost` (sent, outcome
        unknown) and :class:`AMIEncodingError` (CR/LF/NUL or an over-long line).
        ``Originate`` must go through :meth:`originate` (always async, M2/M3).
        """
        if name.lower() == "originate":
            raise ValueError("use AMIClient.originate(): a synchronous Originate blocks every event (PROTOCOL.md A7)")
        return await self._request(None, name, list(fields.items()), timeout=timeout)

    async def action_list(
        self, name: str, fields: dict[str, str], timeout: float | None = None
    ) -> tuple[dict[str, str], list[dict[str, str]]]:
        r"""A list action (``CoreShowChannels``...): the response and its items,
        read until ``EventList: Complete`` (manager.c:1967-1997). The items are
        also dispatched to subscribers like any event.

        << b'Response: Success\r\nActionID: csc-1\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n'
        << b'Event: CoreShowChannel\r\nActionID: csc-1\r\nChannel: Local/ami_long@ivr-in-0000002e;1\r\n...\r\n\r\n'
        << b'Event: CoreShowChannelsComplete\r\nActionID: csc-1\r\nEventList: Complete\r\nListItems: 2\r\n\r\n'
        """
        action_id, data, headers = self._encode(name, list(fields.items()))
        session = self._require_session()
        pending = _Pending(collect=True)
        limit = self.config.action_timeout if timeout is None else timeout
        session.send(action_id, data, headers, pending)
        try:
            response = _checked(await self._wait(pending.response, limit, name))
            assert pending.complete is not None
            await self._wait(pending.complete, limit, f"{name} list")
            return response, list(pending.items)
        finally:
            session.pending.pop(action_id, None)

    async def originate(
        self,
        *,
        channel: str,
        context: str | None = None,
        exten: str | None = None,
        priority: int = 1,
        application: str | None = None,
        data: str | None = None,
        caller_id: str | None = None,
        variables: dict[str, str] | None = None,
        timeout_ms: int = 30000,
        account: str | None = None,
        wait: float = 60,
    ) -> OriginateResult:
        r"""Async Originate, answered by its own ``OriginateResponse`` (matched on ActionID).

        >> b'Action: Originate\r\nActionID: ivr-5e1f0a-9\r\nChannel: Local/102@officer\r\n'
           b'Context: caller-sim\r\nExten: ami_long\r\nPriority: 1\r\nTimeout: 5000\r\nAsync: true\r\n\r\n'
        << b'Response: Success\r\nActionID: ivr-5e1f0a-9\r\nMessage: Originate successfully queued\r\n\r\n'
        << b'Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: ivr-5e1f0a-9\r\nResponse: Failure\r\n'
           b'Channel: Local/102@officer\r\nContext: caller-sim\r\nExten: ami_long\r\nReason: 5\r\n'
           b'Uniqueid: <unknown>\r\nCallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\n\r\n'

        A failed call (busy, no answer...) is a result with ``success=False``, not an
        exception. ``AMIActionError`` means Asterisk refused to queue it
        (``Originate failed``, ``Channel not specified``). ``AMITimeout`` means no
        event within ``wait`` seconds (keep ``wait`` above ``timeout_ms``);
        ``AMIConnectionLost`` means the outcome is unknown. Never re-sent (M8).
        """
        headers: list[tuple[str, str]] = [("Channel", channel)]
        if application is not None:
            if context is not None or exten is not None:
                raise ValueError("originate: give either application/data or context/exten, not both")
            headers.append(("Application", application))
            if data is not None:
                headers.append(("Data", data))
        else:
            if not context or not exten:
                raise ValueError("originate: context and exten are required without application")
            if data is not None:
                raise ValueError("originate: data goes with application")
            headers += [("Context", context), ("Exten", exten), ("Priority", str(priority))]
        if caller_id is not None:
            headers.append(("CallerID", caller_id))
        headers.append(("Timeout", str(int(timeout_ms))))
        if account is not None:
            headers.append(("Account", account))
        for key, value in (variables or {}).items():
            if not key or "=" in key or any(c in key or c in value for c in _VARIABLE_FORBIDDEN):
                raise AMIEncodingError(f'originate variable {key!r}: name/value may not contain = , " or \\')
            headers.append(("Variable", f"{key}={value}"))
        # Always lowercase 'true': ast_true() on Asterisk's side, and panoramisk
        # compared with 'false' only (M2, M3). Sync Originate also holds back every
        # event on the connection until the call is answered (PROTOCOL.md A7).
        headers.append(("Async", "true"))

        action_id, payload, described = self._encode("Originate", headers)
        session = self._require_session()
        pending = _Pending(originate=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        session.send(action_id, payload, described, pending)
        try:
            _checked(await self._wait(pending.response, min(self.config.action_timeout, wait), "Originate"))
            assert pending.originate is not None
            event = await self._wait(pending.originate, max(0.0, deadline - loop.time()), "OriginateResponse")
        finally:
            session.pending.pop(action_id, None)
            if pending.originate is not None and not pending.originate.done():
                pending.originate.cancel()
        result = _originate_result(event.as_dict())
        log.info(
            "AMI originate %s: %s reason=%s uniqueid=%s",
            channel,
            "success" if result.success else "failure",
            result.reason,
            result.uniqueid,
        )
        return result

    # -- events ------------------------------------------------------------------
    def subscribe(
        self, pattern: str, callback: Callable[[dict[str, str]], Awaitable[None]], *, max_queue: int = 1000
    ) -> Callable[[], None]:
        """Route events whose name matches ``pattern`` (fnmatch, case-sensitive as
        in panoramisk: ``"Hangup"``, ``"Dial*"``, ``"Bridge*"``, ``"*"``) to the async
        ``callback``, in arrival order, one at a time. Returns ``unsubscribe()``.

        The callback gets its own ``dict`` copy of the event, e.g.
        ``{"Event": "Hangup", "Privilege": "call,all", "Channel": "Local/100@officer-0000002d;2",
        ..., "Cause": "16", "Cause-txt": "Normal Clearing"}``.
        """
        if not callable(callback):
            raise TypeError("callback must be an async callable")
        subscription = _Subscription(pattern, callback, max_queue)
        self._subscriptions.append(subscription)
        self._manager.register_event(pattern, subscription)
        self._start_worker(subscription)

        def unsubscribe() -> None:
            if subscription not in self._subscriptions:
                return
            self._subscriptions.remove(subscription)
            self._manager.unregister(pattern, subscription)
            if subscription.task is not None:
                subscription.task.cancel()  # close() awaits it if still running

        return unsubscribe

    def _start_worker(self, subscription: _Subscription) -> None:
        if self._closed or subscription.task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # subscribed before the loop runs: start() starts it
        task = loop.create_task(subscription.run(), name=f"ami-events:{subscription.pattern}")
        subscription.task = task
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    def _dispatch(self, message: AMIMessage) -> None:
        self._manager.dispatch(message)

    # -- internals -----------------------------------------------------------------
    def _make_protocol(self) -> _AMIProtocol:
        """``protocol_factory`` handed to panoramisk: one fresh session per connection."""
        return _AMIProtocol(_Session(self))

    def _set_state(self, state: str) -> None:
        if state == self._state:
            return
        log.info("AMI %s -> %s", self._state, state)
        self._state = state
        changed, self._state_changed = self._state_changed, asyncio.Event()
        changed.set()

    def _require_session(self) -> _Session:
        session = self._session
        if self._state != "connected" or session is None or not session.logged_in or not session.is_open:
            detail = f": {self._last_error}" if self._last_error else ""
            raise AMIUnavailable(f"AMI is {self._state}{detail}")
        return session

    def _encode(self, name: str, headers: list[tuple[str, str]]) -> tuple[str, bytes, str]:
        action_id = f"{self._id_prefix}-{next(self._ids)}"
        data = encode_action(name, action_id, headers)  # refuses CR/LF/NUL and long lines (M10)
        return action_id, data, describe([("Action", name), ("ActionID", action_id), *headers])

    @staticmethod
    async def _wait(fut: asyncio.Future[AMIMessage], timeout: float, what: str) -> AMIMessage:
        try:
            return await aio.wait_for(fut, timeout)
        except TimeoutError:
            raise AMITimeout(f"AMI {what}: no reply within {timeout:.1f}s") from None

    async def _request(
        self,
        session: _Session | None,
        name: str,
        headers: Iterable[tuple[str, str]],
        *,
        timeout: float | None,
    ) -> dict[str, str]:
        action_id, data, described = self._encode(name, list(headers))
        if session is None:
            session = self._require_session()
        pending = _Pending()
        session.send(action_id, data, described, pending)
        try:
            limit = self.config.action_timeout if timeout is None else timeout
            message = await self._wait(pending.response, limit, name)
        finally:
            session.pending.pop(action_id, None)  # M4: never leaks, whatever happened
        return _checked(message)

    def _on_session_lost(self, session: _Session) -> None:
        if session is self._session and self._state == "connected" and not self._closed:
            self._set_state("connecting")

    async def _run(self) -> None:
        """Connect, serve, reconnect with backoff; stop on auth failure (M9)."""
        attempt = 0
        while True:
            self._set_state("connecting")
            try:
                session = await self._connect()
            except AMIAuthError as exc:
                self._last_error = f"authentication failed: {exc}"
                log.error(
                    "AMI login as %r refused (%s); not retrying until restarted with the right secret",
                    self.config.username,
                    exc,
                )
                self._set_state("auth_failed")
                return
            except (OSError, TimeoutError, AMIProtocolError, AMIActionError, AMIConnectionLost, AMIUnavailable) as exc:
                self._last_error = f"connect to {self.config.host}:{self.config.port} failed: {exc!r}"
            except Exception as exc:  # a bug must not end the reconnect loop
                log.exception("AMI connect failed unexpectedly")
                self._last_error = f"connect failed: {exc!r}"
            else:
                began = asyncio.get_running_loop().time()
                await self._serve(session)
                if self._closed:
                    return
                self._reconnects += 1
                if asyncio.get_running_loop().time() - began >= self.config.reconnect_max:
                    # The session held: this is a fresh outage, start the backoff over.
                    # A session that logs in and drops at once keeps backing off.
                    attempt = 0
            delay = backoff_delay(attempt, self.config.reconnect_min, self.config.reconnect_max, self._rng)
            attempt += 1
            log.warning("AMI down (%s); reconnecting in %.2fs", self._last_error, delay)
            await asyncio.sleep(delay)

    async def _connect(self) -> _Session:
        limit = self.config.action_timeout
        # panoramisk opens the socket: loop.create_connection(protocol_factory, host, port).
        _transport, protocol = await aio.wait_for(self._manager.connect(), limit)
        session: _Session = protocol.session
        try:
            await self._wait_banner(session, limit)
            try:
                # Asterisk sleeps 1 s before ``Authentication failed`` (manager.c:3416-3419).
                credentials = [("Username", self.config.username), ("Secret", self.config.secret)]
                await self._request(session, "Login", [*credentials, ("Events", self.config.events)], timeout=limit)
            except AMIActionError as exc:
                if "authentication failed" in exc.message.lower():
                    raise AMIAuthError(exc.message) from None
                raise
        except BaseException:
            session.abort("login did not complete")
            raise
        session.logged_in = True
        return session

    @staticmethod
    async def _wait_banner(session: _Session, timeout: float) -> None:
        try:
            await aio.wait_for(asyncio.shield(session.banner), timeout)
        except TimeoutError:
            raise AMITimeout(f"no AMI banner within {timeout:.1f}s") from None

    async def _serve(self, session: _Session) -> None:
        self._session = session
        self._connected_since = datetime.now(UTC)
        log.info("AMI logged in to %s:%s as %r", self.config.host, self.config.port, self.config.username)
        self._set_state("connected")
        watchdog = asyncio.create_task(self._watchdog(session), name="ami-ping")
        try:
            await asyncio.shield(session.closed)
        finally:
            watchdog.cancel()
            await asyncio.wait([watchdog])
            if not session.closed.done():  # we are being cancelled: close() drops the socket
                session.abort("client closed")
            self._last_error = session.close_reason
            self._session = None
            self._connected_since = None
            if not self._closed:
                self._set_state("connecting")

    async def _watchdog(self, session: _Session) -> None:
        r"""Our own Ping every ``ping_interval``; a missing Pong aborts the transport (M6).

        >> b'Action: Ping\r\nActionID: ivr-5e1f0a-3\r\n\r\n'
        << b'Response: Success\r\nActionID: ivr-5e1f0a-3\r\nPing: Pong\r\nTimestamp: 1796312897.714911\r\n\r\n'
        """
        interval = self.config.ping_interval
        timeout = min(self.config.action_timeout, interval)
        while True:
            done, _ = await asyncio.wait([session.closed], timeout=interval)
            if done:
                return
            try:
                await self._request(session, "Ping", (), timeout=timeout)
            except AMITimeout:
                log.warning("AMI Ping not answered within %.1fs: dropping the connection", timeout)
                session.abort(f"no Pong within {timeout:.1f}s (ping watchdog)")
                return
            except AMIActionError as exc:  # ``Asterisk is shutting down``: EOF follows
                log.warning("AMI Ping refused: %s", exc.message)
            except (AMIConnectionLost, AMIUnavailable):
                return
