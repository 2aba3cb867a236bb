"""PublicWeb and AuthWeb in the browser: seats left change live; a refused login reads as words."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Site

pytestmark = pytest.mark.browser


async def test_the_public_list_shows_the_seats_left_change_live(
    site: Site, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    launch = await make_launch(await make_agency(), capacity=10, min_passengers=2)
    page = await site.page("public")
    await page.goto("/")
    card = page.locator(f'[data-testid="launch-card"][data-launch-id="{launch["id"]}"]')
    seats = card.get_by_test_id("seats-left")
    await expect(seats).to_have_attribute("data-value", "10")
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    await page.evaluate("window.__sameDocument = true")

    await site.book(await make_traveler(), launch["id"], 3)
    await expect(seats).to_have_attribute("data-value", "7")
    await expect(seats).to_have_text("7 of 10 seats left")
    await expect(card.get_by_test_id("seat-gauge")).to_have_attribute("data-booked", "3")
    await site.book(await make_traveler(), launch["id"], 4)
    await expect(seats).to_have_attribute("data-value", "3")
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"


async def test_a_wrong_password_shows_a_readable_error_never_the_raw_answer(
    site: Site, make_traveler: Any
) -> None:
    traveler = await make_traveler()
    page = await site.page("auth")
    await page.goto("/auth")
    form = page.get_by_test_id("login-form")
    await form.get_by_label("Email").fill(traveler.email)
    await form.get_by_label("Password").fill("not-the-password")
    async with page.expect_response("**/api/system/auth/login") as answer:
        await form.get_by_label("Password").press("Enter")  # the keyboard submits the form
    assert (await answer.value).status == 401
    error = form.get_by_test_id("error-banner")
    await expect(error).to_have_text("Wrong email or password.")
    await expect(error).to_have_attribute("role", "alert")
    text = await page.locator("main").inner_text()
    for raw in ("{", "invalid_credentials", "401", "error"):
        assert raw not in text, f"{raw!r} shown to the user: {text}"
    assert page.url.endswith("/auth")

    await form.get_by_label("Password").fill("")
    await page.get_by_test_id("login-submit").click()
    await expect(error).to_have_text("Enter your email and password.")
