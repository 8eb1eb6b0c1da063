"""The duty roster, and who to ring for an emergency now.

The roster is plain frozen data (``Roster``): officers with their dial strings,
shifts (start, end, time zone, repeating daily or weekly) each with an
escalation chain (ordered levels; each level sequential or simultaneous, with a
ring time), overrides (a substitute for one occurrence of a shift), and a
fallback chain. :func:`plan` turns it into the chain in force at a moment,
with everything odd about it flagged (no shift covers now, an unknown officer,
an invalid dial string...). It is pure and unit-tested (``tests/test_roster.py``).

:class:`RosterCache` keeps the roster in memory for emergency calls: loaded at
start-up, refreshed when its version changes (checked every few seconds) and
at once after a change in this process, and written to a local snapshot file
so that even a restart during a database outage routes from the last roster
known. A call never waits on the database for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger("ivr.emergency.roster")

#: The same rule as ``ivr.call._DIAL_TARGET`` (a test keeps them equal): refuse
#: anything that could add Dial arguments or options (``,`` ``|``), chain
#: targets (``&``) or expand variables (``${``) once inside ``EXEC Dial``.
DIAL_STRING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/@._:+#*-]{0,120}$")

MODES = ("sequential", "simultaneous")
REPEATS: dict[str, timedelta | None] = {"none": None, "daily": timedelta(days=1), "weekly": timedelta(days=7)}
DEFAULT_RING_SECONDS = 20
DEFAULT_ROUNDS = 2


def valid_dial_string(value: object) -> bool:
    return isinstance(value, str) and DIAL_STRING.match(value) is not None


# -- the roster ------------------------------------------------------------------


@dataclass(frozen=True)
class Officer:
    code: str
    name: str
    dial_strings: tuple[str, ...]
    phone: str = ""
    active: bool = True


@dataclass(frozen=True)
class Level:
    officers: tuple[str, ...]
    mode: str = "sequential"
    ring_seconds: int = DEFAULT_RING_SECONDS


@dataclass(frozen=True)
class Override:
    """``substitute`` stands in for ``replaces`` on the occurrence starting on
    ``date`` (``None``: the only occurrence of a shift that does not repeat)."""

    replaces: str
    substitute: str
    date: date | None = None
    note: str = ""


@dataclass(frozen=True)
class Occurrence:
    shift: Shift
    start: datetime  # wall clock in the shift's zone (naive)
    end: datetime

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.shift.timezone)

    @property
    def aware_start(self) -> datetime:
        return self.start.replace(tzinfo=self.zone)

    @property
    def aware_end(self) -> datetime:
        return self.end.replace(tzinfo=self.zone)


@dataclass(frozen=True)
class Shift:
    """From ``start`` to ``end``: wall-clock times in ``timezone`` (naive
    datetimes), once or repeating every day or week, the last occurrence
    starting on ``until`` at the latest."""

    name: str
    start: datetime
    end: datetime
    timezone: str = "Asia/Jakarta"
    repeat: str = "none"
    until: date | None = None
    rounds: int = DEFAULT_ROUNDS
    levels: tuple[Level, ...] = ()
    overrides: tuple[Override, ...] = ()

    def occurrence_at(self, moment: datetime) -> Occurrence | None:
        """The occurrence that covers ``moment`` (aware), if any.

        Repeating shifts are at most one period long (``document`` checks it),
        so only the latest occurrence that started can cover ``moment``.
        Occurrences are computed on the wall clock, so a daily 16:00 shift
        starts at 16:00 local time even across a UTC-offset change."""
        local = moment.astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None)
        period = REPEATS[self.repeat]
        if local < self.start:
            return None
        step = 0 if period is None else (local - self.start) // period
        start = self.start if period is None else self.start + step * period
        end = self.end if period is None else self.end + step * period
        if not start <= local < end:
            return None
        if self.until is not None and start.date() > self.until:
            return None
        return Occurrence(self, start, end)

    def occurs_on(self, day: date) -> bool:
        """Whether an occurrence starts on ``day`` (where an override may go)."""
        period = REPEATS[self.repeat]
        if period is None:
            return day == self.start.date()
        if day < self.start.date() or (self.until is not None and day > self.until):
            return False
        return (day - self.start.date()) % period == timedelta(0)


@dataclass(frozen=True)
class Chain:
    levels: tuple[Level, ...] = ()
    rounds: int = DEFAULT_ROUNDS


@dataclass(frozen=True)
class Roster:
    officers: tuple[Officer, ...] = ()
    shifts: tuple[Shift, ...] = ()
    fallback: Chain = field(default_factory=Chain)
    version: int = 0
    _by_code: dict[str, Officer] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {o.code: o for o in self.officers})

    def officer(self, code: str) -> Officer | None:
        return self._by_code.get(code)

    @property
    def empty(self) -> bool:
        return not self.shifts and not self.fallback.levels


# -- the chain in force ------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """Something staff must know about how an emergency was routed."""

    code: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.detail}


@dataclass(frozen=True)
class PlannedOfficer:
    code: str
    name: str
    dial_strings: tuple[str, ...]


@dataclass(frozen=True)
class PlannedLevel:
    number: int  # 1-based position in the chain as staff wrote it
    mode: str
    ring_seconds: int
    officers: tuple[PlannedOfficer, ...]


@dataclass(frozen=True)
class Attempt:
    """One Dial of the caller's escalation: one officer (sequential level) or
    the whole level (simultaneous), every dial string of each officer at once."""

    index: int
    round: int
    level: int
    mode: str
    ring_seconds: int
    officers: tuple[PlannedOfficer, ...]

    @property
    def targets(self) -> tuple[str, ...]:
        return _unique(d for o in self.officers for d in o.dial_strings)

    def officer_for(self, dial_string: str) -> PlannedOfficer | None:
        """The officer a dialled channel belongs to: ``PJSIP/201``, or the bare
        ``201@officers`` form of Asterisk's ``DIALEDPEERNUMBER``."""
        for officer in self.officers:
            for candidate in officer.dial_strings:
                if dial_string in (candidate, candidate.split("/", 1)[-1]):
                    return officer
        return None


