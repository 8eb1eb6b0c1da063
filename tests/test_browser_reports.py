"""The report page in a real browser (Debian's Chromium) against the real
server: the inline SVG charts carry the seeded figures, the CSV link downloads
the report, "Cetak" prints, and the print layout drops the chrome and fits A4."""

from __future__ import annotations

from browser_fixtures import BROWSER_TESTS, SCREENSHOTS, LiveServer, SignedInFactory, screenshot
from playwright.async_api import Page, expect
from test_reports import Seeder, office_with_caller, wib

pytestmark = BROWSER_TESTS

DAY_URL = "/reports?date=2026-12-03"
#: A4 at 96 dpi: 210 mm wide.
A4_WIDTH_PX = 794


async def _seed(live_server: LiveServer) -> None:
    sessions = live_server.runtime.sessions
    health = await office_with_caller(sessions, "Dinas Kesehatan", "+6281200000001")
    seed = Seeder(sessions)
    for minute in ("05", "20", "45"):
        await seed.call(wib(f"2026-12-03 09:{minute}"), who=health, number="+6281200000001", kind="request")
    await seed.call(wib("2026-12-03 10:10"), "abandoned", step="menu:main")
    await seed.call(
        wib("2026-12-03 14:00"),
        "emergency-answered",
        script="emergency",
        who=health,
        number="+6281200000001",
        kind="emergency",
        emergency={"result": "answered", "time_to_answer_seconds": 18.0},
    )
    unanswered = await seed.call(
        wib("2026-12-03 21:00"),
        "emergency-unanswered",
        script="emergency",
        kind="emergency",
        emergency={"result": "unanswered"},
    )
    await seed.alarm(unanswered, wib("2026-12-03 21:01"), None, "open")


async def _bar(page: Page, chart: str, label: str, series: int = 0) -> tuple[str | None, float]:
    """(data-value, drawn height in pixels) of one bar."""
    bar = page.locator(f'[data-chart="{chart}"] g.bar[data-label="{label}"][data-series="{series}"]')
    box = await bar.locator("rect").bounding_box()
    return await bar.get_attribute("data-value"), box["height"] if box else 0.0


async def test_report_page_draws_the_seeded_figures(live_server: LiveServer, logged_in_page: SignedInFactory) -> None:
    await _seed(live_server)
    signed_in = await logged_in_page("duty", landing=DAY_URL)
    page = signed_in.page
    await expect(page.get_by_role("heading", name="Laporan Harian: Kamis, 3 Desember 2026")).to_be_visible()

    for name in ("Panggilan per jam", "Panggilan per hasil", "Permohonan per OPD", "Darurat: waktu tanggap"):
        await expect(page.get_by_role("img", name=name)).to_be_visible()
    assert await page.locator('[data-chart="chart-hours"] g.bar').count() == 24
    nine, nine_height = await _bar(page, "chart-hours", "09")
    ten, ten_height = await _bar(page, "chart-hours", "10")
    eleven, eleven_height = await _bar(page, "chart-hours", "11")
    assert (nine, ten, eleven) == ("3", "1", "0")
    assert nine_height > ten_height * 2.5 > 0 and eleven_height == 0
    await expect(page.locator('[data-chart="chart-hours"] g.bar[data-label="09"] text')).to_have_text("3")
    assert (await _bar(page, "chart-outcomes", "Ditutup penelepon"))[0] == "1"
    assert (await _bar(page, "chart-requests", "Dinas Kesehatan", series=0))[0] == "3"
    assert (await _bar(page, "chart-emergencies", "< 30 detik", series=0))[0] == "1"
    await expect(page.locator('[data-total="calls"]')).to_have_text("6")
    await expect(page.locator('[data-table="unanswered"] tbody tr')).to_have_count(1)
    await expect(page.locator('[data-table="unanswered"]')).to_contain_text("21.00")
    await screenshot(page, "reports-daily")

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Unduh CSV").click()
    download = await download_info.value
    assert download.suggested_filename == "laporan-harian-2026-12-03.csv"
    body = (await download.path()).read_bytes()
    assert body.startswith(b"\xef\xbb\xbfLaporan Harian Call Center Protokol")
    assert "Panggilan masuk,6" in body.decode("utf-8-sig")

    # Count the calls instead of opening the print dialog.
    await page.evaluate("() => { window.printed = 0; window.print = () => { window.printed += 1; }; }")
    await page.get_by_role("button", name="Cetak").click()
    assert await page.evaluate("window.printed") == 1


async def test_print_layout_fits_a4(live_server: LiveServer, logged_in_page: SignedInFactory) -> None:
    await _seed(live_server)
    signed_in = await logged_in_page("staff", landing="/reports?month=2026-12")
    page = signed_in.page
    await expect(page.get_by_role("img", name="Panggilan per hari")).to_be_visible()
    await screenshot(page, "reports-monthly")

    await page.set_viewport_size({"width": A4_WIDTH_PX, "height": 1123})
    await page.emulate_media(media="print")
    await expect(page.locator(".topbar")).to_be_hidden()
    await expect(page.locator(".report-controls")).to_be_hidden()
    await expect(page.get_by_role("img", name="Panggilan per jam")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= A4_WIDTH_PX
    for chart in await page.locator("svg.chart-svg").all():
        box = await chart.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= A4_WIDTH_PX
    await screenshot(page, "reports-print")
    pdf = await page.pdf(format="A4", print_background=True)
    (SCREENSHOTS / "reports-print.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF")
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert 1 <= pages <= 4, f"the monthly report prints on {pages} A4 pages"
