"""Indonesian text normalization for espeak-ng's ``id`` voice.

espeak-ng reads many written forms wrongly (SPEECH.md section 4): ``08.30`` becomes
"nol delapan titik tiga puluh", ``11/08/2025`` is read with "garis miring", ``RSUD``
is read as a word, ``Call Center`` gets Indonesian letter rules. This module turns
agenda-style text into the words a person would say, so that the synthesizer only
has to pronounce plain Indonesian words.

The output is also what the TTS cache is keyed on, so any change to the output for
the same input must bump :data:`NORMALIZER_VERSION` (old cache entries then simply
stop being hit).

The rules are regex passes applied in a fixed order:

1. clean-up (Unicode NFKC, control characters, emoji, line breaks, whitespace);
2. abbreviations, connectors ("s.d."), acronyms to spell, loanword lexicon;
3. dates, then time ranges, then single times (dates first: ``11.08.2025`` contains
   ``11.08``);
4. money (``Rp``), percentages, ordinals (``ke-80``), number ranges, numbers;
5. punctuation tidy-up and a length cap.

Text already written in words passes through unchanged. The lexicon is a first cut
and must grow with real agenda data; a native speaker should review it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date, time
from functools import lru_cache

from babel.dates import get_day_names, get_month_names
from num2words import num2words  # type: ignore[import-untyped]

__all__ = [
    "MAX_CHARS",
    "NORMALIZER_VERSION",
    "normalize",
    "say_date",
    "say_digits",
    "say_number",
    "say_time",
]

#: Bump whenever the output for some input changes: it is part of the TTS cache key.
NORMALIZER_VERSION = 1

#: Cap on the normalized text. pyttsx3's espeak driver grows its audio buffer with
#: ``bytes +=`` (O(n^2), SPEECH.md P9), and a phone prompt longer than ~40 s of
#: speech is unusable anyway. Callers synthesize one agenda item at a time.
MAX_CHARS = 600

#: num2words handles larger numbers, but nobody says "satu kuadriliun" on the phone:
#: such long digit strings are identifiers, read digit by digit.
_MAX_WORDS_NUMBER = 10**15 - 1

_DIGIT_WORDS = ("nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan")


# --------------------------------------------------------------------------- helpers


def say_number(n: int) -> str:
    """Cardinal number in Indonesian words: ``2025`` -> "dua ribu dua puluh lima".

    num2words must get an ``int``: the string ``"08"`` raises AttributeError (SPEECH.md
    section 4), which is why every caller converts first.
    """
    return str(num2words(int(n), lang="id"))


def say_digits(s: str) -> str:
    """Read an identifier symbol by symbol: ``"1234"`` -> "satu dua tiga empat".

    Used for ticket and phone numbers, where "seribu dua ratus ..." would be wrong.
    Letters are kept (upper-cased, so espeak spells them); separators are dropped.
    """
    out: list[str] = []
    for ch in s:
        if ch.isdigit() and ch.isascii():
            out.append(_DIGIT_WORDS[int(ch)])
        elif ch.isalpha():
            out.append(ch.upper())
    return " ".join(out)


@lru_cache(maxsize=1)
def _day_names() -> dict[int, str]:
    # Keyed by date.weekday() (0 = Senin). Babel's mapping iterates from Minggu,
    # so index it, never iterate it (SPEECH.md section 5).
    names = get_day_names("wide", locale="id")
    return {i: str(names[i]) for i in range(7)}


@lru_cache(maxsize=1)
def _month_names() -> dict[int, str]:
    names = get_month_names("wide", locale="id")
    return {i: str(names[i]) for i in range(1, 13)}


def say_date(d: date, *, weekday: bool = True) -> str:
    """``date(2025, 8, 11)`` -> "Senin, sebelas Agustus dua ribu dua puluh lima".

    Babel supplies the names so no OS ``id_ID`` locale is needed (unlike strftime).
    """
    body = f"{say_number(d.day)} {_month_names()[d.month]} {say_number(d.year)}"
    if weekday:
        return f"{_day_names()[d.weekday()]}, {body}"
    return body


def _say_clock(hour: int, minute: int, *, exact: bool) -> str:
    """Formal 24-hour reading: "pukul delapan lewat tiga puluh menit".

    "setengah sembilan" (= 08:30) and "kurang" are avoided on purpose: they are the
    classic source of misunderstanding (SPEECH.md section 4).
    """
    if hour == 0:
        spoken_hour = "dua belas tengah malam" if minute == 0 else "dua belas malam"
    elif hour == 12 and minute == 0:
        spoken_hour = "dua belas siang"
    else:
        spoken_hour = say_number(hour)
    if minute:
        return f"pukul {spoken_hour} lewat {say_number(minute)} menit"
    if exact and hour not in (0, 12):
        return f"pukul {spoken_hour} tepat"
    return f"pukul {spoken_hour}"


def say_time(t: time) -> str:
    """``time(9, 0)`` -> "pukul sembilan tepat"; ``time(8, 5)`` -> "... lewat lima menit"."""
    return _say_clock(t.hour, t.minute, exact=True)


def _say_decimal(integer: int, fraction_digits: str) -> str:
    """Indonesian decimals use a comma, and the fraction is read digit by digit."""
    words = say_number(integer)
    if fraction_digits and fraction_digits.strip("0"):
        words += " koma " + say_digits(fraction_digits.rstrip("0"))
    return words


def _say_integer_token(token: str) -> str:
    """A bare digit string: numbers in words, identifiers (leading 0, huge) digit by digit."""
    if (len(token) > 1 and token.startswith("0")) or int(token) > _MAX_WORDS_NUMBER:
        return say_digits(token)
    return say_number(int(token))


# --------------------------------------------------------------------------- clean-up

_DROP_CATEGORIES = frozenset({"Cf", "Cs", "Co", "Cn", "So", "Sk"})
# Emoji variation selectors are category Mn; the keycap combiner is Me.
_DROP_CHARS = frozenset({"\ufe0e", "\ufe0f", "\u20e3"})
_DASHES = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-"})
_LINE_BREAKS = re.compile(r"[ \t]*(?:\r\n|\r|\n|\u2028|\u2029)+\s*")


def _clean(text: str) -> str:
    """Drop what a synthesizer cannot or should not read, keep a pause per line."""
    # NFKC folds fullwidth digits, non-breaking spaces and "…" into plain forms.
    text = unicodedata.normalize("NFKC", text).translate(_DASHES)
    text = text.replace("°C", " derajat Celsius").replace("°", " derajat")

    def line_break(match: re.Match[str]) -> str:
        # A line break ends an item in agenda text: make it a sentence pause unless
        # the line already ends with punctuation.
        before = text[: match.start()].rstrip()
        if before and before[-1].isalnum():
            return ". "
        return " "

    text = _LINE_BREAKS.sub(line_break, text)
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in _DROP_CHARS or category in _DROP_CATEGORIES:
            continue
        out.append(" " if category in ("Cc", "Zl", "Zp") or ch.isspace() else ch)
    return " ".join("".join(out).split())


# --------------------------------------------------------------------------- lexicon


def _keep_case(replacement: str) -> Callable[[re.Match[str]], str]:
    """Replacement that follows the matched word's case ("kab." -> "kabupaten")."""

    def sub(match: re.Match[str]) -> str:
        found = match.group(0)
        if found[:1].islower():
            return replacement[:1].lower() + replacement[1:]
        return replacement

    return sub


