"""The duty roster as ``GET/PUT /api/roster`` show and take it (no I/O).

One JSON document holds the whole roster; staff replace it as a whole, so a
change is atomic and can be checked as a whole (every officer a level names
exists, an override's date is a day the shift starts on...). A ``GET`` can be
edited and ``PUT`` back: read-only fields are accepted and ignored::

    {"version": 3, "updated_at": "...", "updated_by": "token:web",
     "officers": [{"code": "budi", "name": "Budi Santoso", "phone": "0812-3456-7001",
                   "phone_e164": "+6281234567001", "dial_strings": ["PJSIP/201"], "active": true}],
     "shifts": [{"name": "Piket malam", "timezone": "Asia/Jakarta",
                 "start": "2026-01-01T16:00:00+07:00", "end": "2026-01-02T07:30:00+07:00",
                 "repeat": "daily", "until": null, "rounds": 2,
                 "levels": [{"mode": "sequential", "ring_seconds": 20, "officers": ["budi", "siti"]}],
                 "overrides": [{"date": "2026-12-17", "replaces": "budi", "substitute": "agus", "note": "cuti"}]}],
     "fallback": {"rounds": 2, "levels": [{"mode": "simultaneous", "ring_seconds": 25, "officers": ["kabag"]}]}}

Shift times may carry an offset (converted to the shift's zone) or none (read
in the shift's zone). Errors are collected per field, in Indonesian and
English, as the rest of the API does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr import callerid
from ivr.directory_import import Msg
from ivr.emergency.roster import (
    DEFAULT_RING_SECONDS,
    DEFAULT_ROUNDS,
    MODES,
    REPEATS,
    Chain,
    Level,
    Officer,
    Override,
    Roster,
    Shift,
    valid_dial_string,
)

CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
MAX_OFFICERS = 200
MAX_SHIFTS = 100
MAX_LEVELS = 10
MAX_PER_LEVEL = 20
MAX_DIAL_STRINGS = 10
MAX_OVERRIDES = 200
MAX_NAME = 200
MAX_NOTE = 500
RING_RANGE = (5, 120)
ROUNDS_RANGE = (1, 10)
MAX_SHIFT_LENGTH = timedelta(days=7)

_TOP = ("version", "updated_at", "updated_by", "officers", "shifts", "fallback")
_OFFICER = ("code", "name", "phone", "phone_e164", "dial_strings", "active")
_SHIFT = ("name", "timezone", "start", "end", "repeat", "until", "rounds", "levels", "overrides")
_LEVEL = ("mode", "ring_seconds", "officers")
_OVERRIDE = ("date", "replaces", "substitute", "note")
_FALLBACK = ("rounds", "levels")


class RosterInvalid(ValueError):
    """The document is wrong; ``fields`` says where (``shifts[0].levels[1].officers[2]``)."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = dict(fields)


# -- rendering ---------------------------------------------------------------------


def render(roster: Roster, *, updated_at: datetime | None = None, updated_by: str = "") -> dict[str, Any]:
    return {
        "version": roster.version,
        "updated_at": updated_at.isoformat(timespec="seconds") if updated_at else None,
        "updated_by": updated_by,
        "officers": [
            {
                "code": o.code,
                "name": o.name,
                "phone": o.phone,
                "phone_e164": callerid.normalize(o.phone).e164 if o.phone else None,
                "dial_strings": list(o.dial_strings),
                "active": o.active,
            }
            for o in roster.officers
        ],
        "shifts": [_render_shift(s) for s in roster.shifts],
        "fallback": {"rounds": roster.fallback.rounds, "levels": [_render_level(v) for v in roster.fallback.levels]},
    }


def _render_shift(shift: Shift) -> dict[str, Any]:
    zone = ZoneInfo(shift.timezone)
    return {
        "name": shift.name,
        "timezone": shift.timezone,
        "start": shift.start.replace(tzinfo=zone).isoformat(timespec="minutes"),
        "end": shift.end.replace(tzinfo=zone).isoformat(timespec="minutes"),
        "repeat": shift.repeat,
        "until": shift.until.isoformat() if shift.until else None,
        "rounds": shift.rounds,
        "levels": [_render_level(v) for v in shift.levels],
        "overrides": [
            {
                "date": o.date.isoformat() if o.date else None,
                "replaces": o.replaces,
                "substitute": o.substitute,
                "note": o.note,
            }
            for o in shift.overrides
        ],
    }


