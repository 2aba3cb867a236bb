"""SystemWeb's reconciliation view for finance, at phone width: the period's totals, "none" while every
payment matches its booking, and a payment the gateway did not capture listed with its reason."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import PHONE, Site
from web.clients import PG_POOL
from web.keys import DESK

pytestmark = pytest.mark.browser


async def fits_a_phone(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the reconciliation view is {width}px wide"


async def test_finance_sees_the_totals_and_a_payment_that_disagrees_with_its_booking(
    site: Site, make_employee: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    launch = await make_launch(await make_agency(), capacity=10, price_cents=100_000, days=400)
    kept = await site.book(await make_traveler(), launch["id"], 2)
    owner = await make_traveler()
    mine = await site.book(owner, launch["id"], 1)
    resp = await site.client.post(f"/api/booking/bookings/{mine['id']}/cancel", headers=owner.headers)
    assert resp.status == 200 and (await resp.json())["refund_cents"] == 90_000  # 400 days ahead: 90 %
    await site.app[DESK].wait_background()  # the refund is paid

    page = await site.login("finance", await make_employee("finance"), phone=True)
    await page.goto("/system#reconciliation")
    view = page.get_by_test_id("view-reconciliation")
    await expect(view.get_by_test_id("recon-none")).to_contain_text("every payment matches its booking")
    await expect(view.get_by_test_id("recon-none")).to_contain_text("2 attempts checked")
    captured = view.get_by_test_id("recon-captured")
    await expect(captured).to_have_attribute("data-cents", "300000")
    await expect(captured).to_contain_text("$3,000.00")
    await expect(view.get_by_test_id("recon-refunded")).to_contain_text("$900.00")
    await expect(view.get_by_test_id("recon-booked")).to_contain_text("$3,000.00")
    await expect(view.get_by_test_id("recon-difference")).to_have_attribute("data-cents", "0")
    await expect(view.get_by_test_id("recon-states")).to_have_text("Attempts: 2 captured")
    await expect(view.get_by_test_id("recon-item")).to_have_count(0)
    await fits_a_phone(page)
    unlabelled = await view.evaluate(
        "s => [...s.querySelectorAll('input, select')].filter(c => !c.labels.length).map(c => c.name)"
    )
    assert unlabelled == []

    # The gateway lets go of the capture of a stored booking (edited in the sandbox's ledger).
    attempt_id = await site.app[PG_POOL].fetchval(
        "SELECT id FROM payment_attempts WHERE booking_id = $1", kept["id"]
    )
    await site.app[PG_POOL].execute("UPDATE sandbox_payments SET state = 'voided' WHERE key = $1", attempt_id)
    await view.get_by_test_id("recon-submit").click()
    await expect(view.get_by_test_id("recon-found")).to_have_attribute("data-count", "1")
    await expect(view.get_by_test_id("recon-found")).to_contain_text("1 payment disagrees with its booking")
    item = view.get_by_test_id("recon-item")
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("data-attempt-id", attempt_id)
    await expect(item).to_have_attribute("data-codes", "booking_not_paid")
    await expect(item.get_by_test_id("recon-problem")).to_contain_text("Booking not paid")
    await expect(item.get_by_test_id("recon-gateway")).to_contain_text("voided")
    await expect(item.get_by_test_id("recon-action")).to_contain_text("ask the traveler to pay again")
    await expect(view.get_by_test_id("recon-captured")).to_have_attribute(
        "data-cents", "300000"
    )  # our records
    await fits_a_phone(page)
