"""Schema of emergency routing (issue 5): the duty roster, and the alarms and
callback jobs of unanswered emergencies.

Kept apart from ``models.py`` like the agenda tables; it uses the same ``Base``
(naming convention, UTC datetimes) and ``models.py`` imports this module so
that ``Base.metadata`` and the migrations see these tables.

The roster is a small document that staff replace as a whole (``PUT
/api/roster``, ``ivr.emergency.store``); ``duty_roster_meta.version`` goes up
with every change, which is how the in-memory roster cache of every ``ivr
serve`` notices it. Shift times are wall-clock times in the shift's own time
zone (naive columns): a shift that repeats daily from 16:00 starts at 16:00
local time every day, whatever the UTC offset.

The callback jobs are the one thing several ``ivr serve`` processes must agree
on: a job is placed by whoever claims it (``state``/``lease_owner``/
``lease_until``, see ``ivr.emergency.callbacks``), and ``(alarm_id, step,
slot)`` is unique, so a job cannot be created twice either.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ivr.storage.models import Base, utcnow


class DutyOfficer(Base):
    """A duty officer (petugas piket) and the phones that reach them.

    ``dial_strings`` are Asterisk Dial targets (``PJSIP/201``,
    ``Local/081234567890@callcenter-mobile``), all rung at once for this officer.
    ``code`` is the short handle the roster document refers to them by.
    """

    __tablename__ = "duty_officers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(64), default="")
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    dial_strings: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class DutyShift(Base):
    """A shift: from ``starts_at`` to ``ends_at`` (wall clock in ``timezone``),
    once or repeating ``daily``/``weekly`` up to ``repeat_until`` (the last
    occurrence's start date), with its escalation chain."""

    __tablename__ = "duty_shifts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Jakarta")
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=False))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=False))
    repeat: Mapped[str] = mapped_column(String(10), default="none")
    repeat_until: Mapped[dt.date | None] = mapped_column()
    rounds: Mapped[int] = mapped_column(Integer, default=2)
    position: Mapped[int] = mapped_column(Integer, default=0)

    levels: Mapped[list[DutyLevel]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="DutyLevel.position"
    )
    overrides: Mapped[list[DutyOverride]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="DutyOverride.id"
    )


