"""``ivr seed --demo``: realistic demo data for trying the IVR and the web app."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr import callerid
from ivr.agenda.demo import seed_demo_agenda
from ivr.config import Settings
from ivr.emergency.demo import seed_demo_roster
from ivr.storage.models import Caller, CallerNumber, Leader, Office, User
from ivr.storage.users import create_user

DEMO_OFFICES = [
    ("Dinas Komunikasi dan Informatika", "opd"),
    ("Dinas Pendidikan dan Kebudayaan", "opd"),
    ("Dinas Kesehatan", "opd"),
    ("Badan Penanggulangan Bencana Daerah", "opd"),
    ("Kecamatan Banjarmangu", "kecamatan"),
    ("Kecamatan Wanadadi", "kecamatan"),
    ("Kelurahan Parakancanggah", "kelurahan"),
    ("Kelurahan Kutabanjarnegara", "kelurahan"),
]

#: (name, office, role, numbers)
DEMO_CALLERS = [
    ("Budi Santoso", "Dinas Komunikasi dan Informatika", "Kepala Bidang", ["081234567890"]),
    ("Siti Aminah", "Dinas Pendidikan dan Kebudayaan", "Sekretaris Dinas", ["081298765432"]),
    ("dr. Rina Kartika", "Dinas Kesehatan", "Kepala Seksi", ["085712345678", "0286 591234"]),
    ("Agus Prasetyo", "Badan Penanggulangan Bencana Daerah", "Kepala Pelaksana", ["082133344455"]),
    ("Wahyu Hidayat", "Kecamatan Banjarmangu", "Camat", ["081327654321"]),
    ("Dewi Lestari", "Kecamatan Wanadadi", "Sekretaris Camat", ["087812345670"]),
    ("Slamet Riyadi", "Kelurahan Parakancanggah", "Lurah", ["081390001122"]),
    ("Endang Sulistyowati", "Kelurahan Kutabanjarnegara", "Lurah", ["0286 594321"]),
]

DEMO_LEADERS = [
    ("Bupati", "H. Ahmad Fauzi, S.H., M.H.", "1"),
    ("Wakil Bupati", "Hj. Sri Wahyuni, S.E.", "2"),
    ("Sekretaris Daerah", "Drs. Bambang Sutrisno, M.Si.", "3"),
]


async def seed_demo(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> str:
    """Insert what is missing; running it twice changes nothing."""
    added = {"offices": 0, "callers": 0, "leaders": 0}
    async with sessions.begin() as session:
        offices = {o.name: o for o in await session.scalars(select(Office))}
        for name, kind in DEMO_OFFICES:
            if name not in offices:
                offices[name] = Office(name=name, kind=kind)
                session.add(offices[name])
                added["offices"] += 1
        await session.flush()
        known_numbers = set(await session.scalars(select(CallerNumber.e164)))
        for name, office, role, numbers in DEMO_CALLERS:
            normalized = [callerid.normalize(n) for n in numbers]
            if any(n.e164 in known_numbers for n in normalized):
                continue
            caller = Caller(name=name, office_id=offices[office].id, role=role)
            caller.numbers = [CallerNumber(raw=n.raw, e164=n.e164) for n in normalized if n.e164]
            session.add(caller)
            added["callers"] += 1
        existing_keys = set(await session.scalars(select(Leader.menu_key)))
        for position, (title, name, key) in enumerate(DEMO_LEADERS):
            if key not in existing_keys:
                session.add(Leader(title=title, name=name, menu_key=key, position=position))
                added["leaders"] += 1
        await session.flush()
        today = datetime.now(UTC).astimezone(settings.zone).date()
        added["agenda items"] = await seed_demo_agenda(session, today)
        added["duty rosters"] = int(await seed_demo_roster(session))
    return "demo data: " + ", ".join(f"{count} {what} added" for what, count in added.items())


DEMO_ADMIN = "admin"


async def seed_demo_admin(sessions: async_sessionmaker[AsyncSession]) -> str | None:
    """An ``admin`` account with a random password when the database has no
    administrator yet, so a fresh demo can be signed in to. Returns the
    password, for the terminal only (the caller prints it; it is never logged)."""
    async with sessions.begin() as session:
        if await session.scalar(select(User.id).where(User.role == "admin", User.active.is_(True)).limit(1)):
            return None
        if await session.scalar(select(User.id).where(User.username == DEMO_ADMIN)):
            return None  # a disabled "admin" stays disabled
        password = secrets.token_urlsafe(12)
        await create_user(session, DEMO_ADMIN, password, "admin", "Administrator (demo)")
    return password
