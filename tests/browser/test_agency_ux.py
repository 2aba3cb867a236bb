"""AgencyWeb as an agency meets it: finished launches stay on the dashboard, the live feed keeps its
history across a reload, Mark successful/failed turn on when the launch time comes, the abort dialog
says what it costs, and times show in the viewer's own time zone with UTC on hover."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import DESKTOP, PHONE, TIMEOUT_MS, Site
from tests.conftest import Account

pytestmark = pytest.mark.browser

UTC_TITLE = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{2}:\d{2} UTC$")


async def set_status(site: Site, agency: Account, launch_id: str, status: str) -> None:
    resp = await site.client.post(
        f"/api/agency/launches/{launch_id}/status", headers=agency.headers, json={"status": status}
    )
    assert resp.status == 200, await resp.text()


async def feed_texts(page: Page) -> list[str]:
    return await page.get_by_test_id("feed-item").all_inner_texts()


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_finished_launches_stay_listed_and_the_feed_keeps_its_history_across_a_reload(
    site: Site, phone: bool, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=10, min_passengers=2)  # $1,000.00 a seat
    await site.book(traveler, launch["id"], 2)
    await set_status(site, agency, launch["id"], "aborted")

    page = await site.login("agency", agency, phone=phone)
    row = page.locator(f'[data-testid="occupancy-row"][data-launch-id="{launch["id"]}"]')
    await expect(row).to_have_attribute("data-status", "aborted")  # listed, though finished
    await expect(page.get_by_test_id("no-launches")).to_have_count(0)
    note = page.get_by_test_id("finished-note")
    await expect(note).to_contain_text("Every launch you scheduled has finished")
    feed = page.get_by_test_id("activity-feed")
    await expect(feed).to_contain_text("2 seats booked on Tranquility tour — $2,000.00.")
    await expect(feed).to_contain_text("Tranquility tour is now aborted.")

    # Something happens live, then the page is reloaded: the feed still holds all of it, each once.
    second = await make_launch(agency, capacity=10, min_passengers=5)
    await site.book(traveler, second["id"], 1)
    await expect(feed).to_contain_text("1 seat booked on Tranquility tour — $1,000.00.")
    before = await feed_texts(page)
    await page.reload()
    await expect(page.get_by_test_id("feed-item")).to_have_count(len(before))
    after = [t.split(" ", 1)[1] for t in await feed_texts(page)]
    assert after == [t.split(" ", 1)[1] for t in before], (before, after)
    # The open launch is listed; the finished one is behind the checkbox now.
    await expect(page.get_by_test_id("occupancy-row")).to_have_count(1)
    await expect(page.get_by_test_id("finished-note")).to_contain_text("1 finished launch hidden")
    await page.get_by_test_id("show-finished").check()
    await expect(page.get_by_test_id("occupancy-row")).to_have_count(2)
    stamp = page.get_by_test_id("feed-item").first.locator("time")
    await expect(stamp).to_have_attribute("title", UTC_TITLE)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= (PHONE if phone else DESKTOP)["width"]


async def test_mark_successful_turns_on_when_the_launch_time_comes_without_a_reload(
    site: Site, tmp_path: Path, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=10, min_passengers=1, days=6 / 86400)  # in 6 seconds
    await site.book(traveler, launch["id"], 1)  # confirms it (min 1)
    page = await site.login("agency", agency)
    await page.goto(f"/agency#launch/{launch['id']}")
    await page.evaluate("window.__sameDocument = true")
    successful = page.get_by_test_id("status-action-successful")
    failed = page.get_by_test_id("status-action-failed")
    now = datetime.now(UTC)
    if datetime.fromisoformat(launch["scheduled_at"]) - now > timedelta(seconds=1):
        await expect(successful).to_be_disabled()
        await expect(page.get_by_test_id("moves-later")).to_be_visible()
    await expect(successful).to_be_enabled(timeout=TIMEOUT_MS + 6000)  # the launch time passes
    await expect(failed).to_be_enabled()
    await expect(page.get_by_test_id("moves-later")).to_have_count(0)
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    await successful.click()
    await expect(page.get_by_test_id("status-result")).to_have_text("The launch is now Successful.")

    # Its booking is in the bookings report; the CSV gives dollars with their currency.
    await page.goto("/agency#reports")
    await expect(page.get_by_test_id("report-row")).to_have_count(1)
    async with page.expect_download() as download:
        await page.get_by_test_id("report-csv").click()
    saved = tmp_path / "report.csv"
    await (await download.value).save_as(saved)
    [row] = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert (row["currency"], row["total"], row["refund"], row["net"]) == ("USD", "1000.00", "0.00", "1000.00")
    assert row["launch_date"].endswith(" UTC")


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_the_abort_dialog_states_the_refunds_and_the_abort_fee(
    site: Site, phone: bool, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=10, min_passengers=5)  # $1,000.00 a seat
    await site.book(traveler, launch["id"], 2)
    await site.book(traveler, launch["id"], 1)
    page = await site.login("agency", agency, phone=phone)
    await page.goto(f"/agency#launch/{launch['id']}")
    await expect(page.get_by_test_id("manifest-row")).to_have_count(2)
    await page.get_by_test_id("status-action-aborted").click()
    dialog = page.get_by_test_id("status-dialog")
    await expect(dialog).to_be_visible()
    refunds = dialog.get_by_test_id("dialog-refunds")
    await expect(refunds).to_contain_text("2 bookings, $3,000.00 back to travelers")
    await expect(dialog.get_by_test_id("dialog-fee")).to_contain_text("flat abort fee of $1,000.00")
    box = await dialog.bounding_box()
    screen = (PHONE if phone else DESKTOP)["width"]
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= screen
    await page.get_by_test_id("status-dialog-confirm").click()
    await expect(page.get_by_test_id("status-result")).to_have_text("The launch is now Aborted.")
    await page.goto("/agency#invoices")
    await expect(page.get_by_test_id("invoice-row")).to_have_count(1)
    await expect(page.get_by_test_id("invoice-balance")).to_have_text("$1,000.00")  # as the dialog said


async def test_the_failed_dialog_says_refunds_and_no_fee(
    site: Site, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=10, min_passengers=1, days=5 / 86400)
    await site.book(traveler, launch["id"], 1)  # confirms it (min 1)
    page = await site.login("agency", agency)
    await page.goto(f"/agency#launch/{launch['id']}")
    failed = page.get_by_test_id("status-action-failed")
    await expect(failed).to_be_enabled(timeout=TIMEOUT_MS + 5000)
    await failed.click()
    dialog = page.get_by_test_id("status-dialog")
    await expect(dialog.get_by_test_id("dialog-refunds")).to_contain_text("1 booking, $1,000.00 back")
    await expect(dialog.get_by_test_id("dialog-fee")).to_contain_text("No commission and no fee")
    await page.get_by_test_id("status-dialog-cancel").click()
    await expect(dialog).to_have_count(0)


async def test_times_are_in_the_viewers_time_zone_with_utc_on_hover(
    site: Site, make_agency: Any, make_launch: Any
) -> None:
    agency = await make_agency()
    launch = await make_launch(agency)
    tokyo = timezone(timedelta(hours=9))  # no daylight saving time
    context = await site.browser.new_context(base_url=site.url, viewport=DESKTOP, timezone_id="Asia/Tokyo")
    context.set_default_timeout(TIMEOUT_MS)
    visitor = await context.new_page()
    site.pages["tokyo"] = visitor
    await visitor.goto(f"/launches/{launch['slug']}")
    at = datetime.fromisoformat(launch["scheduled_at"])
    stamp = visitor.get_by_test_id("launch-date").locator("time")
    await expect(stamp).to_contain_text(f"{at.astimezone(tokyo):%H:%M} GMT+9")
    utc = at.astimezone(UTC)
    await expect(stamp).to_have_attribute("title", f"{utc:%b} {utc.day}, {utc:%Y, %H:%M} UTC")
    shown = datetime.fromisoformat((await stamp.get_attribute("datetime") or "").replace("Z", "+00:00"))
    assert abs(shown - at) < timedelta(milliseconds=1)

    # The agency schedules in its own time: 09:00 in Tokyo is midnight UTC.
    await context.close()
    del site.pages["tokyo"]
    context = await site.browser.new_context(base_url=site.url, viewport=DESKTOP, timezone_id="Asia/Tokyo")
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    site.pages["agency-tokyo"] = page
    await page.goto("/auth")
    await page.get_by_test_id("login-email").fill(agency.email)
    await page.get_by_test_id("login-password").fill(agency.password)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url("**/agency**")
    await page.goto("/agency#schedule")
    await expect(page.get_by_label("Date and time (Asia/Tokyo)")).to_be_visible()
    await page.get_by_test_id("launch-mission").fill("Tokyo dawn")
    await page.get_by_test_id("launch-date").fill("2031-03-01T09:00")
    await expect(page.get_by_test_id("launch-date-utc")).to_have_text("That is Mar 1, 2031, 00:00 UTC.")
    await page.get_by_test_id("launch-price").fill("1000")
    async with page.expect_response(
        lambda r: r.url.endswith("/api/agency/launches") and r.request.method == "POST"
    ) as answer:
        await page.get_by_test_id("launch-submit").click()
    created = (await (await answer.value).json())["launch"]
    assert created["scheduled_at"].startswith("2031-03-01T00:00:00")
    await expect(page.get_by_test_id("launch-date").locator("time")).to_contain_text(
        "Mar 1, 2031, 09:00 GMT+9"
    )
