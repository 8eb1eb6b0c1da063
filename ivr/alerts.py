"""Urgent alerts: a sudden schedule change reaches the protocol desk at once.

Two ways out, both from one ``AlertService`` that ``ivr serve`` owns:

* **an event** on the ``AlertBus`` (an in-process asyncio broadcast): the web
  app's live board subscribes and shows the alarm until it is acknowledged;
* **a call to the protocol desk** over AMI: an async ``Originate`` to
  ``settings.alert_dial`` that, once answered, runs ``settings.alert_context``
  with the alert's id as the extension; its dialplan starts our ``alert`` flow
  (``ivr/flows/alert.py``), which plays the caller's recorded description and
  asks for 1 to acknowledge.

The alert's state lives in the database (``urgent_alerts``), never only in
memory, so that nothing is lost and nothing is doubled:

* one row per ticket (unique): the flow that saved the ticket raises it, and a
  periodic scan raises any the flow could not (the database was down and the
  ticket came later from the spool; the process died);
* a call is placed only after a conditional ``UPDATE`` claimed the attempt
  (``pending`` and due, or a lease that ran out): with several processes on
  one database, each attempt is placed by exactly one of them;
* while AMI is down nothing is claimed: the alert waits, and is placed when
  AMI is back; ``AMIUnavailable`` (not sent) gives the attempt back;
* an Originate whose outcome is unknown (``AMIConnectionLost``, no
  ``OriginateResponse``) is not re-sent at once: the lease runs its course
  (``alert_ack_seconds``) and only then is the desk called again, unless it
  acknowledged meanwhile. A desk that may have been rung twice is better than
  an alert nobody heard, but not twice in a row by reflex.

Every attempt and the acknowledgement go on the ticket's timeline (events of
kind ``alert``), as staff actions do.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr import tickets
from ivr.ami import (
    AMIActionError,
    AMIClient,
    AMIConnectionLost,
    AMIEncodingError,
    AMITimeout,
    AMIUnavailable,
)
from ivr.config import Settings
from ivr.records import STORAGE_ERRORS
from ivr.storage.models import Office, Ticket, TicketEvent
from ivr.storage.request_models import (
    ALERT_ACKNOWLEDGED,
    ALERT_CALLING,
    ALERT_GAVE_UP,
    ALERT_PENDING,
    UrgentAlert,
)

log = logging.getLogger("ivr.alerts")

#: Tickets that need an alert: a sudden schedule change, saved or left with a message.
ALERT_KINDS = (tickets.SCHEDULE_CHANGE,)
ALERT_STATUSES = (tickets.OPEN, tickets.ABANDONED_WITH_MESSAGE)
#: The scan does not dig out tickets older than this (a restored backup, a migration).
SCAN_WINDOW = timedelta(hours=24)
#: ``OriginateResponse`` Reason codes (AST_CONTROL_*), as ami-originate-fail.txt shows them.
_REASONS = {0: "failed", 1: "hung-up", 3: "no-answer", 4: "answered", 5: "busy", 8: "congestion"}
#: Alerts claimed per pass; the rest wait for the next one.
_BATCH = 20
#: Beyond the ring time, how long to wait for the ``OriginateResponse``.
_ORIGINATE_MARGIN = 15.0


# -- the broadcast ---------------------------------------------------------------


@dataclass(frozen=True)
class AlertEvent:
    """What happened to an alert. ``kind``: ``raised``, ``calling``,
    ``call-result`` (``data["result"]``), ``acknowledged``, ``gave-up``."""

    kind: str
    alert_id: int
    ticket_number: str | None
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


class AlertSubscription:
    """One subscriber's bounded queue. Use as a context manager; a subscriber
    too slow to keep up loses the oldest events (counted in ``dropped``)
    rather than slowing the calls that publish."""

    def __init__(self, bus: AlertBus, max_queue: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[AlertEvent] = asyncio.Queue(max_queue)
        self.dropped = 0

    def offer(self, event: AlertEvent) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def next(self, timeout: float) -> AlertEvent:
        """The next event; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            return await self.queue.get()

    def __enter__(self) -> AlertSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bus.unsubscribe(self)


