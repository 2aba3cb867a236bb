"""SystemWeb's notification queue in the browser: counts, the email service, filters, IT's moves
and a refused move explained in words."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Site
from web.keys import DISPATCHER

pytestmark = pytest.mark.browser


@pytest.fixture
def app_settings() -> dict[str, Any]:
    # The dispatcher looks only once a minute by itself: emails wait in the queue until IT moves
    # them (a release wakes it at once).
    return {"notify_poll_interval": 60}


async def test_it_holds_releases_marks_sent_and_reads_a_refused_move_in_words(
    site: Site, make_employee: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler, it = await make_agency(), await make_traveler(), await make_employee("it")
    launch = await make_launch(agency, capacity=10)
    await site.book(traveler, launch["id"], 1)
    page = await site.login("it", it)
    await page.get_by_test_id("nav-queue").click()

    # Counts per status, the oldest pending, and the email service.
    await expect(page.get_by_test_id("count-pending")).to_have_attribute("data-value", "3")
    await expect(page.get_by_test_id("count-sent")).to_have_attribute("data-value", "0")
    await expect(page.get_by_test_id("oldest-pending")).to_contain_text("Oldest pending: waiting")
    await expect(page.get_by_test_id("smtp-reachable")).to_have_attribute("data-value", "true")
    await expect(page.get_by_test_id("dispatcher-running")).to_have_attribute("data-value", "true")
    await expect(page.get_by_test_id("last-hour")).to_have_attribute("data-sent", "0")
    await page.get_by_label("Refresh every 5 seconds").uncheck()

    rows = page.get_by_test_id("notification-row")
    await expect(rows).to_have_count(3)

    # The agency's email is cancelled behind the page's back: holding it is refused, in words.
    theirs = page.locator(
        f'[data-testid="notification-row"][data-event="booking_confirmed"][data-recipient="{agency.email}"]'
    )
    notification_id = await theirs.get_attribute("data-notification-id")
    resp = await site.client.patch(
        f"/api/notify/notifications/{notification_id}", headers=it.headers, json={"status": "cancelled"}
    )
    assert resp.status == 200
    await theirs.get_by_role("button", name="Hold").click()
    refusal = (
        f"Refused: this email to {agency.email} is cancelled now, so you cannot hold it. "
        "That is only possible while it is pending."
    )
    await expect(page.get_by_test_id("error-banner")).to_contain_text(refusal)
    await expect(theirs.get_by_test_id("row-refusal")).to_contain_text(refusal)
    await expect(theirs.get_by_test_id("notification-status")).to_have_attribute("data-value", "cancelled")
    await expect(theirs.locator("button")).to_have_count(0)  # nothing more IT may do with it

    # Marking as sent asks first; nothing is sent.
    scheduled = page.locator('[data-testid="notification-row"][data-event="launch_scheduled"]')
    await scheduled.get_by_role("button", name="Mark sent").click()
    await page.get_by_test_id("queue-dialog-confirm").click()
    await expect(page.get_by_test_id("queue-result")).to_contain_text("is marked as sent (nothing was sent)")
    await expect(scheduled.get_by_test_id("notification-status")).to_have_attribute("data-value", "sent")

    # The traveler's email, found by address: held, then released, it goes out.
    await page.get_by_label("Recipient").fill(traveler.email)
    await page.get_by_label("Recipient").press("Enter")
    await expect(rows).to_have_count(1)
    mine = rows.first
    await expect(mine).to_have_attribute("data-event", "booking_confirmed")
    await mine.get_by_role("button", name="Hold").click()
    await expect(page.get_by_test_id("queue-result")).to_contain_text("is held")
    await expect(mine.get_by_test_id("notification-status")).to_have_attribute("data-value", "held")
    await expect(page.get_by_test_id("count-held")).to_have_attribute("data-value", "1")
    await mine.get_by_role("button", name="Release").click()
    await expect(page.get_by_test_id("queue-result")).to_contain_text("is queued again")
    await site.app[DISPATCHER].run_once()  # the round the release woke has run
    await page.get_by_test_id("queue-refresh").click()
    await expect(mine.get_by_test_id("notification-status")).to_have_attribute("data-value", "sent")
    await expect(page.get_by_test_id("count-sent")).to_have_attribute("data-value", "2")
    await expect(page.get_by_test_id("count-pending")).to_have_attribute("data-value", "0")
    await expect(page.get_by_test_id("oldest-pending")).to_have_text("Nothing is waiting to be sent.")
    # Delivered in the last hour: the email marked as sent by hand was not.
    await expect(page.get_by_test_id("last-hour")).to_have_attribute("data-sent", "1")
