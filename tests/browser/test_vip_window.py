"""The VIP window (DESIGN 5) said where people meet it: the agency's schedule form, and the page a
non-VIP opens from a shared link (why it is closed, when it opens to everyone), at both widths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import DESKTOP, PHONE, Site

pytestmark = pytest.mark.browser


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"vip_window": 86400}


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_the_schedule_form_explains_the_vip_window(
    site: Site, phone: bool, make_agency: Any, make_launch: Any
) -> None:
    agency = await make_agency()
    await make_launch(agency)  # a rocket to schedule on
    page = await site.login("agency", agency, phone=phone)
    await page.goto("/agency#schedule")
    note = page.get_by_test_id("vip-window-note")
    await expect(note).to_contain_text("VIP window: 24 hours.")
    await expect(note).to_contain_text("shown only to VIP travelers")
    await expect(note).to_contain_text("public from")
    assert (
        await page.evaluate("document.documentElement.scrollWidth") <= (PHONE if phone else DESKTOP)["width"]
    )

    await page.get_by_test_id("launch-mission").fill("Window seat")
    await page.get_by_test_id("launch-price").fill("2500")
    await page.get_by_test_id("launch-submit").click()
    await expect(page.get_by_test_id("launch-mission")).to_have_text("Window seat")
    await expect(page.get_by_test_id("public-from")).to_contain_text("Until then only VIP travelers")


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_a_non_vip_opening_a_shared_link_is_told_why_and_when_it_opens(
    site: Site, phone: bool, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    launch = await make_launch(await make_agency())
    public_from = datetime.fromisoformat(launch["public_from"])
    assert public_from - datetime.now(UTC) > timedelta(hours=23)

    visitor = await site.page("visitor", phone=phone)
    await visitor.goto(f"/launches/{launch['slug']}")
    panel = visitor.get_by_test_id("launch-vip-only")
    await expect(panel).to_contain_text("open only to VIP travelers")
    await expect(panel).to_contain_text(
        "A traveler becomes VIP with active bookings on two confirmed launches."
    )
    opens = panel.get_by_test_id("vip-public-from")
    await expect(opens).to_contain_text("It opens to everyone on")
    await expect(opens).to_contain_text("(in 23 hours)")
    stamp = opens.locator("time")
    shown = datetime.fromisoformat((await stamp.get_attribute("datetime") or "").replace("Z", "+00:00"))
    assert abs(shown - public_from) < timedelta(seconds=1)
    await expect(stamp).to_have_attribute(
        "title", f"{public_from:%b} {public_from.day}, {public_from:%Y, %H:%M} UTC"
    )
    await expect(panel.get_by_test_id("vip-login")).to_be_visible()
    assert (
        await visitor.evaluate("document.documentElement.scrollWidth")
        <= (PHONE if phone else DESKTOP)["width"]
    )

    traveler = await site.login("traveler", await make_traveler(), phone=phone)
    await traveler.goto(f"/launches/{launch['slug']}")
    await expect(traveler.get_by_test_id("launch-vip-only")).to_contain_text(
        "You are logged in, but not VIP yet."
    )
