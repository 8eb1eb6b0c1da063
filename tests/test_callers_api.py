"""Changing the caller directory over the API: ``PATCH``/``DELETE
/api/callers/{id}`` and the CSV upload ``POST /api/callers/import`` (good,
bad, mixed, duplicate, latin-1 and oversized files), with the role limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from sqlalchemy import func, select
from web_fixtures import TestRuntime, api, bearer, store_call, tokens, web_runtime

from ivr.storage.models import Caller, CallerNumber, Office, Ticket
from ivr.web.callers_api import MAX_UPLOAD_BYTES

__all__ = ["api", "tokens", "web_runtime"]  # fixtures used by name

Client = TestClient[Any, Any]
HEADER = "name,office,office_kind,role,numbers,pin\n"
CSV = {"Content-Type": "text/csv"}


async def _register(api: Client, token: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Budi Santoso", "office": "Dinas Kesehatan", "numbers": ["0812-3456-7890"], **fields}
    response = await api.post("/api/callers", json=body, headers=bearer(token))
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def _count(runtime: TestRuntime, model: Any) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _import(api: Client, token: str, content: bytes) -> Any:
    return await api.post("/api/callers/import", data=content, headers={**bearer(token), **CSV})


# -- PATCH and DELETE --------------------------------------------------------------------


async def test_patch_changes_only_the_given_fields(api: Client, tokens: dict[str, str], web_runtime: TestRuntime):
    caller = await _register(api, tokens["staff"], role="Kepala Bidang", pin="1234")
    url = f"/api/callers/{caller['id']}"
    staff = bearer(tokens["staff"])

    response = await api.patch(url, json={"role": "Sekretaris Dinas", "office": "Dinas  PUPR"}, headers=staff)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["name"] == "Budi Santoso" and body["role"] == "Sekretaris Dinas"
    assert body["office"] == "Dinas PUPR" and body["has_pin"] is True
    assert body["numbers"] == [{"raw": "0812-3456-7890", "e164": "+6281234567890"}]

    # The numbers list is replaced; a number that stays keeps its row (no unique clash).
    numbers = ["+62 812 3456 7890", "0286 591234"]
    body = await (await api.patch(url, json={"numbers": numbers, "pin": "9876"}, headers=staff)).json()
    assert [n["e164"] for n in body["numbers"]] == ["+6281234567890", "+62286591234"]
    assert body["numbers"][0]["raw"] == "+62 812 3456 7890"
    async with web_runtime.sessions() as session:
        pin_hash = await session.scalar(select(Caller.pin_hash).where(Caller.id == caller["id"]))
    assert pin_hash is not None and PasswordHasher().verify(pin_hash, "9876")

    body = await (await api.patch(url, json={"pin": None, "office": None, "active": False}, headers=staff)).json()
    assert (body["has_pin"], body["office"], body["active"]) == (False, None, False)


async def test_patch_is_checked_like_a_new_entry(api: Client, tokens: dict[str, str]):
    budi = await _register(api, tokens["staff"])
    sari = await _register(api, tokens["staff"], name="Sari", numbers=["081311112222"])
    url = f"/api/callers/{sari['id']}"
    staff = bearer(tokens["staff"])

    invalid = await api.patch(url, json={"name": " ", "numbers": ["0812-34"], "pin": "12", "colour": 1}, headers=staff)
    assert invalid.status == 422
    assert set((await invalid.json())["error"]["fields"]) == {"colour"}  # unknown fields first
    invalid = await api.patch(url, json={"name": " ", "numbers": ["0812-34"], "pin": "12"}, headers=staff)
    fields = (await invalid.json())["error"]["fields"]
    assert fields["name"].startswith("Nama wajib diisi")
    assert "Nomor telepon tidak valid" in fields["numbers[0]"]
    assert fields["pin"].startswith("PIN harus 4 sampai 8 angka")

    taken = await api.patch(url, json={"numbers": ["081311112222", "0812 3456 7890"]}, headers=staff)
    assert taken.status == 409
    assert "Budi Santoso" in (await taken.json())["error"]["fields"]["numbers[1]"]
    assert (await api.patch(url, json={}, headers=staff)).status == 422
    assert (await api.patch("/api/callers/999999", json={"role": "x"}, headers=staff)).status == 404
    fetched = await (await api.get(f"/api/callers/{budi['id']}", headers=staff)).json()
    assert fetched["numbers"][0]["e164"] == "+6281234567890"


async def test_delete_keeps_the_calls_of_the_caller(api: Client, tokens: dict[str, str], web_runtime: TestRuntime):
    caller = await _register(api, tokens["staff"])
    await store_call(web_runtime.sessions, "1700000000.7", datetime.now(UTC), caller_id=caller["id"])
    staff = bearer(tokens["staff"])
    assert (await api.delete(f"/api/callers/{caller['id']}", headers=staff)).status == 204
    assert (await api.get(f"/api/callers/{caller['id']}", headers=staff)).status == 404
    assert (await api.delete(f"/api/callers/{caller['id']}", headers=staff)).status == 404
    assert await _count(web_runtime, CallerNumber) == 0
    async with web_runtime.sessions() as session:
        ticket = await session.scalar(select(Ticket))
    assert ticket is not None and ticket.caller_id is None and ticket.caller_number == "081234567890"
    # The number is free again.
    await _register(api, tokens["staff"])


async def test_role_limits_on_the_directory(api: Client, tokens: dict[str, str]):
    caller = await _register(api, tokens["admin"])
    url = f"/api/callers/{caller['id']}"
    duty = bearer(tokens["duty"])
    assert (await api.patch(url, json={"role": "x"}, headers=duty)).status == 403
    assert (await api.delete(url, headers=duty)).status == 403
    assert (await _import(api, tokens["duty"], HEADER.encode())).status == 403
    assert (await api.patch(url, json={"role": "x"})).status == 401
    assert (await api.post("/api/callers/import", data=HEADER, headers=CSV)).status == 401
    assert (await api.patch(url, json={"role": "Staf"}, headers=bearer(tokens["staff"]))).status == 200
    assert (await _import(api, tokens["staff"], HEADER.encode())).status == 200


# -- CSV import ------------------------------------------------------------------------


async def test_a_good_file_is_imported_whole(api: Client, tokens: dict[str, str], web_runtime: TestRuntime):
    text = HEADER + (
        "Siti Aminah,Dinas Pendidikan,opd,Sekretaris,081298765432,4821\n"
        "Teguh Wibowo,Kecamatan Bawang,kecamatan,Camat,0286 591122;0813-2222-3333,\n"
    )
    response = await _import(api, tokens["staff"], text.encode())
    assert response.status == 200
    report = await response.json()
    assert report == {
        "source": "upload.csv",
        "encoding": "utf-8",
        "rows": 2,
        "imported": 2,
        "offices_created": ["Dinas Pendidikan", "Kecamatan Bawang"],
        "warnings": [],
        "rejected": [],
    }
    found = await (await api.get("/api/callers?q=0813 2222", headers=bearer(tokens["duty"]))).json()
    assert [c["name"] for c in found["items"]] == ["Teguh Wibowo"]


async def test_a_mixed_file_imports_the_good_rows_and_lists_the_rest(
    api: Client, tokens: dict[str, str], web_runtime: TestRuntime
):
    await _register(api, tokens["staff"], name="dr. Rina Kartika", numbers=["085712345678"])
    text = HEADER + (
        "Budi,Dinas Kominfo,opd,Kabid,0812-1111-2222,\n"  # 2 ok
        ",Dinas Kominfo,opd,Staf,081211113333,\n"  # 3 no name
        "Joko,Kecamatan Bawang,kecamatan,Camat,0812-34,\n"  # 4 bad number
        "Sari,Kecamatan Bawang,kecamatan,Sekcam,+62 812 1111 2222,\n"  # 5 duplicate of line 2
        "Rudi,Dinas Kesehatan,opd,Staf,0857-1234-5678,\n"  # 6 already registered
        "Tono,,,,081255556666,12\n"  # 7 bad PIN
    )
    form = FormData()
    form.add_field("file", text.encode(), filename="direktori.csv", content_type="text/csv")
    response = await api.post("/api/callers/import", data=form, headers=bearer(tokens["staff"]))
    assert response.status == 200, await response.text()
    report = await response.json()
    assert report["source"] == "direktori.csv"
    assert (report["rows"], report["imported"]) == (6, 1)
    rejected = {row["line"]: row for row in report["rejected"]}
    assert sorted(rejected) == [3, 4, 5, 6, 7]
    assert rejected[3]["reason"].startswith("Nama wajib diisi")
    assert rejected[4]["name"] == "Joko" and "Nomor telepon tidak valid" in rejected[4]["reason"]
    assert "baris 2" in rejected[5]["reason"]
    assert "dr. Rina Kartika" in rejected[6]["reason"]
    assert "PIN" in rejected[7]["reason"]
    names = {c["name"] for c in (await (await api.get("/api/callers", headers=bearer(tokens["duty"]))).json())["items"]}
    assert names == {"dr. Rina Kartika", "Budi"}


async def test_a_file_of_bad_rows_writes_nothing(api: Client, tokens: dict[str, str], web_runtime: TestRuntime):
    text = HEADER + "Joko,Kecamatan Baru,kecamatan,Camat,0812-34,\nSari,Kecamatan Baru,,,,\n"
    report = await (await _import(api, tokens["staff"], text.encode())).json()
    assert report["imported"] == 0 and [row["line"] for row in report["rejected"]] == [2, 3]
    assert await _count(web_runtime, Caller) == 0
    assert await _count(web_runtime, Office) == 0  # the office of a rejected row is not created


async def test_importing_the_same_file_twice_rejects_every_row(api: Client, tokens: dict[str, str]):
    text = (HEADER + "Siti,Dinas Pendidikan,opd,,081298765432,\n").encode()
    assert (await (await _import(api, tokens["staff"], text)).json())["imported"] == 1
    again = await (await _import(api, tokens["staff"], text)).json()
    assert again["imported"] == 0
    assert "sudah terdaftar atas nama Siti" in again["rejected"][0]["reason"]


async def test_latin_1_file_is_read_with_a_warning(api: Client, tokens: dict[str, str]):
    text = HEADER + "Ir. Andr\u00e9 Wijaya,Dinas PUPR,opd,Kabid,081311112222,\n"
    report = await (await _import(api, tokens["staff"], text.encode("latin-1"))).json()
    assert report["encoding"] == "cp1252" and report["imported"] == 1
    assert any("Windows-1252" in warning for warning in report["warnings"])
    found = await (await api.get("/api/callers?q=Andr\u00e9", headers=bearer(tokens["staff"]))).json()
    assert [c["name"] for c in found["items"]] == ["Ir. Andr\u00e9 Wijaya"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"nama,telepon\nBudi,0812\n", "kolom tidak ada"),
        (b"name;office;numbers\nBudi;Dinas;0812\n", "dipisah dengan ';'"),
        (b"\xff\xfen\x00a\x00m\x00e\x00", "UTF-16"),
        (b"name,numbers\nBudi,\x81\x8d\n", "bukan UTF-8 maupun Windows-1252"),
        (b'name,numbers\n"Budi,0812\nSari,0813\n', "bukan CSV yang sah"),
        (b"", "Berkas kosong"),
    ],
)
async def test_unusable_files_are_refused_whole(
    api: Client, tokens: dict[str, str], web_runtime: TestRuntime, content: bytes, message: str
):
    response = await _import(api, tokens["staff"], content)
    assert response.status == 422
    error = (await response.json())["error"]
    assert message in error["fields"]["file"]
    assert await _count(web_runtime, Caller) == 0


async def test_oversized_uploads_are_refused(api: Client, tokens: dict[str, str], web_runtime: TestRuntime):
    row = b"Budi,Dinas,opd,Staf,081234567890,\n"
    big = HEADER.encode() + row * (MAX_UPLOAD_BYTES // len(row) + 1)
    declared = await _import(api, tokens["staff"], big)
    assert declared.status == 413
    assert "Berkas terlalu besar" in (await declared.json())["error"]["message"]

    sent: list[int] = []

    async def chunks() -> Any:  # no Content-Length: refused while streaming
        for start in range(0, len(big), 64 * 1024):
            sent.append(start)
            yield big[start : start + 64 * 1024]

    streamed = await api.post("/api/callers/import", data=chunks(), headers={**bearer(tokens["staff"]), **CSV})
    assert streamed.status == 413
    assert await _count(web_runtime, Caller) == 0


async def test_wrong_content_type_and_missing_file_field(api: Client, tokens: dict[str, str]):
    staff = bearer(tokens["staff"])
    wrong = await api.post("/api/callers/import", json={"rows": []}, headers=staff)
    assert wrong.status == 415 and "CSV" in (await wrong.json())["error"]["message"]
    form = FormData()
    form.add_field("other", b"x", filename="x.csv")
    missing = await api.post("/api/callers/import", data=form, headers=staff)
    assert missing.status == 422 and "file" in (await missing.json())["error"]["fields"]


async def test_openapi_document_covers_the_directory_routes(api: Client):
    document = await (await api.get("/api/openapi.json")).json()
    assert set(document["paths"]["/api/callers/{id}"]) == {"get", "patch", "delete"}
    upload = document["paths"]["/api/callers/import"]["post"]
    assert {"text/csv", "multipart/form-data"} <= set(upload["requestBody"]["content"])
    assert {"413", "422", "403", "401"} <= set(upload["responses"])
    assert upload["x-roles"] == ["admin", "staff"]


async def test_the_directory_is_sorted_by_name_whatever_the_case(api: Client, tokens: dict[str, str]):
    for name, number in (("budi Santoso", "081200000001"), ("Citra Dewi", "081200000002"), ("agus", "081200000003")):
        await _register(api, tokens["staff"], name=name, numbers=[number])
    page = await (await api.get("/api/callers", headers=bearer(tokens["staff"]))).json()
    assert [caller["name"] for caller in page["items"]] == ["agus", "budi Santoso", "Citra Dewi"]
