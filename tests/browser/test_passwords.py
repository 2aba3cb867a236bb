"""Passwords in Chromium at 1366x900 and 390x844 (issue 15, items 2 and 7): a forgotten password reset
through the link mailed to the test SMTP server, and a password changed from the header's link."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import ViewportSize, expect

from tests.browser.conftest import Site
from tests.browser.test_sessions import WIDTHS, log_in, new_context, shot, tab
from tests.smtpd import SmtpServer

pytestmark = pytest.mark.browser

NEW = "violet-tundra-ferry-42"


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def app_settings(smtp: SmtpServer) -> dict[str, Any]:
    return {"smtp_url": smtp.url}


@pytest.mark.parametrize("viewport", WIDTHS)
async def test_a_forgotten_password_is_reset_through_the_mailed_link(
    site: Site, make_traveler: Any, smtp: SmtpServer, viewport: ViewportSize
) -> None:
    traveler = await make_traveler()
    context = await new_context(site, viewport)
    page = await tab(site, context, "forgot")
    await page.goto("/auth")
    await page.get_by_test_id("forgot-link").click()
    await page.wait_for_url("**/auth/forgot")
    await page.get_by_test_id("forgot-email").fill(traveler.email)
    await page.get_by_test_id("forgot-submit").click()
    await expect(page.get_by_test_id("forgot-sent")).to_contain_text("30 minutes")

    await smtp.until(lambda: any(traveler.email in m.rcpt_tos for m in smtp.received))
    [mail] = [m for m in smtp.received if traveler.email in m.rcpt_tos]
    found = re.search(r"https?://\S+/auth/reset\?token=\S+", mail.body)
    assert found, mail.body
    link = urlsplit(found.group(0))
    await page.goto(f"{link.path}?{link.query}")
    await expect(page.get_by_test_id("reset-form")).to_be_visible()
    assert "token" not in page.url  # the code leaves the address bar (history, shoulders)
    await shot(page, f"password-reset-{viewport['width']}")

    await page.get_by_test_id("reset-new-password").fill(NEW)
    await page.get_by_test_id("reset-repeat").fill(NEW + "x")
    await page.get_by_test_id("reset-submit").click()
    await expect(page.get_by_test_id("error-banner")).to_contain_text("differ")
    await page.get_by_test_id("reset-new-password").fill("password1234")
    await page.get_by_test_id("reset-repeat").fill("password1234")
    await page.get_by_test_id("reset-submit").click()
    await expect(page.get_by_test_id("error-banner")).to_contain_text("too easy to guess")
    await page.get_by_test_id("reset-new-password").fill(NEW)
    await page.get_by_test_id("reset-repeat").fill(NEW)
    await page.get_by_test_id("reset-submit").click()
    await page.wait_for_url("**/auth?reason=password_reset")
    await expect(page.get_by_test_id("auth-reason")).to_contain_text("new password is set")

    await page.get_by_test_id("login-email").fill(traveler.email)
    await page.get_by_test_id("login-password").fill(NEW)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url("**/traveler**")
    await expect(page.get_by_test_id("session-user")).to_be_visible()
    old = await site.client.post(
        "/api/system/auth/login", json={"email": traveler.email, "password": traveler.password}
    )
    assert old.status == 401

    # The link works once.
    again = await tab(site, context, "again")
    await again.goto(f"{link.path}?{link.query}")
    await again.get_by_test_id("reset-new-password").fill(NEW + "!")
    await again.get_by_test_id("reset-repeat").fill(NEW + "!")
    await again.get_by_test_id("reset-submit").click()
    await expect(again.get_by_test_id("error-banner")).to_contain_text("used already")
    await expect(again.get_by_test_id("reset-again")).to_be_visible()
    await context.close()


@pytest.mark.parametrize("viewport", WIDTHS)
async def test_a_password_changed_from_the_header_keeps_this_browser_and_ends_the_others(
    site: Site, make_traveler: Any, viewport: ViewportSize
) -> None:
    traveler = await make_traveler()
    laptop = await new_context(site, viewport)
    other = await new_context(site, viewport)  # another browser of the same traveler
    elsewhere = await tab(site, other, "elsewhere")
    await log_in(elsewhere, traveler)
    page = await tab(site, laptop, "traveler")
    await log_in(page, traveler)
    second = await tab(site, laptop, "second")
    await second.goto("/traveler#bookings")
    await expect(second.get_by_test_id("session-user")).to_be_visible()

    await page.get_by_test_id("change-password-link").click()
    await page.wait_for_url("**/auth/password")
    await page.get_by_test_id("change-current").fill("not-my-password")
    await page.get_by_test_id("change-new-password").fill(NEW)
    await page.get_by_test_id("change-repeat").fill(NEW)
    await page.get_by_test_id("change-submit").click()
    await expect(page.get_by_test_id("error-banner")).to_contain_text(
        re.compile("current password is wrong", re.I)
    )
    await page.get_by_test_id("change-current").fill(traveler.password)
    await page.get_by_test_id("change-new-password").fill(NEW)
    await page.get_by_test_id("change-repeat").fill(NEW)
    await page.get_by_test_id("change-submit").click()
    await expect(page.get_by_test_id("password-changed")).to_contain_text("stay logged in")
    await shot(page, f"password-changed-{viewport['width']}")

    # This browser's other tab goes on (its revoked token is replaced from the shared cookie) ...
    await second.get_by_test_id("nav-profile").click()
    await expect(second.get_by_test_id("view-profile")).to_be_visible()
    await expect(second.get_by_test_id("relogin-dialog")).to_have_count(0)
    # ... the other browser is told at once (the server closed its live socket) and logs in again, with
    # the new password.
    await expect(elsewhere.get_by_test_id("relogin-dialog")).to_be_visible()
    await expect(elsewhere.get_by_test_id("session-user")).to_have_count(0)
    await elsewhere.get_by_test_id("relogin-password").fill(traveler.password)
    await elsewhere.get_by_test_id("relogin-submit").click()
    await expect(elsewhere.get_by_test_id("relogin-form").get_by_test_id("error-banner")).to_contain_text(
        "Wrong email or password"
    )
    await elsewhere.get_by_test_id("relogin-password").fill(NEW)
    await elsewhere.get_by_test_id("relogin-submit").click()
    await expect(elsewhere.get_by_test_id("relogin-dialog")).to_have_count(0)
    await elsewhere.get_by_test_id("nav-profile").click()
    await expect(elsewhere.get_by_test_id("view-profile")).to_be_visible()
    await laptop.close()
    await other.close()
