"""Adding officers to the caller directory: validating an entry, storing it,
and ``ivr callers import FILE.csv``.

The API (``POST /api/callers``) and the CSV import share the rules here, so a
number the web app refuses is refused by the import too, with the same words.
Messages are Indonesian and English (``"... / ..."``): staff read them in the
web app, integrators and operators in English.

The CSV file (exported from a spreadsheet)::

    name,office,office_kind,role,numbers,pin
    Budi Santoso,Dinas Kesehatan,opd,Kepala Bidang,0812-3456-7890;0286 591234,4821

``numbers`` holds one or more numbers separated by ``;``. Only ``name`` and
``numbers`` are required. UTF-8 with or without BOM; a file that is not UTF-8
is read as Windows-1252 (what Excel on Windows writes) with a warning. Good rows
go in together in one transaction; every rejected row is reported with its line
and reason, and nothing is half imported.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tqdm import tqdm

from ivr import callerid
from ivr.storage.models import Caller, CallerNumber, Office

log = logging.getLogger("ivr.directory")

#: argon2id with the library's defaults (RFC 9106's second recommended set).
#: A PIN has little entropy, so a slow hash is what protects it if the
#: database leaks. Hashing takes tens of milliseconds: done off the event loop.
PIN_HASHER: Final = PasswordHasher()
PIN_PATTERN: Final = re.compile(r"[0-9]{4,8}")
MAX_NAME: Final = 200
MAX_ROLE: Final = 100
MAX_OFFICE: Final = 200
MAX_NUMBERS: Final = 10
DEFAULT_OFFICE_KIND: Final = "opd"
#: Office kinds are free (opd, kecamatan, kelurahan, bumd, instansi-vertikal,
#: ...) but short lowercase words, as ``offices.kind`` stores them.
OFFICE_KIND_PATTERN: Final = re.compile(r"[a-z][a-z0-9-]{0,19}")

#: CSV columns. Only ``name`` and ``numbers`` must be present in the header.
COLUMNS: Final = ("name", "office", "office_kind", "role", "numbers", "pin")
REQUIRED_COLUMNS: Final = ("name", "numbers")
NUMBER_SEPARATOR: Final = ";"
#: A directory file is a few thousand rows at most; anything much bigger is a
#: wrong file.
MAX_FILE_BYTES: Final = 20 * 1024 * 1024
#: ``IN (...)`` lists stay well under SQLite's and asyncpg's parameter limits.
_CHUNK: Final = 500


class Msg:
    """The messages, Indonesian / English."""

    NAME_REQUIRED = "Nama wajib diisi / Name is required"
    NAME_TOO_LONG = f"Nama terlalu panjang (maks. {MAX_NAME} karakter) / Name too long (max {MAX_NAME} characters)"
    ROLE_TOO_LONG = f"Jabatan terlalu panjang (maks. {MAX_ROLE} karakter) / Role too long (max {MAX_ROLE} characters)"
    OFFICE_TOO_LONG = (
        f"Nama instansi terlalu panjang (maks. {MAX_OFFICE} karakter) / "
        f"Office name too long (max {MAX_OFFICE} characters)"
    )
    OFFICE_KIND = (
        "Jenis instansi harus satu kata huruf kecil, mis. opd, kecamatan, kelurahan / "
        "Office kind must be one lowercase word, e.g. opd, kecamatan, kelurahan"
    )
    NUMBERS_REQUIRED = "Minimal satu nomor telepon / At least one phone number is required"
    TOO_MANY_NUMBERS = f"Paling banyak {MAX_NUMBERS} nomor / At most {MAX_NUMBERS} numbers"
    PIN_FORMAT = "PIN harus 4 sampai 8 angka / PIN must be 4 to 8 digits"

    @staticmethod
    def invalid_number(raw: str) -> str:
        return f"Nomor telepon tidak valid: {raw!r} / Invalid phone number: {raw!r}"

    @staticmethod
    def listed_twice(e164: str) -> str:
        return f"Nomor {e164} tercantum dua kali / Number {e164} is listed twice"

    @staticmethod
    def in_use(e164: str, owner: str) -> str:
        return f"Nomor {e164} sudah terdaftar atas nama {owner} / Number {e164} is already registered to {owner}"

    @staticmethod
    def used_on_line(e164: str, line: int) -> str:
        return f"Nomor {e164} sudah dipakai di baris {line} / Number {e164} already used on line {line}"


@dataclass(frozen=True)
class NumberEntry:
    """A number as entered and as understood."""

    raw: str
    e164: str


@dataclass(frozen=True)
class CallerDraft:
    """A validated directory entry, not stored yet. ``office`` is the office's
    name (created if new) or ``None``; the PIN is still plain (``hash_pin``)."""

    name: str
    office: str | None
    office_kind: str
    role: str
    numbers: tuple[NumberEntry, ...]
    pin: str | None


def _collapse(text: str) -> str:
    return " ".join(text.split())


def check_numbers(raw_numbers: Sequence[str], field_name: str = "numbers") -> tuple[list[NumberEntry], dict[str, str]]:
    """Normalize numbers; errors per item (``numbers[1]``). A number given
    twice is an error: it is almost always a copy-paste slip."""
    errors: dict[str, str] = {}
    entries: list[NumberEntry] = []
    seen: set[str] = set()
    if not raw_numbers:
        errors[field_name] = Msg.NUMBERS_REQUIRED
    elif len(raw_numbers) > MAX_NUMBERS:
        errors[field_name] = Msg.TOO_MANY_NUMBERS
    for index, raw in enumerate(raw_numbers):
        where = f"{field_name}[{index}]"
        raw = raw.strip()
        number = callerid.normalize(raw)
        if number.e164 is None or len(raw) > callerid.MAX_RAW_LENGTH:
            errors[where] = Msg.invalid_number(raw)
        elif number.e164 in seen:
            errors[where] = Msg.listed_twice(number.e164)
        else:
            seen.add(number.e164)
            entries.append(NumberEntry(raw=raw, e164=number.e164))
    return entries, errors


def check_caller(
    *,
    name: str,
    office: str | None,
    office_kind: str | None,
    role: str | None,
    numbers: Sequence[str],
    pin: str | None,
) -> tuple[CallerDraft | None, dict[str, str]]:
    """Validate one entry; either a draft or the errors, one per field."""
    errors: dict[str, str] = {}
    name = _collapse(name)
    if not name:
        errors["name"] = Msg.NAME_REQUIRED
    elif len(name) > MAX_NAME:
        errors["name"] = Msg.NAME_TOO_LONG
    office = _collapse(office or "") or None
    if office is not None and len(office) > MAX_OFFICE:
        errors["office"] = Msg.OFFICE_TOO_LONG
    kind = (office_kind or "").strip().lower() or DEFAULT_OFFICE_KIND
    if not OFFICE_KIND_PATTERN.fullmatch(kind):
        errors["office_kind"] = Msg.OFFICE_KIND
    role = _collapse(role or "")
    if len(role) > MAX_ROLE:
        errors["role"] = Msg.ROLE_TOO_LONG
    pin = (pin or "").strip() or None
    if pin is not None and not (pin.isascii() and PIN_PATTERN.fullmatch(pin)):
        errors["pin"] = Msg.PIN_FORMAT
    entries, number_errors = check_numbers(numbers)
    errors.update(number_errors)
    if errors:
        return None, errors
    return CallerDraft(name, office, kind, role, tuple(entries), pin), {}


async def hash_pin(pin: str) -> str:
    return await asyncio.to_thread(PIN_HASHER.hash, pin)


async def numbers_in_use(session: AsyncSession, e164s: Iterable[str]) -> dict[str, str]:
    """Which of these numbers the directory already has: number -> owner's name."""
    wanted = sorted(set(e164s))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = await session.execute(
            select(CallerNumber.e164, Caller.name)
            .join(Caller, Caller.id == CallerNumber.caller_id)
            .where(CallerNumber.e164.in_(wanted[start : start + _CHUNK]))
        )
        found.update({e164: owner for e164, owner in rows})
    return found


