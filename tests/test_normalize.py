"""The Indonesian normalizer: plain input -> the words espeak-ng should read."""

from __future__ import annotations

from datetime import date, time

import pytest

from ivr.speech.normalize import MAX_CHARS, NORMALIZER_VERSION, normalize, say_date, say_digits, say_number, say_time

CASES = [
    # numbers: zero, teens, tens, hundreds, thousands, big
    ("0", "nol"),
    ("7", "tujuh"),
    ("10", "sepuluh"),
    ("11", "sebelas"),
    ("13", "tiga belas"),
    ("19", "sembilan belas"),
    ("21", "dua puluh satu"),
    ("100", "seratus"),
    ("101", "seratus satu"),
    ("250", "dua ratus lima puluh"),
    ("1000", "seribu"),
    ("1001", "seribu satu"),
    ("1.500", "seribu lima ratus"),
    ("25.000 peserta", "dua puluh lima ribu peserta"),
    ("1.234.567", "satu juta dua ratus tiga puluh empat ribu lima ratus enam puluh tujuh"),
    ("2,5 km", "dua koma lima km"),
    ("50%", "lima puluh persen"),
    ("10-12 orang", "sepuluh sampai dua belas orang"),
    ("HUT RI ke-80", "H U T R I kedelapan puluh"),
    ("Hubungi 08123456789", "Hubungi nol delapan satu dua tiga empat lima enam tujuh delapan sembilan"),
    # years 2000-2099
    ("Tahun 2000", "Tahun dua ribu"),
    ("Tahun 2005", "Tahun dua ribu lima"),
    ("Tahun 2025", "Tahun dua ribu dua puluh lima"),
    ("Tahun 2099", "Tahun dua ribu sembilan puluh sembilan"),
    ("2024-2025", "dua ribu dua puluh empat sampai dua ribu dua puluh lima"),
    # money
    ("Rp 1.500.000", "satu juta lima ratus ribu rupiah"),
    ("Rp. 50.000,-", "lima puluh ribu rupiah"),
    ("Rp1,5 juta", "satu koma lima juta rupiah"),
    ("Rp 25rb", "dua puluh lima ribu rupiah"),
    # times
    ("08.30", "pukul delapan lewat tiga puluh menit"),
    ("08:30", "pukul delapan lewat tiga puluh menit"),
    ("09.00", "pukul sembilan tepat"),
    ("Pukul 13.15", "Pukul tiga belas lewat lima belas menit"),
    ("pukul 08.05", "pukul delapan lewat lima menit"),
    ("07.01", "pukul tujuh lewat satu menit"),
    ("10.09", "pukul sepuluh lewat sembilan menit"),
    ("00.00", "pukul dua belas tengah malam"),
    ("00.15", "pukul dua belas malam lewat lima belas menit"),
    ("12.00", "pukul dua belas siang"),
    ("12.30", "pukul dua belas lewat tiga puluh menit"),
    ("Pkl. 09.00 WIB", "Pukul sembilan tepat Waktu Indonesia Barat"),
    # time ranges
    ("08.30 - 10.00 WIB", "pukul delapan lewat tiga puluh menit sampai dengan pukul sepuluh Waktu Indonesia Barat"),
    ("08.30-10.00", "pukul delapan lewat tiga puluh menit sampai dengan pukul sepuluh"),
    ("14.00–16.00 WITA", "pukul empat belas sampai dengan pukul enam belas Waktu Indonesia Tengah"),
    ("pukul 08.30 s.d. pukul 10.00", "pukul delapan lewat tiga puluh menit sampai dengan pukul sepuluh"),
    ("09.00 s/d 11.30", "pukul sembilan sampai dengan pukul sebelas lewat tiga puluh menit"),
    ("Pukul 08.00 WIB s.d. selesai", "Pukul delapan Waktu Indonesia Barat sampai dengan selesai"),
    (
        "Pukul 19.00 WIT sampai 21.00 WIT",
        "Pukul sembilan belas sampai dengan pukul dua puluh satu Waktu Indonesia Timur",
    ),
    # dates
    ("11/08/2025", "Senin, sebelas Agustus dua ribu dua puluh lima"),
    ("11-08-2025", "Senin, sebelas Agustus dua ribu dua puluh lima"),
    ("1.1.2026", "Kamis, satu Januari dua ribu dua puluh enam"),
    ("2025-08-17", "Minggu, tujuh belas Agustus dua ribu dua puluh lima"),
    ("Senin, 11/08/2025", "Senin, sebelas Agustus dua ribu dua puluh lima"),
    ("Jumat 15/08/2025", "Jumat lima belas Agustus dua ribu dua puluh lima"),
    ("11 Agu 2025", "sebelas Agustus dua ribu dua puluh lima"),
    ("Senin, 11 Agustus 2025", "Senin, sebelas Agustus dua ribu dua puluh lima"),
    ("31/02/2025 salah", "tiga puluh satu/nol dua/dua ribu dua puluh lima salah"),
    # abbreviations
    ("WIB", "Waktu Indonesia Barat"),
    ("Kepala OPD", "Kepala O P D"),
    ("Setda Kab. Sleman", "Sekretariat Daerah Kabupaten Sleman"),
    ("Sekda", "Sekretaris Daerah"),
    ("Jl. Merdeka No. 5", "Jalan Merdeka Nomor lima"),
    ("di RSUD", "di R S U D"),
    ("ATK, konsumsi, dll.", "ATK, konsumsi, dan lain-lain"),
    ("Bapak/Ibu", "Bapak atau Ibu"),
    ("Bapak/Ibu/Saudara", "Bapak atau Ibu atau Saudara"),
    ("ASN & UMKM", "A S N dan U M K M"),
    ("Hari/Tanggal: Senin", "Hari, tanggal: Senin"),
    ("80 km/jam", "delapan puluh km/jam"),
    # loanwords
    ("Layanan Call Center", "Layanan Kol Senter"),
    ("via Zoom Meeting", "via Zum Miting"),
    ("rapat online", "rapat onlain"),
    # already in words: unchanged
    ("pukul delapan lewat tiga puluh menit", "pukul delapan lewat tiga puluh menit"),
    ("Senin, sebelas Agustus dua ribu dua puluh lima", "Senin, sebelas Agustus dua ribu dua puluh lima"),
    ("Terima kasih telah menghubungi kami.", "Terima kasih telah menghubungi kami."),
    ("hari ini ada rapat", "hari ini ada rapat"),
    # clean-up: emoji, newlines, control characters, whitespace
    ("Selamat pagi 🙏😀", "Selamat pagi"),
    ("Rapat\nkoordinasi", "Rapat. koordinasi"),
    ("Rapat,\n\nkoordinasi", "Rapat, koordinasi"),
    ("  banyak    spasi\t\tdi sini  ", "banyak spasi di sini"),
    ("ada\x00kontrol\x07", "ada kontrol"),
    ("1️⃣ pertama", "satu pertama"),
    ("Suhu 30°C", "Suhu tiga puluh derajat Celsius"),
    ("Tunggu...", "Tunggu."),
    ("🎉🎉", ""),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[case[0] or "<empty>" for case in CASES])
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_full_agenda_line() -> None:
    text = "Agenda Bupati 11/08/2025: Pukul 08.30 WIB, sosialisasi Layanan Call Center Protokol di Pendopo."
    assert normalize(text) == (
        "Agenda Bupati Senin, sebelas Agustus dua ribu dua puluh lima: Pukul delapan lewat tiga puluh menit "
        "Waktu Indonesia Barat, sosialisasi Layanan Kol Senter Protokol di Pendopo."
    )


