"""``/api/roster`` and ``/api/alarms`` against a real database: the roster as one
document (validation per field, optimistic versions, roles), who is on duty
now, and acknowledging an alarm from the web app."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from web_fixtures import TestRuntime, bearer, tokens, web_runtime

from ivr.emergency import callbacks
from ivr.emergency.roster import Level, Officer, Roster, Shift
from ivr.emergency.service import build_emergency
from ivr.storage.roster_models import EmergencyAlarm, EmergencyCallback
from ivr.web.app import create_web_app
from ivr.web.roster_api import add_roster_routes

__all__ = ["tokens", "web_runtime"]  # fixtures used by name

Client = TestClient[Any, Any]

DOCUMENT = {
    "version": 0,
    "officers": [
        {
            "code": "rudi",
            "name": "Rudi Hartono",
            "phone": "0813-1111-0201",
            "dial_strings": ["PJSIP/201", "Local/081311110201@callcenter-mobile"],
        },
        {"code": "sri", "name": "Sri Mulyani", "dial_strings": ["PJSIP/202"]},
        {"code": "kabag", "name": "Kabag Prokompim", "dial_strings": ["PJSIP/210"]},
    ],
    "shifts": [
        {
            "name": "Piket",
            "timezone": "Asia/Jakarta",
            "start": "2020-01-01T00:00:00+07:00",
            "end": "2020-01-02T00:00:00+07:00",
            "repeat": "daily",
            "rounds": 2,
            "levels": [
                {"mode": "simultaneous", "ring_seconds": 20, "officers": ["rudi", "sri"]},
                {"mode": "sequential", "ring_seconds": 25, "officers": ["kabag"]},
            ],
            "overrides": [{"date": "2026-12-17", "replaces": "rudi", "substitute": "kabag", "note": "cuti"}],
        }
    ],
    "fallback": {"rounds": 1, "levels": [{"mode": "sequential", "ring_seconds": 30, "officers": ["kabag"]}]},
}


@pytest.fixture
async def desk(web_runtime: TestRuntime) -> Any:
    """The emergency services of the process (no AMI: callbacks wait)."""
    desk = build_emergency(web_runtime.settings, web_runtime.sessions, None)
    web_runtime.services.emergency = desk  # type: ignore[attr-defined]
    await desk.start()
    yield desk
    await desk.close()


@pytest.fixture
async def api(aiohttp_client: Any, web_runtime: TestRuntime, desk: Any) -> Client:
    app = create_web_app(web_runtime)
    add_roster_routes(app)
    client: Client = await aiohttp_client(app)
    return client


async def test_roster_round_trip_and_the_cache_follows(api: Client, tokens: dict[str, str], desk: Any):
    empty = await (await api.get("/api/roster", headers=bearer(tokens["duty"]))).json()
    assert empty["version"] == 0 and empty["officers"] == [] and empty["shifts"] == []

    response = await api.put("/api/roster", json={**DOCUMENT, "version": 0}, headers=bearer(tokens["admin"]))
    assert response.status == 200, await response.text()
    saved = await response.json()
    assert saved["version"] == 1 and saved["updated_by"] == "token:test-admin"
    assert saved["updated_at"].endswith("+07:00")
    assert saved["officers"][0]["phone_e164"] == "+6281311110201"
    assert saved["shifts"][0]["levels"][1] == {"mode": "sequential", "ring_seconds": 25, "officers": ["kabag"]}
    assert saved["shifts"][0]["overrides"][0]["substitute"] == "kabag"
    assert desk.roster.roster.version == 1 and desk.roster.source == "api"  # calls use it at once

    # GET, edit, PUT back: read-only fields are accepted
    saved["officers"][1]["name"] = "Sri Mulyani, S.Sos."
    again = await api.put("/api/roster", json=saved, headers=bearer(tokens["admin"]))
    assert again.status == 200 and (await again.json())["version"] == 2
    # someone else's stale copy
    stale = await api.put("/api/roster", json={**DOCUMENT, "version": 1}, headers=bearer(tokens["admin"]))
    assert stale.status == 409
    assert (await stale.json())["error"]["fields"]["version"].endswith("2")


async def test_roster_now_shows_the_chain_in_force_and_its_flags(api: Client, tokens: dict[str, str]):
    nobody = await (await api.get("/api/roster/now", headers=bearer(tokens["duty"]))).json()
    assert nobody["uses_fallback"] is True and nobody["source"] == "default"
    assert [f["code"] for f in nobody["flags"]] == ["roster-empty", "fallback"]
    await api.put("/api/roster", json=DOCUMENT, headers=bearer(tokens["admin"]))
    now = await (await api.get("/api/roster/now", headers=bearer(tokens["duty"]))).json()
    assert now["source"] == "shift" and now["shift"] == "Piket" and now["flags"] == []
    assert [[o["name"] for o in level["officers"]] for level in now["levels"]][1] == ["Kabag Prokompim"]
    assert now["roster_version"] == 1 and now["at"].endswith("+07:00")


async def test_invalid_roster_names_every_bad_field(api: Client, tokens: dict[str, str]):
    body = copy.deepcopy(DOCUMENT)
    body["officers"][0]["dial_strings"] = ["PJSIP/201,60,tT"]
    body["shifts"][0]["levels"][0]["officers"] = ["rudi", "ghost"]
    body["shifts"][0]["repeat"] = "hourly"
    response = await api.put("/api/roster", json=body, headers=bearer(tokens["admin"]))
    assert response.status == 422
    fields = (await response.json())["error"]["fields"]
    assert {"officers[0].dial_strings[0]", "shifts[0].levels[0].officers[1]", "shifts[0].repeat"} <= set(fields)
    assert (await (await api.get("/api/roster", headers=bearer(tokens["admin"]))).json())["version"] == 0


async def test_only_roster_writers_may_change_it(api: Client, tokens: dict[str, str]):
    for role in ("staff", "duty"):
        response = await api.put("/api/roster", json=DOCUMENT, headers=bearer(tokens[role]))
        assert response.status == 403, role
    assert (await api.get("/api/roster")).status == 401


async def _raise_alarm(runtime: TestRuntime) -> int:
    roster = Roster(
        (Officer("rudi", "Rudi", ("PJSIP/201",)),),
        (Shift("S", datetime(2020, 1, 1), datetime(2020, 1, 2), "Asia/Jakarta", "daily", levels=(Level(("rudi",)),)),),
    )
    from ivr.emergency.roster import Defaults, plan

    draft = callbacks.AlarmDraft(
        "1796312906.88",
        datetime.now(UTC),
        caller_number="085712345678",
        office_name="Dinas Kesehatan",
        caller_spoken="Dinas Kesehatan",
    )
    async with runtime.sessions.begin() as session:
        alarm_id, _ = await callbacks.create_alarm(session, draft)
    async with runtime.sessions.begin() as session:
        (stepping,) = await callbacks.alarms_to_advance(session)
        await callbacks.advance_alarm(
            session, stepping, plan(roster, datetime.now(UTC), Defaults()), runtime.settings, datetime.now(UTC)
        )
    return alarm_id


async def test_alarms_are_listed_until_acknowledged_from_the_web(
    api: Client, tokens: dict[str, str], web_runtime: TestRuntime
):
    alarm_id = await _raise_alarm(web_runtime)
    listed = await (await api.get("/api/alarms", headers=bearer(tokens["duty"]))).json()
    assert listed["unacknowledged"] == 1
    (item,) = listed["items"]
    assert item["id"] == alarm_id and item["state"] == "open" and item["office"] == "Dinas Kesehatan"
    detail = await (await api.get(f"/api/alarms/{alarm_id}", headers=bearer(tokens["duty"]))).json()
    assert [c["state"] for c in detail["callbacks"]] == ["pending"]  # no AMI here: it waits

    done = await api.post(f"/api/alarms/{alarm_id}/acknowledge", headers=bearer(tokens["duty"]))
    assert done.status == 200
    body = await done.json()
    assert body["state"] == "acknowledged" and body["acknowledged_via"] == "web"
    assert body["acknowledged_by"] == "token:test-duty"
    assert [c["state"] for c in body["callbacks"]] == ["cancelled"]
    again = await api.post(f"/api/alarms/{alarm_id}/acknowledge", headers=bearer(tokens["admin"]))
    assert again.status == 409 and "token:test-duty" in (await again.json())["error"]["message"]
    assert (await (await api.get("/api/alarms", headers=bearer(tokens["duty"]))).json())["items"] == []
    history = await (await api.get("/api/alarms?state=all", headers=bearer(tokens["duty"]))).json()
    assert [a["id"] for a in history["items"]] == [alarm_id]
    assert (await api.get("/api/alarms?state=bogus", headers=bearer(tokens["duty"]))).status == 422
    assert (await api.post("/api/alarms/999/acknowledge", headers=bearer(tokens["duty"]))).status == 404
    async with web_runtime.sessions() as session:
        assert (await session.get(EmergencyAlarm, alarm_id)).state == "acknowledged"
        assert [j.state for j in await session.scalars(select(EmergencyCallback))] == ["cancelled"]


async def test_openapi_document_covers_the_roster_routes(api: Client):
    document = await (await api.get("/api/openapi.json")).json()
    documented = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    for method, path in {
        ("GET", "/api/roster"),
        ("PUT", "/api/roster"),
        ("GET", "/api/roster/now"),
        ("GET", "/api/alarms"),
        ("GET", "/api/alarms/{id}"),
        ("POST", "/api/alarms/{id}/acknowledge"),
    }:
        assert (method, path) in documented
        assert "401" in document["paths"][path][method.lower()]["responses"]
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', str(document).replace("'", '"')))
    assert refs <= set(document["components"]["schemas"])


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"version", "officers"}),
        ({"version": 1}, {"officers"}),
        ({key: value for key, value in DOCUMENT.items() if key != "version"}, {"version"}),
        ({**DOCUMENT, "officers": []}, {"officers"}),
    ],
)
async def test_a_put_without_version_or_officers_never_wipes_the_roster(
    api: Client, tokens: dict[str, str], body: dict[str, Any], fields: set[str]
):
    saved = await api.put("/api/roster", json=DOCUMENT, headers=bearer(tokens["admin"]))
    assert saved.status == 200
    response = await api.put("/api/roster", json=body, headers=bearer(tokens["admin"]))
    assert response.status == 422
    assert fields <= set((await response.json())["error"]["fields"])
    kept = await (await api.get("/api/roster", headers=bearer(tokens["admin"]))).json()
    assert kept["version"] == 1 and [o["code"] for o in kept["officers"]] == [o["code"] for o in DOCUMENT["officers"]]