class OfficeBook:
    """The offices of one unit of work, found by name regardless of case and
    spacing ("Dinas  kesehatan" is "Dinas Kesehatan"), created when new."""

    def __init__(self, session: AsyncSession, offices: Iterable[Office]) -> None:
        self.session = session
        self.by_key = {self.key(o.name): o for o in offices}
        self.created: list[Office] = []

    @staticmethod
    def key(name: str) -> str:
        return _collapse(name).casefold()

    @classmethod
    async def load(cls, session: AsyncSession) -> OfficeBook:
        return cls(session, await session.scalars(select(Office)))

    def get_or_create(self, name: str, kind: str) -> Office:
        office = self.by_key.get(self.key(name))
        if office is None:
            office = Office(name=name, kind=kind)
            self.session.add(office)
            self.by_key[self.key(name)] = office
            self.created.append(office)
        return office


def add_caller(session: AsyncSession, draft: CallerDraft, pin_hash: str | None, office: Office | None) -> Caller:
    """Stage a new directory entry (the caller flushes and commits). The
    numbers' uniqueness is the database's to enforce; check ``numbers_in_use``
    first for a friendly message."""
    caller = Caller(name=draft.name, role=draft.role, pin_hash=pin_hash, office=office)
    caller.numbers = [CallerNumber(raw=n.raw, e164=n.e164) for n in draft.numbers]
    session.add(caller)
    return caller


