"""Caller ID normalization: what Asterisk hands us, turned into something we can
match against the caller directory, show to staff and read to a duty officer.

Asterisk gives the number in ``agi_callerid`` and the presentation in
``agi_callingpres``. The forms to expect from Indonesian trunks and SIP phones::

    agi_callerid: +6281234567890        (SIP trunk, E.164)
    agi_callerid: 6281234567890         (trunk that drops the plus)
    agi_callerid: 081234567890          (national format)
    agi_callerid: 0286321234            (Banjarnegara landline, area code 0286)
    agi_callerid: unknown               (no caller ID at all: Asterisk's literal)
    agi_callerid: anonymous             (SIP privacy, RFC 3323 "anonymous@anonymous.invalid")
    agi_callingpres: 35                 (0x23: presentation restricted, network provided)

The heavy lifting (area codes, mobile prefixes, lengths) is done by
``phonenumbers`` (Google's libphonenumber metadata); this module only decides
what to feed it, so that junk around the digits never turns into a wrong but
"valid" number, and what to do with the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

CallerKind = Literal["mobile", "landline", "other", "withheld", "unknown"]

#: We keep at most this much of the raw value: it is stored and logged, and a
#: caller ID longer than this is junk anyway (E.164 allows 15 digits).
MAX_RAW_LENGTH: Final = 64
#: E.164 allows 15 digits after the country code's "+"; one more covers a
#: national trunk prefix ("0") or a country code glued to a trunk prefix
#: ("62 0812..."). Anything longer is not a phone number and is never parsed.
MAX_DIGITS: Final = 16
#: A number that is not a valid phone number (an internal extension such as
#: "100", a short code) is still shown and read back, but only this many digits.
MAX_SHOWN_DIGITS: Final = 20

#: Bits of Asterisk's presentation value that say whether the number may be
#: shown: ``AST_PRES_RESTRICTION`` (main/callerid.c, include/asterisk/callerid.h).
PRES_RESTRICTION_MASK: Final = 0x60
PRES_RESTRICTED: Final = 0x20

#: Literal values that mean "the caller hid the number" (SIP privacy headers,
#: ISDN/SS7 gateways, some trunks spell it out).
WITHHELD_WORDS: Final = frozenset({"anonymous", "restricted", "private", "withheld", "privacy", "hidden"})
#: Literal values that mean "nobody told us": Asterisk's own ``unknown``, and
#: what gateways send when the network did not deliver a number.
UNKNOWN_WORDS: Final = frozenset({"unknown", "unavailable", "not available", "none", "null", "n/a"})

#: What staff see in the web app for numbers we cannot show (the web app speaks Indonesian).
DISPLAY_WITHHELD: Final = "Nomor disembunyikan"
DISPLAY_UNKNOWN: Final = "Tidak diketahui"

_KIND_BY_TYPE: Final[dict[int, CallerKind]] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    # FIXED_LINE_OR_MOBILE (all of North America, for instance) stays "other":
    # guessing either way would be wrong half the time.
}


@dataclass(frozen=True)
class CallerNumber:
    """A caller ID as received (``raw``) and as understood.

    ``e164`` is set only for numbers libphonenumber calls valid, so it is safe
    as a directory lookup key. It is ``None`` for withheld numbers even when
    Asterisk knows the digits: the caller asked not to be identified, so
    nothing downstream may show, speak or match them.
    """

    raw: str
    e164: str | None
    kind: CallerKind


def is_restricted(presentation: int | None) -> bool:
    """Whether Asterisk's presentation value (``agi_callingpres``) forbids
    showing the number: 32..35 (restricted, any screening) but not 0..3
    (allowed) nor 67 (0x43, "number unavailable", which is not a privacy wish)."""
    return presentation is not None and (presentation & PRES_RESTRICTION_MASK) == PRES_RESTRICTED


def normalize(raw: str, *, region: str = "ID", presentation: int | None = None) -> CallerNumber:
    """Understand one caller ID.

    ``region`` is where national-format numbers come from (our trunks are in
    Indonesia). Never raises on caller-controlled input: every string gives a
    ``CallerNumber``. Raises ``ValueError`` only for an unknown ``region``,
    which is a configuration mistake.
    """
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {region!r}")
    raw = raw[:MAX_RAW_LENGTH]
    if is_restricted(presentation):
        return CallerNumber(raw, None, "withheld")
    word = " ".join(raw.split()).casefold()
    if word in WITHHELD_WORDS:
        return CallerNumber(raw, None, "withheld")
    if not word or word in UNKNOWN_WORDS:
        return CallerNumber(raw, None, "unknown")

    plus, digits = _digits(raw)
    if not digits:
        # Text without a single digit ("tidak ada", "?"): no number was given.
        return CallerNumber(raw, None, "unknown")
    if len(digits) > MAX_DIGITS:
        return CallerNumber(raw, None, "other")

    parsed = _parse(plus, digits, region)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        return CallerNumber(raw, None, "other")
    kind = _KIND_BY_TYPE.get(phonenumbers.number_type(parsed), "other")
    return CallerNumber(raw, phonenumbers.format_number(parsed, PhoneNumberFormat.E164), kind)


def display(number: CallerNumber, *, region: str = "ID") -> str:
    """The number for staff: national format for our own country
    (``0812-3456-7890``, ``(0286) 321234``), international for others
    (``+1 650-253-0000``), Indonesian words when there is no number to show."""
    if number.kind == "withheld":
        return DISPLAY_WITHHELD
    if number.e164 is not None:
        parsed = phonenumbers.parse(number.e164)
        if phonenumbers.region_code_for_number(parsed) == region:
            return phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
        return phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)
    shown = _shown_digits(number)
    if shown is None:
        return DISPLAY_UNKNOWN
    plus, digits = shown
    if len(digits) > MAX_SHOWN_DIGITS:
        return plus + digits[:MAX_SHOWN_DIGITS] + "…"
    return plus + digits


def spoken_digits_source(number: CallerNumber, *, region: str = "ID") -> str | None:
    """The digits a duty officer hears, one by one, to know who is calling.

    Numbers of our own country are read as dialled at home, trunk prefix
    included (``081234567890``, ``0286321234``), since that is how people
    recognise them. Foreign numbers come as ``+`` and the E.164 digits
    (``+16502530000``); the speech layer says "plus". ``None`` when nothing may
    or can be read: withheld, unknown, or more digits than a listener can follow.
    """
    if number.kind == "withheld":
        return None
    if number.e164 is not None:
        parsed = phonenumbers.parse(number.e164)
        if phonenumbers.region_code_for_number(parsed) == region:
            return phonenumbers.normalize_digits_only(phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL))
        return number.e164
    shown = _shown_digits(number)
    if shown is None or len(shown[1]) > MAX_SHOWN_DIGITS:
        return None
    return shown[0] + shown[1]


def _digits(raw: str) -> tuple[str, str]:
    """The leading ``+`` (if any) and the digits of a caller ID.

    We pick the digits ourselves instead of letting ``phonenumbers.parse`` read
    free text: it maps letters to keypad digits (``"xyz"`` -> ``999``) and so
    turns junk into a different, sometimes valid, number. SIP-style suffixes
    (``@host``, ``;ext=1``, ``;phone-context=…``) are cut first so their digits
    do not join the number. Non-ASCII digits (full-width, Arabic-Indic) become
    ASCII via ``normalize_digits_only``.
    """
    head = raw
    for stop in ("@", ";"):
        head = head.split(stop, 1)[0]
    digits = phonenumbers.normalize_digits_only(head)
    if not digits:
        return "", ""
    first_digit = next((i for i, ch in enumerate(head) if ch.isdigit()), len(head))
    return ("+" if "+" in head[:first_digit] else ""), digits


def _parse(plus: str, digits: str, region: str) -> phonenumbers.PhoneNumber | None:
    """Parse the cleaned digits, preferring the international reading.

    ``6281234567890`` without the plus is how many trunks send E.164. Read
    nationally it can also be a valid number in another area
    (``62215551234`` is (0622) 15551234 in Sumatra, or (021) 5551234 in
    Jakarta with the plus): a national number always starts with the trunk
    prefix ``0`` on our trunks, so a leading country code wins when it gives a
    valid number, and the national reading is the fallback.
    """
    try:
        if plus:
            return phonenumbers.parse("+" + digits, None)
        country_code = str(phonenumbers.country_code_for_region(region))
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        trunk_prefix = (metadata.national_prefix if metadata is not None else None) or ""
        if digits.startswith(country_code) and not (trunk_prefix and digits.startswith(trunk_prefix)):
            international = phonenumbers.parse("+" + digits, None)
            if phonenumbers.is_valid_number(international):
                return international
        return phonenumbers.parse(digits, region)
    except NumberParseException:
        return None


def _shown_digits(number: CallerNumber) -> tuple[str, str] | None:
    """Plus and digits of a number that is not a valid phone number (an
    internal extension, a short code), or ``None`` when there are none."""
    if number.kind in ("withheld", "unknown"):
        return None
    plus, digits = _digits(number.raw)
    return (plus, digits) if digits else None
