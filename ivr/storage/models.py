"""Database schema (SQLAlchemy 2.0, typed). The same models run on SQLite and
PostgreSQL; migrations in ``db/`` are generated from them and a test checks
that both agree.

Relationships refuse lazy loading (``lazy="raise"``): in async code an implicit
load would fail at run time, so every query says what it loads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on both backends. SQLite keeps no offset, so
    values are stored as UTC and come back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), date: Date(), time: Time()}  # noqa: RUF012


class Office(Base):
    """An OPD, kecamatan or kelurahan whose officers call in."""

    __tablename__ = "offices"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="opd")


class Caller(Base):
    """A registered officer in the caller directory."""

    __tablename__ = "callers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="SET NULL"))
    role: Mapped[str] = mapped_column(String(100), default="")
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    office: Mapped[Office | None] = relationship(lazy="raise")
    numbers: Mapped[list[CallerNumber]] = relationship(
        back_populates="caller", lazy="raise", cascade="all, delete-orphan", order_by="CallerNumber.id"
    )


class CallerNumber(Base):
    __tablename__ = "caller_numbers"
    id: Mapped[int] = mapped_column(primary_key=True)
    caller_id: Mapped[int] = mapped_column(ForeignKey("callers.id", ondelete="CASCADE"), index=True)
    raw: Mapped[str] = mapped_column(String(64))
    e164: Mapped[str] = mapped_column(String(20), unique=True)

    caller: Mapped[Caller] = relationship(back_populates="numbers", lazy="raise")


class Leader(Base):
    """A regional leader whose agenda callers can hear (Bupati, Wakil Bupati, Sekda)."""

    __tablename__ = "leaders"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    menu_key: Mapped[str] = mapped_column(String(1), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    """Every call is a ticket; requests and emergencies are worked by staff."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(8), unique=True)
    kind: Mapped[str] = mapped_column(String(30), default="info")
    status: Mapped[str] = mapped_column(String(30), default="open")
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="SET NULL"))
    caller_id: Mapped[int | None] = mapped_column(ForeignKey("callers.id", ondelete="SET NULL"))
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    caller_e164: Mapped[str | None] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note_for_caller: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Indexed: the live board polls for tickets changed since its last look.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)

    office: Mapped[Office | None] = relationship(lazy="raise")
    caller: Mapped[Caller | None] = relationship(lazy="raise")
    events: Mapped[list[TicketEvent]] = relationship(lazy="raise", order_by="TicketEvent.id")
    recordings: Mapped[list[Recording]] = relationship(lazy="raise", order_by="Recording.id")

    # AUTOINCREMENT: SQLite would otherwise give a deleted newest ticket's id,
    # and so its number, to the next ticket; a number is never issued twice.
    __table_args__ = (Index("ix_tickets_status_kind", "status", "kind"), {"sqlite_autoincrement": True})


class Call(Base):
    """One FastAGI session, with Asterisk's identifiers and how it ended."""

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    linkedid: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(200), default="")
    script: Mapped[str] = mapped_column(String(50), default="")
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    caller_e164: Mapped[str | None] = mapped_column(String(20))
    caller_name: Mapped[str] = mapped_column(String(200), default="")
    caller_id: Mapped[int | None] = mapped_column(ForeignKey("callers.id", ondelete="SET NULL"))
    dialed_number: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column()
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(40), default="in-progress")
    outcome_step: Mapped[str] = mapped_column(String(80), default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)

    caller: Mapped[Caller | None] = relationship(lazy="raise")
    ticket: Mapped[Ticket | None] = relationship(lazy="raise")
    events: Mapped[list[TicketEvent]] = relationship(lazy="raise", order_by="TicketEvent.seq", viewonly=True)


class TicketEvent(Base):
    """One entry of a ticket's timeline: a prompt played, a key, a dial attempt,
    a recording, a staff action. ``(call_id, seq)`` makes replays idempotent."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (UniqueConstraint("call_id", "seq", name="uq_ticket_events_call_seq"),)


class Recording(Base):
    """A voice recording linked to a ticket (path relative to the recordings folder)."""

    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(30), default="message")
    path: Mapped[str] = mapped_column(String(300), unique=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A staff account for the web app."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for integrations; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class Setting(Base):
    """Small runtime settings staff change from the web app (office-hours
    override, local holiday table)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(80), default="")


# Feature tables live in their own modules; importing them here puts them in
# ``Base.metadata`` for the migrations and the tests.
from ivr.storage import agenda_models as agenda_models  # noqa: E402
from ivr.storage import request_models as request_models  # noqa: E402
from ivr.storage import roster_models as roster_models  # noqa: E402
from ivr.storage import web_models as web_models  # noqa: E402
