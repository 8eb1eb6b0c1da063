"""The board (``/``) in a real browser against the real server: a simulated
call appears while the caller listens to the menu and disappears when they hang
up, and an unanswered emergency raises an alarm that a duty officer
acknowledges with one click, all without reloading the page."""

from __future__ import annotations

import asyncio

import pytest_asyncio
from browser_fixtures import BROWSER_TESTS, LiveServer, SignedInFactory, screenshot
from helpers import calls_settled, set_office_override
from playwright.async_api import expect
from screening import place_emergency_call
from sqlalchemy import select

from ivr.seed import seed_demo
from ivr.simulator import Prompt, place_call
from ivr.storage.roster_models import EmergencyAlarm

pytestmark = BROWSER_TESTS

REGISTERED = "081234567890"  # Budi Santoso, Dinas Komunikasi dan Informatika (demo data)


@pytest_asyncio.fixture(loop_scope="session")
async def demo(live_server: LiveServer) -> LiveServer:
    """Demo offices, callers and the demo duty roster, in force for the calls at once."""
    runtime = live_server.runtime
    await seed_demo(runtime.sessions, runtime.settings)
    assert runtime.services.emergency is not None
    await runtime.services.emergency.roster.refresh(force=True)
    await set_office_override(runtime, "open")
    return live_server


async def test_a_call_appears_on_the_board_and_disappears_when_the_caller_hangs_up(
    demo: LiveServer, logged_in_page: SignedInFactory
) -> None:
    signed_in = await logged_in_page("duty", landing="/")
    page = signed_in.page
    await expect(page.locator("[data-live-status]")).to_have_text("terhubung")
    calls = page.locator('[data-list="calls"]')
    await expect(page.get_by_text("Tidak ada panggilan saat ini.")).to_be_visible()
    # Who is on duty comes from the demo roster (day and night shifts always cover).
    await expect(page.locator("[data-duty]")).to_contain_text("Sekarang")
    await expect(page.locator("[data-duty]")).to_contain_text("Berikutnya")

    release = asyncio.Event()

    async def listen_then_hang_up(prompt: Prompt) -> str:
        await release.wait()
        return "h"

    call = asyncio.create_task(
        place_call("127.0.0.1", demo.agi_port, caller_id=REGISTERED, key_source=listen_then_hang_up, timeout=60)
    )
    try:
        row = calls.locator("tr")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("Budi Santoso (081234567890)")
        await expect(row).to_contain_text("Dinas Komunikasi dan Informatika")
        await expect(row.locator(".call-step")).to_have_text("Menu")  # the step changed after the greeting
        duration = row.locator(".call-duration")
        before = await duration.text_content()
        await expect(duration).not_to_have_text(before or "")  # the clock ticks without a reload
        await expect(page.locator('[data-count="calls"]')).to_have_text("1")
        await screenshot(page, "board")
    finally:
        release.set()
        await call
    await expect(calls.locator("tr")).to_have_count(0)
    await expect(page.get_by_text("Tidak ada panggilan saat ini.")).to_be_visible()
    await calls_settled(demo.runtime)


async def test_an_unanswered_emergency_raises_an_alarm_that_is_acknowledged_by_clicking(
    demo: LiveServer, logged_in_page: SignedInFactory
) -> None:
    signed_in = await logged_in_page("duty", landing="/", full_name="Sri Mulyani")
    page = signed_in.page
    await expect(page.locator("[data-live-status]")).to_have_text("terhubung")
    await expect(page.get_by_text("Tidak ada alarm yang menunggu.")).to_be_visible()

    # Nobody's phone can be reached: the caller leaves a message and the alarm is raised.
    placed = await place_emergency_call("127.0.0.1", demo.agi_port, phones={}, keys=["rec:3", ""])
    assert "Terima kasih, pesan Anda telah kami terima." in " ".join(placed.record.spoken)
    await calls_settled(demo.runtime)

    alarm_row = page.locator('[data-list="alarms"] tr')
    await expect(alarm_row).to_have_count(1)
    await expect(alarm_row).to_contain_text("Budi Santoso")
    await expect(alarm_row).to_contain_text("Dinas Komunikasi dan Informatika")
    # The emergency's ticket is among the open tickets too, linked from the alarm.
    ticket_link = alarm_row.get_by_role("link")
    number = await ticket_link.text_content()
    assert number is not None and len(number) == 8
    await expect(page.locator(f'[data-list="tickets"] tr[data-number="{number}"]')).to_contain_text("Darurat")
    await screenshot(page, "board-alarm")

    await alarm_row.get_by_role("button", name="Akui").click()
    await expect(page.locator("[data-board-message]")).to_contain_text("sudah diakui")
    await expect(alarm_row).to_have_count(0)
    await expect(page.get_by_text("Tidak ada alarm yang menunggu.")).to_be_visible()
    async with demo.runtime.sessions() as session:
        (alarm,) = await session.scalars(select(EmergencyAlarm))
    assert alarm.state == "acknowledged" and alarm.acknowledged_via == "web"
    assert signed_in.username in alarm.acknowledged_by
