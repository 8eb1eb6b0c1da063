"""The agenda page in a real browser against the real server, and the phone
read-back that follows it: staff add an item for the Bupati today and change
its status on the page, then a simulated Asterisk calls over real FastAGI and
the caller hears the new item with its new status."""

from __future__ import annotations

import asyncio
import datetime as dt

from browser_fixtures import BROWSER_TESTS, LiveServer, SignedInFactory, screenshot
from helpers import calls_settled, set_office_override
from playwright.async_api import expect
from sqlalchemy import select

from ivr.simulator import place_call
from ivr.storage.agenda_models import AgendaItem
from ivr.storage.models import Caller, CallerNumber, Leader, Office

pytestmark = BROWSER_TESTS

OFFICER_NUMBER = "081234567890"
ACTIVITY = "Peresmian Pasar Rakyat Wanadadi"
#: Data that looks like markup must stay text on the page (and the CSP would
#: report an injected handler, failing the test at teardown).
PLACE = 'Alun-alun <img src=x onerror="alert(1)"> Kota'


async def _leaders_and_officer(live_server: LiveServer) -> dict[str, int]:
    async with live_server.runtime.sessions.begin() as session:
        leaders = [
            Leader(title="Bupati", name="H. Ahmad Fauzi", menu_key="1", position=0),
            Leader(title="Wakil Bupati", name="Hj. Sri Wahyuni", menu_key="2", position=1),
            Leader(title="Sekretaris Daerah", name="Drs. Bambang Sutrisno", menu_key="3", position=2),
        ]
        session.add_all(leaders)
        officer = Caller(name="Budi Santoso", office=Office(name="Dinas Kominfo", kind="opd"), role="Kabid")
        officer.numbers = [CallerNumber(raw=OFFICER_NUMBER, e164="+6281234567890")]
        session.add(officer)
        await session.flush()
        return {leader.title: leader.id for leader in leaders}


async def test_staff_add_an_item_change_its_status_and_callers_hear_it(
    live_server: LiveServer, logged_in_page: SignedInFactory
) -> None:
    runtime = live_server.runtime
    leaders = await _leaders_and_officer(live_server)
    signed_in = await logged_in_page("staff", landing="/agenda")
    page = signed_in.page
    today = dt.datetime.now(dt.UTC).astimezone(runtime.settings.zone).date()

    tabs = page.get_by_role("navigation", name="Pimpinan")
    await expect(tabs.get_by_role("link", name="Bupati · H. Ahmad Fauzi")).to_have_attribute("aria-current", "page")
    await expect(page.locator("#agenda-empty")).to_be_visible()

    # A wrong time is refused with the API's Indonesian message next to the field.
    form = page.locator("#agenda-form")
    await form.get_by_label("Mulai (JJ:MM)").fill("9 pagi")
    await form.get_by_label("Kegiatan").fill(ACTIVITY)
    await form.get_by_label("Tempat").fill(PLACE)
    await form.get_by_role("button", name="Simpan").click()
    start_error = form.locator('[data-error-for="start"]')
    await expect(start_error).to_have_text("Gunakan JJ:MM, misalnya 08:30")
    await screenshot(page, "agenda-validation")

    await form.get_by_label("Mulai (JJ:MM)").fill("09.30")
    async with page.expect_navigation():
        await form.get_by_role("button", name="Simpan").click()
    row = page.locator("#agenda-items tbody tr").filter(has_text=ACTIVITY)
    await expect(row).to_have_class("just-saved")
    await expect(row.get_by_role("cell", name=PLACE)).to_be_visible()  # the markup is text
    assert await page.locator("#agenda-items img").count() == 0

    # Status change from the row: the page reloads with what callers now hear.
    async with page.expect_navigation():
        await row.get_by_label("Status").select_option("ditunda")
    row = page.locator("#agenda-items tbody tr").filter(has_text=ACTIVITY)
    await expect(row.get_by_label("Status")).to_have_value("ditunda")
    spoken = (await row.locator('[data-field="spoken"]').text_content() or "").strip()
    assert "ditunda" in spoken and ACTIVITY in spoken
    await screenshot(page, "agenda")

    async with runtime.sessions() as session:
        item = await session.scalar(select(AgendaItem).where(AgendaItem.activity == ACTIVITY))
    assert item is not None and item.leader_id == leaders["Bupati"]
    assert (item.date, item.start, item.status) == (today, dt.time(9, 30), "ditunda")

    # The change asked for the read-back at once: it is rendered before anyone calls.
    assert runtime.services.agenda is not None
    await asyncio.wait_for(runtime.services.agenda.prerenderer.wait_idle(), timeout=60)
    assert runtime.speech.cached(spoken) is not None

    await set_office_override(runtime, "open")
    # Main menu 1 (agenda), 1 (Bupati); the intro and the item play through; 0 back; hang up.
    record = await place_call(
        "127.0.0.1", live_server.agi_port, caller_id=OFFICER_NUMBER, keys=["1", "1", "", "", "0", "h"], timeout=60
    )
    await calls_settled(runtime)
    assert spoken in record.spoken, record.render()
    assert any(ACTIVITY in text and "Status: ditunda" in text for text in record.spoken)