# Abbreviations written with a period, or short forms used in agenda texts.
# Ordered: longer forms before their prefixes.
_ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    (r"\bdll\b\.?", "dan lain-lain"),
    (r"\bdsb\b\.?", "dan sebagainya"),
    (r"\bdst\b\.?", "dan seterusnya"),
    (r"\ba\.\s?n\.", "atas nama"),
    (r"\b[Kk]ab\.", "Kabupaten"),
    (r"\bKab\b", "Kabupaten"),
    (r"\b[Kk]ec\.", "Kecamatan"),
    (r"\b[Kk]el\.", "Kelurahan"),
    (r"\b[Pp]rov\.", "Provinsi"),
    (r"\b[Jj]ln?\.", "Jalan"),
    (r"\b[Nn]o\.?\s?(?=\d)", "Nomor "),
    (r"\b[Tt]gl\.", "tanggal"),
    (r"\b(?:[Tt]elp|[Tt]lp)\.", "telepon"),
    (r"\b[Pp]kl\.?(?=\s?\d)", "Pukul"),
    (r"\bBpk\.", "Bapak"),
    (r"\bSdri\.", "Saudari"),
    (r"\bSdr\.", "Saudara"),
    (r"\bHj\.", "Hajah"),
    (r"\bH\.(?=\s[A-Z][a-z])", "Haji"),
    (r"\bDrs\.", "Doktorandus"),
    (r"\bIr\.", "Insinyur"),
    (r"\bDr\.", "Doktor"),
    (r"\bdr\.", "dokter"),
    (r"\bWIB\b", "Waktu Indonesia Barat"),
    (r"\bWITA\b", "Waktu Indonesia Tengah"),
    (r"\bWIT\b", "Waktu Indonesia Timur"),
)

