"""What callers hear of the agenda: the spoken Indonesian of an item and of a day.

Texts are composed already in words (times, dates and numbers through
``ivr.speech.normalize``), so the call's timeline shows exactly what was said and
normalizing them again for the TTS cache key changes nothing. Each item is its
own text (its own cached audio file, SPEECH.md section 6): a change to one item
re-renders that item and the day's opening sentence only.

The texts of a day depend only on the data and the date, never on when they are
heard ("hari ini" / "besok" are not in them), so a read-back rendered the day
before is still valid after midnight.

Free text staff typed (activity, place, note, representative) is cleaned (quotes,
markup symbols, links, line breaks, emoji), normalized, and trimmed at a clause
or word boundary to a budget per field, so that an item always fits the
normalizer's cap and its time and status are never the part cut off.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ivr.agenda.store import DayAgenda, ItemView, LeaderInfo
from ivr.speech.normalize import MAX_CHARS, normalize, say_date, say_number, say_time

__all__ = [
    "DayReadback",
    "clip",
    "day_readback",
    "intro_text",
    "item_text",
    "leader_menu_text",
    "spoken_field",
    "status_text",
]

#: Budgets (in characters of spoken text) per free-text field, tried in order
#: until the item fits ``ITEM_LIMIT``. The first tier fits every realistic item.
_BUDGETS: Final = (
    {"activity": 200, "place": 110, "note": 160, "representative": 110},
    {"activity": 150, "place": 80, "note": 90, "representative": 80},
    {"activity": 110, "place": 60, "note": 0, "representative": 60},
)
#: Leave room below the normalizer's cap so that it never cuts an item.
ITEM_LIMIT: Final = MAX_CHARS - 20
#: When a field must be trimmed, a clause boundary this far into the budget or
#: later is preferred to a mere word boundary.
_CLAUSE_AT: Final = 0.6

_QUOTES_AND_MARKUP = re.compile(r"[\"“”„‟«»`´*_~^|<>{}\[\]\\#=]+")
_SINGLE_QUOTES = re.compile(r"(?<!\w)['‘’]|['‘’](?!\w)")
_LINKS = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+", re.IGNORECASE)
_LINE_BREAKS = re.compile(r"\s*(?:\r\n|\r|\n|\u2028|\u2029)+\s*")
_TRAILING = " ,;:.-–—/"


def clip(text: str, budget: int) -> str:
    """``text`` cut to at most ``budget`` characters, at the last clause boundary
    (". ", "; ", ", ", ": ") in the last 40 % of the budget, else at a word."""
    text = text.strip().rstrip(_TRAILING)
    if len(text) <= budget:
        return text
    if budget <= 0:
        return ""
    window = text[: budget + 1]
    best = max(window.rfind(sep) for sep in (". ", "; ", ", ", ": ", " - "))
    if best >= budget * _CLAUSE_AT:
        return window[:best].rstrip(_TRAILING)
    space = window.rfind(" ")
    cut = window[:space] if space > 0 else text[:budget]
    return cut.rstrip(_TRAILING)


def _clean_field(raw: str) -> str:
    text = _LINKS.sub(" ", raw)
    text = _QUOTES_AND_MARKUP.sub(" ", text)
    text = _SINGLE_QUOTES.sub(" ", text)

    def line_break(match: re.Match[str]) -> str:
        before = match.string[: match.start()].rstrip()
        return " " if not before or before[-1] in ",.;:!?" else ", "

    return _LINE_BREAKS.sub(line_break, text)


def spoken_field(raw: str, budget: int) -> str:
    """Free text as words, safe to speak, at most ``budget`` characters."""
    if budget <= 0 or not raw:
        return ""
    # Normalize a bounded slice: 2,000 typed characters never need to be read.
    spoken = normalize(_clean_field(raw[: budget * 3])).lstrip(_TRAILING + ";")
    return clip(spoken, budget)


def _sentence(text: str) -> str:
    """Capitalize the first letter and end with a period."""
    text = text.strip().rstrip(_TRAILING)
    if not text:
        return ""
    return text[0].upper() + text[1:] + "."


def say_day(day: dt.date, *, year: bool = True) -> str:
    """ "Rabu, tujuh belas Desember dua ribu dua puluh lima" (the year optional)."""
    spoken = say_date(day)
    return spoken if year else spoken.removesuffix(" " + say_number(day.year))


def _time_range(start: dt.time, end: dt.time | None) -> str:
    """ "pukul delapan lewat tiga puluh menit sampai dengan pukul sepuluh"."""
    if end is None:
        return say_time(start)
    return normalize(f"{start:%H.%M} - {end:%H.%M}")


def _when(new_date: dt.date | None, new_start: dt.time | None, original: dt.date) -> str:
    """Where a moved activity went: "hari Rabu, tujuh belas Desember, pukul ..."."""
    parts = []
    if new_date is not None and new_date != original:
        parts.append("hari " + say_day(new_date, year=new_date.year != original.year))
    if new_start is not None:
        parts.append(say_time(new_start))
        if not parts[:-1]:
            parts[-1] += " pada hari yang sama"
    return ", ".join(parts)


def status_text(item: ItemView, representative_budget: int = 110) -> str:
    """The status sentence: "Status: dipindahkan ke hari Rabu, ..., pukul ...".

    A status without its detail is still a sentence a caller understands.
    """
    status = item.status
    if status == "terjadwal":
        return "Status: terjadwal."
    if status == "berlangsung":
        return "Status: sedang berlangsung."
    if status == "selesai":
        return "Status: telah selesai."
    if status == "dibatalkan":
        return "Status: dibatalkan."
    if status in ("dipindahkan", "ditunda"):
        when = _when(item.new_date, item.new_start, item.date)
        if when:
            return f"Status: {status} ke {when}."
        if status == "ditunda":
            return "Status: ditunda, waktu pelaksanaannya belum ditentukan."
        return "Status: dipindahkan, waktu yang baru belum ditentukan."
    if status == "diwakilkan":
        who = spoken_field(item.representative, representative_budget)
        return f"Status: diwakilkan oleh {who}." if who else "Status: diwakilkan."
    # Not a known status (data written around the API): say what it says.
    spoken = spoken_field(status, 40)
    return f"Status: {spoken}." if spoken else ""


def _body(item: ItemView, budgets: dict[str, int]) -> str:
    """ ": Rapat ..., bertempat di Pendopo ..." (the part after the time)."""
    activity = spoken_field(item.activity, budgets["activity"]) or "kegiatan pimpinan"
    place = spoken_field(item.place, budgets["place"])
    return f"{activity}, bertempat di {place}" if place else activity


def _note(item: ItemView, budget: int) -> str:
    note = spoken_field(item.note, budget)
    return f" Catatan: {_sentence(note)}" if note else ""


def item_text(item: ItemView, day: dt.date | None = None) -> str:
    """One item as heard in the read-back of ``day`` (default: the item's date).

    On its own day: "Pukul ... sampai dengan pukul ...: <activity>, bertempat di
    <place>. Status: ... Catatan: ...". On the next day, when it runs past
    midnight: "Lanjutan dari hari Minggu, pukul ...". On the day it was moved to:
    "Pukul <new time>: ... Kegiatan ini dipindahkan dari hari ...".
    """
    day = day or item.date
    for budgets in _BUDGETS:
        # Normalized once more as a whole: what the timeline shows is exactly
        # what the TTS cache is keyed on.
        text = normalize(_compose(item, day, budgets))
        if len(text) <= ITEM_LIMIT:
            return text
    return clip(text, ITEM_LIMIT - 1) + "."


def _compose(item: ItemView, day: dt.date, budgets: dict[str, int]) -> str:
    body = _body(item, budgets)
    note = _note(item, budgets["note"])
    if day == item.date:
        when = _time_range(item.start, item.end)
        if item.overnight:
            when += " keesokan harinya"
        status = status_text(item, budgets["representative"])
        return f"{_sentence(when)[:-1]}: {body}. {status}{note}"
    if item.moved_to == day:
        start = item.new_start or item.start
        origin = say_day(item.date, year=item.date.year != day.year)
        verb = "ditunda" if item.status == "ditunda" else "dipindahkan"
        return f"{_sentence(say_time(start))[:-1]}: {body}. Kegiatan ini {verb} dari hari {origin}.{note}"
    # Carried over from the day before (it runs past midnight).
    weekday = say_day(item.date).split(",", 1)[0]
    when = _time_range(item.start, item.end)
    status = status_text(item, budgets["representative"])
    return f"Lanjutan dari hari {weekday}, {when}: {body}. {status}{note}"


def _title(leader: LeaderInfo) -> str:
    return spoken_field(leader.title, 80) or "pimpinan"


def intro_text(agenda: DayAgenda) -> str:
    """ "Agenda Bupati pada hari Senin, ...: ada tiga kegiatan." / "Tidak ada agenda ..."."""
    title = _title(agenda.leader)
    day = say_day(agenda.day)
    if agenda.empty:
        return f"Tidak ada agenda {title} pada hari {day}."
    count = len(agenda.items) + len(agenda.carried) + len(agenda.moved_in)
    return f"Agenda {title} pada hari {day}. Ada {say_number(count)} kegiatan."


@dataclass(frozen=True)
class DayReadback:
    """The texts of one leader's day, in the order they are played."""

    leader_id: int
    day: dt.date
    intro: str
    items: tuple[str, ...]

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.intro, *self.items)


