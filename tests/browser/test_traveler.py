"""TravelerWeb at phone width: the booking form fits, every field is labelled, booking works."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import PHONE, Site

pytestmark = pytest.mark.browser


async def test_the_booking_form_is_usable_at_phone_width(
    site: Site, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    launch = await make_launch(await make_agency(), capacity=6, min_passengers=2)
    page = await site.login("traveler", await make_traveler(), phone=True)
    await page.goto(f"/traveler#book?launch={launch['id']}")
    form = page.get_by_test_id("book-form")
    await expect(form).to_be_visible()
    await page.get_by_label("Seats", exact=True).fill("2")
    await expect(page.get_by_test_id("passenger-fieldset")).to_have_count(2)

    # Nothing sticks out sideways, and every control is labelled and inside the screen.
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    unlabelled = await form.evaluate(
        """f => [...f.querySelectorAll('input, select, textarea')]
              .filter(c => !c.labels.length && !c.getAttribute('aria-label')).map(c => c.name)"""
    )
    assert unlabelled == []
    for control in await form.locator("input, select, button").all():
        box = await control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box

    names = page.get_by_label("Full name")
    births = page.get_by_label("Birth date")
    await names.nth(0).fill("Mae Jemison")
    await births.nth(0).fill("1976-10-17")
    await names.nth(1).fill("Sally Ride")
    await births.nth(1).fill("1981-05-26")
    await expect(page.get_by_test_id("book-total")).to_contain_text("$2,000.00")
    submit = page.get_by_test_id("book-submit")
    await submit.scroll_into_view_if_needed()
    box = await submit.bounding_box()
    assert box is not None and box["height"] >= 40  # a finger-sized target
    await submit.click()
    await expect(page.get_by_test_id("booking-success")).to_contain_text("2 seats")
