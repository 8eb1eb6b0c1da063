"""Test helpers for emergency routing: duty officers' phones.

``ScreeningAsterisk`` is the simulated Asterisk (``ivr.simulator``) with
``Dial``'s pre-bridge subroutine ``U()`` played for real. When a Dial carries
``U(<context>^<args>)`` and an officer's phone answers, it opens a **second
FastAGI session** to the server, as Asterisk runs ``[callcenterscreen]`` on the
officer's channel: script ``screen``, the ``U()`` arguments as ``agi_arg_N``,
the caller's inheritable (``_``-prefixed) variables inherited, the officer's
keys played there. Then it does what the subroutine in
``dialplans/extensions.conf`` does with the decision: copy it onto the caller's
channel as ``SHARED(IVR_SCREEN_DECISION)`` (unless TAKEN), bridge only on
ACCEPT (DIALSTATUS ANSWER, conversation, ``-1`` when the officer hangs up),
otherwise ``GOSUB_RESULT=CONTINUE`` (DIALSTATUS still ANSWER, Dial returns 0).
As Asterisk's ``app_dial`` does, only the first phone to answer is screened
(the others stop ringing); ``parallel=True`` screens every answering phone at
once, to check that two officers pressing 1 together are told apart.

``OfficerPhones`` plays the phones the callback loop originates to through the
fake AMI (``tests/fake_ami.py``): each Originate gets its scripted outcome, and
an answered one becomes a FastAGI ``ack`` session with the job id and token
taken from the Originate's ``Variable:`` headers, as ``[callcenter-callback]``
would pass them.

What should move into ``ivr/simulator.py`` proper: ``SHARED()`` read/write,
variable inheritance into a child channel, and ``U()`` (a Dial option that
runs a FastAGI sub-session on the callee's leg and honours GOSUB_RESULT).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fake_ami import FakeAMI, OriginateOutcome

from ivr.simulator import CallRecord, CallSetup, DialAttempt, Dialled, Prompt, SimulatedAsterisk

_SHARED = re.compile(r"SHARED\(([A-Za-z0-9_]+)\)")
#: What the officer's leg shows as caller ID: the IVR's own number (README, second round).
IVR_PRESENTED = ("0286591000", "Call Center Protokol")


@dataclass
class Phone:
    """A duty officer's phone, as ``Dial`` meets it."""

    status: str = "ANSWER"  # ANSWER, NOANSWER, BUSY, CONGESTION or CHANUNAVAIL
    #: Virtual seconds of ringing before the officer picks up.
    answer_after: float = 4.0
    #: What the officer presses on the screening leg (simulator key groups).
    keys: Sequence[str] = ()
    key_source: Callable[[Prompt], Awaitable[str]] | None = None
    #: Seconds of conversation once bridged.
    talk: int = 30


@dataclass
class Screening:
    target: str
    record: CallRecord

    @property
    def decision(self) -> str:
        return self.record.variables.get("IVR_SCREEN_DECISION", "")