@dataclass(frozen=True)
class CallbackStep:
    """One step of the callbacks for an unanswered emergency: the dial strings
    originated at once. A sequential level gives one step per officer, a
    simultaneous level one step for all."""

    index: int
    round: int
    level: int
    first_in_level: bool
    targets: tuple[tuple[PlannedOfficer, str], ...]


@dataclass(frozen=True)
class Plan:
    """The escalation chain in force at ``at``. ``source``: ``shift``,
    ``fallback`` (the roster's fallback chain), ``default`` (the configured
    fallback dial strings) or ``none`` (nobody can be rung)."""

    source: str
    levels: tuple[PlannedLevel, ...]
    rounds: int
    at: datetime
    shift: str | None = None
    occurrence: tuple[datetime, datetime] | None = None
    substitutions: tuple[tuple[str, str], ...] = ()
    flags: tuple[Flag, ...] = ()

    @property
    def uses_fallback(self) -> bool:
        return self.source != "shift"

    def attempts(self) -> list[Attempt]:
        attempts: list[Attempt] = []
        for round_number in range(1, self.rounds + 1):
            for level in self.levels:
                groups = [level.officers] if level.mode == "simultaneous" else [(o,) for o in level.officers]
                for officers in groups:
                    attempts.append(
                        Attempt(len(attempts), round_number, level.number, level.mode, level.ring_seconds, officers)
                    )
        return attempts

    def callback_steps(self, rounds: int) -> list[CallbackStep]:
        steps: list[CallbackStep] = []
        for round_number in range(1, rounds + 1):
            for level in self.levels:
                groups = [level.officers] if level.mode == "simultaneous" else [(o,) for o in level.officers]
                for position, officers in enumerate(groups):
                    targets = tuple((o, d) for o in officers for d in o.dial_strings)
                    steps.append(CallbackStep(len(steps), round_number, level.number, position == 0, targets))
        return steps

    def summary(self) -> dict[str, Any]:
        """For the ticket and the web app."""
        return {
            "source": self.source,
            "shift": self.shift,
            "occurrence": [t.isoformat() for t in self.occurrence] if self.occurrence else None,
            "rounds": self.rounds,
            "levels": [
                {
                    "level": level.number,
                    "mode": level.mode,
                    "ring_seconds": level.ring_seconds,
                    "officers": [
                        {"code": o.code, "name": o.name, "dial_strings": list(o.dial_strings)} for o in level.officers
                    ],
                }
                for level in self.levels
            ],
            "substitutions": [{"replaces": r, "substitute": s} for r, s in self.substitutions],
            "flags": [f.as_dict() for f in self.flags],
        }