# Words espeak reads as words but that are clearer expanded (SPEECH.md section 4).
_EXPANSIONS: dict[str, str] = {
    "Setda": "Sekretariat Daerah",
    "Sekda": "Sekretaris Daerah",
    "Pemkab": "Pemerintah Kabupaten",
    "Pemkot": "Pemerintah Kota",
    "Pemprov": "Pemerintah Provinsi",
    "Pemda": "Pemerintah Daerah",
    "Wabup": "Wakil Bupati",
    "Kadis": "Kepala Dinas",
    "Kabag": "Kepala Bagian",
    "Kasubag": "Kepala Sub Bagian",
    "Prokopim": "Protokol dan Komunikasi Pimpinan",
    "Diskominfo": "Dinas Komunikasi dan Informatika",
}

# Acronyms with a vowel that espeak reads as a word ([rsˈud], [ˈopd], [ˈasn]) but
# people spell. Vowel-less ones (DPRD, PKK, KTP) are spelled by espeak already.
_SPELLED = ("RSUD", "RSUP", "HUT", "RI", "OPD", "ASN", "UMKM", "TNI", "NIK", "BUMD", "BUMN", "UPT", "UPTD", "KUA")

# English loanwords respelled with Indonesian letter rules. Keys are lower case;
# longer phrases first so "zoom meeting" wins over "zoom".
_LOANWORDS: tuple[tuple[str, str], ...] = (
    ("call center", "Kol Senter"),
    ("zoom meeting", "Zum Miting"),
    ("coffee morning", "Kofi Morning"),
    ("video conference", "Video Konferens"),
    ("zoom", "Zum"),
    ("meeting", "Miting"),
    ("online", "Onlain"),
    ("offline", "Oflain"),
    ("launching", "Lonching"),
    ("whatsapp", "Wotsap"),
    ("e-mail", "Imel"),
    ("email", "Imel"),
    ("website", "Websait"),
    ("briefing", "Brifing"),
    ("talkshow", "Tokso"),
    ("gathering", "Gedering"),
)


def _compile_lexicon() -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
    rules: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = []
    for pattern, replacement in _ABBREVIATIONS:
        rules.append((re.compile(pattern), _keep_case(replacement)))
    for word, replacement in _EXPANSIONS.items():
        rules.append((re.compile(rf"\b{word}\b", re.IGNORECASE), _keep_case(replacement)))
    spelled = "|".join(sorted(_SPELLED, key=len, reverse=True))
    rules.append((re.compile(rf"\b(?:{spelled})\b"), lambda m: " ".join(m.group(0))))
    for phrase, replacement in _LOANWORDS:
        pattern = r"\s+".join(re.escape(part) for part in phrase.split())
        rules.append((re.compile(rf"\b{pattern}\b", re.IGNORECASE), _loanword(replacement)))
    return rules


def _loanword(replacement: str) -> Callable[[re.Match[str]], str]:
    def sub(match: re.Match[str]) -> str:
        return replacement.lower() if match.group(0).islower() else replacement

    return sub


_LEXICON = _compile_lexicon()

# "s.d.", "s/d", "s.d", "S.D." -> "sampai dengan".
_UNTIL = re.compile(r"(?<![\w.])[sS]\s?[./]\s?[dD]\b\.?")
_HARI_TANGGAL = re.compile(r"\bHari\s?/\s?Tanggal\b", re.IGNORECASE)
_SAUDARA_I = re.compile(r"\bSaudara\s?/\s?i\b")
_DAN_ATAU = re.compile(r"\bdan\s?/\s?atau\b", re.IGNORECASE)
# "Bapak/Ibu", "Bapak/Ibu/Saudara": capitalized word alternatives. Lower-case pairs
# ("km/jam") are units, not alternatives, so they are left alone.
_WORD_SLASH = re.compile(r"\b([A-Z][a-z]+)/(?=[A-Z][a-z]+\b)")


def _apply_lexicon(text: str) -> str:
    text = _UNTIL.sub("sampai dengan", text)
    text = _HARI_TANGGAL.sub("Hari, tanggal", text)
    text = _SAUDARA_I.sub("Saudara atau Saudari", text)
    text = _DAN_ATAU.sub("dan atau", text)
    text = _WORD_SLASH.sub(r"\1 atau ", text)
    text = text.replace("&", " dan ")
    for pattern, replacement in _LEXICON:
        text = pattern.sub(replacement, text)
    return text


