"""Browser tests: the apps of create_app, served on a real TCP port, driven in headless Chromium (Debian's
package) with Playwright's async API. Never a browser download.

Chromium is looked for at $ASTRO_CHROMIUM, /usr/bin/chromium, then chromium, chromium-browser, google-chrome
on PATH; when none is there and this runs as root with apt-get, Debian's package is installed. Without it the
browser tests are deselected with one line saying how to run them, except in CI (CI=true), where they are
mandatory and fail.

On a failure every page still open is saved to test-artifacts/screenshots/<test>-<page>.png."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
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
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_KEY = pytest.StashKey[str | None]()
SKIP_NOTE_KEY = pytest.StashKey[str]()
HOW_TO_RUN = (
    "install Debian's `chromium` (apt-get install chromium) or set ASTRO_CHROMIUM=/path/to/chrome, "
    "then run `pytest -m browser`"
)
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


def find_chromium() -> str | None:
    """The Chromium to drive: $ASTRO_CHROMIUM, /usr/bin/chromium, or one on PATH; None when there is none."""
    named = os.environ.get("ASTRO_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    if os.access(CHROMIUM, os.X_OK):
        return str(CHROMIUM)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def install_chromium() -> str | None:
    """Debian's chromium, installed with apt-get when this runs as root on a Debian-like system (without
    asking anything); None when that cannot be done or fails."""
    if os.environ.get("ASTRO_CHROMIUM") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    apt = shutil.which("apt-get")
    if apt is None:
        return None
    print("\nbrowser tests: no Chromium found; installing Debian's chromium (apt-get)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-qq", "--no-install-recommends", "chromium"]
    for args in ([apt, "update", "-qq"], install):
        try:
            done = subprocess.run(args, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"browser tests: {' '.join(args[:2])} failed: {exc}", file=sys.stderr)
            return None
        if done.returncode != 0:
            why = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-1:]
            print(f"browser tests: {' '.join(args[:2])} failed: {' '.join(why)}", file=sys.stderr)
            return None
    return find_chromium()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Find Chromium once for the browser tests selected; without one, deselect them (one line says how
    to run them), except in CI, where they stay and fail loudly."""
    browser = [item for item in items if item.get_closest_marker("browser") is not None]
    if not browser:
        return
    found = find_chromium() or install_chromium()
    config.stash[CHROMIUM_KEY] = found
    if found is not None or os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return
    config.hook.pytest_deselected(items=browser)
    items[:] = [item for item in items if item.get_closest_marker("browser") is None]
    config.stash[SKIP_NOTE_KEY] = f"browser tests not run ({len(browser)}): no Chromium found; {HOW_TO_RUN}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    note = config.stash.get(SKIP_NOTE_KEY, None)
    if note:
        terminalreporter.write_line(note, yellow=True, bold=True)


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
async def chromium(request: pytest.FixtureRequest) -> AsyncIterator[Browser]:
    """Chromium, headless; a clear failure (not a skip) when it is missing where it must be (CI)."""
    path = request.config.stash.get(CHROMIUM_KEY, None) or find_chromium()
    if path is None:
        pytest.fail(
            f"the browser tests need Chromium, which is missing: {HOW_TO_RUN} (.ci/run installs it); "
            "Playwright's own browser download is never used",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
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
