"""What callers hear of the agenda: items, statuses, days and the leader menu,
table-driven, plus the bad input of issue 3 (quotes, newlines, emoji, links,
2,000 characters) and the guarantees the TTS cache relies on."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from ivr.agenda.speech import (
    ITEM_LIMIT,
    clip,
    day_readback,
    intro_text,
    item_text,
    leader_menu_text,
    spoken_field,
    status_text,
)
from ivr.agenda.store import DayAgenda, ItemView, LeaderInfo
from ivr.speech.normalize import MAX_CHARS, normalize

MONDAY = dt.date(2025, 12, 15)
WEDNESDAY = dt.date(2025, 12, 17)
BUPATI = LeaderInfo(1, "Bupati", "H. Ahmad Fauzi, S.H., M.H.", "1")
T = dt.time


EIGHT_THIRTY = T(8, 30)


def item(
    start: dt.time = EIGHT_THIRTY,
    end: dt.time | None = None,
    activity: str = "Rapat Koordinasi",
    place: str = "Pendopo Dipayudha Adigraha",
    status: str = "terjadwal",
    *,
    id: int = 1,
    day: dt.date = MONDAY,
    **detail: object,
) -> ItemView:
    return ItemView(
        id=id, leader_id=1, date=day, start=start, end=end, activity=activity, place=place, status=status, **detail
    )


# -- statuses ----------------------------------------------------------------------

STATUS_CASES = [
    ("terjadwal", {}, "Status: terjadwal."),
    ("berlangsung", {}, "Status: sedang berlangsung."),
    ("selesai", {}, "Status: telah selesai."),
    ("dibatalkan", {}, "Status: dibatalkan."),
    ("ditunda", {}, "Status: ditunda, waktu pelaksanaannya belum ditentukan."),
    (
        "ditunda",
        {"new_date": WEDNESDAY},
        "Status: ditunda ke hari Rabu, tujuh belas Desember.",
    ),
    (
        "dipindahkan",
        {"new_date": WEDNESDAY, "new_start": T(9, 0)},
        "Status: dipindahkan ke hari Rabu, tujuh belas Desember, pukul sembilan tepat.",
    ),
    (
        "dipindahkan",
        {"new_date": dt.date(2026, 1, 5), "new_start": T(13, 30)},
        "Status: dipindahkan ke hari Senin, lima Januari dua ribu dua puluh enam, "
        "pukul tiga belas lewat tiga puluh menit.",
    ),
    (
        "dipindahkan",
        {"new_start": T(14, 15)},
        "Status: dipindahkan ke pukul empat belas lewat lima belas menit pada hari yang sama.",
    ),
    (
        "dipindahkan",
        {"new_date": MONDAY, "new_start": T(10, 5)},
        "Status: dipindahkan ke pukul sepuluh lewat lima menit pada hari yang sama.",
    ),
    ("dipindahkan", {"new_date": WEDNESDAY}, "Status: dipindahkan ke hari Rabu, tujuh belas Desember."),
    ("dipindahkan", {}, "Status: dipindahkan, waktu yang baru belum ditentukan."),
    (
        "diwakilkan",
        {"representative": "Asisten Pemerintahan Setda Kab. Banjarnegara"},
        "Status: diwakilkan oleh Asisten Pemerintahan Sekretariat Daerah Kabupaten Banjarnegara.",
    ),
    ("diwakilkan", {"representative": "Kadis Kominfo"}, "Status: diwakilkan oleh Kepala Dinas Kominfo."),
    ("diwakilkan", {}, "Status: diwakilkan."),
    ("diwakilkan", {"representative": " 🎉 "}, "Status: diwakilkan."),
    ("ditunda", {"new_start": T(0, 0)}, "Status: ditunda ke pukul dua belas tengah malam pada hari yang sama."),
    (
        "dipindahkan",
        {"new_date": WEDNESDAY, "new_start": T(12, 0)},
        "Status: dipindahkan ke hari Rabu, tujuh belas Desember, pukul dua belas siang.",
    ),
]


@pytest.mark.parametrize(("status", "detail", "expected"), STATUS_CASES)
def test_status_is_spoken_naturally(status: str, detail: dict[str, object], expected: str) -> None:
    assert status_text(item(status=status, **detail)) == expected


# -- one item ------------------------------------------------------------------------

ITEM_CASES = [
    (
        item(T(8, 30), T(10, 0)),
        "Pukul delapan lewat tiga puluh menit sampai dengan pukul sepuluh: Rapat Koordinasi, "
        "bertempat di Pendopo Dipayudha Adigraha. Status: terjadwal.",
    ),
    (
        item(T(9, 0), place=""),
        "Pukul sembilan tepat: Rapat Koordinasi. Status: terjadwal.",
    ),
    (
        item(T(8, 5), T(9, 0), "Apel Pagi ASN", "Halaman Setda", "selesai"),
        "Pukul delapan lewat lima menit sampai dengan pukul sembilan: Apel Pagi A S N, "
        "bertempat di Halaman Sekretariat Daerah. Status: telah selesai.",
    ),
    (
        item(T(0, 0), T(1, 30), "Patroli Malam Tahun Baru"),
        "Pukul dua belas tengah malam sampai dengan pukul satu lewat tiga puluh menit: Patroli Malam Tahun Baru, "
        "bertempat di Pendopo Dipayudha Adigraha. Status: terjadwal.",
    ),
    (
        item(T(12, 0), T(13, 0), "Ramah Tamah", "Rumah Dinas Bupati"),
        "Pukul dua belas siang sampai dengan pukul tiga belas: Ramah Tamah, bertempat di Rumah Dinas Bupati. "
        "Status: terjadwal.",
    ),
    (  # runs past midnight
        item(T(20, 0), T(1, 0), "Pagelaran Wayang Kulit", "Alun-alun Banjarnegara"),
        "Pukul dua puluh sampai dengan pukul satu keesokan harinya: Pagelaran Wayang Kulit, "
        "bertempat di Alun-alun Banjarnegara. Status: terjadwal.",
    ),
    (  # numbers, ordinals, abbreviations in the activity
        item(T(7, 0), None, "Upacara HUT RI ke-80 di Alun-alun Kab. Banjarnegara", "", "berlangsung"),
        "Pukul tujuh tepat: Upacara H U T R I kedelapan puluh di Alun-alun Kabupaten Banjarnegara. "
        "Status: sedang berlangsung.",
    ),
    (
        item(T(10, 0), None, "Zoom Meeting Evaluasi SPBE", "Command Center Diskominfo"),
        "Pukul sepuluh tepat: Zum Miting Evaluasi SPBE, bertempat di Command Center Dinas Komunikasi dan "
        "Informatika. Status: terjadwal.",
    ),
    (  # the text already in words passes through
        item(T(9, 0), None, "Rapat dua puluh lima desa", "Balai Desa Sipedang"),
        "Pukul sembilan tepat: Rapat dua puluh lima desa, bertempat di Balai Desa Sipedang. Status: terjadwal.",
    ),
    (  # a public note
        item(T(14, 0), None, "Penyerahan Bantuan", "Gedung Korpri", note="Peserta hadir pukul 13.30 WIB"),
        "Pukul empat belas tepat: Penyerahan Bantuan, bertempat di Gedung Korpri. Status: terjadwal. Catatan: "
        "Peserta hadir pukul tiga belas lewat tiga puluh menit Waktu Indonesia Barat.",
    ),
    (  # quotes, newline, emoji, a link
        item(T(15, 0), None, '"Lomba" Desa 🎉\nTingkat Kabupaten', "Pendopo", note="Info: https://example.go.id/x"),
        "Pukul lima belas tepat: Lomba Desa, Tingkat Kabupaten, bertempat di Pendopo. Status: terjadwal. "
        "Catatan: Info.",
    ),
    (  # trailing punctuation of the fields is not doubled
        item(T(11, 0), None, "Rapat Paripurna DPRD.", "Gedung DPRD, ", note="Pakaian dinas harian."),
        "Pukul sebelas tepat: Rapat Paripurna DPRD, bertempat di Gedung DPRD. Status: terjadwal. "
        "Catatan: Pakaian dinas harian.",
    ),
    (  # nothing left to say of the activity
        item(T(16, 0), None, "🎉🎉", ""),
        "Pukul enam belas tepat: kegiatan pimpinan. Status: terjadwal.",
    ),
    (
        item(T(9, 0), None, "Rapat", "Aula", "dipindahkan", new_date=WEDNESDAY, new_start=T(9, 0)),
        "Pukul sembilan tepat: Rapat, bertempat di Aula. "
        "Status: dipindahkan ke hari Rabu, tujuh belas Desember, pukul sembilan tepat.",
    ),
]


@pytest.mark.parametrize(("agenda_item", "expected"), ITEM_CASES)
def test_item_read_back(agenda_item: ItemView, expected: str) -> None:
    assert item_text(agenda_item) == expected


def test_item_on_the_day_it_was_moved_to() -> None:
    moved = item(
        T(13, 0), None, "Peresmian Jembatan", "Desa Sipedang", "dipindahkan", new_date=WEDNESDAY, new_start=T(14, 0)
    )
    assert item_text(moved, WEDNESDAY) == (
        "Pukul empat belas tepat: Peresmian Jembatan, bertempat di Desa Sipedang. "
        "Kegiatan ini dipindahkan dari hari Senin, lima belas Desember."
    )
    postponed = item(T(13, 0), None, "Kunjungan Kerja", "", "ditunda", new_date=WEDNESDAY)
    assert item_text(postponed, WEDNESDAY) == (
        "Pukul tiga belas tepat: Kunjungan Kerja. Kegiatan ini ditunda dari hari Senin, lima belas Desember."
    )


def test_item_continuing_past_midnight_on_the_next_day() -> None:
    night = item(T(20, 0), T(1, 0), "Pagelaran Wayang Kulit", "Alun-alun", "berlangsung")
    assert item_text(night, MONDAY + dt.timedelta(days=1)) == (
        "Lanjutan dari hari Senin, pukul dua puluh sampai dengan pukul satu: Pagelaran Wayang Kulit, "
        "bertempat di Alun-alun. Status: sedang berlangsung."
    )


# -- bad input -----------------------------------------------------------------------

LONG_TEXTS = [
    "Rapat Koordinasi " * 120,  # 2,040 characters of words
    "x" * 2000,  # one 2,000-character "word"
    ("Pembahasan rancangan peraturan daerah, " * 60)[:2000],
    "\n".join(['Baris dengan "kutipan", koma, dan emoji 🚀'] * 50),
    "1" * 2000,  # digits only
    '\'; DROP TABLE agenda_items; -- \r\nSTREAM FILE /etc/passwd "" \n EXEC Dial Local/1',
]


@pytest.mark.parametrize("text", LONG_TEXTS)
@pytest.mark.parametrize("status", ["terjadwal", "dipindahkan", "diwakilkan"])
def test_any_text_gives_one_safe_item_that_keeps_time_and_status(text: str, status: str) -> None:
    detail: dict[str, object] = {}
    if status == "dipindahkan":
        detail = {"new_date": WEDNESDAY, "new_start": T(19, 45)}
    if status == "diwakilkan":
        detail = {"representative": text[:200]}
    spoken = item_text(item(T(23, 55), T(0, 5), text, text[:500], status, note=text[:500], **detail))
    assert len(spoken) <= ITEM_LIMIT < MAX_CHARS
    assert spoken.startswith("Pukul dua puluh tiga lewat lima puluh lima menit sampai dengan")
    assert "Status: " in spoken  # never the part cut off
    if status == "dipindahkan":
        assert "pukul sembilan belas lewat empat puluh lima menit" in spoken
    # one line of plain words: nothing that could break or extend an AGI command
    assert "\n" not in spoken and "\r" not in spoken and '"' not in spoken
    assert normalize(spoken) == spoken


CLIP_CASES = [
    ("Rapat Koordinasi", 40, "Rapat Koordinasi"),
    ("Rapat Koordinasi Penanganan Banjir", 20, "Rapat Koordinasi"),
    ("Rapat Koordinasi, Penanganan Banjir dan Longsor", 30, "Rapat Koordinasi, Penanganan"),  # comma too early
    ("Rapat Koordinasi Daerah, Penanganan Banjir dan Longsor", 30, "Rapat Koordinasi Daerah"),
    ("Satu dua tiga empat lima enam. Tujuh delapan sembilan", 40, "Satu dua tiga empat lima enam"),
    ("A, b c d e f g h i j k l m n o p", 20, "A, b c d e f g h i j"),  # comma too early: cut at a word
    ("Rapat.", 40, "Rapat"),
    ("x" * 50, 10, "x" * 10),
    ("anything", 0, ""),
]


@pytest.mark.parametrize(("text", "budget", "expected"), CLIP_CASES)
def test_clip_cuts_at_clause_then_word(text: str, budget: int, expected: str) -> None:
    assert clip(text, budget) == expected
    assert len(clip(text, budget)) <= max(budget, 0)


FIELD_CASES = [
    ('"Kutipan" dan «kutipan»', "Kutipan dan kutipan"),
    ("Baris satu\nBaris dua", "Baris satu, Baris dua"),
    ("Baris satu.\nBaris dua", "Baris satu. Baris dua"),
    ("Lihat www.banjarnegarakab.go.id atau humas@banjarnegarakab.go.id", "Lihat atau"),
    ("Jum'at Berkah", "Jum'at Berkah"),
    ("'Apel' *penting* #1", "Apel penting satu"),
    ("\t  ", ""),
]


@pytest.mark.parametrize(("raw", "expected"), FIELD_CASES)
def test_free_text_fields_are_cleaned(raw: str, expected: str) -> None:
    assert spoken_field(raw, 200) == expected


# -- a day ---------------------------------------------------------------------------


def test_day_in_time_order_with_count() -> None:
    agenda = DayAgenda(
        BUPATI,
        MONDAY,
        items=(
            item(T(8, 0), id=3, activity="Apel Pagi"),
            item(T(10, 0), id=1, activity="Audiensi"),
            item(T(10, 0), id=2, activity="Rapat Staf"),
        ),
        carried=(item(T(21, 0), T(2, 0), "Ronda Malam", "", id=9, day=MONDAY - dt.timedelta(days=1)),),
        moved_in=(
            item(
                T(15, 0),
                None,
                "Peresmian",
                "",
                "dipindahkan",
                id=4,
                day=dt.date(2025, 12, 12),
                new_date=MONDAY,
                new_start=T(9, 0),
            ),
        ),
    )
    readback = day_readback(agenda)
    assert readback.intro == (
        "Agenda Bupati pada hari Senin, lima belas Desember dua ribu dua puluh lima. Ada lima kegiatan."
    )
    assert [re.split(r"[,.]", text.split(": ", 1)[1])[0] for text in readback.items] == [
        "Ronda Malam",
        "Apel Pagi",
        "Peresmian",
        "Audiensi",
        "Rapat Staf",
    ]
    assert readback.items[0].startswith("Lanjutan dari hari Minggu, pukul dua puluh satu")
    assert readback.texts == (readback.intro, *readback.items)


ON_MONDAY = "pada hari Senin, lima belas Desember dua ribu dua puluh lima."
INTRO_CASES = [
    (LeaderInfo(1, "Bupati", "", "1"), 0, f"Tidak ada agenda Bupati {ON_MONDAY}"),
    (LeaderInfo(2, "Wakil Bupati", "", "2"), 1, f"Agenda Wakil Bupati {ON_MONDAY} Ada satu kegiatan."),
    (LeaderInfo(3, "Sekda", "", "3"), 12, f"Agenda Sekretaris Daerah {ON_MONDAY} Ada dua belas kegiatan."),
    (LeaderInfo(4, "", "", "4"), 0, f"Tidak ada agenda pimpinan {ON_MONDAY}"),
]


@pytest.mark.parametrize(("leader", "count", "expected"), INTRO_CASES)
def test_day_intro(leader: LeaderInfo, count: int, expected: str) -> None:
    items = tuple(item(T(8, 0), id=n) for n in range(count))
    assert intro_text(DayAgenda(leader, MONDAY, items)) == expected


def test_day_texts_do_not_depend_on_when_they_are_heard() -> None:
    """No "hari ini"/"besok": tomorrow's audio rendered today stays valid."""
    agenda = DayAgenda(BUPATI, MONDAY, (item(),))
    for text in day_readback(agenda).texts:
        assert "hari ini" not in text and "besok" not in text


