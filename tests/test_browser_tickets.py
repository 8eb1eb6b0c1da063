"""The ticket pages in a real browser against the real server: the list with
its query-string filters and live insertion, and one ticket whose recording
plays (the audio element loads it through the authenticated API, with Range)
and whose status and note for the caller are changed from the page and show
in its timeline."""

from __future__ import annotations

from datetime import UTC, datetime

from browser_fixtures import BROWSER_TESTS, LiveServer, SignedInFactory, screenshot
from helpers import calls_settled
from playwright.async_api import Response, expect
from sqlalchemy import select
from test_browser_board import REGISTERED, demo
from web_fixtures import store_call

from ivr.simulator import place_call
from ivr.storage.models import Call, Ticket

pytestmark = BROWSER_TESTS
__all__ = ["demo"]  # fixtures used by name


async def leave_message(server: LiveServer) -> str:
    """A registered caller asks for the operator, nobody answers, they leave a
    three-second message: a ticket with a recording. Returns its number."""
    record = await place_call(
        "127.0.0.1", server.agi_port, caller_id=REGISTERED, keys=["0", "rec:3", ""], dial_outcomes={"*": "NOANSWER"}
    )
    assert record.result == "OK", record.render()
    await calls_settled(server.runtime)
    async with server.runtime.sessions() as session:
        number = await session.scalar(
            select(Ticket.number).join(Call, Call.ticket_id == Ticket.id).where(Call.uniqueid == record.uniqueid)
        )
    assert number is not None
    return number


async def test_a_recording_plays_and_a_status_change_with_a_note_shows_in_the_timeline(
    demo: LiveServer, logged_in_page: SignedInFactory
) -> None:
    number = await leave_message(demo)
    signed_in = await logged_in_page("staff", landing="/tickets")
    page = signed_in.page
    row = page.locator(f'#ticket-table tr[data-number="{number}"]')
    await expect(row).to_contain_text("Pesan suara")
    await expect(row).to_contain_text("Dinas Komunikasi dan Informatika")
    await screenshot(page, "tickets")

    def recording(response: Response) -> bool:
        return "/api/recordings/" in response.url

    async with page.expect_response(recording) as loaded:
        await row.get_by_role("link", name=number).click()
    response = await loaded.value
    assert response.status in (200, 206), response.status
    audio = page.locator("audio[data-recording]")
    await expect(audio).to_have_count(1)
    await page.wait_for_function("document.querySelector('audio[data-recording]').readyState > 0")
    seconds = await audio.evaluate("audio => audio.duration")
    assert 2.5 < seconds < 4, seconds  # the three seconds the caller spoke
    # A player that seeks asks for a byte range: the server answers with just those bytes.
    ranged = await audio.evaluate(
        """async audio => {
            const answer = await fetch(audio.src, {headers: {Range: "bytes=100-199"}});
            return [answer.status, (await answer.arrayBuffer()).byteLength, answer.headers.get("Content-Range")];
        }"""
    )
    assert ranged[:2] == [206, 100] and ranged[2].startswith("bytes 100-199/"), ranged

    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("Silakan")  # the prompts the caller heard, with their text
    await expect(timeline).to_contain_text("Menekan 0")
    await expect(timeline).to_contain_text("Local/100@operator: tidak dijawab")

    form = page.locator("#ticket-form")
    await form.get_by_label("Status").select_option("diproses")
    await form.get_by_label("Catatan untuk penelepon").fill("Permohonan diteruskan ke Kabag Prokompim.")
    async with page.expect_navigation():
        await form.get_by_role("button", name="Simpan").click()
    await expect(page.locator("[data-ticket-status]")).to_have_text("Diproses")
    await expect(page.locator("[data-ticket-note]")).to_have_text("Permohonan diteruskan ke Kabag Prokompim.")
    staff_entry = timeline.locator("li.timeline-staff")
    await expect(staff_entry).to_contain_text("Status Baru → Diproses")
    await expect(staff_entry).to_contain_text("Catatan untuk penelepon: “Permohonan diteruskan ke Kabag Prokompim.”")
    await expect(staff_entry).to_contain_text(f"oleh {signed_in.username}")
    await screenshot(page, "ticket-detail")


async def test_the_list_filters_by_query_string_and_takes_new_tickets_live(
    demo: LiveServer, logged_in_page: SignedInFactory
) -> None:
    message = await leave_message(demo)
    signed_in = await logged_in_page("duty", landing="/tickets?kind=message&priority=normal")
    page = signed_in.page
    await expect(page.get_by_label("Jenis")).to_have_value("message")
    await expect(page.locator("[data-ticket-count]")).to_contain_text("dari 1 tiket")
    await expect(page.locator("#ticket-table tbody tr")).to_have_count(1)
    await expect(page.locator("[data-live-status]")).to_have_text("terhubung")

    # Another server records a message and an emergency: only the message matches the filter.
    runtime = demo.runtime
    now = datetime.now(UTC)
    other = await store_call(runtime.sessions, "1796600000.1", now, ticket_kind="emergency")
    fresh = await store_call(runtime.sessions, "1796600000.2", now, ticket_kind="message", caller_number="0286321234")
    new_row = page.locator(f'#ticket-table tr[data-number="{fresh.ticket_number}"]')
    await expect(new_row).to_contain_text("0286321234")
    await expect(page.locator("#ticket-table tbody tr").first).to_have_attribute("data-number", fresh.ticket_number)
    await expect(page.locator(f'#ticket-table tr[data-number="{other.ticket_number}"]')).to_have_count(0)
    await expect(page.locator(f'#ticket-table tr[data-number="{message}"]')).to_be_visible()

    # The filter form writes the same query string: a link anyone can open.
    await page.get_by_label("Jenis").select_option("emergency")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Terapkan").click()
    assert "kind=emergency" in page.url
    await expect(page.locator("#ticket-table tbody tr")).to_have_count(1)
    await expect(page.locator(f'#ticket-table tr[data-number="{other.ticket_number}"]')).to_be_visible()
