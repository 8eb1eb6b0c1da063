"""How the pages write dates and times: the Indonesian way, in the configured
zone ("Kamis, 3 Desember 2026", "08.30"). Registered as Jinja2 filters
``tanggal``, ``jam`` and ``tanggal_jam`` by ``setup_pages``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

#: Weekday names, Monday first (as ``date.weekday()`` counts).
HARI: Final = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
BULAN: Final = (
    "Januari", "Februari", "Maret", "April", "Mei", "Juni",
    "Juli", "Agustus", "September", "Oktober", "November", "Desember",
)  # fmt: skip


def tanggal(value: date) -> str:
    """ "Kamis, 3 Desember 2026" (a datetime: its own date, so convert it to the zone first)."""
    return f"{HARI[value.weekday()]}, {value.day} {BULAN[value.month - 1]} {value.year}"


def jam(value: datetime) -> str:
    """ "08.30", the Indonesian way of writing a time."""
    return value.strftime("%H.%M")


def in_zone(value: datetime, zone: ZoneInfo) -> datetime:
    return value.astimezone(zone)


def tanggal_jam(value: datetime, zone: ZoneInfo) -> str:
    local = in_zone(value, zone)
    return f"{tanggal(local)} pukul {jam(local)}"