def test_year_2000_to_2099_and_new_year() -> None:
    agenda = DayAgenda(BUPATI, dt.date(2000, 1, 1))
    assert intro_text(agenda) == "Tidak ada agenda Bupati pada hari Sabtu, satu Januari dua ribu."
    agenda = DayAgenda(BUPATI, dt.date(2099, 12, 31))
    assert intro_text(agenda).endswith("Kamis, tiga puluh satu Desember dua ribu sembilan puluh sembilan.")


def test_leader_menu() -> None:
    leaders = [
        LeaderInfo(1, "Bupati", "", "1"),
        LeaderInfo(2, "Wakil Bupati", "", "2"),
        LeaderInfo(3, "Sekda", "", "3"),
        LeaderInfo(4, "Pj. Sekda", "", "0"),  # 0 is "back": never a leader's key
    ]
    assert leader_menu_text(leaders) == (
        "Untuk agenda Bupati, tekan satu. Untuk agenda Wakil Bupati, tekan dua. "
        "Untuk agenda Sekretaris Daerah, tekan tiga. Untuk kembali ke menu utama, tekan nol."
    )


def test_leader_menu_is_the_catalog_fallback_for_the_demo_leaders() -> None:
    """The composed menu and the catalog prompt share one cached audio file."""
    from ivr.app import load_catalog

    leaders = [
        LeaderInfo(1, "Bupati", "", "1"),
        LeaderInfo(2, "Wakil Bupati", "", "2"),
        LeaderInfo(3, "Sekretaris Daerah", "", "3"),
    ]
    assert normalize(load_catalog().text("agenda.choose_leader")) == leader_menu_text(leaders)