def _render_level(level: Level) -> dict[str, Any]:
    return {"mode": level.mode, "ring_seconds": level.ring_seconds, "officers": list(level.officers)}


# -- parsing ----------------------------------------------------------------------


def parse(body: Mapping[str, Any], *, default_zone: str = "Asia/Jakarta") -> Roster:
    """The roster a ``PUT`` body describes, checked whole. Raises :class:`RosterInvalid`."""
    errors: dict[str, str] = {}
    _unknown(body, _TOP, "", errors)
    officers = _officers(body.get("officers", []), errors)
    codes = {o.code for o in officers}
    shifts = _shifts(body.get("shifts", []), codes, default_zone, errors)
    fallback = _fallback(body.get("fallback"), codes, errors)
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 0):
        errors["version"] = "Harus bilangan bulat / Must be a whole number"
    if errors:
        raise RosterInvalid(errors)
    return Roster(tuple(officers), tuple(shifts), fallback, version=version or 0)


def _unknown(data: Mapping[str, Any], allowed: Sequence[str], where: str, errors: dict[str, str]) -> None:
    for key in data:
        if key not in allowed:
            errors[f"{where}{key}" if not where else f"{where}.{key}"] = "Kolom tidak dikenal / Unknown field"


def _list(value: Any, where: str, limit: int, errors: dict[str, str]) -> list[Any]:
    if not isinstance(value, list):
        errors[where] = "Harus berupa daftar / Must be a list"
        return []
    if len(value) > limit:
        errors[where] = f"Paling banyak {limit} / At most {limit}"
        return []
    return value


def _object(value: Any, where: str, errors: dict[str, str]) -> Mapping[str, Any] | None:
    if not isinstance(value, dict):
        errors[where] = "Harus berupa objek / Must be an object"
        return None
    return value


def _text(
    data: Mapping[str, Any], key: str, where: str, errors: dict[str, str], *, limit: int, required: bool = True
) -> str:
    value = data.get(key, None if required else "")
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        errors[f"{where}.{key}"] = "Wajib diisi (teks) / Required text"
        return ""
    if len(value) > limit or any(ch in value for ch in "\r\n\0"):
        errors[f"{where}.{key}"] = f"Satu baris, paling banyak {limit} karakter / One line, at most {limit} characters"
        return ""
    return value.strip()


def _int(
    data: Mapping[str, Any], key: str, where: str, errors: dict[str, str], default: int, bounds: tuple[int, int]
) -> int:
    value = data.get(key, default)
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        errors[f"{where}.{key}"] = f"Bilangan bulat {low}-{high} / A whole number from {low} to {high}"
        return default
    return value


def _officers(raw: Any, errors: dict[str, str]) -> list[Officer]:
    officers: list[Officer] = []
    seen: set[str] = set()
    for index, item in enumerate(_list(raw, "officers", MAX_OFFICERS, errors)):
        where = f"officers[{index}]"
        data = _object(item, where, errors)
        if data is None:
            continue
        _unknown(data, _OFFICER, where, errors)
        code = data.get("code")
        if not isinstance(code, str) or not CODE.match(code):
            errors[f"{where}.code"] = (
                "Huruf kecil, angka, titik, minus; maks. 40 / Lower-case letters, digits, . _ -; at most 40"
            )
            continue
        if code in seen:
            errors[f"{where}.code"] = "Kode sudah dipakai / Code used twice"
            continue
        seen.add(code)
        name = _text(data, "name", where, errors, limit=MAX_NAME)
        phone = _text(data, "phone", where, errors, limit=64, required=False)
        if phone and callerid.normalize(phone).e164 is None:
            # The number staff see and call back must be one the IVR understands.
            errors[f"{where}.phone"] = Msg.invalid_number(phone)
        dial_strings = []
        for d_index, dial in enumerate(
            _list(data.get("dial_strings"), f"{where}.dial_strings", MAX_DIAL_STRINGS, errors)
        ):
            if not valid_dial_string(dial):
                errors[f"{where}.dial_strings[{d_index}]"] = (
                    "Bukan tujuan Dial yang sah (mis. PJSIP/201) / Not a valid Dial target (e.g. PJSIP/201)"
                )
            else:
                dial_strings.append(dial)
        if (
            not dial_strings
            and f"{where}.dial_strings" not in errors
            and not any(k.startswith(f"{where}.dial_strings[") for k in errors)
        ):
            errors[f"{where}.dial_strings"] = "Minimal satu nomor / At least one dial string"
        active = data.get("active", True)
        if not isinstance(active, bool):
            errors[f"{where}.active"] = "true/false"
            active = True
        officers.append(Officer(code, name, tuple(dial_strings), phone=phone, active=active))
    return officers


