"""Caller ID normalization: a table of what trunks and phones really send."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.callerid import (
    DISPLAY_UNKNOWN,
    DISPLAY_WITHHELD,
    MAX_RAW_LENGTH,
    CallerNumber,
    display,
    is_restricted,
    normalize,
    spoken_digits_source,
)

MOBILE = "+6281234567890"

#: phonenumbers loads a region's metadata on first use; that one-off cost must
#: not count against Hypothesis's per-example deadline on a slow CI runner.
lazy_metadata = settings(deadline=None)

# raw, expected e164, kind, display, spoken digits
CASES = [
    # The forms PRODUCT.md names.
    ("+62 812-3456-7890", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("6281234567890", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("081234567890", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("+6281234567890", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("08112345678", "+628112345678", "mobile", "0811-2345-678", "08112345678"),
    # Landlines with area code: Banjarnegara, Semarang, Jakarta.
    ("0286 321234", "+62286321234", "landline", "(0286) 321234", "0286321234"),
    ("(024) 3546789", "+62243546789", "landline", "(024) 3546789", "0243546789"),
    ("+62 286 321234", "+62286321234", "landline", "(0286) 321234", "0286321234"),
    ("021-5551234", "+62215551234", "landline", "(021) 5551234", "0215551234"),
    # Without the plus, a leading 62 is the country code, not area 0622.
    ("62215551234", "+62215551234", "landline", "(021) 5551234", "0215551234"),
    # Country code glued to the trunk prefix.
    ("62 0812 3456 7890", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("+62 (0)812 3456 7890", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    # No number at all.
    ("unknown", None, "unknown", DISPLAY_UNKNOWN, None),
    ("UNKNOWN", None, "unknown", DISPLAY_UNKNOWN, None),
    ("", None, "unknown", DISPLAY_UNKNOWN, None),
    ("   ", None, "unknown", DISPLAY_UNKNOWN, None),
    ("Not Available", None, "unknown", DISPLAY_UNKNOWN, None),
    ("Budi", None, "unknown", DISPLAY_UNKNOWN, None),
    # Hidden by the caller.
    ("anonymous", None, "withheld", DISPLAY_WITHHELD, None),
    ("Restricted", None, "withheld", DISPLAY_WITHHELD, None),
    ("private", None, "withheld", DISPLAY_WITHHELD, None),
    # Digits with junk around them: letters must not become keypad digits.
    ("abc0812-3456-7890xyz", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("Nomor 0812 3456 7890!", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("tel:+62-812-3456-7890", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("081234567890@10.0.0.1", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("0812-3456-7890;ext=1", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("  +62 286 321234  ", "+62286321234", "landline", "(0286) 321234", "0286321234"),
    # Non-ASCII digits: full-width and Arabic-Indic.
    ("０８１２３４５６７８９０", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("٠٨١٢٣٤٥٦٧٨٩٠", MOBILE, "mobile", "0812-3456-7890", "081234567890"),
    ("nomor tidak dikenal ✆", None, "unknown", DISPLAY_UNKNOWN, None),
    # Not a valid phone number: an internal extension, an emergency short code,
    # an unknown international prefix, a number too short.
    ("100", None, "other", "100", "100"),
    ("112", None, "other", "112", "112"),
    ("0062812345678", None, "other", "0062812345678", "0062812345678"),
    ("+628123", None, "other", "+628123", "+628123"),
    # Valid but neither mobile nor landline: toll free.
    ("0800 1234567", "+628001234567", "other", "0800 1234567", "08001234567"),
    # Foreign numbers: international format, read with a plus.
    ("+44 20 7946 0958", "+442079460958", "landline", "+44 20 7946 0958", "+442079460958"),
    ("+1 650 253 0000", "+16502530000", "other", "+1 650-253-0000", "+16502530000"),
    # Very long: never parsed, shown cut short, not read out.
    ("081 234 567 890 123 456 789", None, "other", "08123456789012345678…", None),
]


@pytest.mark.parametrize(("raw", "e164", "kind", "shown", "spoken"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_normalize_table(raw: str, e164: str | None, kind: str, shown: str, spoken: str | None) -> None:
    number = normalize(raw)
    assert number == CallerNumber(raw, e164, kind)
    assert display(number) == shown
    assert spoken_digits_source(number) == spoken


@pytest.mark.parametrize(
    ("presentation", "kind"),
    [
        (None, "mobile"),
        (0, "mobile"),  # allowed, user provided, not screened
        (3, "mobile"),  # allowed, network provided
        (32, "withheld"),
        (33, "withheld"),
        (34, "withheld"),
        (35, "withheld"),  # restricted, network provided: what agi_callingpres says most often
        (67, "mobile"),  # 0x43 "number unavailable" is not a privacy wish
    ],
)
def test_presentation(presentation: int | None, kind: str) -> None:
    number = normalize("081234567890", presentation=presentation)
    assert number.kind == kind
    assert is_restricted(presentation) == (kind == "withheld")


def test_withheld_number_is_never_shown_or_spoken_even_when_known() -> None:
    number = normalize("+6281234567890", presentation=35)
    assert number == CallerNumber("+6281234567890", None, "withheld")
    assert display(number) == DISPLAY_WITHHELD
    assert spoken_digits_source(number) is None


def test_raw_is_capped_for_storage() -> None:
    raw = "9" * 10_000
    number = normalize(raw)
    assert number.raw == raw[:MAX_RAW_LENGTH]
    assert number.kind == "other"
    assert number.e164 is None
    assert spoken_digits_source(number) is None


def test_display_of_own_region_follows_region_argument() -> None:
    number = normalize("+44 20 7946 0958")
    assert display(number, region="GB") == "020 7946 0958"
    assert spoken_digits_source(number, region="GB") == "02079460958"


def test_unknown_region_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="region"):
        normalize("081234567890", region="XX")


@lazy_metadata
@given(st.text(max_size=200), st.one_of(st.none(), st.integers(min_value=0, max_value=127)))
def test_never_raises_on_caller_input(raw: str, presentation: int | None) -> None:
    number = normalize(raw, presentation=presentation)
    assert number.kind in ("mobile", "landline", "other", "withheld", "unknown")
    if number.e164 is not None:
        assert number.e164.startswith("+")
        assert number.e164[1:].isascii() and number.e164[1:].isdigit()
        assert normalize(number.e164).e164 == number.e164
    assert isinstance(display(number), str)
    spoken = spoken_digits_source(number)
    if spoken is not None:
        assert spoken.removeprefix("+").isascii() and spoken.removeprefix("+").isdigit()


@lazy_metadata
@given(st.from_regex(r"\A08[1-9][0-9]{7,9}\Z"))
def test_national_and_international_forms_agree(national: str) -> None:
    local = normalize(national)
    if local.e164 is None:
        return  # a prefix libphonenumber does not know; nothing to compare
    assert normalize(local.e164) == CallerNumber(local.e164, local.e164, local.kind)
    assert normalize(local.e164[1:]).e164 == local.e164
    assert spoken_digits_source(local) == national
