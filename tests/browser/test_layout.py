"""Layout in Chromium: no page of any app scrolls sideways on a phone (390 px, measured), even with a
270-character word in a mission and a long agency name; tables keep their actions in view; the header
keeps one line; amounts never split; a mistyped address is an HTML page. Every page is photographed
(test-artifacts/phone/, not committed)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import PHONE, Site
from tests.conftest import Account
from web.clients import PG_POOL
from web.keys import SETTINGS

pytestmark = pytest.mark.browser

SHOTS = Path("test-artifacts") / "phone"
LONG_WORD = "Supercalifragilisticexpialidocious" * 8  # 272 characters, not one space
LONG_AGENCY = "Interplanetary Passenger Transport Consolidated Holdings of the Outer Solar System Ltd"
APP_VIEWS = {
    "traveler": ["bookings", "book", "profile", "inbox"],
    "agency": ["dashboard", "schedule", "rockets", "reports", "invoices", "profile", "inbox"],
    "finance": ["invoices", "agencies", "annual", "reconciliation"],
    "it": ["users", "logs", "queue", "mailbox", "sync", "metrics", "changes", "nodes"],
}
APP_PATH = {"traveler": "/traveler", "agency": "/agency", "finance": "/system", "it": "/system"}


@dataclass
class World:
    agency: Account
    traveler: Account
    finance: Account
    it: Account
    open_launch: dict[str, Any]
    aborted_launch: dict[str, Any]


async def make_world(
    site: Site, make_agency: Any, make_traveler: Any, make_employee: Any, make_launch: Any, *, long: bool
) -> World:
    """An agency with an open launch (booked) and an aborted one (invoiced); with `long`, a long agency
    name and a 272-character word as both missions (the API takes 120 characters; older data may hold
    more, so the word is written to PostgreSQL and the launch cache, rebuilt from it, is dropped)."""
    agency = await make_agency(name=LONG_AGENCY) if long else await make_agency()
    traveler, finance, it = await make_traveler(), await make_employee("finance"), await make_employee("it")
    open_launch = await make_launch(agency, capacity=20, min_passengers=2, price_cents=58_800_000)
    aborted = await make_launch(agency, capacity=20, min_passengers=2, price_cents=58_800_000)
    await site.book(traveler, open_launch["id"], 2)
    await site.book(traveler, aborted["id"], 1)
    resp = await site.client.post(
        f"/api/agency/launches/{aborted['id']}/status", headers=agency.headers, json={"status": "aborted"}
    )
    assert resp.status == 200, await resp.text()
    if long:
        await site.app[PG_POOL].execute("UPDATE launches SET mission = $1", LONG_WORD)
        await site.app[PG_POOL].execute("UPDATE travelers SET name = $1", LONG_WORD[:200])
        await drop_launch_cache(site.client.app[SETTINGS].redis_url or "")
        open_launch = {**open_launch, "mission": LONG_WORD}
    return World(agency, traveler, finance, it, open_launch, aborted)


async def drop_launch_cache(redis_url: str) -> None:
    """Redis is a cache: every launch card is rebuilt from PostgreSQL when it is missing."""
    import redis.asyncio as aioredis

    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def settled(page: Page) -> None:
    """The page has drawn what it loads: no request in flight, no "Loading…" left."""
    await page.wait_for_load_state("networkidle")
    await expect(page.locator("main .loading")).to_have_count(0)


async def fits(page: Page, name: str, folder: Path) -> int:
    """The page's measured width (it must fit the phone); a full-page screenshot is saved."""
    await settled(page)
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    return width


async def every_page_fits_a_phone(site: Site, w: World, folder: Path) -> dict[str, int]:
    """Visit every page of every app at 390 px; the width of each that is too wide."""
    too_wide: dict[str, int] = {}

    async def check(page: Page, name: str) -> None:
        width = await fits(page, name, folder)
        if width > PHONE["width"]:
            too_wide[name] = width

    visitor = await site.page("visitor", phone=True)
    for name, path in [
        ("public-list", "/"),
        ("public-launch", f"/launches/{w.open_launch['slug']}"),
        ("public-aborted", f"/launches/{w.aborted_launch['slug']}"),
        ("not-found", "/nonexistent-page"),
        ("auth-login", "/auth"),
        ("auth-register", "/auth#register"),
    ]:
        await visitor.goto(path)
        await check(visitor, name)
    for role, views in APP_VIEWS.items():
        account = {"traveler": w.traveler, "agency": w.agency, "finance": w.finance, "it": w.it}[role]
        page = await site.login(role, account, phone=True)
        for view in views:
            await page.goto(f"{APP_PATH[role]}#{view}")
            await expect(page.get_by_test_id(f"view-{view}").locator("h1")).to_be_visible()
            await check(page, f"{role}-{view}")
        if role == "agency":
            await page.goto(f"/agency#launch/{w.open_launch['id']}")
            await expect(page.get_by_test_id("manifest-row")).to_have_count(1)
            await check(page, "agency-launch")
        if role == "finance":
            await page.goto("/system#invoices")
            await page.get_by_test_id("invoice-open").first.click()
            await expect(page.get_by_test_id("invoice-detail")).to_be_visible()
            await check(page, "finance-invoice-open")
    return too_wide


