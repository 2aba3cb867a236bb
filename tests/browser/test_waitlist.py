"""The waiting list as a traveler clicks it: a sold-out launch's page offers the list, the traveler joins
with a party of two, sees the offer arrive live with its countdown when a booking is cancelled, and books
the offered seats; the agency's dashboard shows the demand, live."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Site

pytestmark = pytest.mark.browser


async def test_a_traveler_joins_sees_the_offer_live_and_books_it(
    site: Site, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency = await make_agency()
    launch = await make_launch(agency, capacity=2, min_passengers=1, days=400)
    holder, waiter = await make_traveler(), await make_traveler()
    first = await site.book(holder, launch["id"], 2)

    page = await site.login("waiter", waiter)
    await page.goto(f"/launches/{launch['slug']}")
    await page.get_by_test_id("join-waitlist").click()
    await page.wait_for_url("**/traveler#waitlist?launch=*")
    await page.get_by_test_id("waitlist-seats").select_option("2")
    await page.get_by_test_id("waitlist-join-submit").click()
    await expect(page.get_by_test_id("waitlist-joined")).to_contain_text("number 1 in line")
    row = page.get_by_test_id("waitlist-row")
    await expect(row).to_have_attribute("data-status", "waiting")
    await expect(row.get_by_test_id("waitlist-position")).to_contain_text("number 1")

    desk = await site.login("agency", agency)
    demand = desk.locator(f'[data-testid="occupancy-row"][data-launch-id="{launch["id"]}"]').get_by_test_id(
        "waitlist-demand"
    )
    await expect(demand).to_contain_text("1 traveler waiting, 2 seats wanted")

    # A booking is cancelled a year ahead: its seats come free and are offered to the waiter, live.
    resp = await site.client.post(f"/api/booking/bookings/{first['id']}/cancel", headers=holder.headers)
    assert resp.status == 200, await resp.text()
    await expect(row).to_have_attribute("data-status", "offered")
    await expect(row.get_by_test_id("waitlist-countdown")).to_contain_text("min")
    await expect(demand).to_contain_text("2 seats on offer")

    await row.get_by_test_id("waitlist-book-now").click()
    await expect(page.get_by_test_id("offer-note")).to_contain_text("2 seats are held for you")
    await expect(page.get_by_test_id("seats-input")).to_have_value("2")
    await expect(page.get_by_test_id("passenger-fieldset")).to_have_count(2)
    await page.get_by_test_id("passenger-name-0").fill("Mae Jemison")
    await page.get_by_test_id("passenger-birth-0").fill("1976-10-17")
    await page.get_by_test_id("passenger-name-1").fill("Sally Ride")
    await page.get_by_test_id("passenger-birth-1").fill("1981-05-26")
    await page.get_by_test_id("card-select").select_option("tok_ok")
    await page.get_by_test_id("book-submit").click()
    await expect(page.get_by_test_id("booking-success")).to_contain_text("2 seats")
    await page.goto("/traveler#waitlist")
    await expect(page.get_by_test_id("waitlist-row")).to_have_attribute("data-status", "booked")
    assert site.js_errors == []
