"""Hostile input on every write route: never a 5xx, always a clear 422.

The write routes are taken from the app's router and their bodies from the
OpenAPI document, so a new route or field fails here until it has a valid
example below. Every leaf of that example (nested ones included) is then
replaced, one at a time, by values a careless or hostile client sends: integers
no column holds, a lone surrogate, NUL, line breaks and other control
characters. Path parameters get ids out of range and NUL. The login form and
the CSV import get the same treatment in their own formats.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from web_fixtures import TestRuntime, bearer, store_call, tokens, web_runtime

from ivr import directory_import
from ivr.storage.models import Caller, CallerNumber, Leader, Office
from ivr.storage.users import create_user
from ivr.web import validation
from ivr.web.agenda_api import AGENDA_NOTIFIER, add_agenda_routes
from ivr.web.app import create_web_app
from ivr.web.auth import SAFE_METHODS

__all__ = ["tokens", "web_runtime"]  # fixtures used by name

Client = TestClient[Any, Any]

HUGE_INTS = (99999999999999999999999, 2**31, -(2**31) - 1, -(2**63) - 1)
#: Stands for an integer of 5000 digits, which Python will not even turn into text.
ENORMOUS = "__ENORMOUS_INTEGER__"
BAD_TEXTS = ("\ud800", "Rapat\udfff", "a\x00b", "a\x1bb", "a\x7fb", "a\x9bb", "a\x01b", "a\u202eb", "\u2066a")
#: Refused in a query or the login form, made spaces in a JSON body.
LINE_BREAKS = ("a\nb", "a\r\nb", "a\tb", "a\x85b", "a\u2028b")
BAD_PATH_IDS = ("99999999999", "99999999999999999999999", "2147483648", "0", "-1", "%00", "1%0A")


@pytest.fixture
async def world(aiohttp_client: Any, web_runtime: TestRuntime) -> dict[str, Any]:
    """The app with every route (the agenda too), and one of each thing a write route changes."""
    app = create_web_app(web_runtime)
    if AGENDA_NOTIFIER not in app:
        add_agenda_routes(app, None)
    client: Client = await aiohttp_client(app)
    async with web_runtime.sessions.begin() as session:
        office = Office(name="Dinas Kesehatan", kind="opd")
        leader = Leader(title="Bupati", name="H. Ahmad Fauzi", menu_key="1", position=0)
        caller = Caller(name="Rina Kartika", office=office, role="Staf")
        caller.numbers = [CallerNumber(raw="0812-3456-7001", e164="+6281234567001")]
        session.add_all([office, leader, caller])
        await create_user(session, "rina", "kata-sandi-yang-panjang", "staff", "Rina")
        await session.flush()
        ids = {"office": office.id, "leader": leader.id, "caller": caller.id}
    saved = await store_call(web_runtime.sessions, "1765432100.1", datetime(2026, 12, 2, 3, 0, tzinfo=UTC))
    ids["ticket"] = saved.ticket_number
    return {"client": client, "ids": ids}


def _examples(ids: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """A valid body for each JSON write route, with every field its schema has."""
    agenda = {
        "leader_id": ids["leader"],
        "date": "2026-12-15",
        "start": "09:00",
        "end": "10:00",
        "activity": "Rapat koordinasi",
        "place": "Pendopo",
        "status": "dipindahkan",
        "status_detail": {"new_date": "2026-12-16", "new_start": "10:00"},
        "note": "Terbuka untuk umum",
    }
    officer = {"phone": "0813-1111-0201", "phone_e164": "+6281311110201", "active": True}
    return {
        ("PATCH", "/api/tickets/{number}"): {"status": "diproses", "note_for_caller": "Sedang diproses"},
        ("POST", "/api/callers"): {
            "name": "Budi Santoso",
            "office_id": ids["office"],
            "office_kind": "opd",
            "role": "Kepala Seksi",
            "numbers": ["0812-3456-7002"],
            "pin": "1234",
        },
        ("PATCH", "/api/callers/{id}"): {
            "name": "Rina Kartika",
            "office_id": ids["office"],
            "office_kind": "opd",
            "role": "Staf",
            "numbers": ["0812-3456-7001"],
            "pin": "4321",
            "active": True,
        },
        ("PUT", "/api/office-hours/override"): {"mode": "none"},
        ("POST", "/api/agenda"): agenda,
        ("PATCH", "/api/agenda/{id}"): agenda,
        ("PUT", "/api/roster"): {
            "version": 0,
            "updated_at": "2026-12-01T08:00:00+07:00",
            "updated_by": "token:web",
            "officers": [
                {"code": "rudi", "name": "Rudi Hartono", "dial_strings": ["PJSIP/201"], **officer},
                {"code": "sri", "name": "Sri Mulyani", "dial_strings": ["PJSIP/202"]},
            ],
            "shifts": [
                {
                    "name": "Piket",
                    "timezone": "Asia/Jakarta",
                    "start": "2026-12-01T16:00:00+07:00",
                    "end": "2026-12-02T07:30:00+07:00",
                    "repeat": "daily",
                    "until": "2027-12-31",
                    "rounds": 2,
                    "levels": [{"mode": "sequential", "ring_seconds": 20, "officers": ["rudi", "sri"]}],
                    "overrides": [{"date": "2026-12-17", "replaces": "rudi", "substitute": "sri", "note": "cuti"}],
                }
            ],
            "fallback": {"rounds": 1, "levels": [{"mode": "simultaneous", "ring_seconds": 30, "officers": ["sri"]}]},
        },
    }


def _alternative_examples(ids: dict[str, Any]) -> list[tuple[tuple[str, str], dict[str, Any]]]:
    """Bodies that give a field the examples leave out because it is the
    other way to say one they give: a caller's office by name, not by id; an
    agenda item's representative, not its new date."""
    examples = _examples(ids)
    alternatives = []
    for route in (("POST", "/api/agenda"), ("PATCH", "/api/agenda/{id}")):
        represented = {"status": "diwakilkan", "status_detail": {"representative": "Sekda"}}
        alternatives.append((route, {**examples[route], **represented}))
    for route in (("POST", "/api/callers"), ("PATCH", "/api/callers/{id}")):
        body = {key: value for key, value in examples[route].items() if key != "office_id"}
        alternatives.append((route, {**body, "office": "Dinas Kesehatan"}))
    return alternatives