async def test_duty_officers_see_the_agenda_read_only(live_server: LiveServer, logged_in_page: SignedInFactory) -> None:
    await _leaders_and_officer(live_server)
    signed_in = await logged_in_page("duty", landing="/agenda")
    page = signed_in.page
    await expect(page.get_by_role("heading", name="Agenda Pimpinan")).to_be_visible()
    assert await page.locator("#agenda-form").count() == 0
    # The next day and back by the links, then a day from the date picker.
    async with page.expect_navigation():
        await page.get_by_role("link", name="Hari berikutnya").click()
    await expect(page.get_by_role("link", name="Hari ini")).to_be_visible()
    await page.get_by_label("Tanggal").fill("2026-12-31")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Tampilkan").click()
    await expect(page.locator("#agenda-heading")).to_contain_text("Kamis, 31 Desember 2026")
    for bad in ("kemarin", "0001-01-01"):
        await page.goto(signed_in.url(f"/agenda?date={bad}"))
        await expect(page.get_by_role("alert")).to_contain_text("ditampilkan hari ini")
        await expect(page.locator("#agenda-heading .badge")).to_have_text("hari ini")


async def test_edit_an_item_to_moved_and_delete_it(live_server: LiveServer, logged_in_page: SignedInFactory) -> None:
    runtime = live_server.runtime
    leaders = await _leaders_and_officer(live_server)
    day = dt.date(2026, 12, 8)
    async with runtime.sessions.begin() as session:
        session.add(
            AgendaItem(
                leader_id=leaders["Wakil Bupati"], date=day, start=dt.time(13, 0), activity="Rapat Koordinasi TPID"
            )
        )
    signed_in = await logged_in_page("staff", landing=f"/agenda?leader={leaders['Wakil Bupati']}&date={day}")
    page = signed_in.page
    row = page.locator("#agenda-items tbody tr").filter(has_text="Rapat Koordinasi TPID")
    await row.get_by_role("button", name="Ubah").click()
    form = page.locator("#agenda-form")
    await expect(page.locator("[data-form-title]")).to_have_text("Ubah agenda: Rapat Koordinasi TPID")
    await expect(form.get_by_label("Mulai (JJ:MM)")).to_have_value("13:00")
    await expect(form.get_by_label("Tanggal baru")).to_be_hidden()
    await form.locator("select[name=status]").select_option("dipindahkan")
    await form.get_by_label("Tanggal baru").fill("2026-12-10")
    await form.get_by_label("Jam baru (JJ:MM)").fill("25:00")
    await form.get_by_role("button", name="Simpan").click()
    await expect(form.locator('[data-error-for="status_detail.new_start"]')).to_have_text(
        "Gunakan JJ:MM, misalnya 08:30"
    )
    await form.get_by_label("Jam baru (JJ:MM)").fill("10.00")
    async with page.expect_navigation():
        await form.get_by_role("button", name="Simpan").click()
    row = page.locator("#agenda-items tbody tr").filter(has_text="Rapat Koordinasi TPID")
    await expect(row).to_contain_text("ke Kamis, 10 Desember 2026 10.00")
    await expect(row.locator('[data-field="spoken"]')).to_contain_text("dipindahkan ke hari Kamis, sepuluh Desember")

    page.once("dialog", lambda dialog: dialog.accept())
    async with page.expect_navigation():
        await row.get_by_role("button", name="Hapus").click()
    await expect(page.locator("#agenda-empty")).to_be_visible()
    async with runtime.sessions() as session:
        assert await session.scalar(select(AgendaItem)) is None
