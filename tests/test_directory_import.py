"""``ivr callers import``: the shipped example, encodings, and every way a row
or a file can be wrong."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from web_fixtures import TestRuntime, web_runtime

from ivr.directory_import import CallerImportError, import_callers_file
from ivr.storage.models import Caller, CallerNumber, Office

__all__ = ["web_runtime"]  # fixture used by name

EXAMPLE = Path(__file__).resolve().parents[1] / "callers" / "example.csv"
HEADER = "name,office,office_kind,role,numbers,pin\n"


def _write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "callers.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


async def _callers(runtime: TestRuntime) -> dict[str, Caller]:
    async with runtime.sessions() as session:
        rows = await session.scalars(select(Caller).options(selectinload(Caller.numbers), selectinload(Caller.office)))
        return {caller.name: caller for caller in rows}


async def test_the_example_file_imports_cleanly(web_runtime: TestRuntime) -> None:
    report = await import_callers_file(web_runtime.sessions, EXAMPLE, progress=False)
    assert report.rejected == []
    assert report.warnings == []
    assert report.rows == report.imported == 7
    assert len(report.offices_created) == 7
    callers = await _callers(web_runtime)
    sri = callers["Sri Rahayu, S.Sos."]
    assert sri.office is not None and sri.office.name == "Satuan Polisi Pamong Praja"
    assert [(n.raw, n.e164) for n in sri.numbers] == [
        ("0856 4132 7788", "+6285641327788"),
        ("0286 591122", "+62286591122"),
    ]
    assert sri.pin_hash is None
    hadi = callers["Hadi Purnomo"]
    assert hadi.pin_hash is not None and PasswordHasher().verify(hadi.pin_hash, "2719")
    assert callers["Teguh Wibowo"].office is not None and callers["Teguh Wibowo"].office.kind == "kecamatan"
    assert "7 imported" in report.render()

    # Importing it again changes nothing: every number is taken.
    again = await import_callers_file(web_runtime.sessions, EXAMPLE)
    assert again.imported == 0 and len(again.rejected) == 7
    assert all("already registered" in row.reason for row in again.rejected)
    assert len(await _callers(web_runtime)) == 7


async def test_bad_rows_are_listed_and_good_rows_go_in(web_runtime: TestRuntime, tmp_path: Path) -> None:
    async with web_runtime.sessions.begin() as session:
        office = Office(name="Dinas Kesehatan", kind="opd")
        known = Caller(name="dr. Rina Kartika", office=office)
        known.numbers = [CallerNumber(raw="085712345678", e164="+6285712345678")]
        session.add(known)
    text = HEADER + (
        "Budi Santoso,Dinas Komunikasi dan Informatika,opd,Kepala Bidang,0812-3456-7890,1234\n"  # 2 ok
        ",Dinas Kesehatan,opd,Staf,081211112222,\n"  # 3 no name
        '"Ani, S.E.",dinas  kesehatan,opd,"Kepala Seksi\nPelayanan",081233334444;0286 591234,\n'  # 4-5 ok
        "Joko,Kecamatan Bawang,kecamatan,Camat,0812-34,\n"  # 6 bad number
        "Sari,Kecamatan Bawang,kecamatan,Sekcam,+62 812 3456 7890,\n"  # 7 number on line 2
        "Rudi,Dinas Kesehatan,opd,Staf,0857-1234-5678,\n"  # 8 number in the database
        "Tono,Kecamatan Bawang,kecamatan,Kasi,081255556666,12\n"  # 9 bad PIN
        "Wati,Kecamatan Bawang,kecamatan,Kasi,081277778888,,extra\n"  # 10 too many columns
        "\n"  # 11 blank: skipped
        "Yanto,,,,081299990000\n"  # 12 ok, short row, no office
    )
    report = await import_callers_file(web_runtime.sessions, _write(tmp_path, text))
    assert report.rows == 9
    assert report.imported == 3
    assert report.offices_created == ["Dinas Komunikasi dan Informatika"]  # "dinas  kesehatan" exists
    rejected = {row.line: row for row in report.rejected}
    assert sorted(rejected) == [3, 6, 7, 8, 9, 10]
    assert "Name is required" in rejected[3].reason
    assert "Invalid phone number" in rejected[6].reason and rejected[6].name == "Joko"
    assert "line 2" in rejected[7].reason
    assert "dr. Rina Kartika" in rejected[8].reason
    assert "PIN" in rejected[9].reason
    assert "columns" in rejected[10].reason

    callers = await _callers(web_runtime)
    assert set(callers) == {"dr. Rina Kartika", "Budi Santoso", "Ani, S.E.", "Yanto"}
    assert callers["Ani, S.E."].office is not None and callers["Ani, S.E."].office.name == "Dinas Kesehatan"
    assert callers["Ani, S.E."].role == "Kepala Seksi Pelayanan"
    assert callers["Yanto"].office is None

    rendered = report.render()
    assert "line 6 (Joko):" in rendered and "3 imported" in rendered and "6 rejected" in rendered


async def test_nothing_is_imported_when_every_row_is_bad(web_runtime: TestRuntime, tmp_path: Path) -> None:
    report = await import_callers_file(web_runtime.sessions, _write(tmp_path, HEADER + "X,,,,123\n"))
    assert report.imported == 0 and [row.line for row in report.rejected] == [2]
    async with web_runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Caller)) == 0
        assert await session.scalar(select(func.count()).select_from(Office)) == 0


async def test_utf8_with_bom_and_windows_1252(web_runtime: TestRuntime, tmp_path: Path) -> None:
    with_bom = _write(tmp_path, "\ufeff" + HEADER + "Siti Aminah,Dinas Pendidikan,opd,Sekretaris,081298765432,\n")
    report = await import_callers_file(web_runtime.sessions, with_bom)
    assert (report.encoding, report.imported, report.warnings) == ("utf-8-sig", 1, [])

    # Excel on Windows: cp1252, with an en dash and an e acute.
    cp1252 = _write(
        tmp_path, HEADER + "Ir. Andr\u00e9 \u2013 Kabid,Dinas PUPR,opd,Kabid,081311112222,\n", "cp1252", "w.csv"
    )
    report = await import_callers_file(web_runtime.sessions, cp1252)
    assert report.encoding == "cp1252" and report.imported == 1
    assert any("Windows-1252" in warning for warning in report.warnings)
    assert "Ir. Andr\u00e9 \u2013 Kabid" in await _callers(web_runtime)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"name;office;numbers\nBudi;Dinas;0812\n", "separated by ';'"),
        (b"name,office,pin\nBudi,Dinas,1234\n", "missing columns: numbers"),
        (b"name,numbers,name\n", "columns named twice"),
        (codecs.BOM_UTF16_LE + "name,numbers\n".encode("utf-16-le"), "UTF-16"),
        (b'name,numbers\n"Budi,0812\nSari,0813\n', "not valid CSV"),  # a stray quote would eat the rest
        (b'name,numbers\n"Bu"di,0812\n', "not valid CSV"),
    ],
)
async def test_unusable_files_are_refused_whole(
    web_runtime: TestRuntime, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(CallerImportError, match=message):
        await import_callers_file(web_runtime.sessions, path)


async def test_missing_file(web_runtime: TestRuntime, tmp_path: Path) -> None:
    with pytest.raises(CallerImportError, match="cannot read"):
        await import_callers_file(web_runtime.sessions, tmp_path / "nope.csv")


async def test_progress_bar(web_runtime: TestRuntime, capsys: pytest.CaptureFixture[str]) -> None:
    await import_callers_file(web_runtime.sessions, EXAMPLE, progress=True)
    assert "callers" in capsys.readouterr().err
