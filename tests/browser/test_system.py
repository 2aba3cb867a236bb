"""SystemWeb for IT in the browser: sync job progress, log filters and export, metric charts, and
every operations view at phone width."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import PHONE, Site
from web.clients import PG_POOL
from web.monitoring import LOG_SHIPPER, SAMPLER

pytestmark = pytest.mark.browser

IT_VIEWS = ["logs", "queue", "mailbox", "sync", "metrics", "changes"]


async def shown(page: Page, testid: str, key: str) -> list[str]:
    """The data-<key> of every element with this test id, in page order."""
    return await page.get_by_test_id(testid).evaluate_all(  # type: ignore[no-any-return]
        f"els => els.map(e => e.dataset.{key})"
    )


async def test_a_sync_job_shows_its_progress_live_until_100_percent(
    site: Site, make_employee: Any, make_agency: Any, make_launch: Any
) -> None:
    agency = await make_agency()
    for _ in range(3):
        await make_launch(agency)
    page = await site.login("it", await make_employee("it"))
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/api/system/sync/jobs/" in r.url else None)
    await page.get_by_test_id("nav-sync").click()
    await expect(page.get_by_test_id("no-jobs")).to_be_visible()
    await page.get_by_label("Everything").check()
    await page.get_by_test_id("sync-start").click()

    job = page.get_by_test_id("job")
    await expect(job).to_have_count(1)
    await expect(job).to_have_attribute("data-kind", "all")
    await expect(job.get_by_test_id("job-status")).to_have_attribute("data-value", "completed")
    bar = job.get_by_test_id("job-progress")
    await expect(bar).to_have_attribute("data-percent", "100")
    await expect(bar).to_have_attribute("aria-valuenow", "100")
    await expect(job.get_by_test_id("job-percent")).to_have_text("100 %")
    await expect(job.get_by_test_id("job-count")).to_contain_text(" of ")
    await expect(job.get_by_test_id("job-finished")).to_contain_text("took")
    await expect(job.get_by_test_id("job-errors")).to_have_text("None")
    await expect(page.get_by_test_id("sync-announcer")).to_contain_text("Everything sync completed")
    assert polls, "the job's progress was never asked for"
    count = len(polls)
    await page.wait_for_timeout(1100)  # longer than the poll interval: a finished job is not asked again
    assert len(polls) == count


async def test_logs_filter_by_request_id_and_text_and_export_what_they_show(
    site: Site, make_employee: Any, make_agency: Any, make_traveler: Any, make_launch: Any, tmp_path: Path
) -> None:
    launch = await make_launch(await make_agency(), capacity=10)
    booking = await site.book(await make_traveler(), launch["id"], 2, request_id="trace-booking-1")
    await site.client.get("/api/booking/launches", headers={"X-Request-ID": "trace-other-2"})
    await site.app[LOG_SHIPPER].flush()
    page = await site.login("it", await make_employee("it"))
    await page.get_by_test_id("nav-logs").click()

    await page.get_by_label("Request id", exact=True).fill("trace-booking-1")
    await page.get_by_test_id("logs-apply").click()
    await expect(page.get_by_test_id("logs-count")).not_to_have_attribute("data-value", "0")
    # The filtered list has replaced the first one: no row of another request is left.
    other = page.locator('[data-testid="log-row"]:not([data-request-id="trace-booking-1"])')
    await expect(other).to_have_count(0)
    await expect(page.locator('[data-testid="log-row"][data-message="booking_confirmed"]')).to_have_count(1)
    assert set(await shown(page, "log-row", "requestId")) == {"trace-booking-1"}
    assert {"request", "booking_confirmed"} <= set(await shown(page, "log-row", "message"))
    assert "#logs?request_id=trace-booking-1" in page.url  # the filters are in the address

    # Text and level instead; a click on the request id narrows to that request again.
    await page.get_by_test_id("logs-clear").click()
    await page.get_by_label("Message contains").fill("booking_confirmed")
    await page.get_by_label("Level").select_option("info")
    await page.get_by_label("Message contains").press("Enter")
    rows = page.get_by_test_id("log-row")
    await expect(rows).to_have_count(1)
    await expect(rows).to_have_attribute("data-entity-id", booking["id"])
    await rows.get_by_test_id("filter-request_id").click()
    await expect(page.get_by_label("Request id", exact=True)).to_have_value("trace-booking-1")
    await expect(rows).to_have_count(1)
    shown_ids = await shown(page, "log-row", "entryId")

    # The export links carry the same filters, and download exactly the entries shown.
    link = page.get_by_test_id("logs-export-csv")
    href = await link.get_attribute("href") or ""
    for part in ("q=booking_confirmed", "level=info", "request_id=trace-booking-1", "format=csv"):
        assert part in href, href
    async with page.expect_download() as download:
        await link.click()
    path = tmp_path / "logs.csv"
    await (await download.value).save_as(path)
    with path.open(newline="") as f:
        exported = list(csv.DictReader(f))
    assert [r["id"] for r in exported] == shown_ids and exported[0]["entity_id"] == booking["id"]
    async with page.expect_download() as download:
        await page.get_by_test_id("logs-export-ndjson").click()
    await (await download.value).save_as(tmp_path / "logs.ndjson")
    lines = [json.loads(x) for x in (tmp_path / "logs.ndjson").read_text().splitlines()]
    assert [e["id"] for e in lines] == shown_ids and lines[0]["request_id"] == "trace-booking-1"

    # A wrong filter is explained in words, next to the field.
    await page.get_by_test_id("logs-clear").click()
    await page.get_by_label("Service").fill("not a service!")
    await page.get_by_test_id("logs-apply").click()
    error = page.get_by_test_id("error-banner")
    await expect(error).to_contain_text("Please check: service")
    await expect(page.get_by_label("Service")).to_have_attribute("aria-invalid", "true")


async def test_metric_charts_draw_the_samples_of_the_chosen_period(site: Site, make_employee: Any) -> None:
    sampler = site.app[SAMPLER]
    for _ in range(4):
        await site.client.get("/health")
        await sampler.sample_and_store()
    page = await site.login("it", await make_employee("it"))
    await page.get_by_test_id("nav-metrics").click()
    chart = page.locator('[data-testid="metric-chart"][data-name="http_requests_total"]')
    await expect(chart).to_be_visible()
    assert int(await chart.get_attribute("data-points") or 0) >= 4
    line = chart.locator("svg path[data-testid=chart-line]")
    await expect(line).to_have_count(1)
    assert (await line.get_attribute("d") or "").count("L") >= 3  # a line through the samples
    described = re.compile(r"^HTTP requests .*samples")
    await expect(chart.locator("svg")).to_have_attribute("aria-label", described)

    # One metric over the last 15 minutes, then a period in the past with no samples at all.
    await page.get_by_label("Metric", exact=True).select_option("http_requests_total")
    await page.get_by_label("Period", exact=True).select_option("15m")
    await page.get_by_test_id("metrics-apply").click()
    await expect(page.get_by_test_id("metric-chart")).to_have_count(1)
    await page.get_by_label("Period", exact=True).select_option("custom")
    await page.get_by_label("From (UTC)").fill("2020-01-01T00:00:00")
    await page.get_by_label("Until (UTC)").fill("2020-01-02T00:00:00")
    await page.get_by_test_id("metrics-apply").click()
    await expect(page.get_by_test_id("chart-empty")).to_have_text("No samples in this period.")
    await page.get_by_label("Until (UTC)").fill("2019-01-01T00:00:00")
    await page.get_by_test_id("metrics-apply").click()
    await expect(page.get_by_test_id("error-banner")).to_have_text('"From" must be before "Until".')


async def test_every_it_view_fits_a_phone_and_labels_its_controls(site: Site, make_employee: Any) -> None:
    page = await site.login("it", await make_employee("it"), phone=True)
    for view in IT_VIEWS:
        await page.goto(f"/system#{view}")
        section = page.get_by_test_id(f"view-{view}")
        await expect(section.locator("h1")).to_be_visible()
        await expect(section.get_by_test_id("coming-soon")).to_have_count(0)
        await expect(section.locator("form").first).to_be_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{view} is {width}px wide"
        unlabelled = await section.evaluate(
            """s => [...s.querySelectorAll('input, select, textarea')]
                  .filter(c => c.type !== 'hidden' && !c.labels.length && !c.getAttribute('aria-label'))
                  .map(c => c.name || c.id)"""
        )
        assert unlabelled == [], f"{view}: controls without a label: {unlabelled}"


async def test_the_nodes_view_lists_each_node_and_refreshes(
    site: Site, make_employee: Any, make_agency: Any, make_launch: Any
) -> None:
    launch = await make_launch(await make_agency())
    pool = site.client.app[PG_POOL]
    await pool.execute(
        """INSERT INTO nodes (name, holder, url, pid, heartbeat_at, stopped_at) VALUES
             ('zz-one', 'zz-one/21/r1', 'http://127.0.0.1:4101', 21, now(), NULL),
             ('zz-two', 'zz-two/22/r1', 'http://127.0.0.1:4102', 22, now() - interval '1 minute', NULL)"""
    )
    page = await site.login("it", await make_employee("it"), phone=True)
    await page.get_by_test_id("nav-nodes").click()
    rows = page.get_by_test_id("node-row").filter(has_text="zz-")
    await expect(rows).to_have_count(2)
    assert await shown(page, "node-row", "name") == sorted(await shown(page, "node-row", "name"))
    one, two = rows.nth(0), rows.nth(1)
    await expect(one).to_have_attribute("data-name", "zz-one")
    await expect(one.get_by_test_id("node-state")).to_have_attribute("data-value", "alive")
    await expect(one.get_by_test_id("node-owned")).to_have_text("0")
    await expect(one).to_contain_text("http://127.0.0.1:4101")
    await expect(two.get_by_test_id("node-state")).to_have_attribute("data-value", "silent")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"nodes is {width}px wide"
    # zz-two stops; zz-one takes a launch: shown after a refresh.
    await pool.execute("UPDATE nodes SET stopped_at = now() WHERE name = 'zz-two'")
    await pool.execute(
        """INSERT INTO launch_leases (launch_id, epoch, node, holder, url, expires_at)
           VALUES ($1, 1, 'zz-one', 'zz-one/21/r1', 'http://127.0.0.1:4101', now() + interval '1 hour')""",
        launch["id"],
    )
    await page.get_by_test_id("nodes-refresh").click()
    await expect(two.get_by_test_id("node-state")).to_have_attribute("data-value", "stopped")
    await expect(one.get_by_test_id("node-owned")).to_have_text("1")
    await expect(one).to_have_attribute("data-owned", "1")
    await expect(page.get_by_test_id("nodes-summary")).to_contain_text("lease 5 s")


async def test_it_verifies_a_pending_agency_in_the_users_view_and_its_launch_becomes_public(
    site: Site, make_employee: Any, make_agency: Any, make_launch: Any
) -> None:
    it = await make_employee("it")
    pending = await make_agency(verify=False, name="Pending Rockets")
    verified = await make_agency(name="Known Rockets")
    launch = await make_launch(pending)
    listed = await (await site.client.get("/api/booking/launches")).json()
    assert launch["id"] not in [x["id"] for x in listed["items"]]
    page = await site.login("it", it)
    await page.get_by_test_id("users-role").select_option("agency")
    await page.get_by_test_id("users-filters").get_by_role("button", name="Show").click()
    rows = page.get_by_test_id("user-row")
    await expect(rows).to_have_count(2)
    known = page.locator(f'[data-testid="user-row"][data-user-id="{verified.id}"]')
    await expect(known.get_by_test_id("agency-verification")).to_have_attribute("data-verified", "true")
    await expect(known.get_by_test_id("agency-verification")).to_have_text("Verified")
    await expect(known.get_by_test_id("verify-agency")).to_have_count(0)
    row = page.locator(f'[data-testid="user-row"][data-user-id="{pending.id}"]')
    cell = row.get_by_test_id("agency-verification")
    await expect(cell).to_have_attribute("data-verified", "false")
    await expect(cell).to_contain_text("Pending")

    await row.get_by_role("button", name="Verify Pending Rockets").click()
    await expect(page.get_by_test_id("users-result")).to_contain_text("Pending Rockets is verified")
    await expect(row.get_by_test_id("agency-verification")).to_have_attribute("data-verified", "true")
    await expect(row.get_by_test_id("verify-agency")).to_have_count(0)
    listed = await (await site.client.get("/api/booking/launches")).json()
    assert launch["id"] in [x["id"] for x in listed["items"]]
    # What the page shows is what is stored: a reload still shows the agency verified.
    await page.reload()
    await page.get_by_test_id("users-role").select_option("agency")
    await page.get_by_test_id("users-filters").get_by_role("button", name="Show").click()
    again = page.locator(f'[data-testid="user-row"][data-user-id="{pending.id}"]')
    await expect(again.get_by_test_id("agency-verification")).to_have_attribute("data-verified", "true")
