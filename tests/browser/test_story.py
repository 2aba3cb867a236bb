"""The platform as its people click it, in four browsers at once: a traveler registers and books,
the agency watches occupancy live and aborts the launch, IT traces the booking, finance invoices."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Site
from web.keys import DISPATCHER
from web.monitoring import LOG_SHIPPER

pytestmark = pytest.mark.browser


async def mark_no_reload(page: Page) -> None:
    """A flag in the page's memory: still there later means the page was never reloaded."""
    await page.evaluate("window.__sameDocument = true")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"


async def register_traveler(page: Page, email: str) -> None:
    await page.goto("/auth#register")
    await page.get_by_test_id("register-role-traveler").check()
    await page.get_by_label("Name", exact=True).fill("Ada Lovelace")
    await page.get_by_test_id("register-email").fill(email)
    await page.get_by_test_id("register-password").fill("correct-horse")
    await page.get_by_label("Phone", exact=True).fill("+44 20 7946 0000")
    await page.get_by_test_id("register-tax-id").fill("GB-ADA-1815")
    await page.get_by_label("Address", exact=True).fill("12 St James's Square, London")
    await page.get_by_test_id("register-submit").click()
    await page.wait_for_url("**/traveler**")


async def book_two_seats(page: Page, launch_id: str) -> tuple[str, str]:
    """Book in TravelerWeb: one passenger form per seat, the sandbox card that is approved.
    Answers the booking id and the request id of the booking's POST."""
    await page.get_by_test_id("nav-book").click()
    await page.get_by_test_id("launch-select").select_option(launch_id)
    await page.get_by_test_id("seats-input").fill("2")
    await expect(page.get_by_test_id("passenger-fieldset")).to_have_count(2)
    await page.get_by_test_id("passenger-name-0").fill("Ada Lovelace")
    await page.get_by_test_id("passenger-birth-0").fill("1985-12-10")
    await page.get_by_test_id("passenger-name-1").fill("Charles Babbage")
    await page.get_by_test_id("passenger-birth-1").fill("1979-12-26")
    await page.get_by_test_id("card-select").select_option("tok_ok")
    await expect(page.get_by_test_id("book-total")).to_contain_text("$2,000.00")
    async with page.expect_response(
        lambda r: r.url.endswith("/api/booking/bookings") and r.request.method == "POST"
    ) as answer:
        await page.get_by_test_id("book-submit").click()
    response = await answer.value
    assert response.status == 201
    success = page.get_by_test_id("booking-success")
    await expect(success).to_contain_text("2 seats")
    booking_id = await success.get_attribute("data-booking-id")
    assert booking_id
    return booking_id, response.headers["x-request-id"]


async def test_a_booking_from_registration_to_abort_fee_as_each_person_sees_it(
    site: Site, make_agency: Any, make_traveler: Any, make_employee: Any, make_launch: Any
) -> None:
    agency = await make_agency()
    launch = await make_launch(agency, capacity=10, min_passengers=8, days=60)  # $1,000.00 a seat
    it, finance = await make_employee("it"), await make_employee("finance")
    email = "ada.lovelace@example.com"

    # A traveler registers through AuthWeb and books two seats in TravelerWeb.
    traveler = await site.page("traveler")
    await register_traveler(traveler, email)
    booking_id, request_id = await book_two_seats(traveler, launch["id"])
    await traveler.get_by_role("link", name="See my bookings").click()
    mine = traveler.locator(f'[data-testid="booking-row"][data-booking-id="{booking_id}"]')
    await expect(mine).to_be_visible()
    await expect(mine.get_by_test_id("launch-status").locator("[data-value]")).to_have_attribute(
        "data-value", "scheduled"
    )
    await expect(mine.get_by_test_id("booking-total")).to_have_text("$2,000.00")
    await expect(traveler.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    await mark_no_reload(traveler)

    # The agency's dashboard shows another traveler's booking as it happens.
    desk = await site.login("agency", agency)
    row = desk.locator(f'[data-testid="occupancy-row"][data-launch-id="{launch["id"]}"]')
    await expect(row.get_by_test_id("seats-booked")).to_have_attribute("data-value", "2")
    await expect(desk.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    await mark_no_reload(desk)
    await site.book(await make_traveler(), launch["id"], 3)
    await expect(row.get_by_test_id("seats-booked")).to_have_attribute("data-value", "5")
    await expect(desk.get_by_test_id("seats-booked-total")).to_have_text("5")
    await assert_not_reloaded(desk)

    # The agency aborts the launch with a reason; the traveler's page shows it, live.
    await row.get_by_test_id("manage-link").click()
    await expect(desk.get_by_test_id("launch-mission")).to_have_text(launch["mission"])
    await desk.get_by_test_id("status-action-aborted").click()
    await desk.get_by_test_id("status-reason-input").fill("Engine anomaly on the pad")
    await desk.get_by_test_id("status-dialog-confirm").click()
    await expect(desk.get_by_test_id("status-result")).to_contain_text("Aborted")
    await expect(desk.get_by_test_id("status-reason")).to_have_text("Engine anomaly on the pad")
    await expect(mine.get_by_test_id("launch-status").locator("[data-value]")).to_have_attribute(
        "data-value", "aborted"
    )
    await expect(mine.get_by_test_id("refund")).to_contain_text("$2,000.00")
    await assert_not_reloaded(traveler)

    # IT finds the booking in the logs by its request id, and its email in the mailbox.
    await site.app[LOG_SHIPPER].flush()
    await site.app[DISPATCHER].run_once()
    ops = await site.login("it", it)
    await ops.get_by_test_id("nav-logs").click()
    await ops.get_by_label("Request id", exact=True).fill(request_id)
    await ops.get_by_test_id("logs-apply").click()
    confirmed = ops.locator('[data-testid="log-row"][data-message="booking_confirmed"]')
    await expect(confirmed).to_have_count(1)
    await expect(confirmed).to_have_attribute("data-entity-id", booking_id)
    rows = ops.get_by_test_id("log-row")
    assert set(await rows.evaluate_all("rows => rows.map(r => r.dataset.requestId)")) == {request_id}
    await ops.get_by_test_id("nav-mailbox").click()
    await ops.get_by_label("Recipient address").fill(email)
    await ops.get_by_test_id("mail-apply").click()
    mail = ops.get_by_test_id("mail-message").filter(has_text="Booking confirmed: 2 seats")
    await expect(mail).to_have_count(1)
    await mail.locator("summary").click()
    body = mail.get_by_test_id("mail-body")
    await expect(body).to_be_visible()
    await expect(body).to_contain_text(f"Booking {booking_id}: 2 seats on {launch['mission']}")
    await expect(body).to_contain_text("$2,000.00 charged")
    aborted = ops.get_by_test_id("mail-message").filter(has_text=f"Aborted: {launch['mission']}")
    await expect(aborted).to_have_count(1)

    # Finance sees the abort fee invoiced to the agency for that launch.
    books = await site.login("finance", finance)
    invoice = books.get_by_test_id("invoice-row").filter(has_text=launch["mission"])
    await expect(invoice).to_have_count(1)
    await expect(invoice).to_contain_text("Abort fee")
    await expect(invoice).to_contain_text("$1,000.00")
    await invoice.get_by_test_id("invoice-open").click()
    await expect(books.get_by_test_id("invoice-detail")).to_contain_text(launch["id"])