class ScreeningAsterisk(SimulatedAsterisk):
    def __init__(
        self,
        setup: CallSetup,
        *,
        agi: tuple[str, int],
        phones: Mapping[str, Phone],
        parallel: bool = False,
        hangup_at_dial: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(setup, **kwargs)
        self.agi = agi
        self.phones = dict(phones)
        self.parallel = parallel
        #: The caller hangs up while the N-th Dial (1-based) is ringing.
        self.hangup_at_dial = hangup_at_dial
        self.shared: dict[str, str] = {}
        self.screenings: list[Screening] = []
        self.dials = 0

    # -- SHARED() on this channel ----------------------------------------------------
    def _read_function(self, expr: str) -> str | None:
        found = _SHARED.fullmatch(expr)
        if found:
            return self.shared.get(found.group(1))
        return super()._read_function(expr)

    def _set_variable(self, name: str, value: str) -> None:
        found = _SHARED.fullmatch(name)
        if found:
            self.shared[found.group(1)] = value
            self.record.variables[name] = value
            return
        super()._set_variable(name, value)

    # -- Dial with U() ------------------------------------------------------------------
    async def _app_dial(self, data: str) -> int:
        parts = data.split(",")
        options = ",".join(parts[2:])
        sub = re.search(r"U\(([^)]*)\)", options)
        if sub is None or self.dead:
            return await super()._app_dial(data)
        self.dials += 1
        targets = tuple(t for t in parts[0].split("&") if t)
        ring = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 60
        context, *args = sub.group(1).split("^")
        self._lose_typeahead("EXEC Dial")
        phones = [(t, self.phones.get(t, Phone(status="CHANUNAVAIL"))) for t in targets]
        answering = sorted((p.answer_after, i, t, p) for i, (t, p) in enumerate(phones) if p.status == "ANSWER")
        first_answer = answering[0][0] if answering else None

        if self.hangup_at_dial == self.dials:
            self._hangs_up_during("EXEC Dial")
            return self._dial_ends(data, targets, options, "CANCEL", at=min(1.0, ring / 2))
        action = await self._caller_action("EXEC Dial", first_answer if first_answer is not None else ring)
        if action.kind == "hangup" and (first_answer is None or (action.at or 0) < first_answer):
            return self._dial_ends(data, targets, options, "CANCEL", at=action.at or 0.0)
        if first_answer is None:
            statuses = {p.status for _, p in phones}
            status = next(
                (s for s in ("NOANSWER", "BUSY", "CONGESTION", "CHANUNAVAIL") if s in statuses), "CHANUNAVAIL"
            )
            return self._dial_ends(data, targets, options, status, at=float(ring) if status == "NOANSWER" else 0.0)

        chosen = answering if self.parallel else answering[:1]
        screenings = await asyncio.gather(*(self._screen(t, p, context, args) for _, _, t, p in chosen))
        self.screenings.extend(screenings)
        for screening in screenings:  # the subroutine's SHARED() copy
            if screening.decision != "TAKEN":
                self.shared["IVR_SCREEN_DECISION"] = f"{screening.decision}:{args[0] if args else ''}"
        winner = next(
            ((t, p, s) for (_, _, t, p), s in zip(chosen, screenings, strict=True) if s.decision == "ACCEPT"), None
        )
        target, phone, screening = winner or (chosen[0][2], chosen[0][3], screenings[0])
        screened = max(s.record.duration for s in screenings)
        talk = phone.talk if winner else 0
        peer = f"{target}-{next(self._local_counter):08x}" + (";1" if target.startswith("Local/") else "")
        answered = int(screened + talk)
        self._set_quietly(
            DIALSTATUS="ANSWER",
            HANGUPCAUSE="16",
            DIALEDTIME=str(int(phone.answer_after) + answered),
            ANSWEREDTIME=str(answered),
            DIALEDPEERNAME=peer,
            DIALEDPEERNUMBER=target.split("/", 1)[-1],
        )
        self.clock += phone.answer_after + screened + talk
        self._log_dial(data, targets, options, "ANSWER", talk)
        if not winner:
            return 0  # GOSUB_RESULT=CONTINUE: the caller's dialplan (our AGI) goes on
        return 0 if "g" in options.split("(")[0] else -1  # the officer hung up (agi-dial-answer.txt)

    def _dial_ends(self, data: str, targets: tuple[str, ...], options: str, status: str, *, at: float) -> int:
        self._set_quietly(DIALSTATUS=status, HANGUPCAUSE="0", DIALEDTIME="", ANSWEREDTIME="", DIALEDPEERNAME="")
        self.clock += at
        self._log_dial(data, targets, options, status, 0)
        return -1 if status == "CANCEL" else 0

    def _log_dial(self, data: str, targets: tuple[str, ...], options: str, status: str, talk: int) -> None:
        attempt = DialAttempt(data, targets, data.split(",")[1] if "," in data else "", options, status, talk)
        self.record.dial_attempts.append(attempt)
        self._log(Dialled(at=self.clock, attempt=attempt))

    async def _screen(self, target: str, phone: Phone, context: str, args: list[str]) -> Screening:
        inherited = {name[1:]: value for name, value in self.vars.items() if name.startswith("_")}
        suffix = f"{next(self._local_counter):08x}"
        setup = CallSetup(
            script="screen",
            options={"lang": "id"},
            args=tuple(args),
            request_host=f"{self.agi[0]}:{self.agi[1]}",
            caller_id=IVR_PRESENTED[0],
            caller_name=IVR_PRESENTED[1],
            channel=f"{target}-{suffix}" + (";1" if target.startswith("Local/") else ""),
            context=context,
            extension="s",
            priority=3,
            channel_vars=inherited,
        )
        leg = SimulatedAsterisk(setup, keys=list(phone.keys), key_source=phone.key_source)
        return Screening(target, await leg.run(*self.agi, timeout=30))


@dataclass
class EmergencyCall:
    record: CallRecord
    screenings: list[Screening] = field(default_factory=list)
    shared: dict[str, str] = field(default_factory=dict)


async def place_emergency_call(
    host: str,
    port: int,
    *,
    phones: Mapping[str, Phone],
    keys: Sequence[str] = (),
    script: str = "emergency",
    caller_id: str | None = "081234567890",
    caller_name: str | None = None,
    parallel: bool = False,
    hangup_at_dial: int | None = None,
    timeout: float = 60.0,
) -> EmergencyCall:
    setup = CallSetup(
        script=script,
        options={"lang": "id"},
        request_host=f"{host}:{port}",
        caller_id=caller_id,
        caller_name=caller_name,
        channel_vars={},
    )
    asterisk = ScreeningAsterisk(
        setup, agi=(host, port), phones=phones, parallel=parallel, hangup_at_dial=hangup_at_dial, keys=list(keys)
    )
    record = await asterisk.run(host, port, timeout=timeout)
    return EmergencyCall(record, asterisk.screenings, asterisk.shared)


# -- callbacks over the fake AMI -----------------------------------------------------------

#: What one callback to a phone does: keys pressed on the ``ack`` leg (it answers),
#: or None (rings out: Reason 3), or "busy" (Reason 5).
Answer = Sequence[str] | str | None


class OfficerPhones:
    """Scripted phones behind the fake AMI. Use as an async context manager;
    it owns the task that watches for Originates and the ``ack`` sessions."""

    def __init__(
        self,
        fake: FakeAMI,
        agi: tuple[str, int],
        script: Mapping[str, Sequence[Answer]],
        *,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.fake = fake
        #: When given, an answered phone waits for it before its ``ack`` session starts.
        self.gate = gate
        self.agi = agi
        self.script = {channel: deque(answers) for channel, answers in script.items()}
        self.calls: list[tuple[str, dict[str, str], CallRecord]] = []
        self._keys: dict[str, deque[Sequence[str]]] = {}
        self._seen: set[tuple[int, int]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        fake.originate_outcomes = self  # type: ignore[assignment]  # FakeAMI only calls .get()

    # the fake calls this for every Originate, at the moment it queues it
    def get(self, channel: str, default: OriginateOutcome | None = None) -> OriginateOutcome:
        answers = self.script.get(channel)
        answer = answers.popleft() if answers else None
        if answer is None:
            return OriginateOutcome(response="Failure", reason=3)
        if answer == "busy":
            return OriginateOutcome(response="Failure", reason=5)
        self._keys.setdefault(channel, deque()).append(list(answer))
        return OriginateOutcome(response="Success", reason=4)

    async def __aenter__(self) -> OfficerPhones:
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = [t for t in (self._watcher, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    def originates(self) -> list[dict[str, str]]:
        """Every Originate the fake received: its headers, Variables merged in."""
        out = []
        for conn in self.fake.connections:
            for raw in conn.raw_actions:
                if b"Action: Originate" in raw:
                    out.append(_headers(raw))
        return out

    async def wait_calls(self, count: int, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.calls) < count:
                changed = self._changed
                await changed.wait()

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await self.fake.wait_until(self._fresh, timeout=3600)
            for key, raw in self._new():
                self._seen.add(key)
                headers = _headers(raw)
                keys = self._keys.get(headers.get("Channel", ""))
                if keys:
                    task = asyncio.create_task(self._answer(headers, keys.popleft()))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    def _new(self) -> list[tuple[tuple[int, int], bytes]]:
        return [
            ((c_index, a_index), raw)
            for c_index, conn in enumerate(self.fake.connections)
            for a_index, raw in enumerate(conn.raw_actions)
            if b"Action: Originate" in raw and (c_index, a_index) not in self._seen
        ]

    def _fresh(self) -> bool:
        return bool(self._new())

    async def _answer(self, headers: dict[str, str], keys: Sequence[str]) -> None:
        # Asterisk sends the OriginateResponse when the phone answers; the
        # dialplan starts the AGI after that.
        marker = f"ActionID: {headers.get('ActionID', '')}\r\n".encode()

        def responded() -> bool:
            return any(
                b"Event: OriginateResponse" in chunk and marker in chunk
                for conn in self.fake.connections
                for chunk in conn.sent
            )

        await self.fake.wait_until(responded, timeout=10)
        if self.gate is not None:
            async with asyncio.timeout(30):
                await self.gate.wait()
        channel = headers.get("Channel", "")
        setup = CallSetup(
            script="ack",
            options={"lang": "id"},
            args=(headers.get("IVR_CALLBACK_JOB", ""), headers.get("IVR_CALLBACK_TOKEN", "")),
            request_host=f"{self.agi[0]}:{self.agi[1]}",
            channel=f"{channel}-0000{len(self.calls) + 10:04x}",
            context=headers.get("Context", "callcenter-callback"),
            extension="s",
            priority=2,
        )
        record = await SimulatedAsterisk(setup, keys=list(keys)).run(*self.agi, timeout=60)
        self.calls.append((channel, headers, record))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


def _headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key == "Variable":
            name, _, var_value = value.partition("=")
            headers[name] = var_value
        else:
            headers[key] = value
    return headers


# -- wiring and faults shared by the emergency tests -------------------------------------------


@contextlib.asynccontextmanager
async def emergency_desk(runtime: Any) -> Any:
    """The runtime's emergency services, built and started here if ``ivr.app``
    does not do it yet (``Services.emergency``)."""
    from ivr.emergency.service import build_emergency

    desk = getattr(runtime.services, "emergency", None)
    if desk is not None:
        yield desk
        return
    desk = build_emergency(runtime.settings, runtime.sessions, runtime.services.ami)
    runtime.services.emergency = desk
    await desk.start()
    try:
        yield desk
    finally:
        await desk.close()
        runtime.services.emergency = None


async def install_roster(runtime: Any, desk: Any, roster: Any) -> None:
    from ivr.emergency import store

    async with runtime.sessions.begin() as session:
        await store.save_roster(session, roster, by="test")
    assert await desk.roster.refresh(force=True)


@contextlib.contextmanager
def database_down(engine: Any) -> Any:
    """Every statement fails as if the database server had stopped (both backends)."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    from ivr.storage.database import companion_engines

    def refuse(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        raise OperationalError(statement, params, ConnectionRefusedError("database stopped (test)"))

    # The call-record writer's own engine on an SQLite file goes down with it.
    engines = [engine.sync_engine, *companion_engines(engine)]
    for each in engines:
        event.listen(each, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        for each in engines:
            event.remove(each, "before_cursor_execute", refuse)


async def until_ticked(loop: Any, check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Wait, pass by pass of the callback loop, until ``check`` holds."""
    async with asyncio.timeout(timeout):
        while not await check():
            await loop.wait_ticks(1, timeout=timeout)


async def spool_replayed(spool: Any, timeout: float = 15.0) -> None:
    """Wake the spool and wait until its backlog is written. The spool has no
    event to wait on, so this looks at its backlog every 50 ms (bounded)."""
    spool._wake.set()
    async with asyncio.timeout(timeout):
        while spool.backlog():  # noqa: ASYNC110 - no event exists for "the spool replayed"
            await asyncio.sleep(0.05)