@dataclass(frozen=True)
class Defaults:
    """What the configuration adds: ring time and rounds for the configured
    fallback, and its dial strings (``IVR_EMERGENCY_FALLBACK_DIAL``)."""

    ring_seconds: int = DEFAULT_RING_SECONDS
    rounds: int = DEFAULT_ROUNDS
    fallback_dial: tuple[str, ...] = ()
    fallback_name: str = "Meja Protokol"


def plan(roster: Roster, at: datetime, defaults: Defaults = Defaults()) -> Plan:
    """The chain to ring at ``at`` (aware). Never raises: whatever is wrong
    with the roster is skipped and flagged, and when nothing is left the
    roster's fallback chain, then the configured fallback, is used."""
    if at.tzinfo is None:
        raise ValueError("plan() needs an aware datetime")
    flags: list[Flag] = []
    covering = [o for o in (s.occurrence_at(at) for s in roster.shifts) if o is not None]
    if covering:
        # The shift that started last is the most specific (a one-off night
        # shift inside a weekly pattern); sorting is stable for equal starts.
        covering.sort(key=lambda o: o.aware_start, reverse=True)
        chosen = covering[0]
        if len(covering) > 1:
            others = ", ".join(o.shift.name for o in covering[1:])
            flags.append(Flag("shift-overlap", f"shifts overlap now: {chosen.shift.name} is used, not {others}"))
        levels, substitutions = _with_overrides(chosen, roster, flags)
        planned = _resolve(levels, roster, flags)
        if planned:
            return Plan(
                "shift",
                planned,
                chosen.shift.rounds,
                at,
                shift=chosen.shift.name,
                occurrence=(chosen.aware_start, chosen.aware_end),
                substitutions=substitutions,
                flags=tuple(flags),
            )
        flags.append(Flag("shift-unreachable", f"nobody on shift {chosen.shift.name} can be rung"))
    elif not roster.shifts:
        flags.append(Flag("roster-empty", "the duty roster has no shifts"))
    else:
        flags.append(Flag("no-shift", "no shift covers this moment"))

    if roster.fallback.levels:
        planned = _resolve(roster.fallback.levels, roster, flags)
        if planned:
            flags.append(Flag("fallback", "the roster's fallback chain is used"))
            return Plan("fallback", planned, roster.fallback.rounds, at, flags=tuple(flags))
    targets = _unique(d for d in defaults.fallback_dial if valid_dial_string(d))
    if targets:
        flags.append(Flag("fallback", "the configured fallback (IVR_EMERGENCY_FALLBACK_DIAL) is used"))
        officer = PlannedOfficer("fallback", defaults.fallback_name, targets)
        level = PlannedLevel(1, "simultaneous", defaults.ring_seconds, (officer,))
        return Plan("default", (level,), defaults.rounds, at, flags=tuple(flags))
    flags.append(Flag("no-target", "nobody can be rung for an emergency"))
    return Plan("none", (), 0, at, flags=tuple(flags))