#: Write routes whose input is not a JSON body (the path, a form, a file).
OTHER_WRITES = {
    ("DELETE", "/api/agenda/{id}"),
    ("DELETE", "/api/callers/{id}"),
    ("POST", "/api/callers/import"),
    ("POST", "/api/alarms/{id}/acknowledge"),
    ("POST", "/login"),
    ("POST", "/logout"),
}


def _write_routes(client: Client) -> set[tuple[str, str]]:
    routes = set()
    for route in client.app.router.routes():
        if route.method not in SAFE_METHODS and route.resource is not None:
            routes.add((route.method, route.resource.canonical))
    return routes


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, tuple[Any, ...], Any]]:
    """(field name as errors say it, keys to reach it, value) of every string and integer."""

    def walk(node: Any, name: str, keys: tuple[Any, ...]) -> Iterator[tuple[str, tuple[Any, ...], Any]]:
        if isinstance(node, dict):
            for key, item in node.items():
                yield from walk(item, f"{name}.{key}" if name else key, (*keys, key))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                yield from walk(item, f"{name}[{index}]", (*keys, index))
        elif isinstance(node, str | int) and not isinstance(node, bool):
            yield name, keys, node

    return walk(value, path, ())


def _replaced(body: dict[str, Any], keys: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    node: Any = changed
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return changed


def _concrete(path: str, ids: dict[str, Any]) -> str:
    if "{number}" in path:
        return path.replace("{number}", ids["ticket"])
    if path.startswith("/api/callers/"):
        return path.replace("{id}", str(ids["caller"]))
    return path.replace("{id}", str(ids.get("item", 1)))


def _schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation = document["paths"][path][method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


async def _send(client: Client, method: str, url: str, headers: dict[str, str], body: Any) -> Any:
    text = json.dumps(body).replace(f'"{ENORMOUS}"', "9" * 5000)
    return await client.request(method, url, data=text, headers={**headers, "Content-Type": "application/json"})


async def test_every_write_route_is_covered(world: dict[str, Any]) -> None:
    client, ids = world["client"], world["ids"]
    examples = _examples(ids)
    assert _write_routes(client) == set(examples) | OTHER_WRITES
    document = await (await client.get("/api/openapi.json")).json()
    given = {route: set(body) for route, body in examples.items()}
    for route, body in _alternative_examples(ids):
        given[route] |= set(body)
    for method, path in examples:
        properties = set(_schema(document, method, path).get("properties", {}))
        assert properties <= given[method, path], (method, path, properties - given[method, path])


async def test_hostile_values_in_every_field_of_every_json_body_are_422(
    world: dict[str, Any], tokens: dict[str, str]
) -> None:
    client, ids = world["client"], world["ids"]
    headers = bearer(tokens["admin"])
    created = await client.post("/api/agenda", json=_examples(ids)["POST", "/api/agenda"], headers=headers)
    assert created.status == 201, await created.text()
    ids["item"] = (await created.json())["id"]
    checked = 0
    for (method, path), example in [*_examples(ids).items(), *_alternative_examples(ids)]:
        url = _concrete(path, ids)
        for field, keys, original in _leaves(example):
            bad_values: tuple[Any, ...] = BAD_TEXTS if isinstance(original, str) else (*HUGE_INTS, ENORMOUS)
            for bad in bad_values:
                response = await _send(client, method, url, headers, _replaced(example, keys, bad))
                assert response.status == 422, (method, path, field, ascii(bad), await response.text())
                error = (await response.json())["error"]
                assert error["code"] == "validation_failed"
                expected = "_body" if bad == ENORMOUS else field
                assert expected in error["fields"], (method, path, field, error)
                checked += 1
        # the example itself is fine: what was refused was the hostile value
        response = await _send(client, method, url, headers, example)
        assert response.status < 300 or response.status == 409, (method, path, await response.text())
    assert checked > 500


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("leader_id", 99999999999999999999999, "di luar jangkauan"),
        ("leader_id", 0, "Harus id"),
        ("activity", "\ud800", "UTF-8"),
        ("activity", "Rapat\x00", "karakter kontrol"),
    ],
)
async def test_agenda_messages_say_what_is_wrong(
    world: dict[str, Any], tokens: dict[str, str], field: str, value: Any, message: str
) -> None:
    client, ids = world["client"], world["ids"]
    body = _replaced(_examples(ids)["POST", "/api/agenda"], (field,), value)
    response = await client.post("/api/agenda", json=body, headers=bearer(tokens["admin"]))
    assert response.status == 422
    assert message in (await response.json())["error"]["fields"][field]


