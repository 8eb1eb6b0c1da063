"""A ticket's timeline as the ticket page shows it: one Indonesian sentence
per entry, whatever wrote it (the call's flows through ``Call.record.add``,
the emergency callback loop, staff through the API).

An entry of a kind not known here still shows, as its fields; a test
(``tests/test_ticket_list_api.py``) finds every kind the code writes and
checks it has its sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from ivr import tickets
from ivr.emergency import routing
from ivr.emergency.callbacks import ACKNOWLEDGED, NOT_ACKNOWLEDGED, UNKNOWN
from ivr.web.pages.roster import FLAG_LABELS, MODE_LABELS, SOURCE_LABELS

#: A call's step (``Call.enter``) by its first part: "agenda:leader" is "Agenda pimpinan".
STEP_LABELS: Final = {
    "start": "Mulai",
    "greeting": "Salam pembuka",
    "menu": "Menu",
    "agenda": "Agenda pimpinan",
    "submit": "Permohonan / notifikasi",
    "track": "Lacak tiket",
    "ticket-number": "Nomor tiket",
    "record": "Merekam pesan",
    "message-saved": "Pesan tersimpan",
    "operator": "Operator",
    "emergency": "Darurat",
    "screen": "Penyaringan petugas",
    "ack": "Konfirmasi alarm",
    "alert": "Peringatan",
    "goodbye": "Penutup",
}

RECORDING_LABELS: Final = {
    "message": "Pesan suara",
    "description": "Uraian permohonan",
    "emergency": "Pesan darurat",
    "follow_up": "Tindak lanjut",
}

OFFICE_REASONS: Final = {
    "weekly": "jam layanan",
    "after-hours": "di luar jam layanan",
    "weekend": "hari tanpa layanan",
    "holiday": "hari libur",
    "override": "diatur petugas",
}

#: Timeline entries by kind.
EVENT_LABELS: Final = {
    "prompt": "Diputar",
    "dtmf": "Tombol",
    "record": "Rekaman",
    "dial": "Panggilan keluar",
    "step": "Langkah",
    "menu": "Menu",
    "staff": "Petugas",
    "alarm": "Alarm darurat",
    "callback": "Panggilan balik",
    "alert": "Peringatan",
    "emergency": "Darurat",
    "screen": "Penyaringan",
    "submit": "Pengajuan",
    "track": "Lacak tiket",
    "pin": "PIN",
    "office": "Jam layanan",
    "operator": "Operator",
    "playback": "Pemutaran rekaman",
    "error": "Gangguan",
    "emergency-attempt": "Panggilan piket",
    "roster-flag": "Jadwal piket",
    "agenda-access": "Agenda pimpinan",
    "agenda-leader": "Agenda pimpinan",
    "agenda-readback": "Agenda pimpinan",
    "submit-cancelled": "Pengajuan",
    "submit-date": "Pengajuan",
    "input-rejected": "Masukan ditolak",
    "readback-fallback": "Diputar",
    "description-truncated": "Rekaman",
    "description-retake": "Rekaman",
    "record-rejected": "Rekaman",
    "urgent-alert": "Peringatan",
    "alert-acknowledged": "Peringatan",
}

DIAL_LABELS: Final = {
    "started": "memanggil",
    "ANSWER": "dijawab",
    "NOANSWER": "tidak dijawab",
    "BUSY": "sibuk",
    "CONGESTION": "jaringan sibuk",
    "CHANUNAVAIL": "tidak tersedia",
    "CANCEL": "dibatalkan",
}


def step_label(step: str | None) -> str:
    if not step:
        return ""
    return STEP_LABELS.get(step.split(":", 1)[0], step)


def _quote(text: str) -> str:
    return f"“{text}”" if text else "(kosong)"


def _staff_text(entry: dict[str, Any]) -> str:
    parts = []
    changes = entry.get("changes") or {}
    if "status" in changes:
        change = changes["status"]
        parts.append(
            f"Status {tickets.STATUSES.get(change['from'], change['from'])} → "
            f"{tickets.STATUSES.get(change['to'], change['to'])}"
        )
    if "note_for_caller" in changes:
        parts.append(f"Catatan untuk penelepon: {_quote(changes['note_for_caller']['to'])}")
    who = (entry.get("by") or {}).get("label") or "petugas"
    return f"{'; '.join(parts) or entry.get('action', '')} (oleh {who})"


def describe(entry: dict[str, Any]) -> str:
    """One timeline entry as a sentence (plain text: the template escapes it)."""
    kind = entry["kind"]
    if kind == "prompt":
        return entry.get("text") or entry.get("prompt") or ""
    if kind == "dtmf":
        digits = entry.get("digits") or ""
        return f"Menekan {digits}" if digits else "Tidak menekan tombol"
    if kind == "record":
        what = entry.get("record_kind", "")
        return f"{RECORDING_LABELS.get(what, what)}, {entry.get('seconds', 0)} detik".lstrip(", ")
    if kind == "office":
        state = "Buka" if entry.get("open") else "Tutup"
        reason = OFFICE_REASONS.get(entry.get("reason", ""), entry.get("reason", ""))
        return f"{state} ({reason})" if reason else state
    if kind == "dial":
        status = entry.get("status", "")
        return f"{entry.get('target', '')}: {DIAL_LABELS.get(status, status)}"
    if kind == "step":
        return step_label(entry.get("name"))
    if kind == "staff":
        return _staff_text(entry)
    if kind in ("alarm", "alert") and entry.get("action"):
        action = {"raised": "dibunyikan", "acknowledged": "diakui", "exhausted": "tidak ada yang mengakui"}
        by = f" oleh {entry['by']}" if entry.get("by") else ""
        return f"{action.get(entry['action'], entry['action'])}{by}"
    sentence = SENTENCES.get(kind)
    if sentence is not None:
        try:
            return sentence(entry)
        except (KeyError, TypeError, ValueError):  # an entry older or newer than this code: its fields
            pass
    rest = {key: value for key, value in entry.items() if key not in ("at", "kind")}
    return ", ".join(f"{key}: {value}" for key, value in rest.items())


def _label(labels: dict[str, str], value: Any) -> str:
    return labels.get(value, str(value)) if value is not None else ""


ATTEMPT_OUTCOMES: Final = {
    routing.ACCEPTED: "menerima",
    routing.DECLINED: "menolak",
    routing.NO_ANSWER: "tidak menjawab",
    routing.BUSY: "sibuk",
    routing.UNAVAILABLE: "tidak dapat dihubungi",
    routing.SCREENING_TIMEOUT: "menjawab tetapi tidak menekan 1",
    routing.CANCELLED: "dibatalkan (penelepon menutup telepon)",
}
SCREEN_DECISIONS: Final = {
    routing.ACCEPT: "Petugas menerima panggilan (menekan 1)",
    routing.DECLINE: "Petugas menolak panggilan",
    routing.TIMEOUT: "Petugas tidak menekan 1",
    routing.LATE: "Petugas menekan 1 terlambat",
    routing.TAKEN: "Panggilan sudah diterima petugas lain",
}
CALLBACK_RESULTS: Final = {
    ACKNOWLEDGED: "diakui petugas",
    NOT_ACKNOWLEDGED: "dijawab tetapi tidak diakui",
    UNKNOWN: "hasil tidak diketahui",
    "no answer": "tidak dijawab",
    "busy": "sibuk",
    "unavailable": "tidak dapat dihubungi",
}
PIN_RESULTS: Final = {
    "ok": "PIN benar",
    "wrong": "PIN salah",
    "locked": "PIN salah berulang kali: nomor diblokir sementara",
    "no-input": "Tidak memasukkan PIN",
    "unavailable": "PIN tidak dapat diperiksa (basis data tidak tersedia)",
}
ACCESS_REFUSALS: Final = {
    "database": "basis data tidak tersedia",
    "locked": "nomor sedang diblokir karena PIN salah",
    "no-pin": "penelepon tidak dikenal dan belum punya PIN",
}
INPUT_NAMES: Final = {"date": "tanggal", "time": "jam", "ticket-number": "nomor tiket"}
INPUT_PROBLEMS: Final = {
    "check-digit": "angka pemeriksa tidak cocok",
    "empty": "tidak ada angka",
    "keys": "tombol yang tidak berlaku",
    "length": "jumlah angka tidak sesuai",
    "never-issued": "nomor itu belum pernah diterbitkan",
    "no-such-date": "tanggal tidak ada",
    "no-such-time": "jam tidak ada",
    "past": "waktunya sudah lewat",
    "too-far": "terlalu jauh ke depan",
}
ERROR_WHAT: Final = {
    "record": "merekam",
    "playback": "memutar rekaman",
    "protocol": "berkomunikasi dengan Asterisk",
    "shutdown": "server dihentikan (panggilan terputus)",
}


def _attempt(entry: dict[str, Any]) -> str:
    officers = ", ".join(entry.get("officers") or []) or entry.get("target", "")
    text = (
        f"Putaran {entry['round']}, tingkat {entry['level']} ({_label(MODE_LABELS, entry.get('mode'))}): "
        f"{officers} {_label(ATTEMPT_OUTCOMES, entry['outcome'])}"
    )
    if entry.get("answered_by") and entry["outcome"] != routing.ACCEPTED:
        text += f" (dijawab {entry['answered_by']})"
    return text


def _emergency(entry: dict[str, Any]) -> str:
    chain = entry.get("shift") or _label(SOURCE_LABELS, entry.get("source"))
    return f"Darurat: menghubungi petugas piket ({chain}), {entry.get('rounds', 1)} putaran"


def _callback(entry: dict[str, Any]) -> str:
    who = entry.get("officer") or entry.get("target", "")
    return (
        f"Panggilan balik ke {who} (putaran {entry['round']}, tingkat {entry['level']}): "
        f"{_label(CALLBACK_RESULTS, entry['result'])}"
    )


def _pin(entry: dict[str, Any]) -> str:
    return f"{_label(PIN_RESULTS, entry['result'])} (percobaan {entry.get('attempt', 1)})"


def _agenda_access(entry: dict[str, Any]) -> str:
    if entry["granted"]:
        return "Akses agenda diberikan" + (" dengan PIN" if entry.get("by") == "pin" else " (nomor terdaftar)")
    return f"Akses agenda ditolak: {_label(ACCESS_REFUSALS, entry.get('reason'))}"


def _agenda_readback(entry: dict[str, Any]) -> str:
    day = entry["day"]
    if entry.get("ready") is False:
        return f"Agenda {day} belum dapat dibacakan (suara belum siap)"
    return f"Agenda {day} dibacakan: {entry.get('items', 0)} kegiatan"


def _input_rejected(entry: dict[str, Any]) -> str:
    keys = entry.get("keys") or ""
    return (
        f"{_label(INPUT_NAMES, entry['what']).capitalize()} ditolak"
        f"{f' ({keys})' if keys else ''}: {_label(INPUT_PROBLEMS, entry.get('problem'))}"
    )


def _track(entry: dict[str, Any]) -> str:
    number = entry.get("number") or ""
    if entry.get("error"):
        return f"Lacak tiket {number}: basis data tidak tersedia"
    if entry.get("found"):
        return f"Tiket {number} ditemukan, status {_label(tickets.STATUSES, entry.get('status'))}"
    return f"Tiket {number} tidak ditemukan"


def _menu(entry: dict[str, Any]) -> str:
    return (
        f"Menu {entry['menu']}: {entry.get('no_input', 0)}× tanpa pilihan, "
        f"{entry.get('invalid', 0)}× pilihan tidak berlaku"
    )


#: Sentences for the kinds whose fields need more than a label.
SENTENCES: Final[dict[str, Callable[[dict[str, Any]], str]]] = {
    "emergency-attempt": _attempt,
    "emergency": _emergency,
    "screen": lambda e: _label(SCREEN_DECISIONS, e["decision"]),
    "callback": _callback,
    "roster-flag": lambda e: f"Catatan jadwal piket: {_label(FLAG_LABELS, e['code'])}",
    "pin": _pin,
    "agenda-access": _agenda_access,
    "agenda-leader": lambda e: f"Memilih agenda {e['title']}",
    "agenda-readback": _agenda_readback,
    "menu": _menu,
    "submit": lambda e: f"Mulai: {_label(tickets.KINDS, e['kind'])}",
    "submit-cancelled": lambda e: f"{_label(tickets.KINDS, e['kind'])} dibatalkan penelepon",
    "submit-date": lambda e: f"Tanggal {e['date']}" + (f" pukul {e['time']}" if e.get("time") else ""),
    "input-rejected": _input_rejected,
    "readback-fallback": lambda e: f"Dibacakan dengan rekaman per kata (suara belum siap): {e['text']}",
    "description-truncated": lambda e: f"Uraian dipotong pada {e['seconds']} detik",
    "description-retake": lambda e: "Penelepon merekam ulang uraian",
    "record-rejected": lambda e: f"Rekaman {e['seconds']} detik terlalu pendek atau sunyi, diminta ulang",
    "track": _track,
    "operator": lambda e: (
        "Operator tidak tersedia" + (": di luar jam layanan" if e.get("reason") == "outside-hours" else "")
    ),
    "error": lambda e: (
        f"Gangguan saat {_label(ERROR_WHAT, e['what'])}" + (f": {e['detail']}" if e.get("detail") else "")
    ),
    "playback": lambda e: f"Memutar rekaman {e['path']}",
    "urgent-alert": lambda e: (
        "Peringatan mendesak dikirim ke petugas piket" if e["raised"] else "Peringatan mendesak tidak dapat dikirim"
    ),
    "alert": lambda e: f"Peringatan #{e['alert']} dibacakan" if e["found"] else "Peringatan tidak ditemukan",
    "alert-acknowledged": lambda e: (
        f"Peringatan #{e['alert']} diakui oleh {e['by']}"
        + ("" if e.get("first", True) else " (sudah diakui sebelumnya)")
    ),
}


def _spoken_digit(entry: dict[str, Any]) -> str | None:
    """The digit a ``digit.N`` prompt spoke (a ticket or phone number is read
    back one prompt per digit), else None."""
    prompt = entry.get("prompt") or ""
    if entry["kind"] == "prompt" and prompt.startswith("digit.") and prompt[6:].isdigit():
        return prompt[6:]
    return None


def timeline_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline's rows; a number read back digit by digit is one row
    ("Angka dibacakan: 8898 6204") instead of one row per digit."""
    rows: list[dict[str, Any]] = []
    for entry in events:
        digit = _spoken_digit(entry)
        if digit is not None and rows and "digits" in rows[-1]:
            rows[-1]["digits"] += digit
        else:
            rows.append(
                {
                    "at": datetime.fromisoformat(entry["at"]),
                    "kind": entry["kind"],
                    "label": EVENT_LABELS.get(entry["kind"], entry["kind"]),
                    "text": describe(entry),
                    **({"digits": digit} if digit is not None else {}),
                }
            )
    for row in rows:
        if "digits" in row:
            digits = row.pop("digits")
            grouped = " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
            row["text"] = f"Angka dibacakan: {grouped}"
    return rows
