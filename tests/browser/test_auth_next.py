"""AuthWeb's ?next= in the browser: after a real login only a same-origin page is ever opened (issue 14)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Route, expect

from tests.browser.conftest import HOME, Site

pytestmark = pytest.mark.browser

EVIL = "evil.example"


async def test_a_next_that_the_browser_reads_as_another_origin_lands_on_the_home_app(
    site: Site, make_traveler: Any
) -> None:
    traveler = await make_traveler()
    page = await site.page("auth")

    async def evil(route: Route) -> None:  # nothing leaves this machine: the "other site" is answered here
        await route.fulfill(status=200, content_type="text/html", body="<h1>stolen</h1>")

    await page.context.route(f"**://{EVIL}/**", evil)
    await page.goto(f"/auth?next=/%09/{EVIL}/steal")
    await page.get_by_test_id("login-email").fill(traveler.email)
    await page.get_by_test_id("login-password").fill(traveler.password)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(f"**{HOME['traveler']}**")
    await expect(page.get_by_test_id("session-user")).to_be_visible()
    assert urlsplit(page.url).netloc == urlsplit(site.url).netloc


async def test_safe_next_keeps_only_same_origin_paths_as_the_browser_parses_them(site: Site) -> None:
    page = await site.page("module")
    await page.goto("/auth")
    cases = {
        "/\t/evil.example/steal": None,
        "/\n/evil.example": None,
        "/\r\n/evil.example": None,
        "/\\evil.example": None,
        "/\\\\evil.example": None,
        "//evil.example/steal": None,
        "/ /evil.example": "/%20/evil.example",
        "https://evil.example/": None,
        "javascript:alert(1)": None,
        "": None,
        "/launches/moon-1?seats=2#book": "/launches/moon-1?seats=2#book",
        "/traveler": "/traveler",
    }
    got = await page.evaluate(
        """async (cases) => {
          const { safeNext } = await import('/static/common/session.js');
          return cases.map((c) => safeNext(c));
        }""",
        list(cases),
    )
    assert dict(zip(cases, got, strict=True)) == cases