def _levels(raw: Any, where: str, codes: set[str], errors: dict[str, str], *, required: bool) -> list[Level]:
    items = _list(raw if raw is not None else [], where, MAX_LEVELS, errors)
    if required and not items and where not in errors:
        errors[where] = "Minimal satu tingkat / At least one level"
    levels: list[Level] = []
    for index, item in enumerate(items):
        here = f"{where}[{index}]"
        data = _object(item, here, errors)
        if data is None:
            continue
        _unknown(data, _LEVEL, here, errors)
        mode = data.get("mode", "sequential")
        if mode not in MODES:
            errors[f"{here}.mode"] = f"Salah satu dari / One of: {', '.join(MODES)}"
            mode = "sequential"
        ring = _int(data, "ring_seconds", here, errors, DEFAULT_RING_SECONDS, RING_RANGE)
        members = _list(data.get("officers"), f"{here}.officers", MAX_PER_LEVEL, errors)
        if not members and f"{here}.officers" not in errors:
            errors[f"{here}.officers"] = "Minimal satu petugas / At least one officer"
        for m_index, code in enumerate(members):
            if code not in codes:
                errors[f"{here}.officers[{m_index}]"] = "Petugas tidak dikenal / Unknown officer code"
        if len(set(members)) != len(members):
            errors[f"{here}.officers"] = "Petugas tercantum dua kali / An officer is listed twice"
        levels.append(Level(tuple(str(c) for c in members), mode, ring))
    return levels


def _datetime(value: Any, zone: ZoneInfo) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(zone).replace(tzinfo=None)
    return parsed.replace(second=0, microsecond=0)


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def _shifts(raw: Any, codes: set[str], default_zone: str, errors: dict[str, str]) -> list[Shift]:
    shifts: list[Shift] = []
    names: set[str] = set()
    for index, item in enumerate(_list(raw, "shifts", MAX_SHIFTS, errors)):
        where = f"shifts[{index}]"
        data = _object(item, where, errors)
        if data is None:
            continue
        _unknown(data, _SHIFT, where, errors)
        name = _text(data, "name", where, errors, limit=MAX_NAME)
        if name and name in names:
            errors[f"{where}.name"] = "Nama shift sudah dipakai / Shift name used twice"
        names.add(name)
        zone_name = data.get("timezone", default_zone)
        try:
            zone = ZoneInfo(zone_name) if isinstance(zone_name, str) else None
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
        if zone is None:
            errors[f"{where}.timezone"] = "Zona waktu tidak dikenal / Unknown time zone (e.g. Asia/Jakarta)"
            zone, zone_name = ZoneInfo(default_zone), default_zone
        start, end = _datetime(data.get("start"), zone), _datetime(data.get("end"), zone)
        for key, value in (("start", start), ("end", end)):
            if value is None:
                errors[f"{where}.{key}"] = "Tanggal-waktu ISO 8601 / An ISO 8601 date-time"
        repeat = data.get("repeat", "none")
        if repeat not in REPEATS:
            errors[f"{where}.repeat"] = f"Salah satu dari / One of: {', '.join(REPEATS)}"
            repeat = "none"
        until = None
        if data.get("until") is not None:
            until = _date(data.get("until"))
            if until is None:
                errors[f"{where}.until"] = "Tanggal YYYY-MM-DD / A date YYYY-MM-DD"
        if start is not None and end is not None:
            length = end - start
            period = REPEATS[repeat]
            if length <= timedelta(0):
                errors[f"{where}.end"] = "Harus setelah mulai / Must be after the start"
            elif length > (period or MAX_SHIFT_LENGTH):
                errors[f"{where}.end"] = (
                    "Shift lebih panjang dari periode ulangnya / Shift longer than its repeat period (or 7 days)"
                )
            if until is not None and until < start.date():
                errors[f"{where}.until"] = "Sebelum mulai / Before the start"
        rounds = _int(data, "rounds", where, errors, DEFAULT_ROUNDS, ROUNDS_RANGE)
        levels = _levels(data.get("levels"), f"{where}.levels", codes, errors, required=True)
        shift = Shift(
            name,
            start or datetime(2000, 1, 1),
            end or datetime(2000, 1, 2),
            str(zone_name),
            str(repeat),
            until,
            rounds,
            tuple(levels),
        )
        overrides = _overrides(data.get("overrides", []), f"{where}.overrides", shift, codes, errors)
        shifts.append(
            Shift(
                shift.name,
                shift.start,
                shift.end,
                shift.timezone,
                shift.repeat,
                shift.until,
                shift.rounds,
                shift.levels,
                tuple(overrides),
            )
        )
    return shifts


