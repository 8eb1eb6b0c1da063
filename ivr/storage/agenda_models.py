"""Schema of the leaders' agenda (issue 3): agenda items and PIN lockouts.

Kept apart from ``models.py`` so the agenda work could land on its own; it uses
the same ``Base`` (naming convention, UTC datetimes), and ``models.py`` imports
this module so that ``Base.metadata`` and the migrations see these tables.

Columns are named as the API contract names the fields (PRODUCT.md section 5):
``date``, ``start``, ``end``. Python's ``datetime`` module is imported as ``dt``
so that the ``date`` attribute cannot shadow the ``date`` type in annotations.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ivr.storage.models import Base, Leader, utcnow

#: Statuses an agenda item can have, in the words staff and callers use.
#: "berlangsung" is spoken "sedang berlangsung".
AGENDA_STATUSES = ("terjadwal", "berlangsung", "selesai", "ditunda", "dibatalkan", "dipindahkan", "diwakilkan")


class AgendaItem(Base):
    """One activity on a leader's agenda, with its status as callers hear it.

    ``new_date``/``new_start`` say where a moved (``dipindahkan``) or postponed
    (``ditunda``) activity went; ``representative`` who attends for the leader
    (``diwakilkan``). Any of them may be missing: the read-back says so.
    ``end`` earlier than ``start`` means the activity runs past midnight.
    """

    __tablename__ = "agenda_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    leader_id: Mapped[int] = mapped_column(ForeignKey("leaders.id", ondelete="CASCADE"))
    date: Mapped[dt.date] = mapped_column()
    start: Mapped[dt.time] = mapped_column()
    end: Mapped[dt.time | None] = mapped_column()
    activity: Mapped[str] = mapped_column(Text)
    place: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(20), default="terjadwal")
    new_date: Mapped[dt.date | None] = mapped_column(index=True)
    new_start: Mapped[dt.time | None] = mapped_column()
    representative: Mapped[str] = mapped_column(String(200), default="")
    #: Public: read to callers after the item.
    note: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    leader: Mapped[Leader] = relationship(lazy="raise")

    __table_args__ = (Index("ix_agenda_items_leader_date", "leader_id", "date"),)


class PinLockout(Base):
    """Failed PIN attempts per calling number, and the lockout they led to.

    ``caller_key`` is the caller's E.164 number, or ``withheld``/``unknown``
    when the network gave none (those callers share one bucket). The PIN
    itself is never stored anywhere; attempts go to the call's ticket timeline.
    """

    __tablename__ = "pin_lockouts"
    id: Mapped[int] = mapped_column(primary_key=True)
    caller_key: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[dt.datetime | None] = mapped_column()
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    last_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