def day_readback(agenda: DayAgenda) -> DayReadback:
    """The day in time order: carried-over items first, then the day's own and
    moved-in items by their (new) start time."""
    timed: list[tuple[dt.time, int, str]] = []
    for item in agenda.items:
        timed.append((item.start, item.id, item_text(item, agenda.day)))
    for item in agenda.moved_in:
        timed.append((item.new_start or item.start, item.id, item_text(item, agenda.day)))
    timed.sort(key=lambda entry: (entry[0], entry[1]))
    texts = [item_text(item, agenda.day) for item in agenda.carried] + [text for _, _, text in timed]
    return DayReadback(agenda.leader.id, agenda.day, intro_text(agenda), tuple(texts))


def leader_menu_text(leaders: Sequence[LeaderInfo]) -> str:
    """ "Untuk agenda Bupati, tekan satu. ... Untuk kembali ke menu utama, tekan nol."

    Keys ``0`` and ``*`` are the menu's own (back, repeat) and never a leader's.
    """
    parts = [
        f"Untuk agenda {_title(leader)}, tekan {leader.menu_key}."
        for leader in leaders
        if leader.menu_key.isdigit() and leader.menu_key != "0"
    ]
    parts.append("Untuk kembali ke menu utama, tekan 0.")
    return normalize(" ".join(parts))