async def test_no_page_of_any_app_scrolls_sideways_on_a_phone(
    site: Site,
    request: pytest.FixtureRequest,
    make_agency: Any,
    make_traveler: Any,
    make_employee: Any,
    make_launch: Any,
) -> None:
    w = await make_world(site, make_agency, make_traveler, make_employee, make_launch, long=False)
    folder = request.config.rootpath / SHOTS / "plain"
    assert await every_page_fits_a_phone(site, w, folder) == {}
    assert len(list(folder.glob("*.png"))) >= 30


async def test_a_270_character_word_and_a_long_agency_name_do_not_widen_any_page(
    site: Site,
    request: pytest.FixtureRequest,
    make_agency: Any,
    make_traveler: Any,
    make_employee: Any,
    make_launch: Any,
) -> None:
    w = await make_world(site, make_agency, make_traveler, make_employee, make_launch, long=True)
    folder = request.config.rootpath / SHOTS / "long-words"
    assert await every_page_fits_a_phone(site, w, folder) == {}

    # The long name keeps the phone header to one line of account (an ellipsis; the full name on hover).
    page = site.pages["agency"]
    who = page.get_by_test_id("session-user")
    await expect(who).to_have_attribute("title", f"{LONG_AGENCY} · agency")
    box = await who.bounding_box()
    line = await who.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    assert box is not None and box["height"] <= line * 1.5, box
    header = await page.locator("header.site-header .bar").bounding_box()
    assert header is not None and header["height"] < 130, header

    # The mission wraps inside the screen on the public page.
    visitor = site.pages["visitor"]
    await visitor.goto(f"/launches/{w.open_launch['slug']}")
    title = visitor.get_by_test_id("launch-mission")
    await expect(title).to_have_text(LONG_WORD)
    box = await title.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]


async def test_amounts_never_split_across_lines(
    site: Site, make_agency: Any, make_traveler: Any, make_employee: Any, make_launch: Any
) -> None:
    w = await make_world(site, make_agency, make_traveler, make_employee, make_launch, long=True)
    page = await site.login("agency", w.agency, phone=True)
    # $1,176,000.00 of booked value: the tile holds it on one line.
    value = page.get_by_test_id("booked-value").first
    await expect(value).to_have_text("$1,176,000.00")
    for testid in ("booked-value", "seats-booked-total"):
        el = page.get_by_test_id(testid).first
        lines = await el.evaluate(
            "e => Math.round(e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight))"
        )
        assert lines == 1, testid
    await page.goto("/agency#invoices")
    amounts = page.get_by_test_id("invoices-table").locator("td.num")
    await expect(amounts.first).to_be_visible()
    for cell in await amounts.all():
        style = await cell.evaluate("e => getComputedStyle(e).whiteSpace")
        assert style == "nowrap"
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


async def test_phone_tables_are_cards_with_labelled_values_and_the_pay_button_in_reach(
    site: Site, make_agency: Any, make_traveler: Any, make_employee: Any, make_launch: Any
) -> None:
    w = await make_world(site, make_agency, make_traveler, make_employee, make_launch, long=False)
    page = await site.login("agency", w.agency, phone=True)
    await page.goto("/agency#invoices")
    row = page.get_by_test_id("invoice-row").first
    await expect(row).to_be_visible()
    assert await row.evaluate("r => getComputedStyle(r).display") == "block"  # a card, not a table row
    await expect(row.locator('td[data-label="Balance"]')).to_have_text("$1,000.00")
    pay = row.get_by_test_id("invoice-pay")
    box = await pay.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    await pay.click()
    await expect(page.get_by_test_id("pay-form")).to_be_visible()

    # The occupancy table: the launch name has the card's width, not a sliver of it.
    await page.goto("/agency#dashboard")
    name = page.get_by_test_id("occupancy-row").first.get_by_test_id("launch-link")
    await expect(name).to_be_visible()
    box = await name.bounding_box()
    assert box is not None and box["height"] < 60, box  # at most two lines of "Tranquility tour"
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


async def test_finance_invoices_at_1366_px_show_the_open_button_without_scrolling(
    site: Site, make_agency: Any, make_traveler: Any, make_employee: Any, make_launch: Any
) -> None:
    w = await make_world(site, make_agency, make_traveler, make_employee, make_launch, long=True)
    page = await site.login("finance", w.finance)
    await page.set_viewport_size({"width": 1366, "height": 900})
    await page.goto("/system#invoices")
    open_button = page.get_by_test_id("invoice-open").first
    await expect(open_button).to_be_in_viewport()
    box = await open_button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1366, box
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1366
    await open_button.click()
    await expect(page.get_by_test_id("invoice-detail")).to_be_visible()
    await expect(page.get_by_test_id("transfer-form")).to_be_visible()
    # The number opens it too.
    await page.get_by_test_id("invoice-number").first.get_by_role("button").click()
    await expect(page.get_by_test_id("invoice-detail")).to_be_visible()


async def test_a_mistyped_address_shows_a_page_with_a_way_on(site: Site) -> None:
    for phone in (False, True):
        page = await site.page(f"visitor-{phone}", phone=phone)
        resp = await page.goto("/nonexistent-page")
        assert resp is not None and resp.status == 404
        await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        await expect(page.get_by_test_id("not-found-path")).to_have_text("/nonexistent-page")
        assert await page.evaluate("document.documentElement.scrollWidth") <= (390 if phone else 1280)
        await page.get_by_test_id("not-found-home").click()
        await page.wait_for_url("**/")
        await expect(page.get_by_test_id("launch-list")).to_be_attached()