class AlertBus:
    """In-process broadcast of alert events (one per ``ivr serve``; other
    processes see the same alerts through the database)."""

    def __init__(self, max_queue: int = 256) -> None:
        self.max_queue = max_queue
        self._subscribers: list[AlertSubscription] = []

    def subscribe(self) -> AlertSubscription:
        subscription = AlertSubscription(self, self.max_queue)
        self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: AlertSubscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(subscription)

    def publish(self, event: AlertEvent) -> None:
        for subscription in list(self._subscribers):
            subscription.offer(event)


# -- the service -----------------------------------------------------------------


@dataclass(frozen=True)
class AlertView:
    """An alert as the alert flow and the board need it."""

    id: int
    state: str
    attempts: int
    ticket_id: int
    ticket_number: str | None
    ticket_kind: str
    details: dict[str, Any]
    office_name: str | None
    caller_e164: str | None
    recording_path: str
    acknowledged_by: str


class AlertService:
    """Raises, places and acknowledges urgent alerts (see the module docstring).

    ``start()`` starts the owned dispatcher task; ``close()`` cancels it and
    every call it has in flight."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        ami: AMIClient | None,
        *,
        bus: AlertBus | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.ami = ami
        self.bus = bus or AlertBus()
        self.clock = clock
        #: Names this process in leases (host and a random tag: two processes
        #: on one host differ).
        self.owner = f"{socket.gethostname()[:60]}-{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._calls: dict[int, asyncio.Task[None]] = {}

    # -- lifecycle -----------------------------------------------------------
    async def start(self) -> None:
        if self._runner is None:
            self._wake.set()  # a first pass at once: alerts left from before a restart
            self._runner = asyncio.create_task(self.run(), name="alerts")

    async def close(self) -> None:
        tasks = [t for t in (self._runner, *self._calls.values()) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None
        self._calls.clear()

    def wake(self) -> None:
        self._wake.set()

    async def wait_idle(self, timeout: float) -> None:
        """Wait until no call to the desk is in flight in this process."""
        async with asyncio.timeout(timeout):
            while self._calls:
                await asyncio.wait(list(self._calls.values()))

    async def run(self) -> None:
        """Scan and dispatch, on a wake-up or every ``alert_poll_seconds``."""
        while True:
            try:
                async with asyncio.timeout(self.settings.alert_poll_seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.scan_missing()
                await self.dispatch_due()
            except STORAGE_ERRORS as exc:
                log.warning("alerts: database unavailable (%s); retrying", type(exc).__name__)
            except Exception:
                # A bug in one pass must not stop every later alert.
                log.exception("alerts: dispatch pass failed")

    # -- raising ---------------------------------------------------------------
    async def raise_alert(self, ticket_id: int, recording_path: str = "") -> int | None:
        """Create the ticket's alert unless it exists; returns its id, or None
        when the database is unavailable (the scan raises it later)."""
        try:
            alert_id = await self._insert(ticket_id, recording_path)
        except STORAGE_ERRORS as exc:
            log.warning("alert for ticket %s not raised now (%s); the scan will", ticket_id, type(exc).__name__)
            return None
        self.wake()
        return alert_id

    async def _insert(self, ticket_id: int, recording_path: str) -> int:
        now = self.clock()
        try:
            async with self.sessions.begin() as session:
                alert = UrgentAlert(
                    ticket_id=ticket_id, recording_path=recording_path, next_attempt_at=now, created_at=now
                )
                session.add(alert)
                await session.flush()
                alert_id = alert.id
                number = await session.scalar(select(Ticket.number).where(Ticket.id == ticket_id))
                session.add(TicketEvent(ticket_id=ticket_id, at=now, kind="alert", data={"action": "raised"}))
        except IntegrityError:
            async with self.sessions() as session:
                existing = await session.scalar(select(UrgentAlert.id).where(UrgentAlert.ticket_id == ticket_id))
            if existing is None:
                raise
            return existing
        log.warning("urgent alert %s raised for ticket %s", alert_id, number)
        self.bus.publish(AlertEvent("raised", alert_id, number, now, {"ticket_id": ticket_id}))
        return alert_id

    async def scan_missing(self) -> int:
        """Raise the alerts of urgent tickets that have none (exactly once: the
        unique ticket id settles a race with another process)."""
        since = self.clock() - SCAN_WINDOW
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Ticket.id, Ticket.details).where(
                        Ticket.kind.in_(ALERT_KINDS),
                        Ticket.priority == tickets.URGENT,
                        Ticket.status.in_(ALERT_STATUSES),
                        Ticket.created_at >= since,
                        ~exists().where(UrgentAlert.ticket_id == Ticket.id),
                    )
                )
            ).all()
        for ticket_id, details in rows:
            await self._insert(ticket_id, str((details or {}).get("description", "")))
        return len(rows)

    # -- placing calls -----------------------------------------------------------
    def _ami_ready(self) -> bool:
        return self.ami is not None and self.ami.state == "connected"

    async def dispatch_due(self) -> int:
        """Claim the due alerts and call the desk for each; returns how many
        calls were started. Nothing is claimed while AMI is down."""
        if not self._ami_ready():
            return 0
        now = self.clock()
        async with self.sessions() as session:
            due = list(
                await session.scalars(
                    select(UrgentAlert.id)
                    .where(self._due(now))
                    .order_by(UrgentAlert.next_attempt_at, UrgentAlert.id)
                    .limit(_BATCH)
                )
            )
        started = 0
        for alert_id in due:
            if alert_id in self._calls:
                continue
            attempt = await self._claim(alert_id, now)
            if attempt is None:
                continue
            task = asyncio.create_task(self._place(alert_id, attempt), name=f"alert-{alert_id}")
            self._calls[alert_id] = task
            task.add_done_callback(functools.partial(self._call_done, alert_id))
            started += 1
        return started

    def _call_done(self, alert_id: int, _task: asyncio.Task[None]) -> None:
        self._calls.pop(alert_id, None)

    @staticmethod
    def _due(now: datetime) -> Any:
        return or_(
            and_(UrgentAlert.state == ALERT_PENDING, UrgentAlert.next_attempt_at <= now),
            and_(UrgentAlert.state == ALERT_CALLING, UrgentAlert.lease_until < now),
        )

    async def _claim(self, alert_id: int, now: datetime) -> int | None:
        """Take the next attempt of a due alert for this process; None when
        another process took it, it is no longer due, or it has used up its
        attempts (it is then marked ``gave_up``)."""
        lease = now + timedelta(seconds=self.settings.alert_ring_seconds + _ORIGINATE_MARGIN + 5)
        async with self.sessions.begin() as session:
            alert = await session.get(UrgentAlert, alert_id)
            if alert is None:
                return None
            if alert.attempts >= self.settings.alert_max_attempts:
                result = await session.execute(
                    update(UrgentAlert)
                    .where(UrgentAlert.id == alert_id, self._due(now))
                    .values(state=ALERT_GAVE_UP, lease_owner="", lease_until=None, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    session.add(
                        TicketEvent(
                            ticket_id=alert.ticket_id,
                            at=now,
                            kind="alert",
                            data={"action": "gave-up", "attempts": alert.attempts},
                        )
                    )
                    gave_up = True
                else:
                    gave_up = False
                number = await session.scalar(select(Ticket.number).where(Ticket.id == alert.ticket_id))
            else:
                result = await session.execute(
                    update(UrgentAlert)
                    .where(UrgentAlert.id == alert_id, self._due(now))
                    .values(
                        state=ALERT_CALLING,
                        attempts=UrgentAlert.attempts + 1,
                        lease_owner=self.owner,
                        lease_until=lease,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                return alert.attempts + 1 if result.rowcount == 1 else None  # type: ignore[attr-defined]
        if gave_up:
            log.error("urgent alert %s: nobody acknowledged after %s calls", alert_id, alert.attempts)
            self.bus.publish(AlertEvent("gave-up", alert_id, number, now, {"attempts": alert.attempts}))
        return None

    async def _place(self, alert_id: int, attempt: int) -> None:
        """One call to the desk (an owned task). Whatever goes wrong, the lease
        runs out and the alert is due again."""
        try:
            await self._call_desk(alert_id, attempt)
        except STORAGE_ERRORS as exc:
            log.warning("urgent alert %s: database unavailable during the call (%s)", alert_id, type(exc).__name__)
        except Exception:
            log.exception("urgent alert %s: placing the call failed", alert_id)

    async def _call_desk(self, alert_id: int, attempt: int) -> None:
        """Its outcome moves the alert on, but only while this process still
        holds the lease (an acknowledgement always wins)."""
        settings = self.settings
        view = await self.get(alert_id)
        number = view.ticket_number if view else None
        self.bus.publish(AlertEvent("calling", alert_id, number, self.clock(), {"attempt": attempt}))
        assert self.ami is not None
        try:
            result = await self.ami.originate(
                channel=settings.alert_dial,
                context=settings.alert_context,
                exten=str(alert_id),
                caller_id=f'"Perubahan Jadwal" <{number or alert_id}>',
                timeout_ms=settings.alert_ring_seconds * 1000,
                wait=settings.alert_ring_seconds + _ORIGINATE_MARGIN,
            )
        except AMIUnavailable:
            # Not sent: the attempt is given back and the alert waits for AMI.
            await self._settle(alert_id, attempt, "ami-unavailable", retry_in=settings.alert_poll_seconds, refund=True)
            return
        except (AMIConnectionLost, AMITimeout) as exc:
            # Maybe placed: no second call before the lease (the ack window) ends.
            log.warning("urgent alert %s: outcome unknown (%s)", alert_id, type(exc).__name__)
            await self._settle(alert_id, attempt, "unknown", lease_for=settings.alert_ack_seconds)
            return
        except (AMIActionError, AMIEncodingError) as exc:
            log.error("urgent alert %s: Asterisk refused the call to %s: %s", alert_id, settings.alert_dial, exc)
            await self._settle(alert_id, attempt, "refused", retry_in=settings.alert_retry_seconds)
            return
        outcome = "answered" if result.success else _REASONS.get(result.reason or 0, "failed")
        if result.success:
            # The alert flow now plays the description; it acknowledges or releases.
            await self._settle(alert_id, attempt, outcome, lease_for=settings.alert_ack_seconds)
        else:
            await self._settle(alert_id, attempt, outcome, retry_in=settings.alert_retry_seconds)

    async def _settle(
        self,
        alert_id: int,
        attempt: int,
        outcome: str,
        *,
        retry_in: float | None = None,
        lease_for: float | None = None,
        refund: bool = False,
    ) -> None:
        now = self.clock()
        values: dict[str, Any] = {"last_result": outcome, "updated_at": now}
        if lease_for is not None:
            values["lease_until"] = now + timedelta(seconds=lease_for)
        else:
            values.update(
                state=ALERT_PENDING,
                lease_owner="",
                lease_until=None,
                next_attempt_at=now + timedelta(seconds=retry_in or 0.0),
            )
        if refund:
            values["attempts"] = UrgentAlert.attempts - 1
        try:
            async with self.sessions.begin() as session:
                result = await session.execute(
                    update(UrgentAlert)
                    .where(
                        UrgentAlert.id == alert_id,
                        UrgentAlert.state == ALERT_CALLING,
                        UrgentAlert.lease_owner == self.owner,
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                current = result.rowcount == 1  # type: ignore[attr-defined]
                ticket_id = await session.scalar(select(UrgentAlert.ticket_id).where(UrgentAlert.id == alert_id))
                if not refund and ticket_id is not None:
                    session.add(
                        TicketEvent(
                            ticket_id=ticket_id,
                            at=now,
                            kind="alert",
                            data={
                                "action": "call",
                                "attempt": attempt,
                                "target": self.settings.alert_dial,
                                "result": outcome,
                            },
                        )
                    )
                number = await session.scalar(select(Ticket.number).where(Ticket.id == ticket_id))
        except STORAGE_ERRORS as exc:
            # The lease runs out and the alert becomes due again: not lost.
            log.warning("urgent alert %s: result %s not saved (%s)", alert_id, outcome, type(exc).__name__)
            return
        log.info("urgent alert %s attempt %s: %s%s", alert_id, attempt, outcome, "" if current else " (superseded)")
        self.bus.publish(AlertEvent("call-result", alert_id, number, now, {"attempt": attempt, "result": outcome}))

    # -- the alert flow's side -----------------------------------------------------
    async def get(self, alert_id: int) -> AlertView | None:
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(UrgentAlert, Ticket, Office.name)
                    .join(Ticket, Ticket.id == UrgentAlert.ticket_id)
                    .outerjoin(Office, Office.id == Ticket.office_id)
                    .where(UrgentAlert.id == alert_id)
                )
            ).first()
        if row is None:
            return None
        alert, ticket, office_name = row
        return AlertView(
            id=alert.id,
            state=alert.state,
            attempts=alert.attempts,
            ticket_id=ticket.id,
            ticket_number=ticket.number,
            ticket_kind=ticket.kind,
            details=dict(ticket.details or {}),
            office_name=office_name,
            caller_e164=ticket.caller_e164,
            recording_path=alert.recording_path,
            acknowledged_by=alert.acknowledged_by,
        )

    async def acknowledge(self, alert_id: int, by: str) -> bool:
        """Close the alarm; True for the first acknowledgement only."""
        now = self.clock()
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(UrgentAlert)
                .where(UrgentAlert.id == alert_id, UrgentAlert.state != ALERT_ACKNOWLEDGED)
                .values(
                    state=ALERT_ACKNOWLEDGED,
                    acknowledged_at=now,
                    acknowledged_by=by[:200],
                    lease_owner="",
                    lease_until=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            ticket_id = await session.scalar(select(UrgentAlert.ticket_id).where(UrgentAlert.id == alert_id))
            session.add(
                TicketEvent(ticket_id=ticket_id, at=now, kind="alert", data={"action": "acknowledged", "by": by})
            )
            number = await session.scalar(select(Ticket.number).where(Ticket.id == ticket_id))
        log.info("urgent alert %s acknowledged by %s", alert_id, by)
        self.bus.publish(AlertEvent("acknowledged", alert_id, number, now, {"by": by}))
        return True

    async def release(self, alert_id: int, outcome: str = "not-acknowledged") -> None:
        """The desk answered but did not press 1: call again after the retry delay."""
        now = self.clock()
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(UrgentAlert)
                .where(UrgentAlert.id == alert_id, UrgentAlert.state == ALERT_CALLING)
                .values(
                    state=ALERT_PENDING,
                    lease_owner="",
                    lease_until=None,
                    last_result=outcome,
                    next_attempt_at=now + timedelta(seconds=self.settings.alert_retry_seconds),
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            log.info("urgent alert %s: answered, not acknowledged; calling again later", alert_id)

    async def open_alerts(self) -> list[AlertView]:
        """Alerts not yet acknowledged (the board's alarm list), oldest first."""
        async with self.sessions() as session:
            ids = list(
                await session.scalars(
                    select(UrgentAlert.id).where(UrgentAlert.state != ALERT_ACKNOWLEDGED).order_by(UrgentAlert.id)
                )
            )
        views = [await self.get(alert_id) for alert_id in ids]
        return [view for view in views if view is not None]