@pytest.mark.parametrize(
    ("office_id", "message"),
    [(99999999999999999999999, validation.OUT_OF_RANGE), (0, validation.ID), (-5, validation.ID)],
)
async def test_caller_office_id_out_of_range(
    world: dict[str, Any], tokens: dict[str, str], office_id: int, message: str
) -> None:
    client = world["client"]
    body = {"name": "Budi", "office_id": office_id, "numbers": ["081234567009"]}
    response = await client.post("/api/callers", json=body, headers=bearer(tokens["admin"]))
    assert response.status == 422
    assert (await response.json())["error"]["fields"]["office_id"] == message


async def test_not_json_numbers_are_a_400(world: dict[str, Any], tokens: dict[str, str]) -> None:
    client = world["client"]
    for constant in ("NaN", "Infinity", "-Infinity"):
        response = await client.post(
            "/api/agenda",
            data=f'{{"leader_id": {constant}}}',
            headers={**bearer(tokens["admin"]), "Content-Type": "application/json"},
        )
        assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_json"


async def test_deeply_nested_bodies_do_not_break_the_checks(world: dict[str, Any], tokens: dict[str, str]) -> None:
    client = world["client"]
    deep = {"note": "x"}
    for _ in range(300):
        deep = {"a": [deep]}
    response = await client.put("/api/office-hours/override", json=deep, headers=bearer(tokens["admin"]))
    assert response.status in (400, 422)


async def test_hostile_path_and_query_values(world: dict[str, Any], tokens: dict[str, str]) -> None:
    client, ids = world["client"], world["ids"]
    headers = bearer(tokens["admin"])
    ids["item"] = 1
    routes = sorted(_write_routes(client) | {("GET", p) for p in ("/api/agenda/{id}", "/api/callers/{id}")})
    for method, path in routes:
        if "{id}" not in path:
            continue
        for bad in BAD_PATH_IDS:
            response = await client.request(method, path.replace("{id}", bad), headers=headers)
            assert response.status == 404, (method, path, bad, await response.text())
    for url in (
        "/api/calls/%00",
        "/api/calls/1765432100.1%0A",
        "/api/recordings/99999999999",
        "/api/alarms/99999999999999",
    ):
        response = await client.get(url, headers=headers)
        assert response.status == 404, (url, await response.text())
    for url, field in (
        ("/api/callers?q=%00", "q"),
        ("/api/tickets?office_id=99999999999", "office_id"),
        ("/api/agenda?leader_id=99999999999", "leader_id"),
        ("/api/tickets?limit=99999999999999999999999", "limit"),
        ("/api/tickets?offset=" + "9" * 5000, "offset"),
    ):
        response = await client.get(url, headers=headers)
        assert response.status == 422, (url, await response.text())
        assert field in (await response.json())["error"]["fields"]
    # Bytes that are not UTF-8 arrive as U+FFFD: a search that finds nothing.
    response = await client.get("/api/callers?q=%ED%A0%80", headers=headers)
    assert response.status == 200 and (await response.json())["items"] == []
    page = await client.get("/tickets?office_id=99999999999", headers=headers)
    assert page.status == 200 and "Filter tidak valid" in await page.text()