def _overrides(raw: Any, where: str, shift: Shift, codes: set[str], errors: dict[str, str]) -> list[Override]:
    overrides: list[Override] = []
    for index, item in enumerate(_list(raw, where, MAX_OVERRIDES, errors)):
        here = f"{where}[{index}]"
        data = _object(item, here, errors)
        if data is None:
            continue
        _unknown(data, _OVERRIDE, here, errors)
        day = None
        if data.get("date") is not None:
            day = _date(data.get("date"))
            if day is None:
                errors[f"{here}.date"] = "Tanggal YYYY-MM-DD / A date YYYY-MM-DD"
            elif not shift.occurs_on(day):
                errors[f"{here}.date"] = "Shift tidak dimulai pada tanggal ini / The shift does not start on this date"
        elif shift.repeat != "none":
            errors[f"{here}.date"] = (
                "Wajib untuk shift berulang / Required for a repeating shift (the occurrence's start date)"
            )
        replaces, substitute = data.get("replaces"), data.get("substitute")
        for key, code in (("replaces", replaces), ("substitute", substitute)):
            if code not in codes:
                errors[f"{here}.{key}"] = "Petugas tidak dikenal / Unknown officer code"
        if replaces == substitute and replaces is not None:
            errors[f"{here}.substitute"] = "Pengganti sama dengan yang diganti / Substitute is the same officer"
        note = _text(data, "note", here, errors, limit=MAX_NOTE, required=False)
        overrides.append(Override(str(replaces), str(substitute), day, note))
    return overrides


def _fallback(raw: Any, codes: set[str], errors: dict[str, str]) -> Chain:
    if raw is None:
        return Chain()
    data = _object(raw, "fallback", errors)
    if data is None:
        return Chain()
    _unknown(data, _FALLBACK, "fallback", errors)
    rounds = _int(data, "rounds", "fallback", errors, DEFAULT_ROUNDS, ROUNDS_RANGE)
    levels = _levels(data.get("levels"), "fallback.levels", codes, errors, required=False)
    return Chain(tuple(levels), rounds)


# -- the local snapshot ---------------------------------------------------------------
# The snapshot is what the database held, so it is read back as it is (no
# validation): a dial string that is wrong there is skipped and flagged when
# planning, exactly as if it came from the database.


def encode_snapshot(roster: Roster) -> dict[str, Any]:
    return render(roster)


def decode_snapshot(data: dict[str, Any]) -> Roster:
    def level(raw: dict[str, Any]) -> Level:
        return Level(tuple(raw["officers"]), raw["mode"], int(raw["ring_seconds"]))

    def local(value: str, zone: str) -> datetime:
        return datetime.fromisoformat(value).astimezone(ZoneInfo(zone)).replace(tzinfo=None)

    officers = tuple(
        Officer(o["code"], o["name"], tuple(o["dial_strings"]), phone=o.get("phone", ""), active=o["active"])
        for o in data["officers"]
    )
    shifts = tuple(
        Shift(
            s["name"],
            local(s["start"], s["timezone"]),
            local(s["end"], s["timezone"]),
            s["timezone"],
            s["repeat"],
            date.fromisoformat(s["until"]) if s.get("until") else None,
            int(s["rounds"]),
            tuple(level(v) for v in s["levels"]),
            tuple(
                Override(
                    o["replaces"],
                    o["substitute"],
                    date.fromisoformat(o["date"]) if o.get("date") else None,
                    o.get("note", ""),
                )
                for o in s.get("overrides", [])
            ),
        )
        for s in data["shifts"]
    )
    fallback = Chain(tuple(level(v) for v in data["fallback"]["levels"]), int(data["fallback"]["rounds"]))
    return Roster(officers, shifts, fallback, version=int(data.get("version") or 0))