class DutyLevel(Base):
    """One escalation level: its officers tried in order (``sequential``) or all
    at once (``simultaneous``), each rung ``ring_seconds``. ``shift_id`` NULL is
    the roster's fallback chain (used when no shift covers now)."""

    __tablename__ = "duty_levels"
    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("duty_shifts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    mode: Mapped[str] = mapped_column(String(12), default="sequential")
    ring_seconds: Mapped[int] = mapped_column(Integer, default=20)

    members: Mapped[list[DutyLevelMember]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="DutyLevelMember.position"
    )


class DutyLevelMember(Base):
    __tablename__ = "duty_level_members"
    id: Mapped[int] = mapped_column(primary_key=True)
    level_id: Mapped[int] = mapped_column(ForeignKey("duty_levels.id", ondelete="CASCADE"), index=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("duty_officers.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class DutyOverride(Base):
    """A substitute for one shift: on the occurrence that starts on ``on_date``
    (NULL for a shift that does not repeat), ``substitute_id`` stands in for
    ``replaces_id`` wherever the chain names them."""

    __tablename__ = "duty_overrides"
    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("duty_shifts.id", ondelete="CASCADE"), index=True)
    on_date: Mapped[dt.date | None] = mapped_column()
    replaces_id: Mapped[int] = mapped_column(ForeignKey("duty_officers.id", ondelete="CASCADE"))
    substitute_id: Mapped[int] = mapped_column(ForeignKey("duty_officers.id", ondelete="CASCADE"))
    note: Mapped[str] = mapped_column(Text, default="")


class DutyRosterMeta(Base):
    """One row (id 1): the roster's version, the fallback chain's rounds, and
    who changed it last."""

    __tablename__ = "duty_roster_meta"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    fallback_rounds: Mapped[int] = mapped_column(Integer, default=2)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(80), default="")


#: Alarm states: ``open`` (callbacks running), ``exhausted`` (the callback limit
#: was reached and nobody acknowledged: staff still see it), ``acknowledged``.
ALARM_STATES = ("open", "exhausted", "acknowledged")
#: Callback job states. ``pending`` -> ``claimed`` (leased, not sent: may be
#: taken over when the lease runs out) -> ``sending`` (the Originate may be on
#: the wire: never sent again) -> ``answered`` (the officer picked up; the
#: ``ack`` flow finishes it) or ``unknown`` (the AMI link dropped mid-Originate)
#: -> ``done`` (with ``result``) or ``cancelled`` (the alarm was acknowledged).
CALLBACK_STATES = ("pending", "claimed", "sending", "answered", "unknown", "done", "cancelled")


class EmergencyAlarm(Base):
    """An emergency nobody accepted: staff see it until it is acknowledged, and
    the duty officers are called back (``EmergencyCallback``) meanwhile.

    ``call_uniqueid`` is the emergency call's Asterisk uniqueid; the ticket is
    found through it (the call record may still be in the spool when the alarm
    is raised). ``step`` is the callback step in progress (-1 before the first).
    """

    __tablename__ = "emergency_alarms"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    ticket_number: Mapped[str | None] = mapped_column(String(8))
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    caller_e164: Mapped[str | None] = mapped_column(String(20))
    caller_name: Mapped[str] = mapped_column(String(200), default="")
    office_name: Mapped[str] = mapped_column(String(200), default="")
    #: What a duty officer hears as "who called" (built from the above when raised).
    caller_spoken: Mapped[str] = mapped_column(String(300), default="")
    #: The caller's number as the officer hears it read back, digit by digit ("" when withheld).
    caller_digits: Mapped[str] = mapped_column(String(40), default="")
    message_path: Mapped[str | None] = mapped_column(String(300))
    message_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    flags: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(20), default="open", index=True)
    step: Mapped[int] = mapped_column(Integer, default=-1)
    level_started_at: Mapped[dt.datetime | None] = mapped_column()
    raised_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # Indexed: the live board polls for alarms changed since its last look.
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column()
    acknowledged_by: Mapped[str] = mapped_column(String(200), default="")
    acknowledged_via: Mapped[str] = mapped_column(String(10), default="")
    acknowledged_officer: Mapped[str] = mapped_column(String(40), default="")

    callbacks: Mapped[list[EmergencyCallback]] = relationship(lazy="raise", order_by="EmergencyCallback.id")


class EmergencyCallback(Base):
    """One Originate to one duty officer's phone for one alarm (a job)."""

    __tablename__ = "emergency_callbacks"
    id: Mapped[int] = mapped_column(primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("emergency_alarms.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    slot: Mapped[int] = mapped_column(Integer, default=0)
    round: Mapped[int] = mapped_column(Integer, default=1)
    level: Mapped[int] = mapped_column(Integer, default=1)
    officer_code: Mapped[str] = mapped_column(String(40), default="")
    officer_name: Mapped[str] = mapped_column(String(200), default="")
    dial_string: Mapped[str] = mapped_column(String(128))
    ring_seconds: Mapped[int] = mapped_column(Integer, default=30)
    due_at: Mapped[dt.datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(12), default="pending")
    lease_owner: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[dt.datetime | None] = mapped_column()
    #: Shown to the ``ack`` flow by the callback channel: only the phone we called can acknowledge.
    token: Mapped[str] = mapped_column(String(32))
    result: Mapped[str] = mapped_column(String(30), default="")
    reason: Mapped[int | None] = mapped_column(Integer)
    originate_uniqueid: Mapped[str] = mapped_column(String(64), default="")
    ack_call_uniqueid: Mapped[str] = mapped_column(String(64), default="")
    #: Times AMI was down when the job was due (it then waited; nothing was sent).
    deferrals: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("alarm_id", "step", "slot", name="uq_emergency_callbacks_alarm_step_slot"),
        Index("ix_emergency_callbacks_state_due", "state", "due_at"),
    )
