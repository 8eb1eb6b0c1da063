"""Planning the escalation chain from the duty roster (pure), the roster
document the API takes, and the small pure pieces of routing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr import call as call_module
from ivr.config import Settings
from ivr.emergency import document
from ivr.emergency.roster import (
    DIAL_STRING,
    Chain,
    Defaults,
    Level,
    Officer,
    Override,
    Roster,
    RosterCache,
    Shift,
    plan,
    valid_dial_string,
)
from ivr.emergency.routing import (
    ACCEPT,
    LATE,
    TAKEN,
    EmergencyRouter,
    attempt_token,
    call_of_token,
    classify,
    dial_string_of_channel,
    valid_token,
)

WIB = ZoneInfo("Asia/Jakarta")
DEFAULTS = Defaults(ring_seconds=20, rounds=2, fallback_dial=("Local/100@operator",))

BUDI = Officer("budi", "Budi", ("PJSIP/201", "Local/081311110201@callcenter-mobile"))
SITI = Officer("siti", "Siti", ("PJSIP/202",))
AGUS = Officer("agus", "Agus", ("PJSIP/203",))
KABAG = Officer("kabag", "Kabag", ("Local/081311110200@callcenter-mobile",))
OFFICERS = (BUDI, SITI, AGUS, KABAG)

NIGHT = Shift(
    "Piket malam",
    datetime(2026, 12, 1, 16, 0),
    datetime(2026, 12, 2, 7, 30),
    "Asia/Jakarta",
    "daily",
    levels=(Level(("budi", "siti"), "sequential", 20), Level(("agus",), "simultaneous", 30)),
)
FALLBACK = Chain((Level(("kabag",), "sequential", 25),), rounds=3)


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=WIB)


def roster(*shifts: Shift, officers: tuple[Officer, ...] = OFFICERS, fallback: Chain = FALLBACK) -> Roster:
    return Roster(officers, shifts, fallback)


# -- which shift covers now ------------------------------------------------------------


def test_night_shift_covers_both_sides_of_midnight_every_day():
    assert NIGHT.occurrence_at(at(1, 15, 59)) is None
    evening = NIGHT.occurrence_at(at(5, 23, 0))
    assert evening is not None and evening.start == datetime(2026, 12, 5, 16, 0)
    morning = NIGHT.occurrence_at(at(6, 7, 29))
    assert morning is not None and morning.start == datetime(2026, 12, 5, 16, 0)
    assert NIGHT.occurrence_at(at(6, 7, 30)) is None  # the end is exclusive
    assert NIGHT.occurrence_at(at(1, 12, 0) - timedelta(days=30)) is None  # before the first occurrence


def test_weekly_shift_and_its_last_occurrence():
    weekend = Shift(
        "Akhir pekan",
        datetime(2026, 12, 5, 7, 30),
        datetime(2026, 12, 7, 7, 30),
        "Asia/Jakarta",
        "weekly",
        until=date(2026, 12, 12),
        levels=(Level(("agus",)),),
    )
    assert weekend.occurrence_at(at(6, 12)) is not None  # Sunday
    assert weekend.occurrence_at(at(8, 12)) is None  # Tuesday
    assert weekend.occurrence_at(at(13, 12)).start == datetime(2026, 12, 12, 7, 30)
    assert weekend.occurrence_at(at(20, 12)) is None  # after "until"
    assert weekend.occurs_on(date(2026, 12, 12)) and not weekend.occurs_on(date(2026, 12, 13))


def test_shift_times_are_wall_clock_across_a_utc_offset_change():
    berlin = ZoneInfo("Europe/Berlin")
    shift = Shift(
        "Nacht",
        datetime(2026, 3, 25, 20, 0),
        datetime(2026, 3, 26, 6, 0),
        "Europe/Berlin",
        "daily",
        levels=(Level(("budi",)),),
    )
    # Summer time starts on 29 March 2026: the shift still starts at 20:00 local.
    assert shift.occurrence_at(datetime(2026, 3, 30, 19, 59, tzinfo=berlin)) is None
    assert shift.occurrence_at(datetime(2026, 3, 30, 20, 0, tzinfo=berlin)) is not None
    # Asked in UTC: 18:30 UTC is 20:30 in Berlin in summer.
    assert shift.occurrence_at(datetime(2026, 3, 30, 18, 30, tzinfo=UTC)) is not None


# -- the chain in force ------------------------------------------------------------------


def test_chain_of_the_shift_in_force_expands_into_attempts_and_rounds():
    chain = plan(roster(NIGHT), at(3, 22), DEFAULTS)
    assert chain.source == "shift" and chain.shift == "Piket malam" and not chain.flags
    attempts = chain.attempts()
    # sequential level 1 (Budi, then Siti), simultaneous level 2 (Agus), twice
    assert [(a.round, a.level, [o.name for o in a.officers]) for a in attempts] == [
        (1, 1, ["Budi"]),
        (1, 1, ["Siti"]),
        (1, 2, ["Agus"]),
        (2, 1, ["Budi"]),
        (2, 1, ["Siti"]),
        (2, 2, ["Agus"]),
    ]
    assert attempts[0].targets == ("PJSIP/201", "Local/081311110201@callcenter-mobile")  # all of Budi's phones
    assert attempts[0].ring_seconds == 20 and attempts[2].ring_seconds == 30
    assert [a.index for a in attempts] == list(range(6))


def test_simultaneous_level_is_one_attempt_with_every_phone():
    shift = Shift(
        "Siang",
        datetime(2026, 12, 1, 7, 30),
        datetime(2026, 12, 1, 16, 0),
        "Asia/Jakarta",
        "daily",
        rounds=1,
        levels=(Level(("budi", "siti"), "simultaneous"),),
    )
    (attempt,) = plan(roster(shift), at(2, 9), DEFAULTS).attempts()
    assert attempt.targets == ("PJSIP/201", "Local/081311110201@callcenter-mobile", "PJSIP/202")
    assert attempt.officer_for("PJSIP/202") is SITI_PLANNED(attempt)
    assert attempt.officer_for("081311110201@callcenter-mobile").name == "Budi"  # DIALEDPEERNUMBER form
    assert attempt.officer_for("PJSIP/299") is None


def SITI_PLANNED(attempt):
    return next(o for o in attempt.officers if o.code == "siti")


def test_callback_steps_follow_the_chain_level_by_level():
    steps = plan(roster(NIGHT), at(3, 22), DEFAULTS).callback_steps(rounds=2)
    assert [(s.round, s.level, s.first_in_level, [d for _, d in s.targets]) for s in steps] == [
        (1, 1, True, ["PJSIP/201", "Local/081311110201@callcenter-mobile"]),
        (1, 1, False, ["PJSIP/202"]),
        (1, 2, True, ["PJSIP/203"]),
        (2, 1, True, ["PJSIP/201", "Local/081311110201@callcenter-mobile"]),
        (2, 1, False, ["PJSIP/202"]),
        (2, 2, True, ["PJSIP/203"]),
    ]


def test_override_swaps_an_officer_for_one_occurrence_only():
    night = Shift(
        NIGHT.name,
        NIGHT.start,
        NIGHT.end,
        NIGHT.timezone,
        NIGHT.repeat,
        levels=NIGHT.levels,
        overrides=(Override("budi", "kabag", date(2026, 12, 17), "cuti"),),
    )
    that_night = plan(roster(night), at(18, 2), DEFAULTS)  # 02:00 on the 18th belongs to the 17th's shift
    assert [o.name for o in that_night.levels[0].officers] == ["Kabag", "Siti"]
    assert that_night.substitutions == (("budi", "kabag"),)
    next_night = plan(roster(night), at(18, 20), DEFAULTS)
    assert [o.name for o in next_night.levels[0].officers] == ["Budi", "Siti"]


def test_substitute_already_in_the_level_is_not_rung_twice():
    night = Shift(
        NIGHT.name,
        NIGHT.start,
        NIGHT.end,
        NIGHT.timezone,
        NIGHT.repeat,
        levels=NIGHT.levels,
        overrides=(Override("budi", "siti", date(2026, 12, 17)),),
    )
    level = plan(roster(night), at(17, 20), DEFAULTS).levels[0]
    assert [o.name for o in level.officers] == ["Siti"]


def test_no_shift_covers_now_uses_the_fallback_chain_and_says_so():
    day_only = Shift(
        "Siang",
        datetime(2026, 12, 1, 7, 30),
        datetime(2026, 12, 1, 16, 0),
        "Asia/Jakarta",
        "daily",
        levels=(Level(("budi",)),),
    )
    chain = plan(roster(day_only), at(3, 22), DEFAULTS)
    assert chain.source == "fallback" and chain.uses_fallback and chain.rounds == 3
    assert [f.code for f in chain.flags] == ["no-shift", "fallback"]
    assert [o.name for o in chain.levels[0].officers] == ["Kabag"]


def test_empty_roster_falls_back_to_the_configured_dial_strings():
    chain = plan(Roster(), at(3, 22), DEFAULTS)
    assert chain.source == "default"
    assert [f.code for f in chain.flags] == ["roster-empty", "fallback"]
    (attempt, second) = chain.attempts()
    assert attempt.targets == ("Local/100@operator",) and attempt.ring_seconds == 20 and second.round == 2


def test_nobody_at_all_is_a_plan_with_no_attempts():
    chain = plan(Roster(), at(3, 22), Defaults(fallback_dial=()))
    assert chain.source == "none" and chain.attempts() == []
    assert chain.flags[-1].code == "no-target"


def test_invalid_dial_strings_are_skipped_and_flagged():
    sloppy = Officer("budi", "Budi", ("PJSIP/201,60,tT", "PJSIP/201&PJSIP/666", "${EVIL}", "PJSIP/201"))
    nothing_valid = Officer("siti", "Siti", ("SIP/20 2",))
    chain = plan(roster(NIGHT, officers=(sloppy, nothing_valid, AGUS, KABAG)), at(3, 22), DEFAULTS)
    assert chain.source == "shift"
    assert [o.dial_strings for o in chain.levels[0].officers] == [("PJSIP/201",)]  # Siti skipped
    codes = [f.code for f in chain.flags]
    assert codes.count("invalid-dial-string") == 4 and "unreachable-officer" in codes
    assert any("PJSIP/201,60,tT" in f.detail for f in chain.flags)


def test_unknown_and_inactive_officers_are_flagged():
    retired = Officer("siti", "Siti", ("PJSIP/202",), active=False)
    shift = Shift(
        "S",
        datetime(2026, 12, 1),
        datetime(2026, 12, 2),
        "Asia/Jakarta",
        "daily",
        levels=(Level(("budi", "siti", "ghost")),),
    )
    chain = plan(roster(shift, officers=(BUDI, retired, KABAG)), at(3, 22), DEFAULTS)
    assert [o.name for o in chain.levels[0].officers] == ["Budi"]
    assert {f.code for f in chain.flags} == {"inactive-officer", "unknown-officer"}


def test_shift_nobody_can_be_reached_on_goes_to_the_fallback():
    shift = Shift(
        "S", datetime(2026, 12, 1), datetime(2026, 12, 2), "Asia/Jakarta", "daily", levels=(Level(("siti",)),)
    )
    broken = Officer("siti", "Siti", ("bad target",))
    chain = plan(roster(shift, officers=(broken, KABAG)), at(3, 22), DEFAULTS)
    assert chain.source == "fallback"
    assert "shift-unreachable" in [f.code for f in chain.flags]


def test_overlapping_shifts_latest_start_wins_and_is_flagged():
    special = Shift(
        "Acara khusus",
        datetime(2026, 12, 3, 20, 0),
        datetime(2026, 12, 4, 2, 0),
        "Asia/Jakarta",
        levels=(Level(("agus",)),),
    )
    chain = plan(roster(NIGHT, special), at(3, 22), DEFAULTS)
    assert chain.shift == "Acara khusus"
    assert chain.flags[0].code == "shift-overlap"


def test_plan_needs_an_aware_time():
    with pytest.raises(ValueError):
        plan(Roster(), datetime(2026, 12, 3, 22, 0), DEFAULTS)


def test_dial_string_rule_is_the_one_ivr_call_enforces():
    assert DIAL_STRING.pattern == call_module._DIAL_TARGET.pattern
    assert valid_dial_string("Local/081234567890@callcenter-mobile")
    for bad in ("", "PJSIP/201,20", "A&B", "PJSIP/${X}", "PJSIP/201|x", "x" * 200, None, 201):
        assert not valid_dial_string(bad)


def test_settings_refuse_an_unsafe_fallback_dial_string():
    with pytest.raises(ValueError):
        Settings(emergency_fallback_dial=("PJSIP/201,60,tT",))


# -- the roster document --------------------------------------------------------------


GOOD_DOCUMENT = {
    "officers": [
        {"code": "budi", "name": "Budi", "phone": "0813-1111-0201", "dial_strings": ["PJSIP/201"]},
        {"code": "siti", "name": "Siti", "dial_strings": ["PJSIP/202"], "active": True},
    ],
    "shifts": [
        {
            "name": "Piket malam",
            "start": "2026-12-01T16:00:00+07:00",
            "end": "2026-12-02T07:30",
            "repeat": "daily",
            "levels": [{"mode": "sequential", "officers": ["budi", "siti"]}],
            "overrides": [{"date": "2026-12-17", "replaces": "budi", "substitute": "siti", "note": "cuti"}],
        }
    ],
    "fallback": {"rounds": 1, "levels": [{"mode": "simultaneous", "ring_seconds": 30, "officers": ["siti"]}]},
}


def test_document_round_trip():
    parsed = document.parse(GOOD_DOCUMENT)
    assert parsed.shifts[0].start == datetime(2026, 12, 1, 16, 0)
    assert parsed.shifts[0].levels[0].ring_seconds == 20  # the default
    rendered = document.render(parsed)
    assert rendered["officers"][0]["phone_e164"] == "+6281311110201"
    assert rendered["shifts"][0]["start"] == "2026-12-01T16:00+07:00"
    assert document.parse(rendered) == parsed  # GET -> PUT unchanged (read-only fields ignored)
    assert document.decode_snapshot(document.encode_snapshot(parsed)) == parsed


def test_document_offsets_are_converted_to_the_shift_zone():
    body = {
        **GOOD_DOCUMENT,
        "shifts": [
            {
                **GOOD_DOCUMENT["shifts"][0],
                "start": "2026-12-01T09:00:00Z",
                "end": "2026-12-02T00:30:00Z",
                "overrides": [],
            }
        ],
    }
    shift = document.parse(body).shifts[0]
    assert (shift.start, shift.end) == (datetime(2026, 12, 1, 16, 0), datetime(2026, 12, 2, 7, 30))


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d["officers"][0].update(code="Budi Santoso"), "officers[0].code"),
        (lambda d: d["officers"][1].update(code="budi"), "officers[1].code"),
        (lambda d: d["officers"][0].update(dial_strings=["PJSIP/201,60"]), "officers[0].dial_strings[0]"),
        (lambda d: d["officers"][0].update(dial_strings=[]), "officers[0].dial_strings"),
        (lambda d: d["shifts"][0]["levels"][0].update(officers=["budi", "ghost"]), "shifts[0].levels[0].officers[1]"),
        (lambda d: d["shifts"][0]["levels"][0].update(mode="random"), "shifts[0].levels[0].mode"),
        (lambda d: d["shifts"][0]["levels"][0].update(ring_seconds=2), "shifts[0].levels[0].ring_seconds"),
        (lambda d: d["shifts"][0].update(end="2026-12-03T07:30"), "shifts[0].end"),  # longer than a day
        (lambda d: d["shifts"][0].update(end="2026-12-01T15:00"), "shifts[0].end"),
        (lambda d: d["shifts"][0].update(timezone="Mars/Olympus"), "shifts[0].timezone"),
        (lambda d: d["shifts"][0].update(levels=[]), "shifts[0].levels"),
        (lambda d: d["shifts"][0]["overrides"][0].update(date=None), "shifts[0].overrides[0].date"),
        (lambda d: d["shifts"][0]["overrides"][0].update(substitute="budi"), "shifts[0].overrides[0].substitute"),
        (
            lambda d: d["shifts"][0].update(
                repeat="weekly",
                start="2026-12-01T16:00",
                overrides=[{"date": "2026-12-17", "replaces": "budi", "substitute": "siti"}],
            ),
            "shifts[0].overrides[0].date",
        ),
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d["officers"][0].update(name="x\ny"), "officers[0].name"),
    ],
)
def test_document_errors_name_the_field(change, field):
    import copy

    body = copy.deepcopy(GOOD_DOCUMENT)
    change(body)
    with pytest.raises(document.RosterInvalid) as caught:
        document.parse(body)
    assert field in caught.value.fields, caught.value.fields


# -- routing's pure pieces ------------------------------------------------------------------


def test_attempt_tokens_are_alphanumeric_and_lead_back_to_the_call():
    token = attempt_token("1765432100.88", 3)
    assert token == "1765432100d88x3" and valid_token(token)
    assert call_of_token(token) == "1765432100.88"
    assert not valid_token("a,b") and not valid_token("")


def test_dialled_peer_channels_map_back_to_dial_strings():
    assert dial_string_of_channel("Local/201@officers-0000002d;1") == "Local/201@officers"
    assert dial_string_of_channel("PJSIP/201-00000005") == "PJSIP/201"
    assert dial_string_of_channel("PJSIP/201") == "PJSIP/201"


def test_outcomes_of_a_screened_dial():
    assert classify("ANSWER", "ACCEPT") == ("accepted", "")
    assert classify("ANSWER", "DECLINE")[0] == "declined"
    assert classify("ANSWER", "TIMEOUT")[0] == "screening timeout"
    assert classify("ANSWER", "LATE") == ("screening timeout", "the officer pressed 1 too late")
    assert classify("ANSWER", "")[0] == "screening timeout"  # a voicemail never bridges
    assert classify("NOANSWER", "")[0] == "no answer"
    assert classify("BUSY", "")[0] == "busy"
    assert classify("CHANUNAVAIL", "")[0] == "unavailable"
    assert classify("CONGESTION", "")[0] == "unavailable"


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _router(clock: _Clock) -> EmergencyRouter:
    cache = RosterCache(_never, _never)
    return EmergencyRouter(Settings(), cache, clock=clock)


async def _never():  # pragma: no cover - not called
    raise AssertionError


def test_two_officers_pressing_1_at_once_one_wins():
    clock = _Clock()
    router = _router(clock)
    live = router.open_attempt("1d1x1", "1.1", ring_seconds=20)
    assert router.decide_accept("1d1x1", live.deadline, "PJSIP/201-00000001") == ACCEPT
    assert router.decide_accept("1d1x1", live.deadline, "PJSIP/202-00000002") == TAKEN
    assert live.refused == [("PJSIP/202-00000002", TAKEN)]


def test_a_1_after_the_deadline_or_after_the_caller_moved_on_is_too_late():
    clock = _Clock()
    router = _router(clock)
    live = router.open_attempt("1d1x2", "1.1", ring_seconds=20)
    clock.now = live.deadline + 1
    assert router.decide_accept("1d1x2", live.deadline, "PJSIP/201-00000001") == LATE
    router.open_attempt("1d1x3", "1.1", ring_seconds=20)
    router.close_attempt("1d1x3")  # the caller's Dial returned: the caller is elsewhere
    assert router.decide_accept("1d1x3", clock.now + 60, "PJSIP/201-00000001") == LATE
    # An attempt another process runs: only its deadline can be checked here.
    assert router.decide_accept("9d9x1", clock.now + 60, "PJSIP/201-00000001") == ACCEPT
    assert router.decide_accept("9d9x2", clock.now - 1, "PJSIP/201-00000001") == LATE
