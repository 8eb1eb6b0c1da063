"""Fixtures for browser tests: the real server and Debian's Chromium.

- ``live_server``: ``ivr serve`` as it runs in production (``ivr.app.running``
  plus ``ivr.app.serving_web``) on 127.0.0.1 with ephemeral ports and the
  per-test throwaway database: ``.base_url`` for the browser, ``.agi_port`` for
  ``ivr.simulator.place_call``, ``.runtime`` for the database and services.
- ``chromium``: one headless Chromium (``/usr/bin/chromium``, no browser
  download) for the whole run; every test gets fresh browser contexts, so no
  cookie crosses from one test to another.
- ``logged_in_page``: ``await logged_in_page("duty")`` creates a user with that
  role, signs in through the real login form and returns a ``SignedInPage``
  (``.page``, ``.base_url``, ``.url(path)``, ``.username``, ``.password``).
- ``screenshot(page, name)``: a full-page PNG in ``test-artifacts/screenshots/``.

A page that throws an uncaught JavaScript error, or whose Content Security
Policy blocks something, fails the test at teardown.

Browser tests run on the session's event loop (the browser lives there): put
``pytestmark = BROWSER_TESTS`` at the top of the test module, and import the
fixtures it uses by name.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import quote

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from ivr.app import Runtime, running, serving_web
from ivr.config import Settings
from ivr.storage.users import create_user

CHROMIUM: Final = Path("/usr/bin/chromium")
SCREENSHOTS: Final = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
#: Every step waits at most this long (ms): a missing element fails fast, not after 30 s.
STEP_TIMEOUT_MS: Final = 10_000

BROWSER_TESTS: Final = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# The browser comes from Debian's package; Playwright must never fetch its own.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@dataclass(frozen=True)
class LiveServer:
    runtime: Runtime
    base_url: str

    @property
    def agi_port(self) -> int:
        return self.runtime.agi.bound_port

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest_asyncio.fixture(loop_scope="session")
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    async with running(settings, migrate=False) as runtime, serving_web(runtime) as base_url:
        yield LiveServer(runtime, base_url)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class PageProblems:
    """Uncaught script errors and CSP refusals seen on the test's pages."""

    seen: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.seen.append(f"{page.url}: uncaught {error}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.seen.append(f"CSP: {message.text}")


BrowserContextFactory = Callable[[], Awaitable[BrowserContext]]


@pytest_asyncio.fixture(loop_scope="session")
async def new_context(chromium: Browser) -> AsyncIterator[BrowserContextFactory]:
    """``await new_context()``: a fresh browser context (its own cookies), in
    Indonesian and WIB, closed after the test; its pages are watched for errors."""
    contexts: list[BrowserContext] = []
    problems = PageProblems()

    async def make() -> BrowserContext:
        context = await chromium.new_context(
            locale="id-ID", timezone_id="Asia/Jakarta", viewport={"width": 1280, "height": 800}
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.on("page", problems.watch)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()
    assert not problems.seen, problems.seen


async def sign_in(page: Page, base_url: str, username: str, password: str, next_path: str = "/office-hours") -> None:
    """Fill in and send the login form, then wait for the page after it."""
    await page.goto(f"{base_url}/login?next={quote(next_path)}")
    await page.get_by_label("Nama pengguna").fill(username)
    await page.get_by_label("Kata sandi").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Masuk").click()


@dataclass(frozen=True)
class SignedInPage:
    page: Page
    base_url: str
    username: str
    password: str
    full_name: str

    def url(self, path: str) -> str:
        return self.base_url + path


SignedInFactory = Callable[..., Awaitable[SignedInPage]]
_user_numbers = itertools.count(1)


@pytest_asyncio.fixture(loop_scope="session")
async def logged_in_page(live_server: LiveServer, new_context: BrowserContextFactory) -> SignedInFactory:
    """``await logged_in_page(role, landing="/office-hours", full_name=...)``: a
    new user with ``role`` (admin, staff, duty), signed in through the form, on
    ``landing``. Call it again for a second user in another browser context."""

    async def make(role: str = "staff", *, landing: str = "/office-hours", full_name: str = "") -> SignedInPage:
        username = f"{role}{next(_user_numbers)}"
        password = f"sandi-{username}-rahasia"
        full_name = full_name or f"Petugas {role.capitalize()} {username[len(role) :]}"
        async with live_server.runtime.sessions.begin() as session:
            await create_user(session, username, password, role, full_name)
        page = await (await new_context()).new_page()
        await sign_in(page, live_server.base_url, username, password, landing)
        if "/login" in page.url:
            raise AssertionError(f"sign-in as {username} failed: still on {page.url}")
        return SignedInPage(page, live_server.base_url, username, password, full_name)

    return make


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot for review: ``test-artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
