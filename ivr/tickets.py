"""The ticket domain: kinds, statuses, and how callers and staff name them.

Every call is a ticket (PRODUCT.md section 3). The IVR writes ``kind`` and the
first ``status``; staff move the status on in the web app (``PATCH
/api/tickets/{number}``). Values are stored as the plain strings below; the web
app shows ``label``, and the phone reads the catalog prompts
``ticket.kind.<kind>`` and ``ticket.status.<status>`` (``ivr/speech/prompts_id.toml``),
so a status is never spoken by synthesis on the common path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# -- kinds ---------------------------------------------------------------------

INFO: Final = "info"
REQUEST: Final = "request"
NOTIFICATION: Final = "notification"
SCHEDULE_CHANGE: Final = "schedule_change"
FOLLOW_UP: Final = "follow_up"
EMERGENCY: Final = "emergency"
MESSAGE: Final = "message"

#: Kind -> label (web app). Order: as PRODUCT.md lists them.
KINDS: Final[dict[str, str]] = {
    INFO: "Informasi",
    REQUEST: "Permohonan kehadiran pimpinan",
    NOTIFICATION: "Notifikasi kegiatan",
    SCHEDULE_CHANGE: "Perubahan jadwal mendadak",
    FOLLOW_UP: "Tindak lanjut tiket",
    EMERGENCY: "Darurat",
    MESSAGE: "Pesan suara",
}

#: What a caller submits with main-menu option 2 (the keys of its kind menu).
SUBMISSION_KINDS: Final = (REQUEST, NOTIFICATION, SCHEDULE_CHANGE)

# -- statuses ------------------------------------------------------------------

OPEN: Final = "open"
CLOSED: Final = "closed"
DITERIMA: Final = "diterima"
DIPROSES: Final = "diproses"
DIJADWALKAN: Final = "dijadwalkan"
DITOLAK: Final = "ditolak"
SELESAI: Final = "selesai"
#: The caller hung up before finishing a submission and left nothing to hear.
ABANDONED: Final = "abandoned"
#: The caller hung up during or after recording a submission's description,
#: before confirming it: the (partial) recording is on the ticket.
ABANDONED_WITH_MESSAGE: Final = "abandoned-with-message"

#: What staff may set (``PATCH /api/tickets/{number}``), in the web app's order.
STAFF_STATUSES: Final = (OPEN, DITERIMA, DIPROSES, DIJADWALKAN, DITOLAK, SELESAI, CLOSED)
#: Everything a ticket's status can be (filters accept these).
STATUSES: Final[dict[str, str]] = {
    OPEN: "Baru",
    DITERIMA: "Diterima",
    DIPROSES: "Diproses",
    DIJADWALKAN: "Dijadwalkan",
    DITOLAK: "Ditolak",
    SELESAI: "Selesai",
    CLOSED: "Ditutup",
    ABANDONED: "Terputus",
    ABANDONED_WITH_MESSAGE: "Terputus, ada rekaman",
}

# -- priorities ----------------------------------------------------------------

NORMAL: Final = "normal"
URGENT: Final = "urgent"
PRIORITIES: Final = (NORMAL, URGENT)


def kind_prompt(kind: str) -> str:
    """The catalog prompt that names a kind to a caller."""
    return f"ticket.kind.{kind}" if kind in KINDS else "ticket.kind.other"


def status_prompt(status: str) -> str:
    """The catalog prompt that tells a caller a status."""
    return f"ticket.status.{status}" if status in STATUSES else "ticket.status.other"


@dataclass(frozen=True)
class TicketOwner:
    """Who a ticket belongs to, as the directory and the network said at the time."""

    office_id: int | None
    caller_e164: str | None


def may_hear_details(owner: TicketOwner, *, office_id: int | None, caller_e164: str | None) -> bool:
    """Staff notes (and the scheduled date) are read only to the ticket's own
    office or its own number; anybody else holding the number hears the status.

    A withheld or unknown number (``None``) matches nothing, and neither does a
    ticket without an office."""
    if owner.office_id is not None and owner.office_id == office_id:
        return True
    return owner.caller_e164 is not None and owner.caller_e164 == caller_e164
