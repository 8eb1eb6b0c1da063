"""Schema for requests and tracking (issue 4): the urgent alerts of sudden
schedule changes.

Kept apart from ``models.py`` like the agenda tables; it uses the same ``Base``
(naming convention, UTC datetimes). ``models.py`` must import this module so
that ``Base.metadata`` and the migrations see the table.

An alert is a small state machine kept in the database, so that with several
``ivr serve`` processes on one database each call to the protocol desk is
placed by exactly one of them (``ivr.alerts``)::

    pending --claim--> calling --answered, 1 pressed--> acknowledged
       ^                  |
       +--no answer, busy, AMI down, lease expired--+        (attempts < max)
                          +--attempts exhausted--> gave_up   (the board still shows it)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ivr.storage.models import Base, utcnow

ALERT_PENDING = "pending"
ALERT_CALLING = "calling"
ALERT_ACKNOWLEDGED = "acknowledged"
ALERT_GAVE_UP = "gave_up"
ALERT_STATES = (ALERT_PENDING, ALERT_CALLING, ALERT_ACKNOWLEDGED, ALERT_GAVE_UP)


class UrgentAlert(Base):
    """The alert of one urgent ticket: at most one per ticket (unique), so a
    scan by two processes, or a flow and a scan, cannot raise it twice.

    ``lease_owner``/``lease_until`` say which process is placing the current
    call and until when; a lease that ran out (a process died mid-call, an
    Originate whose outcome is unknown) makes the alert due again."""

    __tablename__ = "urgent_alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    state: Mapped[str] = mapped_column(String(20), default=ALERT_PENDING)
    #: Calls placed to the desk so far (Originates sent).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str] = mapped_column(String(80), default="")
    lease_until: Mapped[datetime | None] = mapped_column()
    #: What the last attempt gave: answered, no-answer, busy, ami-unavailable, ...
    last_result: Mapped[str] = mapped_column(String(80), default="")
    #: The recorded description the desk hears (relative to the recordings folder).
    recording_path: Mapped[str] = mapped_column(String(300), default="")
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_urgent_alerts_state_next", "state", "next_attempt_at"),)
