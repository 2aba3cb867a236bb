"""SystemWeb for finance: an invoice issued on demand is picked from the finished launches that have none
(never an internal id to type)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import PHONE, Site
from web.clients import PG_POOL

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_finance_issues_an_invoice_on_demand_by_picking_the_finished_launch(
    site: Site, phone: bool, make_agency: Any, make_employee: Any, make_launch: Any
) -> None:
    agency = await make_agency(name="Lunar Lines")
    aborted = await make_launch(agency)
    await make_launch(agency)  # still open: not offered
    resp = await site.client.post(
        f"/api/agency/launches/{aborted['id']}/status", headers=agency.headers, json={"status": "aborted"}
    )
    assert resp.status == 200
    page = await site.login("finance", await make_employee("finance"), phone=phone)
    form = page.get_by_test_id("issue-form")
    await expect(form.get_by_test_id("issue-none")).to_have_text("Every finished launch has its invoice.")
    await expect(form.get_by_test_id("issue-submit")).to_be_hidden()

    # Its invoice goes missing (a launch finished before invoicing existed): finance is offered it.
    await site.app[PG_POOL].execute("DELETE FROM invoices")
    await page.reload()
    choice = form.get_by_test_id("issue-launch")
    await expect(choice.locator("option")).to_have_count(1)
    await expect(choice.locator("option")).to_have_attribute("value", aborted["id"])
    await expect(choice.locator("option")).to_contain_text("Tranquility tour — Lunar Lines, aborted")
    await expect(choice.locator("option")).to_contain_text("(abort fee)")
    assert await page.evaluate("document.documentElement.scrollWidth") <= (PHONE["width"] if phone else 1280)
    await form.get_by_test_id("issue-submit").click()
    await expect(page.get_by_test_id("finance-result")).to_contain_text("issued: $1,000.00 to Lunar Lines")
    await expect(page.get_by_test_id("invoice-row")).to_have_count(1)
    await expect(form.get_by_test_id("issue-none")).to_be_visible()
