"""Who is on duty next (``next_change`` and the ``next`` of ``GET
/api/roster/now``, which the roster page shows), and officers' phone numbers
checked the way the IVR reads numbers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from web_fixtures import api, bearer, tokens, web_runtime

from ivr.emergency.roster import Level, Officer, Roster, Shift, next_change

__all__ = ["api", "tokens", "web_runtime"]  # fixtures used by name

WIB = ZoneInfo("Asia/Jakarta")
OFFICERS = (Officer("rudi", "Rudi", ("PJSIP/201",)), Officer("sri", "Sri", ("PJSIP/202",)))
DAY = Shift(
    "Siang",
    datetime(2026, 1, 1, 7, 30),
    datetime(2026, 1, 1, 16, 0),
    repeat="daily",
    until=date(2026, 12, 31),
    levels=(Level(("rudi",)),),
)
NIGHT_ONCE = Shift("Malam", datetime(2026, 12, 5, 20, 0), datetime(2026, 12, 6, 6, 0), levels=(Level(("sri",)),))
ROSTER = Roster(OFFICERS, (DAY, NIGHT_ONCE))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 12, 3, 10, 0, tzinfo=WIB), datetime(2026, 12, 3, 16, 0, tzinfo=WIB)),  # end of today's shift
        (datetime(2026, 12, 3, 16, 0, tzinfo=WIB), datetime(2026, 12, 4, 7, 30, tzinfo=WIB)),  # an end is not "after"
        (datetime(2026, 12, 5, 17, 0, tzinfo=WIB), datetime(2026, 12, 5, 20, 0, tzinfo=WIB)),  # the one-off night
        (datetime(2026, 12, 5, 22, 0, tzinfo=WIB), datetime(2026, 12, 6, 6, 0, tzinfo=WIB)),
        (datetime(2025, 6, 1, 0, 0, tzinfo=WIB), datetime(2026, 1, 1, 7, 30, tzinfo=WIB)),  # before it all starts
        (datetime(2026, 12, 31, 18, 0, tzinfo=WIB), None),  # past ``until`` and the one-off
    ],
)
def test_next_change_is_the_next_shift_start_or_end(at: datetime, expected: datetime | None) -> None:
    assert next_change(ROSTER, at) == expected


def test_next_change_needs_an_aware_time_and_a_shift() -> None:
    with pytest.raises(ValueError):
        next_change(ROSTER, datetime(2026, 12, 3, 10, 0))
    assert next_change(Roster(OFFICERS), datetime(2026, 12, 3, 10, 0, tzinfo=WIB)) is None


Client = TestClient[Any, Any]
DOCUMENT = {
    "version": 0,
    "officers": [
        {"code": "rudi", "name": "Rudi Hartono", "phone": "0813-1111-0201", "dial_strings": ["PJSIP/201"]},
        {"code": "kabag", "name": "Kabag Prokompim", "dial_strings": ["PJSIP/210"]},
    ],
    "shifts": [
        {
            "name": "Piket",
            "start": "2020-01-01T00:00:00+07:00",
            "end": "2020-01-02T00:00:00+07:00",
            "repeat": "daily",
            "levels": [{"officers": ["rudi"]}],
            "overrides": [{"date": "2099-12-31", "replaces": "rudi", "substitute": "kabag"}],
        }
    ],
}


async def test_roster_now_says_who_is_next(api: Client, tokens: dict[str, str]) -> None:
    empty = await (await api.get("/api/roster/now", headers=bearer(tokens["duty"]))).json()
    assert empty["next"] is None
    saved = await api.put("/api/roster", json=DOCUMENT, headers=bearer(tokens["admin"]))
    assert saved.status == 200, await saved.text()
    now = await (await api.get("/api/roster/now", headers=bearer(tokens["duty"]))).json()
    assert now["shift"] == "Piket" and now["roster_source"] == "database"
    upcoming = now["next"]
    assert upcoming["at"] == now["occurrence"][1]  # midnight, when today's occurrence ends
    assert upcoming["at"].endswith("T00:00:00+07:00")
    assert upcoming["shift"] == "Piket" and upcoming["levels"][0]["officers"][0]["name"] == "Rudi Hartono"


async def test_an_officer_phone_the_ivr_cannot_read_is_refused(api: Client, tokens: dict[str, str]) -> None:
    body = {**DOCUMENT, "officers": [{**DOCUMENT["officers"][0], "phone": "0812-34"}, DOCUMENT["officers"][1]]}
    response = await api.put("/api/roster", json=body, headers=bearer(tokens["admin"]))
    assert response.status == 422
    assert (await response.json())["error"]["fields"] == {
        "officers[0].phone": "Nomor telepon tidak valid: '0812-34' / Invalid phone number: '0812-34'"
    }
    saved = await (await api.put("/api/roster", json=DOCUMENT, headers=bearer(tokens["admin"]))).json()
    assert saved["officers"][0]["phone_e164"] == "+6281311110201"
