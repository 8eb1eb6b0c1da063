"""PIN access to the agenda for officers calling from a number not in the directory.

The caller keys in their registered phone number (who they claim to be) and
their PIN; the PIN is checked with argon2 against that officer's
``Caller.pin_hash`` (one verification, in a thread: argon2 is deliberately slow
and must not stall the event loop). A PIN alone cannot name its owner: the
hashes are salted, and verifying against every officer would cost tens of
milliseconds per officer.

Failed attempts are counted per *calling* number (``caller_key``) in
``pin_lockouts``: ``attempts`` failures within ``window`` lock that number out
for ``lockout``, across calls and across server processes. The flow also stops
after ``attempts`` tries in one call. The PIN is never stored, logged or put on
the ticket; only the outcome of each attempt is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr import callerid
from ivr.directory_import import PIN_HASHER, PIN_PATTERN
from ivr.storage.agenda_models import PinLockout
from ivr.storage.models import Caller, CallerNumber, Office

log = logging.getLogger("ivr.agenda.pins")


@dataclass(frozen=True)
class PinPolicy:
    attempts: int = 3
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    #: Failures older than this no longer count towards a lockout.
    window: dt.timedelta = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class PinCheck:
    """The outcome of one attempt. ``locked_until`` is set when the calling
    number is (now) locked out; no PIN was checked if it already was."""

    ok: bool
    caller_id: int | None = None
    caller_name: str | None = None
    office_id: int | None = None
    office_name: str | None = None
    failures: int = 0
    locked_until: dt.datetime | None = None

    @property
    def locked(self) -> bool:
        return self.locked_until is not None

    @property
    def outcome(self) -> str:
        """For the ticket timeline: ok, wrong, locked."""
        if self.ok:
            return "ok"
        return "locked" if self.locked else "wrong"


def caller_key(number: callerid.CallerNumber) -> str:
    """The lockout bucket of a calling number: its E.164 form, else its kind
    (``withheld``/``unknown``/...), shared by every caller without a number."""
    return number.e164 or number.kind


@dataclass(frozen=True)
class _Claim:
    caller_id: int
    name: str
    office_id: int | None
    office_name: str | None
    pin_hash: str | None


class PinChecker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        policy: PinPolicy | None = None,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        db_timeout: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.policy = policy or PinPolicy()
        self.hasher = hasher or PIN_HASHER
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.db_timeout = db_timeout

    @cached_property
    def _dummy_hash(self) -> str:
        """Verified when the claimed number has no PIN, so that a wrong number
        takes as long as a wrong PIN (no probing the directory by timing)."""
        return self.hasher.hash(secrets.token_hex(8))

    async def locked_until(self, key: str) -> dt.datetime | None:
        async with asyncio.timeout(self.db_timeout), self.sessions() as session:
            row = await session.scalar(select(PinLockout).where(PinLockout.caller_key == key))
        now = self.clock()
        if row is not None and row.locked_until is not None and row.locked_until > now:
            return row.locked_until
        return None

    async def check(self, key: str, claimed_number: str, pin: str) -> PinCheck:
        """One attempt from calling number ``key``: officer ``claimed_number``
        (as keyed in) with ``pin``. Raises the database's errors."""
        locked = await self.locked_until(key)
        if locked is not None:
            return PinCheck(False, locked_until=locked)
        claim = await self._claim(claimed_number)
        ok = await asyncio.to_thread(self._verify, claim.pin_hash if claim else None, pin)
        if ok and claim is not None:
            await self._succeeded(key, claim, pin)
            return PinCheck(True, claim.caller_id, claim.name, claim.office_id, claim.office_name)
        failures, locked = await self._failed(key)
        return PinCheck(False, failures=failures, locked_until=locked)

    def _verify(self, pin_hash: str | None, pin: str) -> bool:
        well_formed = PIN_PATTERN.fullmatch(pin) is not None
        try:
            return self.hasher.verify(pin_hash or self._dummy_hash, pin) and pin_hash is not None and well_formed
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            log.warning("a caller's PIN hash cannot be verified (corrupt or unsupported)")
            return False

    async def _claim(self, claimed_number: str) -> _Claim | None:
        number = callerid.normalize(claimed_number)
        if not number.e164:
            return None
        async with asyncio.timeout(self.db_timeout), self.sessions() as session:
            row = (
                await session.execute(
                    select(Caller.id, Caller.name, Caller.office_id, Office.name, Caller.pin_hash)
                    .join(CallerNumber, CallerNumber.caller_id == Caller.id)
                    .outerjoin(Office, Office.id == Caller.office_id)
                    .where(CallerNumber.e164 == number.e164, Caller.active.is_(True))
                )
            ).first()
        return None if row is None else _Claim(*row)

    async def _succeeded(self, key: str, claim: _Claim, pin: str) -> None:
        rehash = claim.pin_hash is not None and self.hasher.check_needs_rehash(claim.pin_hash)
        new_hash = await asyncio.to_thread(self.hasher.hash, pin) if rehash else None
        async with asyncio.timeout(self.db_timeout), self.sessions.begin() as session:
            row = await session.scalar(select(PinLockout).where(PinLockout.caller_key == key).with_for_update())
            if row is not None:
                row.failures = 0
                row.window_started_at = None
                row.last_attempt_at = self.clock()
            if new_hash is not None:
                caller = await session.get(Caller, claim.caller_id)
                if caller is not None:
                    caller.pin_hash = new_hash

    async def _failed(self, key: str) -> tuple[int, dt.datetime | None]:
        """Count a failure; lock the number out at the limit. Returns the
        failures now counted and the lockout, if any."""
        for attempt in range(2):
            try:
                async with asyncio.timeout(self.db_timeout), self.sessions.begin() as session:
                    return await self._count_failure(session, key)
            except IntegrityError:
                # Two calls from one number inserted its row at once: count again.
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _count_failure(self, session: AsyncSession, key: str) -> tuple[int, dt.datetime | None]:
        now = self.clock()
        row = await session.scalar(select(PinLockout).where(PinLockout.caller_key == key).with_for_update())
        if row is None:
            row = PinLockout(caller_key=key, failures=0)
            session.add(row)
        if row.window_started_at is None or now - row.window_started_at > self.policy.window:
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        row.last_attempt_at = now
        failures = row.failures
        if failures >= self.policy.attempts:
            row.locked_until = now + self.policy.lockout
            row.failures = 0
            row.window_started_at = None
            log.warning("PIN access locked for a calling number after %d failures", failures)
            await session.flush()
            return failures, row.locked_until
        await session.flush()
        return failures, None
