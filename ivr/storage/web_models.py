"""Schema of the staff web app's sign-in (issue 6): sessions and login throttles.

Kept apart from ``models.py`` like the other feature tables; ``models.py``
imports this module so that ``Base.metadata`` and the migrations see them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ivr.storage.models import Base, utcnow


class WebSession(Base):
    """A signed-in browser. The cookie holds a random id; only its SHA-256 is
    stored here, so a copy of the database signs nobody in. Deleting the user
    deletes their sessions (``ON DELETE CASCADE``); a disabled user's sessions
    stay but are refused (the lookup joins on ``users.active``)."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Refreshed at most once a minute (``ivr.storage.web_sessions``): the idle timeout counts from here.
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    client_address: Mapped[str] = mapped_column(String(64), default="")


class LoginThrottle(Base):
    """Failed sign-ins per key (``user:<username>`` or ``addr:<address>``) and
    the lockout they led to. Keys exist for unknown usernames too, so a lockout
    says nothing about which accounts exist."""

    __tablename__ = "login_throttles"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[dt.datetime | None] = mapped_column()
    locked_until: Mapped[dt.datetime | None] = mapped_column()
