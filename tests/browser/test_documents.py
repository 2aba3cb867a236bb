"""Documents and the inbox in the browser, at desktop and phone width: a traveler downloads the e-ticket,
an agency an invoice, finance an invoice, and a message opens in the inbox with its full text."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from pypdf import PdfReader

from tests.browser.conftest import SCREENSHOTS, Site

pytestmark = pytest.mark.browser
WIDE = {"width": 1366, "height": 900}
HIGHLIGHTED = re.compile(r"\bhighlight\b")
WIDTHS = pytest.mark.parametrize("phone", [False, True], ids=["1366", "390"])


async def open_page(site: Site, name: str, account: Any, phone: bool) -> Page:
    page = await site.login(name, account, phone=phone)
    if not phone:
        await page.set_viewport_size(WIDE)  # type: ignore[arg-type]
    return page


async def downloaded_pdf(page: Page, button: Any) -> tuple[str, str, int]:
    """Click `button`, wait for the download; its file name, its text and its page count."""
    async with page.expect_download() as info:
        await button.click()
    download = await info.value
    path = await download.path()
    assert path is not None
    data = await asyncio.to_thread(Path(path).read_bytes)
    assert data.startswith(b"%PDF-"), data[:20]
    reader = PdfReader(io.BytesIO(data))
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    return download.suggested_filename, text, len(reader.pages)


async def shot(site: Site, page: Page, name: str) -> None:
    folder = Path(SCREENSHOTS)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"documents-{name}.png"), full_page=True)


async def no_sideways_scroll(page: Page) -> None:
    width = await page.evaluate("window.innerWidth")
    assert await page.evaluate("document.documentElement.scrollWidth") <= width


@WIDTHS
async def test_traveler_downloads_the_ticket_of_a_booking(
    site: Site, make_agency: Any, make_traveler: Any, make_launch: Any, phone: bool
) -> None:
    traveler = await make_traveler()
    launch = await make_launch(await make_agency())
    booking = await site.book(traveler, launch["id"], 2)
    page = await open_page(site, "traveler", traveler, phone)
    # the e-mail's link: #bookings/<id> shows that booking
    await page.goto(f"/traveler#bookings/{booking['id']}")
    row = page.locator(f"[data-booking-id='{booking['id']}']")
    await expect(row).to_have_class(HIGHLIGHTED)
    button = row.get_by_test_id("ticket-download")
    await expect(button).to_have_text("Download ticket")
    name, text, pages = await downloaded_pdf(page, button)
    assert name == f"astrobookings-ticket-{booking['id']}.pdf"
    assert pages >= 1
    assert booking["id"] in text and launch["mission"] in text
    assert "Passengers (2 seats)" in text
    zone = await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert f"({zone}, UTC" in text  # the launch time in the browser's own zone, beside UTC
    await no_sideways_scroll(page)
    await shot(site, page, f"traveler-ticket-{'390' if phone else '1366'}")


@WIDTHS
async def test_agency_downloads_an_invoice_pdf(
    site: Site, make_agency: Any, make_traveler: Any, make_launch: Any, phone: bool
) -> None:
    agency = await make_agency()
    launch = await make_launch(agency)
    await site.book(await make_traveler(), launch["id"], 1)
    resp = await site.client.post(
        f"/api/agency/launches/{launch['id']}/status", headers=agency.headers, json={"status": "aborted"}
    )
    assert resp.status == 200, await resp.text()  # an aborted launch is invoiced the flat fee at once
    listed = await site.client.get("/api/agency/invoices", headers=agency.headers)
    [invoice] = (await listed.json())["items"]
    page = await open_page(site, "agency", agency, phone)
    await page.goto(f"/agency#invoices/{invoice['id']}")  # the link of the invoice's e-mail
    row = page.locator(f"[data-testid='invoice-row'][data-invoice-id='{invoice['id']}']")
    await expect(row).to_have_class(re.compile(r"\bselected\b"))
    number = invoice["number"]
    button = row.get_by_test_id("invoice-pdf")
    await button.scroll_into_view_if_needed()
    name, text, pages = await downloaded_pdf(page, button)
    assert name == f"{number}.pdf" and pages >= 1
    assert f"Invoice {number}" in text and "Flat fee for the aborted launch" in text
    assert "$1,000.00" in text and "BILL TO" in text
    await shot(site, page, f"agency-invoice-{'390' if phone else '1366'}")


async def test_finance_downloads_an_opened_invoice(
    site: Site, make_agency: Any, make_traveler: Any, make_launch: Any, make_employee: Any
) -> None:
    agency = await make_agency()
    launch = await make_launch(agency)
    await site.book(await make_traveler(), launch["id"], 1)
    resp = await site.client.post(
        f"/api/agency/launches/{launch['id']}/status", headers=agency.headers, json={"status": "aborted"}
    )
    assert resp.status == 200
    page = await open_page(site, "finance", await make_employee("finance"), False)
    await page.goto("/system#invoices")
    await page.get_by_test_id("invoice-open").first.click()
    detail = page.get_by_test_id("invoice-detail")
    await expect(detail).to_be_visible()
    name, text, _ = await downloaded_pdf(page, detail.get_by_test_id("invoice-pdf"))
    assert name.startswith("INV-") and name.removesuffix(".pdf") in text


@WIDTHS
async def test_a_message_opens_in_the_inbox_with_its_full_text(
    site: Site, make_agency: Any, make_traveler: Any, make_launch: Any, phone: bool
) -> None:
    traveler = await make_traveler()
    launch = await make_launch(await make_agency(), destination="moon")
    booking = await site.book(traveler, launch["id"], 1)
    page = await open_page(site, "traveler", traveler, phone)
    await page.goto("/traveler#inbox")
    subject = page.get_by_test_id("inbox-subject").first
    await expect(subject).to_have_text(f"Booking confirmed: 1 seat on {launch['mission']}")
    await subject.click()
    message = page.get_by_test_id("inbox-message")
    await expect(message.get_by_test_id("message-subject")).to_have_text(
        f"Booking confirmed: 1 seat on {launch['mission']}"
    )
    await expect(message.get_by_test_id("message-subject")).to_be_focused()
    body = message.get_by_test_id("message-body")
    await expect(body).to_contain_text(f"Booking {booking['id']}: 1 seat on {launch['mission']} to the Moon")
    ticket = body.get_by_role("link", name=f"/traveler#bookings/{booking['id']}")
    await expect(ticket).to_be_visible()
    await no_sideways_scroll(page)
    await shot(site, page, f"inbox-message-{'390' if phone else '1366'}")

    # the address it opened at opens it again; the link in it leads to the booking and its ticket
    assert page.url.endswith(f"#inbox/{await message.get_attribute('data-id')}")
    await page.reload()
    await expect(page.get_by_test_id("message-body")).to_contain_text(f"Booking {booking['id']}")
    link = page.get_by_test_id("message-body").get_by_role("link", name="/traveler#bookings/")
    href = await link.get_attribute("href")
    assert href is not None and href.endswith(f"/traveler#bookings/{booking['id']}")
    await page.goto(href[href.index("/traveler") :])  # ASTRO_PUBLIC_URL is not this test's port
    await expect(page.locator(f"[data-booking-id='{booking['id']}']")).to_have_class(HIGHLIGHTED)
    await page.goto("/traveler#inbox")
    await page.get_by_test_id("inbox-open").first.click()
    await page.get_by_test_id("message-close").click()
    await expect(page.get_by_test_id("inbox-message")).to_have_count(0)