async def test_hostile_login_forms(world: dict[str, Any]) -> None:
    client = world["client"]
    for field in ("username", "password", "next", "login_token"):
        for bad in ("%00", "%ED%A0%80", "a%0D%0Ab", "%FF%FE"):
            form = await client.get("/login")
            token = re.search(r'name="login_token" value="([^"]+)"', await form.text())
            assert token
            values = {"username": "rina", "password": "kata-sandi-yang-panjang", "next": "/", "login_token": token[1]}
            values[field] = bad
            body = "&".join(f"{key}={value}" for key, value in values.items())
            response = await client.post(
                "/login",
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                allow_redirects=False,
            )
            assert response.status < 500, (field, bad, await response.text())
            if field in ("username", "password"):
                assert response.status == 400, (field, bad)


@pytest.mark.parametrize(
    "content",
    [
        b"name,office,role,numbers\nRina\x00,Dinas Kesehatan,Staf,081234567011\n",
        b"name,office,role,numbers\nRina\x1b[31m,Dinas Kesehatan,Staf,081234567011\n",
        b"\x00\x00\x00",
    ],
)
async def test_csv_with_control_characters_is_refused(
    world: dict[str, Any], tokens: dict[str, str], content: bytes
) -> None:
    response = await world["client"].post(
        "/api/callers/import",
        data=content,
        headers={**bearer(tokens["admin"]), "Content-Type": "text/csv"},
    )
    assert response.status == 422
    assert (await response.json())["error"]["fields"]["file"] == directory_import.FILE_CONTROL


async def test_line_breaks_in_a_json_body_become_spaces(world: dict[str, Any], tokens: dict[str, str]) -> None:
    client, ids = world["client"], world["ids"]
    for activity in ("Rapat koordinasi\r\n\tbersama DPRD\u2028", "Rapat koordinasi \n bersama\x0bDPRD\u200b"):
        body = {**_examples(ids)["POST", "/api/agenda"], "activity": activity}
        response = await client.post("/api/agenda", json=body, headers=bearer(tokens["admin"]))
        assert response.status == 201, await response.text()
        assert (await response.json())["activity"] == "Rapat koordinasi bersama DPRD"


async def test_a_field_of_nothing_visible_is_empty(world: dict[str, Any], tokens: dict[str, str]) -> None:
    client, ids = world["client"], world["ids"]
    for invisible in ("\u200b", " \ufeff\u200b ", "\u2060\n"):
        body = {**_examples(ids)["POST", "/api/agenda"], "activity": invisible}
        response = await client.post("/api/agenda", json=body, headers=bearer(tokens["admin"]))
        assert response.status == 422, ascii(invisible)
        assert "activity" in (await response.json())["error"]["fields"]


def test_text_rules() -> None:
    assert validation.text_problem("Dr. Rina Kartika, S.Kom. — Rapat 08.30 ✓") is None
    assert validation.text_problem("😀") is None  # a surrogate pair joined by json.loads is fine
    for bad in (*BAD_TEXTS, *LINE_BREAKS):
        assert validation.text_problem(bad) is not None, ascii(bad)
    document = {"a": [{"b\x00": 1}, "x\n\ny"], "c": 2**40, "d": True, "e": 1.5, "f": "g\x00"}
    assert validation.clean_document(document) == {
        "a[0].b\\x00": validation.CONTROL,
        "c": validation.OUT_OF_RANGE,
        "f": validation.CONTROL,
    }
    assert document["a"][1] == "x y"
    assert validation.parse_id("2147483647") == 2**31 - 1
    for raw in ("2147483648", "0", "-1", "1e3", "١٢", ""):
        assert validation.parse_id(raw) is None, raw