# --------------------------------------------------------------------------- dates

_WEEKDAY_BEFORE = re.compile(r"\b(?:Senin|Selasa|Rabu|Kamis|Jum'?at|Sabtu|Minggu)\s*,?\s*$", re.IGNORECASE)
# Numeric dates are DD/MM/YYYY in Indonesia; "-" and "." are used as separators too.
_DATE_DMY = re.compile(r"(?<![\w./-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?!\w|[./-]\d)")
_DATE_ISO = re.compile(r"(?<![\w./-])(\d{4})-(\d{2})-(\d{2})(?!\w|[./-]\d)")
_MONTH_ABBREVIATIONS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "mei": 5, "jun": 6, "jul": 7, "agu": 8, "agt": 8,
    "ags": 8, "agus": 8, "sep": 9, "sept": 9, "okt": 10, "nov": 11, "nop": 11, "des": 12,
}  # fmt: skip
_DATE_ABBREVIATED = re.compile(
    r"(?<![\w.])(\d{1,2})\s+(" + "|".join(sorted(_MONTH_ABBREVIATIONS, key=len, reverse=True)) + r")\.?\s+(\d{4})\b",
    re.IGNORECASE,
)


def _date_or_none(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _say_dates(text: str) -> str:
    def numeric(match: re.Match[str], day: int, month: int, year: int) -> str:
        d = _date_or_none(year, month, day)
        if d is None:
            return match.group(0)
        # "Senin, 11/08/2025" must not become "Senin, Senin, ...".
        weekday = not _WEEKDAY_BEFORE.search(match.string[: match.start()])
        return say_date(d, weekday=weekday)

    text = _DATE_DMY.sub(lambda m: numeric(m, int(m.group(1)), int(m.group(3)), int(m.group(4))), text)
    text = _DATE_ISO.sub(lambda m: numeric(m, int(m.group(3)), int(m.group(2)), int(m.group(1))), text)

    def abbreviated(match: re.Match[str]) -> str:
        d = _date_or_none(int(match.group(3)), _MONTH_ABBREVIATIONS[match.group(2).lower()], int(match.group(1)))
        return match.group(0) if d is None else say_date(d, weekday=False)

    return _DATE_ABBREVIATED.sub(abbreviated, text)


# --------------------------------------------------------------------------- times

_ZONE = r"Waktu Indonesia (?:Barat|Tengah|Timur)"
_CLOCK = r"(?:([Pp]ukul|[Jj]am)\s+)?(\d{1,2})[.:](\d{2})"
_CLOCK_END = r"(?![\w]|[.,:/]\d)"
_TIME_RANGE = re.compile(
    rf"(?<![\w.,:/]){_CLOCK}{_CLOCK_END}(?:\s*({_ZONE}))?"
    rf"\s*(?:-|sampai dengan|sampai|hingga)\s*"
    rf"(?:(?:[Pp]ukul\s+|[Jj]am\s+)?(\d{{1,2}})[.:](\d{{2}}){_CLOCK_END}|([Ss]elesai))"
    rf"(?:\s*({_ZONE}))?"
)
_TIME = re.compile(rf"(?<![\w.,:/]){_CLOCK}{_CLOCK_END}")


def _valid_clock(hour: str, minute: str) -> bool:
    return int(hour) <= 24 and int(minute) <= 59 and not (int(hour) == 24 and int(minute) > 0)


def _capitalize_like(prefix: str | None, spoken: str) -> str:
    """Keep "Pukul" capitalized when the source started a sentence with it."""
    if prefix and prefix[:1].isupper():
        return spoken[:1].upper() + spoken[1:]
    return spoken


def _say_times(text: str) -> str:
    def time_range(match: re.Match[str]) -> str:
        prefix, h1, m1, zone1, h2, m2, until_done, zone2 = match.groups()
        if not _valid_clock(h1, m1) or (h2 is not None and not _valid_clock(h2, m2)):
            return match.group(0)
        start = _say_clock(int(h1), int(m1), exact=False)
        end = "selesai" if until_done else _say_clock(int(h2), int(m2), exact=False)
        zone = zone2 or zone1
        if zone and until_done:
            # "08.00 WIB s.d. selesai": the zone belongs to the start time.
            spoken = f"{start} {zone} sampai dengan selesai"
        else:
            spoken = f"{start} sampai dengan {end}" + (f" {zone}" if zone else "")
        return _capitalize_like(prefix, spoken)

    def single(match: re.Match[str]) -> str:
        prefix, hour, minute = match.groups()
        if not _valid_clock(hour, minute):
            return match.group(0)
        return _capitalize_like(prefix, _say_clock(int(hour), int(minute), exact=True))

    text = _TIME_RANGE.sub(time_range, text)
    return _TIME.sub(single, text)


# --------------------------------------------------------------------------- numbers

_NUMBER = r"\d{1,3}(?:\.\d{3})+|\d+"
_SCALES = {"ribu": "ribu", "rb": "ribu", "juta": "juta", "jt": "juta", "miliar": "miliar", "triliun": "triliun"}
_MONEY = re.compile(
    rf"(?<!\w)[Rr]p\.?\s?({_NUMBER})(?:,(\d+))?(?:,-|\.-)?"
    r"(?:\s?(ribu|rb|juta|jt|miliar|triliun)\b\.?)?"
)
_PERCENT = re.compile(rf"(?<![\w.,])({_NUMBER})(?:,(\d+))?\s?%")
_ORDINAL = re.compile(r"\b([Kk]e)-(\d+)\b")
# "10-12 orang", "2024-2025". Not "0812-3456" (a phone number: leading zero).
_NUMBER_RANGE = re.compile(r"(?<![\w.,/-])([1-9]\d{0,3})\s?-\s?([1-9]\d{0,3})(?!\w|[.,/-]\d)")
_GROUPED_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:\.\d{3})+)(?:,(\d+))?(?!\w|[.,]\d)")
_DECIMAL = re.compile(r"(?<![\w.,])(\d+),(\d+)(?!\w|[.,]\d)")
_PLAIN_NUMBER = re.compile(r"(?<![\w.,])\d+(?!\w|[.,]\d)")


