"""A demo duty roster for ``ivr seed --demo``: a day and a night shift every
day, each with a two-level chain, and the head of the protocol office as the
fallback. The desk phones are PJSIP extensions; mobiles go out through
``[callcenter-mobile]`` (dialplans/extensions.conf)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ivr.emergency import store
from ivr.emergency.roster import Chain, Level, Officer, Roster, Shift

DEMO_OFFICERS = (
    Officer("rudi", "Rudi Hartono", ("PJSIP/201", "Local/081311110201@callcenter-mobile"), phone="0813-1111-0201"),
    Officer("sri", "Sri Mulyani", ("PJSIP/202", "Local/081311110202@callcenter-mobile"), phone="0813-1111-0202"),
    Officer("bayu", "Bayu Saputra", ("PJSIP/203", "Local/081311110203@callcenter-mobile"), phone="0813-1111-0203"),
    Officer("nur", "Nur Hidayah", ("PJSIP/204", "Local/081311110204@callcenter-mobile"), phone="0813-1111-0204"),
    Officer(
        "kasubbag",
        "Drs. Heru Prasetyo (Kasubbag Protokol)",
        ("Local/081311110210@callcenter-mobile",),
        phone="0813-1111-0210",
    ),
    Officer(
        "kabag",
        "Hj. Lilis Suryani, S.Sos. (Kabag Prokompim)",
        ("Local/081311110200@callcenter-mobile",),
        phone="0813-1111-0200",
    ),
)

DEMO_ROSTER = Roster(
    officers=DEMO_OFFICERS,
    shifts=(
        Shift(
            "Piket siang",
            datetime(2025, 1, 1, 7, 30),
            datetime(2025, 1, 1, 16, 0),
            "Asia/Jakarta",
            "daily",
            levels=(
                Level(("rudi", "sri"), "simultaneous", 20),
                Level(("kasubbag",), "sequential", 25),
            ),
        ),
        Shift(
            "Piket malam",
            datetime(2025, 1, 1, 16, 0),
            datetime(2025, 1, 2, 7, 30),
            "Asia/Jakarta",
            "daily",
            levels=(
                Level(("bayu", "nur"), "sequential", 20),
                Level(("kasubbag",), "sequential", 25),
            ),
        ),
    ),
    fallback=Chain((Level(("kabag",), "sequential", 30),), rounds=2),
)


async def seed_demo_roster(session: AsyncSession) -> bool:
    """Write the demo roster unless a roster exists already. Returns whether it wrote."""
    roster = await store.load_roster(session)
    if roster.officers or roster.shifts or roster.version:
        return False
    await store.save_roster(session, DEMO_ROSTER, by="seed")
    return True
