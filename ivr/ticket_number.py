"""Ticket numbers: 8 digits a caller can key in, with a check digit.

Layout: 7 payload digits + 1 Damm check digit. The Damm algorithm (H. Michael
Damm, 2004) uses a totally anti-symmetric quasigroup of order 10, so it
detects *every* single-digit substitution and *every* transposition of two
adjacent digits: the two mistakes people make keying numbers on a phone pad.
Unlike Luhn it catches 09 <-> 90, and unlike Verhoeff it needs one table and
no permutations. A caller who mistypes is told at once (PRODUCT.md, "Lacak
tiket") instead of hearing somebody else's ticket.

The payload is not the database id itself: ids 1, 2, 3 would give tickets
that reveal the call volume and invite guessing neighbours. It is an affine
map of the id modulo 10**7 (see ``MULTIPLIER`` and ``OFFSET``). This is
obfuscation, not secrecy: anyone holding two ticket numbers can work out the
map. Knowing a ticket number must never be what authorizes anything.

Ticket numbers are strings: a leading zero is part of the number.
"""

from __future__ import annotations

from typing import Final

#: Damm's operation table (his 2004 dissertation, also the table on Wikipedia):
#: row = interim digit, column = next input digit. The check digit is the
#: interim digit after the payload; a number is valid when the interim digit
#: after all of it, check digit included, is 0.
DAMM_TABLE: Final = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

PAYLOAD_DIGITS: Final = 7
NUMBER_DIGITS: Final = PAYLOAD_DIGITS + 1
MODULUS: Final = 10**PAYLOAD_DIGITS
MIN_ID: Final = 1
MAX_ID: Final = MODULUS - 1

#: payload = (MULTIPLIER * id + OFFSET) mod 10**7.
#:
#: Why this is a bijection on 0 .. 10**7 - 1: 10**7 = 2**7 * 5**7, and
#: MULTIPLIER is odd and does not end in 0 or 5, so gcd(MULTIPLIER, 10**7) = 1
#: and MULTIPLIER has an inverse modulo 10**7 (``_INVERSE``). Then
#: id = _INVERSE * (payload - OFFSET) mod 10**7 undoes the map, and a map with
#: an inverse is one-to-one and onto. Ids 1 .. 9_999_999 therefore get distinct
#: payloads; the one payload never issued is OFFSET itself (the image of id 0).
#:
#: Why this multiplier: 6_180_339 is 10**7 divided by the golden ratio
#: (0.6180339...). Multiples of it modulo 10**7 ("Fibonacci hashing", Knuth
#: TAOCP vol. 3, 6.4) spread out as evenly as any sequence can, so consecutive
#: ids land far apart and in no visible order.
MULTIPLIER: Final = 6_180_339
#: Shifts id 1 away from an obvious value; any constant works (2_718_281: the
#: digits of e, chosen for being memorable to whoever debugs this).
OFFSET: Final = 2_718_281
_INVERSE: Final = pow(MULTIPLIER, -1, MODULUS)


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit alone accepts "٣" and "²"; a keypad sends only 0-9.
    return text.isascii() and text.isdigit()


def _interim(digits: str) -> int:
    interim = 0
    for ch in digits:
        interim = DAMM_TABLE[interim][ord(ch) - 48]
    return interim


def damm_check_digit(digits: str) -> str:
    """The Damm check digit of a non-empty string of ASCII digits
    (``"572"`` -> ``"4"``)."""
    if not _is_ascii_digits(digits):
        raise ValueError(f"expected ASCII digits, got {digits!r}")
    return str(_interim(digits))


def is_valid(number: str) -> bool:
    """Exactly 8 ASCII digits whose Damm check passes. Never raises."""
    if not isinstance(number, str) or len(number) != NUMBER_DIGITS or not _is_ascii_digits(number):
        return False
    return _interim(number) == 0


def number_for_id(ticket_id: int) -> str:
    """The ticket number of database id ``ticket_id`` (1 .. 9_999_999)."""
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int):
        raise TypeError(f"ticket id must be an int, got {type(ticket_id).__name__}")
    if not MIN_ID <= ticket_id <= MAX_ID:
        raise ValueError(f"ticket id {ticket_id} outside {MIN_ID}..{MAX_ID}")
    payload = f"{(MULTIPLIER * ticket_id + OFFSET) % MODULUS:0{PAYLOAD_DIGITS}d}"
    return payload + damm_check_digit(payload)


def id_for_number(number: str) -> int | None:
    """The database id behind a ticket number, or ``None`` when the number is
    malformed, fails its check digit, or was never issued (payload OFFSET)."""
    if not is_valid(number):
        return None
    ticket_id = (_INVERSE * (int(number[:PAYLOAD_DIGITS]) - OFFSET)) % MODULUS
    return ticket_id if MIN_ID <= ticket_id <= MAX_ID else None