# -- CSV import ---------------------------------------------------------------


class CallerImportError(Exception):
    """The file as a whole cannot be imported (unreadable, wrong columns);
    the message says what to fix. Nothing was imported."""


@dataclass(frozen=True)
class RejectedRow:
    line: int
    name: str
    reason: str


@dataclass
class ImportReport:
    source: str
    encoding: str = "utf-8"
    rows: int = 0
    imported: int = 0
    offices_created: list[str] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            f"{self.source} ({self.encoding}): {self.rows} rows, {self.imported} imported, "
            f"{len(self.offices_created)} new offices, {len(self.rejected)} rejected"
        ]
        if self.offices_created:
            lines.append("new offices:")
            lines.extend(f"  {name}" for name in self.offices_created)
        if self.warnings:
            lines.append("warnings:")
            lines.extend(f"  {warning}" for warning in self.warnings)
        if self.rejected:
            lines.append("rejected rows (nothing from them was imported):")
            for row in self.rejected:
                who = f" ({row.name})" if row.name else ""
                lines.append(f"  line {row.line}{who}: {row.reason}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Row:
    line: int
    draft: CallerDraft


def decode_file(data: bytes) -> tuple[str, str, str | None]:
    """The text, the encoding used and a warning, if any."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CallerImportError(
            "berkas berformat UTF-16; simpan sebagai 'CSV UTF-8 (Comma delimited)' / "
            "the file is UTF-16 (Excel's 'Unicode Text'); save it as 'CSV UTF-8 (Comma delimited)'"
        )
    if _CONTROL_BYTES.search(data):
        raise CallerImportError(FILE_CONTROL)
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig", None
        except UnicodeDecodeError as exc:
            raise CallerImportError(
                "berkas diawali seperti UTF-8 tetapi bukan UTF-8 / "
                f"the file starts like UTF-8 but is not UTF-8 ({exc.reason})"
            ) from exc
    try:
        return data.decode("utf-8"), "utf-8", None
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise CallerImportError(
            "berkas bukan UTF-8 maupun Windows-1252; simpan sebagai 'CSV UTF-8' / "
            "the file is neither UTF-8 nor Windows-1252; save it as 'CSV UTF-8'"
        ) from exc
    return text, "cp1252", _CP1252_WARNING


#: C0 controls but TAB, LF and CR (which separate cells and rows), and DEL: a
#: NUL would be refused by PostgreSQL, an ESC forge a terminal in the logs. C1
#: bytes are letters in Windows-1252, which is read too.
_CONTROL_BYTES: Final = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
FILE_CONTROL: Final = (
    "berkas berisi karakter kontrol (mis. NUL); simpan ulang sebagai CSV teks / "
    "the file contains control characters (e.g. NUL); save it again as a text CSV"
)

_CP1252_WARNING: Final = (
    "berkas bukan UTF-8: dibaca sebagai Windows-1252, periksa nama dengan huruf beraksen / "
    "the file is not UTF-8: read it as Windows-1252 (cp1252), check names with accents"
)


def _read_rows(text: str, report: ImportReport) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank records, each with the line it starts on."""
    # strict: a stray quote is an error, not a field that swallows the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise CallerImportError("berkas kosong / the file is empty")
        header = [column.strip().lstrip("\ufeff").lower() for column in header]
        if len(header) == 1 and ";" in header[0]:
            raise CallerImportError(
                "kolom dipisah dengan ';': simpan sebagai CSV dengan koma (nomor dipisah ';' di dalam kolomnya) / "
                "the columns are separated by ';': save the file as CSV with commas "
                "(numbers are separated by ';' inside their column)"
            )
        doubled = sorted({column for column in header if header.count(column) > 1})
        if doubled:
            raise CallerImportError(f"kolom ganda / columns named twice: {', '.join(doubled)}")
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise CallerImportError(
                f"kolom tidak ada / missing columns: {', '.join(missing)}; "
                f"judul kolom yang diharapkan / expected header: {','.join(COLUMNS)}"
            )
        unknown = [column for column in header if column not in COLUMNS]
        if unknown:
            report.warnings.append(f"kolom diabaikan / ignored columns: {', '.join(unknown)}")
        records: list[tuple[int, list[str]]] = []
        start = reader.line_num + 1
        for record in reader:
            if any(value.strip() for value in record):
                records.append((start, record))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise CallerImportError(
            f"baris {reader.line_num}: bukan CSV yang sah / line {reader.line_num}: not valid CSV ({exc})"
        ) from exc
    return header, records


def _check_record(header: list[str], record: list[str]) -> tuple[CallerDraft | None, str]:
    if len(record) > len(header):
        return None, (
            f"{len(record)} kolom, seharusnya {len(header)} (koma dalam nama? beri tanda kutip) / "
            f"{len(record)} columns, expected {len(header)} (a comma in a name? quote it)"
        )
    values = dict(zip(header, record + [""] * (len(header) - len(record)), strict=True))
    numbers = [n for n in values.get("numbers", "").split(NUMBER_SEPARATOR) if n.strip()]
    draft, errors = check_caller(
        name=values.get("name", ""),
        office=values.get("office"),
        office_kind=values.get("office_kind"),
        role=values.get("role"),
        numbers=numbers,
        pin=values.get("pin"),
    )
    return draft, "; ".join(errors.values())


async def import_callers_file(
    sessions: async_sessionmaker[AsyncSession], path: str | os.PathLike[str], progress: bool = False
) -> ImportReport:
    """Import a directory CSV (see the module docstring). Raises
    ``CallerImportError`` when the file as a whole is unusable."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CallerImportError(f"{path} is {size} bytes; a directory file is at most {MAX_FILE_BYTES}")
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise CallerImportError(f"cannot read {path}: {exc.strerror}") from exc
    return await import_callers(sessions, data, source=str(path), progress=progress)


async def import_callers(
    sessions: async_sessionmaker[AsyncSession], data: bytes, *, source: str, progress: bool = False
) -> ImportReport:
    """Import a directory CSV already read (``POST /api/callers/import``
    streams the upload into ``data``); ``source`` names it in the report."""
    text, encoding, warning = decode_file(data)
    report = ImportReport(source=source, encoding=encoding)
    if warning:
        report.warnings.append(warning)
        log.warning("%s: %s", source, warning)
    header, records = _read_rows(text, report)
    report.rows = len(records)

    with tqdm(total=len(records), desc="callers", unit="row", disable=not progress) as bar:
        # 1. Each row on its own, then against the rows above it.
        first_line: dict[str, int] = {}
        candidates: list[_Row] = []
        for line, record in records:
            draft, reason = _check_record(header, record)
            name = _collapse(record[header.index("name")]) if len(record) > header.index("name") else ""
            if draft is not None:
                clash = next((n.e164 for n in draft.numbers if n.e164 in first_line), None)
                if clash is not None:
                    draft, reason = None, Msg.used_on_line(clash, first_line[clash])
            if draft is None:
                report.rejected.append(RejectedRow(line, name, reason))
                bar.update(1)
                continue
            for number in draft.numbers:
                first_line[number.e164] = line
            candidates.append(_Row(line, draft))

        # 2. Against the directory, in a short read (hashing PINs comes next
        # and must not hold a transaction open).
        async with sessions() as session:
            taken = await numbers_in_use(session, first_line)
        candidates = _drop_taken(candidates, taken, report, bar)

        # 3. PINs, the slow part.
        pin_hashes: dict[int, str | None] = {}
        for row in candidates:
            pin_hashes[row.line] = await hash_pin(row.draft.pin) if row.draft.pin else None
            bar.update(1)

    # 4. Everything good in one transaction; numbers taken meanwhile are
    # caught by the second check (the unique index catches the rest).
    if candidates:
        async with sessions.begin() as session:
            taken = await numbers_in_use(session, (n.e164 for row in candidates for n in row.draft.numbers))
            candidates = _drop_taken(candidates, taken, report, None)
            book = await OfficeBook.load(session)
            for row in candidates:
                draft = row.draft
                office = book.get_or_create(draft.office, draft.office_kind) if draft.office else None
                add_caller(session, draft, pin_hashes[row.line], office)
            report.offices_created = [office.name for office in book.created]
        report.imported = len(candidates)
    report.rejected.sort(key=lambda row: row.line)
    log.info("caller import %s: %d imported, %d rejected", source, report.imported, len(report.rejected))
    return report


def _drop_taken(
    candidates: list[_Row], taken: dict[str, str], report: ImportReport, bar: tqdm[object] | None
) -> list[_Row]:
    kept: list[_Row] = []
    for row in candidates:
        clash = next((n.e164 for n in row.draft.numbers if n.e164 in taken), None)
        if clash is None:
            kept.append(row)
            continue
        report.rejected.append(RejectedRow(row.line, row.draft.name, Msg.in_use(clash, taken[clash])))
        if bar is not None:
            bar.update(1)
    return kept
