"""Browser tests: the apps of create_app, served on a real TCP port, driven in Debian's headless
Chromium with Playwright's async API. Never a browser download: without /usr/bin/chromium they fail.

On a failure every page still open is saved to test-artifacts/screenshots/<test>-<page>.png."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

from tests.conftest import Account, MakeClient, passengers

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path("test-artifacts") / "screenshots"
TIMEOUT_MS = 10_000
HOME = {"traveler": "/traveler", "agency": "/agency", "finance": "/system", "it": "/system"}
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}

expect.set_options(timeout=TIMEOUT_MS)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Keep each phase's report on the test, so fixtures can tell in teardown whether it failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def app_settings() -> dict[str, Any]:
    """Settings this test's platform changes (a test module overrides this fixture)."""
    return {}


@pytest.fixture
async def client(
    make_client: MakeClient, app_settings: dict[str, Any]
) -> TestClient[web.Request, web.Application]:
    """The platform of the test (create_app on a real TCP port of 127.0.0.1), with app_settings."""
    return await make_client(**app_settings)


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless; a clear failure (not a skip) when it is not installed."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"the browser tests need Debian's Chromium at {CHROMIUM}, which is missing: install it with "
            "`apt-get install chromium` (.ci/run does so); Playwright's own browser download is never used",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Site:
    """The platform on a real port and the browser pages a test opened on it, by name."""

    client: TestClient[web.Request, web.Application]
    browser: Browser
    pages: dict[str, Page] = field(default_factory=dict)
    js_errors: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.client.make_url("/")).rstrip("/")

    @property
    def app(self) -> web.Application:
        return self.client.app

    async def page(self, name: str, *, phone: bool = False) -> Page:
        """A page in a browser context of its own (its own session, as another person would have)."""
        context = await self.browser.new_context(
            base_url=self.url, viewport=PHONE if phone else DESKTOP, accept_downloads=True
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.js_errors.append(f"{name}: {exc}"))
        self.pages[name] = page
        return page

    async def login(self, name: str, account: Account, *, phone: bool = False) -> Page:
        """A page where `account` logged in through AuthWeb; it ends on the account's own app."""
        page = await self.page(name, phone=phone)
        await page.goto("/auth")
        await page.get_by_test_id("login-email").fill(account.email)
        await page.get_by_test_id("login-password").fill(account.password)
        await page.get_by_test_id("login-submit").click()
        await page.wait_for_url(f"**{HOME[account.role]}**")
        await expect(page.get_by_test_id("session-user")).to_be_visible()
        return page

    async def book(
        self, traveler: Account, launch_id: str, seats: int, request_id: str | None = None
    ) -> dict[str, Any]:
        """A booking made through the API, beside the browser (another traveler, say)."""
        headers = {**traveler.headers, **({"X-Request-ID": request_id} if request_id else {})}
        resp = await self.client.post(
            "/api/booking/bookings",
            headers=headers,
            json={
                "launch_id": launch_id,
                "seats": seats,
                "passengers": passengers(seats),
                "card_token": "tok_ok",
            },
        )
        assert resp.status == 201, await resp.text()
        return (await resp.json())["booking"]  # type: ignore[no-any-return]

    async def screenshots(self, test: str, folder: Path) -> list[Path]:
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        saved = []
        for name, page in self.pages.items():
            if page.is_closed():
                continue
            path = folder / f"{_safe(test)}-{_safe(name)}.png"
            try:
                await page.screenshot(path=str(path), full_page=True, timeout=5000)
                saved.append(path)
            except Exception as exc:  # a page that cannot be drawn must not hide the test's failure
                print(f"no screenshot of {name}: {exc}")
        return saved


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


@pytest.fixture
async def site(
    request: pytest.FixtureRequest, client: TestClient[web.Request, web.Application], chromium: Browser
) -> AsyncIterator[Site]:
    """The test's platform and pages; screenshots of every open page when the test failed."""
    s = Site(client, chromium)
    yield s
    report = getattr(request.node, "rep_call", None)
    failed = report is None or report.failed
    if failed:
        saved = await s.screenshots(request.node.name, request.config.rootpath / SCREENSHOTS)
        print("screenshots:", *(str(p) for p in saved))
        if s.js_errors:
            print("errors in the pages:", *s.js_errors, sep="\n  ")
    for page in list(s.pages.values()):
        await page.context.close()
    if not failed:
        assert not s.js_errors, f"uncaught errors in the pages: {s.js_errors}"
