"""``/api/leaders`` and ``/api/agenda`` against a real database: the contract's
fields, validation (one message per field), roles, the OpenAPI document, and
the read-back re-render requested for every (leader, day) a change touches."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from web_fixtures import TestRuntime, bearer, tokens, web_runtime

from ivr.agenda.store import DayKey
from ivr.storage.agenda_models import AgendaItem
from ivr.storage.models import Leader
from ivr.web.agenda_api import AGENDA_NOTIFIER, AgendaNotifier, add_agenda_routes
from ivr.web.app import create_web_app
from ivr.web.pages import PAGE_ROUTES

__all__ = ["tokens", "web_runtime"]  # fixtures used by name

Client = TestClient[Any, Any]
MONDAY = dt.date(2025, 12, 15)


class RecordingNotifier:
    def __init__(self) -> None:
        self.calls: list[list[DayKey]] = []

    def notify_days(self, days: Iterable[DayKey]) -> None:
        self.calls.append(list(days))

    @property
    def days(self) -> set[DayKey]:
        return {day for call in self.calls for day in call}


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


def agenda_app(runtime: Any, notifier: AgendaNotifier | None) -> web.Application:
    """The web app with the agenda routes telling ``notifier`` (whether or not
    ``create_web_app`` adds the agenda routes itself)."""
    app = create_web_app(runtime)
    if AGENDA_NOTIFIER in app:
        app[AGENDA_NOTIFIER] = notifier
    else:
        add_agenda_routes(app, notifier)
    return app


@pytest.fixture
async def client(aiohttp_client: Any, web_runtime: TestRuntime, notifier: RecordingNotifier) -> Client:
    result: Client = await aiohttp_client(agenda_app(web_runtime, notifier))
    return result


@pytest.fixture
async def leaders(web_runtime: TestRuntime) -> dict[str, int]:
    async with web_runtime.sessions.begin() as session:
        rows = [
            Leader(title="Sekretaris Daerah", name="Drs. Bambang Sutrisno, M.Si.", menu_key="3", position=2),
            Leader(title="Bupati", name="H. Ahmad Fauzi, S.H., M.H.", menu_key="1", position=0),
            Leader(title="Wakil Bupati", name="Hj. Sri Wahyuni, S.E.", menu_key="2", position=1),
        ]
        session.add_all(rows)
        await session.flush()
        return {row.title: row.id for row in rows}


def _item(leader: int, **overrides: Any) -> dict[str, Any]:
    body = {
        "leader_id": leader,
        "date": MONDAY.isoformat(),
        "start": "08:30",
        "end": "10:00",
        "activity": "Rapat Koordinasi Percepatan Penurunan Stunting",
        "place": "Pendopo Dipayudha Adigraha",
    }
    body.update(overrides)
    return body


async def _create(client: Client, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/agenda", json=body, headers=bearer(token))
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    assert response.headers["Location"] == f"/api/agenda/{created['id']}"
    return created


async def test_leaders_in_menu_order(client: Client, tokens: dict[str, str], leaders: dict[str, int]) -> None:
    response = await client.get("/api/leaders", headers=bearer(tokens["duty"]))
    assert response.status == 200
    items = (await response.json())["items"]
    assert [(i["title"], i["menu_key"]) for i in items] == [
        ("Bupati", "1"),
        ("Wakil Bupati", "2"),
        ("Sekretaris Daerah", "3"),
    ]
    assert set(items[0]) >= {"id", "title", "name", "menu_key"}


async def test_create_and_read_an_item(
    client: Client, tokens: dict[str, str], leaders: dict[str, int], notifier: RecordingNotifier
) -> None:
    bupati = leaders["Bupati"]
    created = await _create(client, tokens["staff"], _item(bupati, note="Pakaian Dinas Harian"))
    assert created["leader_id"] == bupati
    assert created["leader"]["title"] == "Bupati"
    assert (created["date"], created["start"], created["end"], created["status"]) == (
        "2025-12-15",
        "08:30",
        "10:00",
        "terjadwal",
    )
    assert created["status_detail"] == {"new_date": None, "new_start": None, "representative": None}
    assert created["updated_by"] == "token:test-staff"
    assert created["updated_at"].endswith("+07:00")
    assert created["spoken"] == (
        "Pukul delapan lewat tiga puluh menit sampai dengan pukul sepuluh: Rapat Koordinasi Percepatan Penurunan "
        "Stunting, bertempat di Pendopo Dipayudha Adigraha. Status: terjadwal. Catatan: Pakaian Dinas Harian."
    )
    assert notifier.calls == [[(bupati, MONDAY)]]

    one = await client.get(f"/api/agenda/{created['id']}", headers=bearer(tokens["duty"]))
    assert one.status == 200 and await one.json() == created
    listed = await client.get(f"/api/agenda?date={MONDAY}", headers=bearer(tokens["duty"]))
    body = await listed.json()
    assert [i["id"] for i in body["items"]] == [created["id"]]
    assert (body["from"], body["to"], body["next_offset"]) == ("2025-12-15", "2025-12-15", None)


async def test_list_filters_sorts_and_pages(client: Client, tokens: dict[str, str], leaders: dict[str, int]) -> None:
    token = tokens["staff"]
    bupati, sekda = leaders["Bupati"], leaders["Sekretaris Daerah"]
    late = await _create(client, token, _item(bupati, start="14:00", end=None, activity="Audiensi"))
    early = await _create(client, token, _item(bupati, start="07.30", end="08.00", activity="Apel Pagi"))
    other = await _create(client, token, _item(sekda, activity="Rapat TAPD", status="sedang berlangsung"))
    later_day = await _create(client, token, _item(bupati, date="2025-12-20", activity="Kunjungan Kerja"))
    await _create(client, token, _item(bupati, date="2026-02-01", activity="Di luar rentang"))

    response = await client.get("/api/agenda?from=2025-12-15&to=2025-12-21", headers=bearer(token))
    body = await response.json()
    assert [i["id"] for i in body["items"]] == [early["id"], other["id"], late["id"], later_day["id"]]
    assert other["status"] == "berlangsung"
    assert early["start"] == "07:30"

    by_leader = await client.get(f"/api/agenda?from=2025-12-15&to=2025-12-21&leader_id={sekda}", headers=bearer(token))
    assert [i["id"] for i in (await by_leader.json())["items"]] == [other["id"]]
    by_status = await client.get("/api/agenda?date=2025-12-15&status=berlangsung", headers=bearer(token))
    assert [i["id"] for i in (await by_status.json())["items"]] == [other["id"]]
    page = await client.get("/api/agenda?from=2025-12-15&to=2025-12-21&limit=2", headers=bearer(token))
    page_body = await page.json()
    assert len(page_body["items"]) == 2 and page_body["next_offset"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("date=15-12-2025", "date"),
        ("from=2025-12-20&to=2025-12-15", "to"),
        ("from=2025-01-01&to=2025-12-31", "to"),
        ("date=2025-12-15&from=2025-12-15", "date"),
        ("leader_id=abc", "leader_id"),
        ("status=batal", "status"),
        ("limit=0", "limit"),
    ],
)
async def test_list_parameters_are_checked(client: Client, tokens: dict[str, str], query: str, field: str) -> None:
    response = await client.get(f"/api/agenda?{query}", headers=bearer(tokens["staff"]))
    assert response.status == 422
    assert field in (await response.json())["error"]["fields"]


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        (
            {"leader_id": None, "date": None, "start": None, "activity": None},
            {"leader_id", "date", "start", "activity"},
        ),
        ({"date": "15/12/2025", "start": "8", "end": "25:00"}, {"date", "start", "end"}),
        ({"status": "batal"}, {"status"}),
        ({"activity": "   "}, {"activity"}),
        ({"activity": "x" * 2001, "note": "y" * 501}, {"activity", "note"}),
        ({"end": "08:30"}, {"end"}),
        ({"status": "terjadwal", "status_detail": {"new_date": "2025-12-17"}}, {"status_detail.new_date"}),
        ({"status": "dipindahkan", "status_detail": {"representative": "Sekda"}}, {"status_detail.representative"}),
        ({"status_detail": {"when": "besok"}}, {"status_detail.when"}),
        ({"status_detail": "besok"}, {"status_detail"}),
        ({"leader_id": "1", "place": 5}, {"leader_id", "place"}),
        ({"date": "1999-12-31"}, {"date"}),
        ({"colour": "red"}, {"colour"}),
    ],
)
async def test_create_validation_one_message_per_field(
    client: Client, tokens: dict[str, str], leaders: dict[str, int], overrides: dict[str, Any], fields: set[str]
) -> None:
    response = await client.post(
        "/api/agenda", json=_item(leaders["Bupati"], **overrides), headers=bearer(tokens["staff"])
    )
    assert response.status == 422, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
    assert set(error["fields"]) == fields


async def test_unknown_leader_is_a_field_error(client: Client, tokens: dict[str, str], leaders: dict[str, int]) -> None:
    response = await client.post("/api/agenda", json=_item(9999), headers=bearer(tokens["staff"]))
    assert response.status == 422
    assert set((await response.json())["error"]["fields"]) == {"leader_id"}


async def test_a_2000_character_activity_is_stored_whole_and_spoken_trimmed(
    client: Client, tokens: dict[str, str], leaders: dict[str, int]
) -> None:
    activity = ('Pembahasan "Raperda" tentang RPJMD,\nbersama DPRD 🎉 ' * 40)[:2000]
    created = await _create(client, tokens["staff"], _item(leaders["Bupati"], activity=activity, status="ditunda"))
    assert created["activity"] == activity.replace("\n", " ").strip()  # one line (ivr.web.validation)
    spoken = created["spoken"]
    assert len(spoken) < 600 and spoken.endswith("Status: ditunda, waktu pelaksanaannya belum ditentukan.")
    assert "\n" not in spoken and '"' not in spoken and "🎉" not in spoken


async def test_patch_status_with_detail_notifies_every_touched_day(
    client: Client, tokens: dict[str, str], leaders: dict[str, int], notifier: RecordingNotifier
) -> None:
    bupati = leaders["Bupati"]
    token = tokens["staff"]
    created = await _create(client, token, _item(bupati, start="13:00", end=None, activity="Peresmian Jembatan"))
    notifier.calls.clear()

    moved = await client.patch(
        f"/api/agenda/{created['id']}",
        json={"status": "dipindahkan", "status_detail": {"new_date": "2025-12-17", "new_start": "09.00"}},
        headers=bearer(token),
    )
    assert moved.status == 200, await moved.text()
    body = await moved.json()
    assert body["status_detail"] == {"new_date": "2025-12-17", "new_start": "09:00", "representative": None}
    assert body["spoken"].endswith("Status: dipindahkan ke hari Rabu, tujuh belas Desember, pukul sembilan tepat.")
    assert notifier.days == {(bupati, MONDAY), (bupati, dt.date(2025, 12, 17))}

    # Represented instead: the moved-to day must drop the item, so it is notified too;
    # the new date and time belonged to "dipindahkan" and are dropped.
    notifier.calls.clear()
    represented = await client.patch(
        f"/api/agenda/{created['id']}",
        json={"status": "diwakilkan", "status_detail": {"representative": "Asisten Pemerintahan"}},
        headers=bearer(token),
    )
    body = await represented.json()
    assert body["status_detail"] == {"new_date": None, "new_start": None, "representative": "Asisten Pemerintahan"}
    assert body["spoken"].endswith("Status: diwakilkan oleh Asisten Pemerintahan.")
    assert notifier.days == {(bupati, MONDAY), (bupati, dt.date(2025, 12, 17))}

    # Another leader and another day: both the old and the new (leader, day) change.
    notifier.calls.clear()
    wakil = leaders["Wakil Bupati"]
    changed = await client.patch(
        f"/api/agenda/{created['id']}",
        json={"leader_id": wakil, "date": "2025-12-16", "status": "terjadwal"},
        headers=bearer(token),
    )
    assert changed.status == 200
    assert notifier.days == {(bupati, MONDAY), (wakil, dt.date(2025, 12, 16))}

    # Nothing changed: nothing to re-render.
    notifier.calls.clear()
    same = await client.patch(f"/api/agenda/{created['id']}", json={"status": "terjadwal"}, headers=bearer(token))
    assert same.status == 200 and notifier.calls == []


async def test_patch_and_delete_errors(client: Client, tokens: dict[str, str], leaders: dict[str, int]) -> None:
    token = tokens["staff"]
    created = await _create(client, token, _item(leaders["Bupati"]))
    path = f"/api/agenda/{created['id']}"
    assert (await client.patch("/api/agenda/999999", json={"note": "x"}, headers=bearer(token))).status == 404
    assert (await client.patch("/api/agenda/abc", json={"note": "x"}, headers=bearer(token))).status == 404
    empty = await client.patch(path, json={}, headers=bearer(token))
    assert empty.status == 422
    null_start = await client.patch(path, json={"start": None}, headers=bearer(token))
    assert set((await null_start.json())["error"]["fields"]) == {"start"}
    overnight = await client.patch(path, json={"start": "20:00", "end": "01:00"}, headers=bearer(token))
    assert (await overnight.json())["spoken"].startswith("Pukul dua puluh sampai dengan pukul satu keesokan harinya")
    cleared = await client.patch(path, json={"end": None, "place": None}, headers=bearer(token))
    assert (await cleared.json())["place"] == "" and (await cleared.json())["end"] is None


async def test_delete_notifies_and_removes(
    client: Client,
    tokens: dict[str, str],
    leaders: dict[str, int],
    notifier: RecordingNotifier,
    web_runtime: TestRuntime,
) -> None:
    bupati = leaders["Bupati"]
    created = await _create(client, tokens["staff"], _item(bupati, start="22:00", end="02:00"))
    notifier.calls.clear()
    response = await client.delete(f"/api/agenda/{created['id']}", headers=bearer(tokens["staff"]))
    assert response.status == 204
    assert notifier.days == {(bupati, MONDAY), (bupati, MONDAY + dt.timedelta(days=1))}
    async with web_runtime.sessions() as session:
        assert await session.scalar(select(AgendaItem).where(AgendaItem.id == created["id"])) is None
    again = await client.delete(f"/api/agenda/{created['id']}", headers=bearer(tokens["staff"]))
    assert again.status == 404


async def test_roles_and_tokens(client: Client, tokens: dict[str, str], leaders: dict[str, int]) -> None:
    assert (await client.get("/api/leaders")).status == 401
    assert (await client.get("/api/agenda")).status == 401
    assert (await client.post("/api/agenda", json=_item(leaders["Bupati"]))).status == 401
    duty = await client.post("/api/agenda", json=_item(leaders["Bupati"]), headers=bearer(tokens["duty"]))
    assert duty.status == 403
    assert (await client.get("/api/agenda", headers=bearer(tokens["duty"]))).status == 200
    created = await _create(client, tokens["admin"], _item(leaders["Bupati"]))
    patch = await client.patch(f"/api/agenda/{created['id']}", json={"note": "x"}, headers=bearer(tokens["duty"]))
    assert patch.status == 403


async def test_works_without_a_notifier(
    aiohttp_client: Any, web_runtime: TestRuntime, tokens: dict[str, str], leaders: dict[str, int]
) -> None:
    client: Client = await aiohttp_client(agenda_app(web_runtime, None))
    await _create(client, tokens["staff"], _item(leaders["Bupati"]))


def test_routes_must_come_after_the_api_setup() -> None:
    with pytest.raises(RuntimeError, match=r"after ivr\.web\.api\.setup"):
        add_agenda_routes(web.Application(), None)


async def test_openapi_document_covers_the_agenda_routes(client: Client) -> None:
    response = await client.get("/api/openapi.json")
    document = await response.json()
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    registered = set()
    for route in set(client.app.router.routes()) - client.app[PAGE_ROUTES]:
        info = route.resource.canonical if route.resource is not None else None
        if info is not None:
            registered.add((route.method, info))
    assert documented == registered
    for path in ("/api/leaders", "/api/agenda", "/api/agenda/{id}"):
        for operation in document["paths"][path].values():
            assert operation["x-roles"] and "401" in operation["responses"]
    assert document["paths"]["/api/agenda"]["post"]["x-roles"] == ["admin", "staff"]
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', await response.text()))
    assert refs <= set(document["components"]["schemas"])
