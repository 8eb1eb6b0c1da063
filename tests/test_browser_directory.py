"""The duty roster and caller directory pages in a real browser against the
real server: an override changes who is on duty now, an officer's phone is
checked as the IVR reads numbers, the directory is searched, edited and fed a
CSV file whose rejected rows are listed; other roles see what they may."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from browser_fixtures import BROWSER_TESTS, LiveServer, SignedInFactory, screenshot
from playwright.async_api import expect
from sqlalchemy import select

from ivr.emergency import document, store
from ivr.storage.models import Caller, CallerNumber, Office

pytestmark = BROWSER_TESTS

ROSTER = {
    "officers": [
        {"code": "rudi", "name": "Rudi Hartono", "phone": "0813-1111-0201", "dial_strings": ["PJSIP/201"]},
        {"code": "sri", "name": "Sri Mulyani", "dial_strings": ["PJSIP/202"]},
        {"code": "bayu", "name": "Bayu Saputra", "dial_strings": ["PJSIP/203"]},
        {"code": "kabag", "name": "Kabag Prokompim", "dial_strings": ["PJSIP/210"]},
    ],
    "shifts": [
        {
            "name": "Piket harian",
            "start": "2020-01-01T00:00:00+07:00",
            "end": "2020-01-02T00:00:00+07:00",
            "repeat": "daily",
            "levels": [
                {"mode": "simultaneous", "ring_seconds": 20, "officers": ["rudi", "sri"]},
                {"mode": "sequential", "ring_seconds": 25, "officers": ["kabag"]},
            ],
        }
    ],
    "fallback": {"rounds": 1, "levels": [{"officers": ["kabag"]}]},
}


async def _save_roster(live_server: LiveServer) -> None:
    runtime = live_server.runtime
    roster = document.parse(ROSTER)
    async with runtime.sessions.begin() as session:
        await store.save_roster(session, roster, by="tests", expected_version=None)
    desk = runtime.services.emergency
    assert desk is not None
    async with runtime.sessions() as session:
        desk.roster.replace(await store.load_roster(session))


async def test_an_override_changes_who_is_on_duty_now(live_server: LiveServer, logged_in_page: SignedInFactory):
    await _save_roster(live_server)
    signed_in = await logged_in_page("admin", landing="/roster")
    page = signed_in.page
    now = page.locator("[data-roster-now]")
    await expect(now.locator("[data-now-shift]")).to_have_text("Piket harian")
    await expect(now.locator("[data-level-officers]").first).to_have_text("Rudi Hartono, Sri Mulyani")
    await expect(page.locator("[data-roster-next]")).to_contain_text("00.00")  # tomorrow's occurrence
    await expect(page.get_by_role("row", name="rudi Rudi Hartono 0813-1111-0201")).to_be_visible()

    override = page.locator("#override-form")
    today = dt.datetime.now(dt.UTC).astimezone(live_server.runtime.settings.zone).date()
    await expect(override.get_by_label("Tanggal mulai shift")).to_have_value(today.isoformat())
    await override.get_by_label("Yang diganti").select_option("rudi")
    await override.locator("select[name=substitute]").select_option("bayu")
    await override.get_by_label("Catatan").fill("cuti <b>sakit</b>")
    async with page.expect_navigation():
        await override.get_by_role("button", name="Simpan pengganti").click()
    await expect(now.locator("[data-level-officers]").first).to_have_text("Bayu Saputra, Sri Mulyani")
    await expect(now).to_contain_text("Bayu Saputra menggantikan Rudi Hartono")
    await expect(page.locator("[data-overrides]")).to_contain_text("(cuti <b>sakit</b>)")
    # The emergency calls of this process use it at once.
    desk = live_server.runtime.services.emergency
    assert desk is not None
    planned = desk.router.plan_now()
    assert [o.name for o in planned.levels[0].officers] == ["Bayu Saputra", "Sri Mulyani"]
    await screenshot(page, "roster")

    # A phone number the IVR cannot read is refused with the directory's words.
    officer = page.locator("#officer-form")
    await officer.get_by_label("Kode (huruf kecil, tanpa spasi)").fill("nur")
    await officer.get_by_label("Nama").fill("Nur Hidayah")
    await officer.get_by_label("Telepon").fill("0812-34")
    await officer.get_by_label("Nomor panggil Asterisk, satu per baris").fill("PJSIP/204")
    await officer.get_by_role("button", name="Simpan petugas").click()
    await expect(officer.locator('[data-error-for="_form"]')).to_have_text(
        "petugas 5, telepon: Nomor telepon tidak valid: '0812-34'"
    )
    await officer.get_by_label("Telepon").fill("+62 813 1111 0204")
    async with page.expect_navigation():
        await officer.get_by_role("button", name="Simpan petugas").click()
    await expect(page.get_by_role("row", name="nur Nur Hidayah 0813-1111-0204 (+6281311110204)")).to_be_visible()

    # The chain editor: level 2 rings longer and calls Bayu too.
    chain = page.locator("#chain-form")
    second = chain.locator("[data-level]").nth(1)
    await expect(second.get_by_label("Kode petugas, dipisah koma")).to_have_value("kabag")
    await second.get_by_label("Lama dering (detik)").fill("30")
    await second.get_by_label("Kode petugas, dipisah koma").fill("kabag, hantu")
    await chain.get_by_role("button", name="Simpan rantai").click()
    await expect(chain.locator('[data-error-for="_form"]')).to_have_text(
        'shift "Piket harian", tingkat 2, petugas 2: Petugas tidak dikenal'
    )
    await second.get_by_label("Kode petugas, dipisah koma").fill("kabag, bayu")
    async with page.expect_navigation():
        await chain.get_by_role("button", name="Simpan rantai").click()
    await expect(now.locator("[data-chain-levels] li").nth(1)).to_have_text(
        "Tingkat 2 (bergiliran, 30 detik): Kabag Prokompim, Bayu Saputra"
    )

    # Removing the override brings Rudi back.
    page.once("dialog", lambda dialog: dialog.accept())
    async with page.expect_navigation():
        await page.locator("[data-remove-override]").click()
    await expect(now.locator("[data-level-officers]").first).to_have_text("Rudi Hartono, Sri Mulyani")


async def test_staff_see_the_roster_read_only(live_server: LiveServer, logged_in_page: SignedInFactory):
    await _save_roster(live_server)
    signed_in = await logged_in_page("staff", landing="/roster")
    page = signed_in.page
    await expect(page.locator("[data-now-shift]")).to_have_text("Piket harian")
    await expect(page.get_by_text("Hanya admin yang dapat mengubah jadwal piket.")).to_be_visible()
    for form in ("#override-form", "#officer-form", "#chain-form", "#json-form"):
        assert await page.locator(form).count() == 0
    # Hidden is not all: the API refuses the signed-in staff member too.
    status = await page.evaluate(
        "window.ivr.api('GET', '/api/roster').then(doc => window.ivr.api('PUT', '/api/roster', doc))"
        ".then(() => 200, error => error.status)"
    )
    assert status == 403


async def _register(live_server: LiveServer) -> None:
    async with live_server.runtime.sessions.begin() as session:
        health = Office(name="Dinas Kesehatan", kind="opd")
        for name, office, number in (
            ("dr. Rina Kartika", health, "+6285712345678"),
            ("Agus Salim", health, "+6285712345679"),
            ("Teguh Wibowo", Office(name="Kecamatan Bawang", kind="kecamatan"), "+62286591122"),
        ):
            caller = Caller(name=name, office=office, role="Staf")
            caller.numbers = [CallerNumber(raw=number, e164=number)]
            session.add(caller)


async def test_search_edit_and_import_callers(live_server: LiveServer, logged_in_page: SignedInFactory, tmp_path: Path):
    await _register(live_server)
    signed_in = await logged_in_page("staff", landing="/callers")
    page = signed_in.page
    rows = page.locator("#callers tbody tr")
    await expect(rows).to_have_count(3)

    await page.get_by_label("Cari").fill("kesehatan")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Cari", exact=True).click()
    await expect(rows).to_have_count(2)
    await page.get_by_label("Cari").fill("0286 591122")  # as people write it
    async with page.expect_navigation():
        await page.get_by_role("button", name="Cari", exact=True).click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Teguh Wibowo")

    # Edit: a number that is someone else's is refused, with whose it is.
    await rows.first.get_by_role("button", name="Ubah").click()
    form = page.locator("#caller-form")
    await form.get_by_label("Nomor telepon").fill("0286 591122\n0857-1234-5678")
    await form.get_by_role("button", name="Simpan").click()
    await expect(form.locator('[data-error-for="numbers"]')).to_have_text(
        "Nomor ke-2: Nomor +6285712345678 sudah terdaftar atas nama dr. Rina Kartika"
    )
    await form.get_by_label("Nomor telepon").fill("0286 591122\n0813-2222-3333")
    await form.get_by_label("Nama", exact=True).fill("Teguh Wibowo <b>Camat</b>")
    await form.get_by_role("button", name="Simpan").click()
    await expect(form.locator("[data-form-saved]")).to_have_text("Tersimpan: Teguh Wibowo <b>Camat</b>")
    await expect(rows.first.get_by_role("cell").first).to_have_text("Teguh Wibowo <b>Camat</b>")
    await expect(rows.first).to_contain_text("+6281322223333")

    # CSV import: good rows in, rejected rows listed with line and reason.
    upload = tmp_path / "direktori.csv"
    upload.write_bytes(
        (
            "name,office,office_kind,role,numbers,pin\n"
            "Siti Aminah,Dinas Pendidikan,opd,Sekretaris,081298765432,\n"
            "Joko,Kecamatan Bawang,kecamatan,Camat,0812-34,\n"
            "Andr\u00e9 Wijaya,Dinas PUPR,opd,Kabid,081298765432,\n"
            "Rudi,Dinas Kesehatan,opd,Staf,0857-1234-5678,\n"
        ).encode("cp1252")
    )
    importer = page.locator("#import-form")
    await importer.get_by_label("Berkas CSV").set_input_files(str(upload))
    await importer.get_by_role("button", name="Impor").click()
    report = page.locator("#import-report")
    await expect(report.locator("[data-report-summary]")).to_have_text("direktori.csv: 4 baris, 1 diimpor, 3 ditolak.")
    await expect(report.locator("[data-report-warnings] li")).to_have_text(
        "Peringatan: berkas bukan UTF-8: dibaca sebagai Windows-1252, periksa nama dengan huruf beraksen"
    )
    rejected = report.locator("[data-report-rejected] li")
    await expect(rejected).to_have_count(3)
    await expect(rejected.nth(0)).to_have_text("Baris 3 (Joko): Nomor telepon tidak valid: '0812-34'")
    await expect(rejected.nth(1)).to_have_text(
        "Baris 4 (Andr\u00e9 Wijaya): Nomor +6281298765432 sudah dipakai di baris 2"
    )
    await expect(rejected.nth(2)).to_contain_text("Baris 5 (Rudi): Nomor +6285712345678 sudah terdaftar atas nama")
    await screenshot(page, "callers")
    async with live_server.runtime.sessions() as session:
        names = set(await session.scalars(select(Caller.name)))
    assert "Siti Aminah" in names and "Joko" not in names

    page.once("dialog", lambda dialog: dialog.accept())
    await rows.filter(has_text="Teguh Wibowo").get_by_role("button", name="Hapus").click()
    await expect(rows).to_have_count(0)  # the search was for his number
    await expect(page.locator("[data-list-empty]")).to_be_visible()

    # Too big: refused before it is sent (the API would answer 413).
    big = tmp_path / "besar.csv"
    big.write_bytes(b"name,numbers\n" + b"Budi,081234567890\n" * 200_000)
    await importer.get_by_label("Berkas CSV").set_input_files(str(big))
    await importer.get_by_role("button", name="Impor").click()
    await expect(importer.locator('[data-error-for="file"]')).to_have_text("Berkas terlalu besar: maks. 2 MB.")

    # A file that is not CSV at all is refused whole, with the reason.
    bad = tmp_path / "salah.csv"
    bad.write_bytes(b"nama;telepon\nBudi;0812\n")
    await importer.get_by_label("Berkas CSV").set_input_files(str(bad))
    await importer.get_by_role("button", name="Impor").click()
    await expect(importer.locator('[data-error-for="file"]')).to_contain_text("kolom dipisah dengan ';'")


async def test_duty_officers_only_read_the_directory(live_server: LiveServer, logged_in_page: SignedInFactory):
    await _register(live_server)
    async with live_server.runtime.sessions.begin() as session:
        for n in range(25):
            caller = Caller(name=f"Operator Kelurahan {n:02d}", role="Operator")
            caller.numbers = [CallerNumber(raw=f"0813000000{n:02d}", e164=f"+62813000000{n:02d}")]
            session.add(caller)
    signed_in = await logged_in_page("duty", landing="/callers")
    page = signed_in.page
    rows = page.locator("#callers tbody tr")
    await expect(rows).to_have_count(25)  # one page
    await expect(page.locator("[data-prev]")).to_be_hidden()
    async with page.expect_navigation():
        await page.locator("[data-next]").click()
    await expect(rows).to_have_count(3)
    await expect(page.locator("[data-page-label]")).to_have_text("Menampilkan 26–28")
    await expect(page.locator("[data-next]")).to_be_hidden()
    assert await page.locator("#caller-form").count() == 0
    assert await page.locator("#import-form").count() == 0
    refused = await page.evaluate(
        "window.ivr.api('POST', '/api/callers', {name: 'X', numbers: ['081234567800']})"
        ".then(() => 201, error => error.status)"
    )
    assert refused == 403
    # A cookie without the CSRF token is refused before the role is even looked at.
    forged = await page.evaluate(
        "fetch('/api/callers/import', {method: 'POST', headers: {'Content-Type': 'text/csv'},"
        " body: 'name,numbers'}).then(r => r.json()).then(b => b.error.code)"
    )
    assert forged == "csrf_failed"
    assert await page.get_by_role("button", name="Hapus").count() == 0