def _with_overrides(
    occurrence: Occurrence, roster: Roster, flags: list[Flag]
) -> tuple[tuple[Level, ...], tuple[tuple[str, str], ...]]:
    shift = occurrence.shift
    day = occurrence.start.date()
    swaps: dict[str, str] = {}
    for override in shift.overrides:
        applies = override.date == day or (override.date is None and shift.repeat == "none")
        if not applies:
            continue
        if roster.officer(override.substitute) is None:
            flags.append(Flag("unknown-officer", f"substitute {override.substitute!r} is not in the roster; ignored"))
            continue
        swaps[override.replaces] = override.substitute
    if not swaps:
        return shift.levels, ()
    levels = tuple(
        Level(_unique(swaps.get(code, code) for code in level.officers), level.mode, level.ring_seconds)
        for level in shift.levels
    )
    return levels, tuple(swaps.items())


def _resolve(levels: Iterable[Level], roster: Roster, flags: list[Flag]) -> tuple[PlannedLevel, ...]:
    planned: list[PlannedLevel] = []
    for number, level in enumerate(levels, start=1):
        officers: list[PlannedOfficer] = []
        for code in _unique(level.officers):
            officer = roster.officer(code)
            if officer is None:
                flags.append(Flag("unknown-officer", f"level {number}: officer {code!r} is not in the roster"))
                continue
            if not officer.active:
                flags.append(Flag("inactive-officer", f"level {number}: {officer.name} is inactive; skipped"))
                continue
            good = _unique(d for d in officer.dial_strings if valid_dial_string(d))
            for bad in (d for d in officer.dial_strings if not valid_dial_string(d)):
                detail = f"{officer.name}: {bad!r} is not a valid dial string; skipped"
                flags.append(Flag("invalid-dial-string", detail))
            if not good:
                flags.append(Flag("unreachable-officer", f"{officer.name} has no valid dial string; skipped"))
                continue
            officers.append(PlannedOfficer(officer.code, officer.name, good))
        if not officers:
            flags.append(Flag("empty-level", f"level {number} has nobody who can be rung"))
            continue
        mode = level.mode if level.mode in MODES else "sequential"
        planned.append(PlannedLevel(number, mode, level.ring_seconds, tuple(officers)))
    return tuple(planned)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def next_change(roster: Roster, at: datetime) -> datetime | None:
    """The first moment after ``at`` (aware) when a shift starts or ends, so
    the chain in force may change (who is on duty next: ``plan`` at that
    moment). ``None`` when no shift starts or ends any more."""
    if at.tzinfo is None:
        raise ValueError("next_change() needs an aware datetime")
    moments: list[datetime] = []
    for shift in roster.shifts:
        zone = ZoneInfo(shift.timezone)
        local = at.astimezone(zone).replace(tzinfo=None)
        period = REPEATS[shift.repeat]
        if period is None:
            bounds = [(shift.start, shift.end)]
        else:
            # Occurrences are at most one period long: the one that started
            # last before ``at`` and the next one hold the next boundary.
            latest = max(0, (local - shift.start) // period)
            bounds = [(shift.start + n * period, shift.end + n * period) for n in (latest, latest + 1)]
        for start, end in bounds:
            if shift.until is not None and start.date() > shift.until:
                continue
            moments.extend(t.replace(tzinfo=zone) for t in (start, end) if t > local)
    return min(moments, default=None)


# -- the cache ----------------------------------------------------------------------


class RosterCache:
    """The roster in force, in memory.

    ``load`` reads the whole roster from the database, ``probe`` only its
    version (one tiny query every ``refresh_seconds``); a newer version is
    loaded. Failures keep the last roster and are logged once per outage.
    ``snapshot`` (a JSON file, written atomically) survives restarts: when the
    database is down at start-up, the last roster written there is used.
    """

    def __init__(
        self,
        load: Callable[[], Awaitable[Roster]],
        probe: Callable[[], Awaitable[int]],
        *,
        snapshot: Path | None = None,
        encode: Callable[[Roster], dict[str, Any]] | None = None,
        decode: Callable[[dict[str, Any]], Roster] | None = None,
        refresh_seconds: float = 15.0,
        timeout: float = 5.0,
        full_reload_every: int = 40,
        outage_errors: tuple[type[BaseException], ...] = (OSError, ConnectionError),
    ) -> None:
        self._load = load
        self._probe = probe
        self._snapshot = snapshot
        self._encode = encode
        self._decode = decode
        self.refresh_seconds = refresh_seconds
        self.timeout = timeout
        self.full_reload_every = full_reload_every
        #: Errors that mean "the database is not answering" (the service passes
        #: ``ivr.records.STORAGE_ERRORS``); anything else is a bug and is logged.
        self.outage_errors: tuple[type[BaseException], ...] = (TimeoutError, *outage_errors)
        self.roster = Roster()
        #: Where the roster in memory came from: "database", "snapshot", "api" or "empty".
        self.source = "empty"
        self.loaded_at: datetime | None = None
        self.healthy = False
        self._probes = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not await self.refresh(force=True):
            self._read_snapshot()
        self._task = asyncio.create_task(self._run(), name="roster-cache")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Check the database now (another process may have changed the roster)."""
        self._wake.set()

    def replace(self, roster: Roster) -> None:
        """This process saved ``roster``: use it at once, no database read."""
        self._set(roster, "api")

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload when the version changed (or ``force``). False when the
        database did not answer; the roster in memory stays."""
        try:
            async with asyncio.timeout(self.timeout):
                self._probes += 1
                full = force or self._probes % self.full_reload_every == 0
                if not full and await self._probe() == self.roster.version and self.source != "empty":
                    self._note_healthy()
                    return True
                roster = await self._load()
        except self.outage_errors as exc:
            return self._failed(exc)
        if roster != self.roster or self.source in ("empty", "snapshot"):
            self._set(roster, "database")
        self._note_healthy()
        return True

    def _note_healthy(self) -> None:
        if not self.healthy:
            log.info("duty roster version %s loaded from the database", self.roster.version)
        self.healthy = True

    def _failed(self, exc: BaseException) -> bool:
        if self.healthy or self.source == "empty":
            log.warning(
                "duty roster: database unavailable (%s); routing from the %s roster (version %s)",
                type(exc).__name__,
                self.source,
                self.roster.version,
            )
        self.healthy = False
        return False

    def _set(self, roster: Roster, source: str) -> None:
        self.roster = roster
        self.source = source
        self.loaded_at = datetime.now(UTC)
        self._write_snapshot()

    def _write_snapshot(self) -> None:
        if self._snapshot is None or self._encode is None:
            return
        try:
            self._snapshot.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._snapshot.with_suffix(".tmp")
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(self._encode(self.roster), handle, ensure_ascii=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self._snapshot)
        except (OSError, TypeError, ValueError) as exc:
            log.error("could not write the roster snapshot: %s", exc)

    def _read_snapshot(self) -> None:
        if self._snapshot is None or self._decode is None or not self._snapshot.exists():
            log.warning("duty roster unavailable and no snapshot: emergencies go to the fallback chain")
            return
        try:
            roster = self._decode(json.loads(self._snapshot.read_text(encoding="utf-8")))
        except Exception as exc:  # a damaged snapshot must not stop start-up
            log.error("roster snapshot %s unreadable: %s", self._snapshot, exc)
            return
        self.roster, self.source, self.loaded_at = roster, "snapshot", datetime.now(UTC)
        log.warning("duty roster version %s taken from the local snapshot (database down)", roster.version)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.refresh_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.refresh()
            except Exception:
                log.exception("duty roster refresh failed")
