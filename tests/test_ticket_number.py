"""Ticket numbers: Damm check digit and the id <-> number map."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.ticket_number import (
    MAX_ID,
    MODULUS,
    MULTIPLIER,
    OFFSET,
    damm_check_digit,
    id_for_number,
    is_valid,
    number_for_id,
)

ids = st.integers(min_value=1, max_value=MAX_ID)
payloads = st.text(alphabet="0123456789", min_size=1, max_size=20)


def single_digit_substitutions(number: str) -> list[str]:
    return [
        number[:i] + other + number[i + 1 :]
        for i, digit in enumerate(number)
        for other in "0123456789"
        if other != digit
    ]


def adjacent_transpositions(number: str) -> list[str]:
    return [
        number[:i] + number[i + 1] + number[i] + number[i + 2 :]
        for i in range(len(number) - 1)
        if number[i] != number[i + 1]
    ]


@pytest.mark.parametrize(
    ("digits", "check"),
    [
        ("572", "4"),  # the worked example in Damm's description (Wikipedia)
        ("11294", "6"),  # Rosetta Code's "112946 is valid"
        ("0", "0"),
        ("5", "9"),  # first row of the table
        ("0000000", "0"),
        ("1234567", "1"),  # worked by hand: 0-3-5-4-0-9-6-1
    ],
)
def test_damm_known_vectors(digits: str, check: str) -> None:
    assert damm_check_digit(digits) == check


@pytest.mark.parametrize(("digits", "valid"), [("5724", True), ("5727", False), ("112946", True), ("112949", False)])
def test_damm_published_validity(digits: str, valid: bool) -> None:
    assert (damm_check_digit(digits) == "0") is valid


@pytest.mark.parametrize("bad", ["", "12a", "12 3", "١٢٣", "²", "-1"])
def test_damm_rejects_non_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        damm_check_digit(bad)


@given(payloads)
def test_appending_the_check_digit_always_validates(digits: str) -> None:
    assert damm_check_digit(digits + damm_check_digit(digits)) == "0"


@given(ids)
def test_every_number_is_valid_and_maps_back(ticket_id: int) -> None:
    number = number_for_id(ticket_id)
    assert len(number) == 8 and number.isascii() and number.isdigit()
    assert is_valid(number)
    assert id_for_number(number) == ticket_id


@given(ids, st.integers(min_value=0, max_value=7), st.integers(min_value=1, max_value=9))
def test_any_single_digit_substitution_is_caught(ticket_id: int, position: int, shift: int) -> None:
    number = number_for_id(ticket_id)
    wrong = str((int(number[position]) + shift) % 10)
    mistyped = number[:position] + wrong + number[position + 1 :]
    assert not is_valid(mistyped)
    assert id_for_number(mistyped) is None


@given(ids, st.integers(min_value=0, max_value=6))
def test_any_adjacent_transposition_is_caught(ticket_id: int, position: int) -> None:
    number = number_for_id(ticket_id)
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    if swapped != number:
        assert not is_valid(swapped)
        assert id_for_number(swapped) is None


def test_sweep_of_10000_numbers_catches_every_single_error() -> None:
    """Exhaustive over 10,000 issued numbers spread over the whole id range:
    all 72 substitutions and every adjacent transposition of each."""
    checked = 0
    for ticket_id in range(1, MAX_ID + 1, MAX_ID // 10_000):
        number = number_for_id(ticket_id)
        for mistyped in single_digit_substitutions(number) + adjacent_transpositions(number):
            assert not is_valid(mistyped), (number, mistyped)
            checked += 1
    assert checked > 10_000 * 72


def test_sweep_of_all_4_digit_payloads() -> None:
    """Damm's guarantee is about the algorithm, not our numbers: check it on
    every payload 0000..9999, check digit appended."""
    for value in range(10_000):
        digits = f"{value:04d}"
        number = digits + damm_check_digit(digits)
        assert damm_check_digit(number) == "0"
        for mistyped in single_digit_substitutions(number) + adjacent_transpositions(number):
            assert damm_check_digit(mistyped) != "0", (number, mistyped)


def test_bijection_on_a_block_and_the_edges() -> None:
    sample = [*range(1, 100_001), *range(MAX_ID - 1_000, MAX_ID + 1)]
    numbers = [number_for_id(ticket_id) for ticket_id in sample]
    assert len(set(numbers)) == len(sample)
    assert [id_for_number(number) for number in numbers] == sample


def test_map_constants_are_invertible() -> None:
    # gcd(MULTIPLIER, 10**7) == 1  <=>  MULTIPLIER is odd and not a multiple of 5.
    assert MULTIPLIER % 2 == 1 and MULTIPLIER % 5 != 0
    assert (MULTIPLIER * pow(MULTIPLIER, -1, MODULUS)) % MODULUS == 1


def test_numbers_do_not_look_sequential() -> None:
    numbers = [int(number_for_id(ticket_id)) for ticket_id in range(1, 101)]
    assert numbers != sorted(numbers)
    assert all(abs(a - b) > 1_000 for a, b in pairwise(numbers))


def test_the_payload_never_issued_is_rejected() -> None:
    unissued = f"{OFFSET:07d}"
    number = unissued + damm_check_digit(unissued)
    assert is_valid(number)  # the check digit is fine ...
    assert id_for_number(number) is None  # ... but it belongs to id 0


@pytest.mark.parametrize("ticket_id", [0, -1, MAX_ID + 1, 10**12])
def test_ids_out_of_range(ticket_id: int) -> None:
    with pytest.raises(ValueError):
        number_for_id(ticket_id)


@pytest.mark.parametrize("ticket_id", [True, 1.0, "1"])
def test_ids_of_wrong_type(ticket_id: object) -> None:
    with pytest.raises(TypeError):
        number_for_id(ticket_id)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["", "1234567", "123456789", "1234 5678", "1234567a", "١٢٣٤٥٦٧٨", "１２３４５６７８", " 12345678", "12345678\n"],
)
def test_malformed_numbers(text: str) -> None:
    assert not is_valid(text)
    assert id_for_number(text) is None


@given(st.text(max_size=12))
def test_is_valid_never_raises(text: str) -> None:
    valid = is_valid(text)
    assert id_for_number(text) is None or valid


def test_leading_zero_is_kept() -> None:
    # Find an id whose number starts with 0: numbers are strings, not ints.
    ticket_id = next(i for i in range(1, 1_000) if number_for_id(i).startswith("0"))
    number = number_for_id(ticket_id)
    assert len(number) == 8
    assert id_for_number(number) == ticket_id