def test_normalize_is_idempotent_on_its_output() -> None:
    once = normalize("Rapat OPD 11/08/2025 pukul 08.30-10.00 WIB di Setda, Rp 1.500.000")
    assert normalize(once) == once


def test_long_text_is_capped_at_a_word_boundary() -> None:
    text = "agenda " * 200
    out = normalize(text)
    assert len(out) <= MAX_CHARS
    assert out.endswith("agenda.")
    assert normalize("x" * 1000) == "x" * (MAX_CHARS - 1) + "."


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "nol"), (12, "dua belas"), (2025, "dua ribu dua puluh lima"), (1_000_000, "satu juta")],
)
def test_say_number(value: int, expected: str) -> None:
    assert say_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1234", "satu dua tiga empat"), ("0007", "nol nol nol tujuh"), ("TK-25", "T K dua lima")],
)
def test_say_digits(value: str, expected: str) -> None:
    assert say_digits(value) == expected


def test_say_date_and_time() -> None:
    assert say_date(date(2025, 8, 11)) == "Senin, sebelas Agustus dua ribu dua puluh lima"
    assert say_date(date(2025, 8, 11), weekday=False) == "sebelas Agustus dua ribu dua puluh lima"
    assert say_time(time(8, 30)) == "pukul delapan lewat tiga puluh menit"
    assert say_time(time(9, 0)) == "pukul sembilan tepat"
    assert say_time(time(0, 0)) == "pukul dua belas tengah malam"
    assert say_time(time(12, 0)) == "pukul dua belas siang"


def test_version_is_an_int() -> None:
    assert isinstance(NORMALIZER_VERSION, int)
