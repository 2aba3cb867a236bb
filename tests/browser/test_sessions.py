"""Sessions that last, in Chromium at 1366x900 and 390x844 (issue 15, items 1 and 7): a second tab and a
reopened page share the session, an expired access token is refreshed without a word, a session that
ended brings a log-in dialog over the page that keeps the half-filled booking form, logout ends every tab."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, ViewportSize, expect

from tests.browser.conftest import HOME, PHONE, SCREENSHOTS, TIMEOUT_MS, Site
from tests.conftest import Account
from web.clients import MONGO_DB

pytestmark = pytest.mark.browser

WIDE: ViewportSize = {"width": 1366, "height": 900}
WIDTHS = [pytest.param(WIDE, id="1366"), pytest.param(PHONE, id="390")]
TTL = 8  # seconds an access token lives here: short enough to see it expire, long enough for the set-up


ARTIFACTS = Path(__file__).resolve().parents[2] / SCREENSHOTS


async def shot(page: Page, name: str) -> None:
    """A screenshot kept with the test run's artifacts (what a person would see at this point)."""
    await asyncio.to_thread(ARTIFACTS.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"token_ttl": TTL}


async def new_context(site: Site, viewport: ViewportSize) -> BrowserContext:
    """A browser of its own (its own cookies and storage), at this size."""
    context = await site.browser.new_context(base_url=site.url, viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    return context


async def tab(site: Site, context: BrowserContext, name: str) -> Page:
    page = await context.new_page()
    page.on("pageerror", lambda exc: site.js_errors.append(f"{name}: {exc}"))
    site.pages[name] = page
    return page


async def log_in(page: Page, account: Account) -> None:
    await page.goto("/auth")
    await page.get_by_test_id("login-email").fill(account.email)
    await page.get_by_test_id("login-password").fill(account.password)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(f"**{HOME[account.role]}**")
    await expect(page.get_by_test_id("session-user")).to_be_visible()


async def stored_token(page: Page) -> str:
    return str(await page.evaluate("JSON.parse(sessionStorage.getItem('astro.session')).token"))


async def expiry_of(page: Page, token: str) -> float:
    """The `exp` of an access token (seconds), read as the browser would."""
    return float(
        await page.evaluate(
            "t => JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp", token
        )
    )


async def until_expired(page: Page, exp: float) -> None:
    await page.wait_for_function("exp => Date.now() / 1000 > exp + 0.5", arg=exp, timeout=(TTL + 10) * 1000)


@pytest.mark.parametrize("viewport", WIDTHS)
async def test_a_second_tab_and_a_reopened_page_share_the_session_and_logout_ends_every_tab(
    site: Site, make_traveler: Any, viewport: ViewportSize
) -> None:
    traveler = await make_traveler()
    context = await new_context(site, viewport)
    first = await tab(site, context, "first")
    await log_in(first, traveler)

    second = await tab(site, context, "second")  # a link opened in a new tab
    await second.goto("/traveler#bookings")
    name = "Traveler " + traveler.email.split("@")[0].removeprefix("traveler")  # as traveler_body names them
    await expect(second.get_by_test_id("session-user")).to_contain_text(name)
    await expect(second.get_by_test_id("view-bookings")).to_be_visible()
    assert "/auth" not in second.url
    public = await tab(site, context, "public")
    await public.goto("/")
    await expect(public.get_by_test_id("session-user")).to_be_visible()
    await shot(second, f"session-second-tab-{viewport['width']}")

    # Every tab closed, the page opened again: still logged in.
    await first.close()
    await second.close()
    reopened = await tab(site, context, "reopened")
    await reopened.goto("/traveler")
    await expect(reopened.get_by_test_id("session-user")).to_contain_text(name)
    assert "/auth" not in reopened.url

    # Logging out in one tab ends the session in every tab, and on the server.
    await reopened.get_by_test_id("logout-button").click()
    await reopened.wait_for_url("**/auth?reason=logged_out")
    await expect(public.get_by_test_id("login-link")).to_be_visible()
    await expect(public.get_by_test_id("session-user")).to_have_count(0)
    cookies = [c for c in await context.cookies() if c["name"] == "astro_refresh"]
    assert cookies == []
    again = await tab(site, context, "again")
    await again.goto("/traveler")
    await again.wait_for_url("**/auth?**")
    await context.close()


@pytest.mark.parametrize("viewport", WIDTHS)
async def test_an_expired_access_token_is_refreshed_without_a_word(
    site: Site, make_agency: Any, make_traveler: Any, make_launch: Any, viewport: ViewportSize
) -> None:
    launch = await make_launch(await make_agency(), capacity=6, min_passengers=2)
    traveler = await make_traveler()
    context = await new_context(site, viewport)
    page = await tab(site, context, "traveler")
    await log_in(page, traveler)
    expired = await stored_token(page)
    # The tab slept (or its clock is behind): it believes its token good for a day, so it sends it
    # after it expired, and the server answers 401 token_expired.
    await page.evaluate(
        """() => {
          const s = JSON.parse(sessionStorage.getItem('astro.session'));
          s.expires_at = new Date(Date.now() + 86400e3).toISOString();
          sessionStorage.setItem('astro.session', JSON.stringify(s));
        }"""
    )
    await until_expired(page, await expiry_of(page, expired))

    await page.goto(f"/traveler#book?launch={launch['id']}")
    await page.get_by_test_id("passenger-name-0").fill("Mae Jemison")
    await page.get_by_test_id("passenger-birth-0").fill("1976-10-17")
    await page.get_by_test_id("book-submit").click()
    await expect(page.get_by_test_id("booking-success")).to_contain_text("1 seat")
    await expect(page.get_by_test_id("relogin-dialog")).to_have_count(0)
    assert await stored_token(page) != expired
    await expect(page.get_by_test_id("session-user")).to_be_visible()

    # Left alone, the tab refreshes its token before it expires: still signed in, still live.
    token = await stored_token(page)
    exp = await expiry_of(page, token)
    await page.wait_for_function(
        "t => JSON.parse(sessionStorage.getItem('astro.session')).token !== t",
        arg=token,
        timeout=(TTL + 10) * 1000,
    )
    assert await page.evaluate("Date.now() / 1000") < exp  # before it expired
    await until_expired(page, exp)
    await page.get_by_test_id("nav-bookings").click()
    await expect(page.get_by_test_id("view-bookings")).to_contain_text(launch["mission"])
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    await context.close()


@pytest.mark.parametrize("viewport", WIDTHS)
async def test_a_session_that_ended_brings_a_login_dialog_that_keeps_the_booking_form(
    site: Site, make_agency: Any, make_traveler: Any, make_launch: Any, viewport: ViewportSize
) -> None:
    launch = await make_launch(await make_agency(), capacity=6, min_passengers=2)
    traveler = await make_traveler()
    context = await new_context(site, viewport)
    page = await tab(site, context, "traveler")
    await log_in(page, traveler)
    await page.goto(f"/traveler#book?launch={launch['id']}")
    await page.get_by_test_id("seats-input").fill("2")
    await page.get_by_test_id("passenger-name-0").fill("Mae Jemison")
    await page.get_by_test_id("passenger-birth-0").fill("1976-10-17")

    # The session is revoked on the server: the refresh token is gone, so the next refresh fails.
    await site.app[MONGO_DB]["sessions"].delete_many({"user_id": traveler.id})
    await expect(page.get_by_test_id("session-ended")).to_be_visible(timeout=(TTL + 10) * 1000)
    await expect(page.get_by_test_id("session-user")).to_have_count(0)  # no stale name
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "signed-out")
    await expect(page.get_by_test_id("live-status")).not_to_have_text("Live")

    # The traveler goes on typing, then books: the dialog opens over the form, which keeps every value.
    await page.get_by_test_id("passenger-name-1").fill("Sally Ride")
    await page.get_by_test_id("passenger-birth-1").fill("1981-05-26")
    await page.get_by_test_id("book-submit").click()
    dialog = page.get_by_test_id("relogin-dialog")
    await expect(dialog).to_be_visible()
    await expect(page.get_by_test_id("relogin-email")).to_have_value(traveler.email)
    await shot(page, f"session-relogin-{viewport['width']}")
    assert page.url.endswith(f"#book?launch={launch['id']}")
    await expect(page.get_by_test_id("passenger-name-0")).to_have_value("Mae Jemison")
    await expect(page.get_by_test_id("passenger-birth-1")).to_have_value("1981-05-26")

    await page.get_by_test_id("relogin-password").fill("not-my-password")
    await page.get_by_test_id("relogin-submit").click()
    await expect(dialog.get_by_test_id("error-banner")).to_contain_text("Wrong email or password")
    await page.get_by_test_id("relogin-password").fill(traveler.password)
    await page.get_by_test_id("relogin-submit").click()

    # After logging in, the booking that was refused goes through, with what was typed.
    success = page.get_by_test_id("booking-success")
    await expect(success).to_contain_text("2 seats")
    await expect(dialog).to_have_count(0)
    await expect(page.get_by_test_id("session-user")).to_be_visible()
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    booking_id = await success.get_attribute("data-booking-id")
    resp = await site.client.post(
        "/api/system/auth/login", json={"email": traveler.email, "password": traveler.password}
    )
    token = (await resp.json())["token"]
    resp = await site.client.get(
        f"/api/booking/bookings/{booking_id}", headers={"Authorization": f"Bearer {token}"}
    )
    names = [p["name"] for p in (await resp.json())["booking"]["passengers"]]
    assert names == ["Mae Jemison", "Sally Ride"]
    await context.close()


async def test_logging_out_everywhere_from_another_device_opens_the_dialog_and_another_tab_closes_it(
    site: Site, make_traveler: Any
) -> None:
    traveler = await make_traveler()
    context = await new_context(site, WIDE)
    page = await tab(site, context, "traveler")
    await log_in(page, traveler)
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")

    resp = await site.client.post(
        "/api/system/auth/login", json={"email": traveler.email, "password": traveler.password}
    )
    other_device = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    site.client.session.cookie_jar.clear()
    assert (await site.client.post("/api/system/auth/logout-all", headers=other_device)).status == 204

    # The live socket is closed by the server; the tab finds its session gone and asks to log in.
    await expect(page.get_by_test_id("relogin-dialog")).to_be_visible()
    await expect(page.get_by_test_id("session-user")).to_have_count(0)
    # Logging in in another tab of this browser closes the dialog here: the tabs share the session.
    other = await tab(site, context, "other")
    await log_in(other, traveler)
    await expect(page.get_by_test_id("relogin-dialog")).to_have_count(0)
    await expect(page.get_by_test_id("session-user")).to_be_visible()
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    await context.close()
