"""Signing in and out in a real browser (Debian's Chromium), against the real
server: the form, the nav with the user's name, the Indonesian messages, the
office-hours page and its override form (cookie + CSRF header through ivr.api)."""

from __future__ import annotations

from browser_fixtures import BROWSER_TESTS, LiveServer, SignedInFactory, screenshot, sign_in
from playwright.async_api import expect

from ivr.storage import settings_store
from ivr.storage.users import create_user

pytestmark = BROWSER_TESTS


async def test_sign_in_shows_the_nav_and_sign_out_ends_the_session(
    live_server: LiveServer, new_context, logged_in_page: SignedInFactory
) -> None:
    anonymous = await (await new_context()).new_page()
    await anonymous.goto(live_server.url("/office-hours"))
    assert anonymous.url in (
        live_server.url("/login?next=/office-hours"),
        live_server.url("/login?next=%2Foffice-hours"),
    )
    await expect(anonymous.get_by_role("heading", name="Masuk")).to_be_visible()
    await screenshot(anonymous, "login")

    signed_in = await logged_in_page("staff", full_name="Rina Wulandari")
    page = signed_in.page
    assert page.url == signed_in.url("/office-hours")
    nav = page.get_by_role("navigation", name="Menu utama")
    for label in ("Papan", "Agenda", "Piket", "Penelepon", "Tiket", "Jam Layanan", "Laporan"):
        await expect(nav.get_by_role("link", name=label)).to_be_visible()
    await expect(nav.get_by_role("link", name="Jam Layanan")).to_have_attribute("aria-current", "page")
    await expect(page.locator(".user-name")).to_have_text("Rina Wulandari")

    await page.get_by_role("button", name="Keluar").click()
    await page.wait_for_url(signed_in.url("/login"))
    await page.goto(signed_in.url("/office-hours"))
    assert "/login?next=" in page.url  # the session is gone, not just the cookie


async def test_wrong_password_shows_the_indonesian_message(live_server: LiveServer, new_context) -> None:
    async with live_server.runtime.sessions.begin() as session:
        await create_user(session, "budi", "kata-sandi-benar", "duty", "Budi Santoso")
    page = await (await new_context()).new_page()
    await sign_in(page, live_server.base_url, "budi", "kata-sandi-salah")
    await expect(page.get_by_role("alert")).to_have_text("Nama pengguna atau kata sandi salah.")
    await expect(page.get_by_label("Nama pengguna")).to_have_value("budi")
    await expect(page.get_by_label("Kata sandi")).to_have_value("")
    await screenshot(page, "login-wrong-password")
    # An unknown username gets exactly the same answer.
    await sign_in(page, live_server.base_url, "tidak-ada", "kata-sandi-salah")
    await expect(page.get_by_role("alert")).to_have_text("Nama pengguna atau kata sandi salah.")


async def test_office_hours_override_through_the_page(live_server: LiveServer, logged_in_page: SignedInFactory) -> None:
    signed_in = await logged_in_page("staff")
    page = signed_in.page
    await expect(page.get_by_role("heading", name="Jam layanan mingguan")).to_be_visible()
    await expect(page.get_by_role("row", name="Senin 07.30 16.00")).to_be_visible()
    await expect(page.get_by_role("row", name="Minggu Tutup")).to_be_visible()

    await page.get_by_label("Hanya darurat").check()
    async with page.expect_navigation():
        await page.get_by_role("button", name="Simpan").click()
    await expect(page.locator("[data-override-current]")).to_have_text("Hanya darurat")
    await expect(page.locator("[data-office-state]")).to_have_text("Hanya darurat")
    async with live_server.runtime.sessions() as session:
        assert await settings_store.get_override(session) == "emergency-only"
    await screenshot(page, "office-hours")
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(page.get_by_role("link", name="Jam Layanan")).to_be_in_viewport()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    await screenshot(page, "office-hours-phone")


async def test_duty_officer_sees_office_hours_without_the_form(logged_in_page: SignedInFactory) -> None:
    page = (await logged_in_page("duty")).page
    await expect(page.get_by_role("heading", name="Pengaturan manual")).to_be_visible()
    await expect(page.get_by_role("button", name="Simpan")).to_have_count(0)
    await expect(page.get_by_text("Peran Anda tidak dapat mengubah pengaturan ini.")).to_be_visible()
    # Nor through the API from the page: ivr.api rejects with the API's error.
    refused = await page.evaluate(
        "window.ivr.api('PUT', '/api/office-hours/override', {mode: 'closed'})"
        ".then(() => null, (error) => [error.status, error.code, error.message])"
    )
    assert refused[:2] == [403, "forbidden"] and "duty" in refused[2]


async def test_live_events_show_the_connection_and_reconnect(logged_in_page: SignedInFactory) -> None:
    """``ivr.live``: "terhubung" while the stream is open; "terputus" and a
    retry when it cannot connect (here: a path with no stream)."""
    page = (await logged_in_page("duty")).page
    indicator = page.locator("[data-live-status]")
    await expect(indicator).to_be_hidden()
    await page.evaluate("window.liveStream = window.ivr.live('/api/events', {})")
    await expect(indicator).to_have_text("terhubung")
    await page.evaluate("window.liveStream.close()")

    async with page.expect_request(lambda request: "/api/no-stream" in request.url):
        await page.evaluate("window.brokenStream = window.ivr.live('/api/no-stream', {})")
    await expect(indicator).to_have_text("terputus")
    async with page.expect_request(lambda request: "/api/no-stream" in request.url):
        pass  # the retry, about a second later
    await page.evaluate("window.brokenStream.close()")
