"""Every page at a phone's width (390 px, a duty officer on the move): the
page itself never scrolls sideways; a wide table scrolls inside its own box."""

from __future__ import annotations

import pytest
from browser_fixtures import BROWSER_TESTS, SignedInFactory, screenshot

pytestmark = BROWSER_TESTS

PAGES = ("/", "/agenda", "/roster", "/callers", "/tickets", "/office-hours", "/reports")


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_fits_a_phone_screen(logged_in_page: SignedInFactory, path: str) -> None:
    signed_in = await logged_in_page("admin")
    page = signed_in.page
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(signed_in.url(path))
    await page.wait_for_load_state("networkidle")
    overflow = await page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const wide = [...document.querySelectorAll("body *")]
                .filter(e => e.getBoundingClientRect().right > width + 1 && !e.closest(".table-wrap"))
                .map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : ""));
            return {scroll: document.documentElement.scrollWidth - width, wide: wide.slice(0, 8)};
        }"""
    )
    await screenshot(page, "mobile" + (path.replace("/", "-") if path != "/" else "-board"))
    assert overflow["scroll"] <= 0, overflow