def _int(grouped: str) -> int:
    return int(grouped.replace(".", ""))


def _say_numbers(text: str) -> str:
    def money(match: re.Match[str]) -> str:
        amount, fraction, scale = match.groups()
        words = _say_decimal(_int(amount), fraction or "")
        if scale:
            words += " " + _SCALES[scale.lower()]
        return words + " rupiah"

    text = _MONEY.sub(money, text)
    text = _PERCENT.sub(lambda m: _say_decimal(_int(m.group(1)), m.group(2) or "") + " persen", text)
    text = _ORDINAL.sub(lambda m: m.group(1) + say_number(int(m.group(2))), text)
    text = _NUMBER_RANGE.sub(lambda m: f"{say_number(int(m.group(1)))} sampai {say_number(int(m.group(2)))}", text)
    text = _GROUPED_NUMBER.sub(lambda m: _say_decimal(_int(m.group(1)), m.group(2) or ""), text)
    text = _DECIMAL.sub(lambda m: _say_decimal(int(m.group(1)), m.group(2)), text)
    return _PLAIN_NUMBER.sub(lambda m: _say_integer_token(m.group(0)), text)


# --------------------------------------------------------------------------- tidy-up

_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_REPEATED_PUNCT = re.compile(r"([,.;:!?])[,.;:!?]+")


def _tidy(text: str) -> str:
    text = " ".join(text.split())
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _REPEATED_PUNCT.sub(r"\1", text)


def _cap(text: str, limit: int = MAX_CHARS) -> str:
    """Cut at the last word boundary before ``limit`` (SPEECH.md P9: O(n^2) synthesis)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]  # one character is kept free for the closing period
    if text[limit] != " " and " " in cut:
        cut = cut[: cut.rfind(" ")]
    cut = cut.rstrip(" ,;:-")[: limit - 1]
    return cut if cut.endswith((".", "!", "?")) else cut + "."


@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """Rewrite ``text`` into the words espeak-ng's Indonesian voice should read.

    Pure, so memoized: every cache lookup normalizes first (~0.5 ms for an agenda
    line with ~75 regex passes), and the same prompts and read-backs recur all day.

    >>> normalize("Pukul 08.30 WIB di RSUD")
    'Pukul delapan lewat tiga puluh menit Waktu Indonesia Barat di R S U D'
    """
    text = _clean(text)
    if not text:
        return ""
    text = _apply_lexicon(text)
    text = _say_dates(text)
    text = _say_times(text)
    text = _say_numbers(text)
    return _cap(_tidy(text))
