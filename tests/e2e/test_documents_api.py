"""The documents as PDF through HTTP: a traveler's e-ticket and receipt, an agency's invoice, finance's."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from astro.domain.clock import FixedClock
from tests.conftest import agency_body, register, traveler_body
from tests.e2e.test_finance_api import B, F, book, launch, status

A = "/api/agency"


@pytest.fixture
async def world(make_client: Any, make_employee: Any) -> Any:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    client = await make_client(clock=clock)

    class World:
        pass

    w = World()
    w.client, w.clock = client, clock  # type: ignore[attr-defined]
    w.agency = await register(client, agency_body())  # type: ignore[attr-defined]
    w.other_agency = await register(client, agency_body())  # type: ignore[attr-defined]
    w.traveler = await register(client, traveler_body())  # type: ignore[attr-defined]
    w.stranger = await register(client, traveler_body())  # type: ignore[attr-defined]
    w.finance = await make_employee("finance")  # type: ignore[attr-defined]
    return w


def pdf_text(body: bytes) -> tuple[str, int]:
    """The text of every page, and how many pages there are."""
    reader = PdfReader(io.BytesIO(body))
    text = " ".join(page.extract_text() for page in reader.pages)
    return " ".join(text.split()), len(reader.pages)  # a wrapped line reads on


async def get_pdf(w: Any, path: str, headers: dict[str, str]) -> tuple[str, int, str]:
    resp = await w.client.get(path, headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/pdf"
    body = await resp.read()
    assert body.startswith(b"%PDF-")
    text, pages = pdf_text(body)
    return text, pages, resp.headers["Content-Disposition"]


async def test_traveler_downloads_the_ticket_of_their_booking_with_its_reference_and_local_time(
    world: Any,
) -> None:
    w = world
    lch = await launch(w, price=123_457, days=40)
    booking = await book(w, lch["id"], 2)
    text, pages, disposition = await get_pdf(
        w, f"{B}/bookings/{booking['id']}/ticket.pdf?tz=Asia/Tokyo", w.traveler.headers
    )
    assert pages >= 1
    assert booking["id"] in text
    assert disposition == f'attachment; filename="astrobookings-ticket-{booking["id"]}.pdf"'
    at = datetime.fromisoformat(lch["scheduled_at"])
    assert at.strftime("%Y-%m-%d %H:%M UTC") in text  # UTC
    tokyo = at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{tokyo.strftime('%B %Y, %H:%M')} JST (Asia/Tokyo, UTC+09:00)" in text  # the traveler's zone
    for expected in ("Ledger run", "Mars", "Passenger 0", "Passenger 1", "1990-05-17", "$2,469.14"):
        assert expected in text, expected
    assert "Refunds none" in text and "Passengers (2 seats)" in text


async def test_ticket_of_a_cancelled_booking_is_a_receipt_with_its_refund(world: Any) -> None:
    w = world
    lch = await launch(w, days=400)
    booking = await book(w, lch["id"], 2)
    resp = await w.client.post(f"{B}/bookings/{booking['id']}/cancel", headers=w.traveler.headers)
    assert resp.status == 200
    text, _, _ = await get_pdf(w, f"{B}/bookings/{booking['id']}/ticket.pdf", w.traveler.headers)
    flat = text
    assert "CANCELLED" in flat and "not valid for boarding" in flat
    assert "$2,222.23 (90 % of the total)" in flat  # 246_914 x 0.9, half up
    assert "(UTC, UTC+00:00)" in flat  # no tz: UTC


async def test_ticket_is_404_to_another_traveler_401_anonymous_and_400_for_an_unknown_zone(
    world: Any,
) -> None:
    w = world
    lch = await launch(w)
    booking = await book(w, lch["id"], 1)
    path = f"{B}/bookings/{booking['id']}/ticket.pdf"
    resp = await w.client.get(path, headers=w.stranger.headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    missing = await w.client.get(f"{B}/bookings/bkg_nope/ticket.pdf", headers=w.stranger.headers)
    theirs, none = (await resp.json())["error"], (await missing.json())["error"]
    assert (theirs["code"], theirs["message"]) == (none["code"], none["message"])  # nothing tells them apart
    resp = await w.client.get(path)
    assert resp.status == 401
    resp = await w.client.get(path, headers=w.agency.headers)
    assert resp.status == 403
    for bad in ("Mars/Olympus_Mons", "../../etc/passwd", "Europe", "x" * 300, "America/New York"):
        resp = await w.client.get(path, params={"tz": bad}, headers=w.traveler.headers)
        assert resp.status == 400, bad
        body = await resp.json()
        assert body["error"]["code"] == "invalid_input" and "tz" in body["error"]["details"]["fields"]


async def invoice_of_flown_launch(w: Any) -> dict[str, Any]:
    lch = await launch(w, price=1_000_000)
    await book(w, lch["id"], 3)
    w.clock.advance(timedelta(days=30))
    assert (await status(w, lch["id"], "successful")).status == 200
    resp = await w.client.get(f"{A}/invoices", headers=w.agency.headers)
    [invoice] = (await resp.json())["items"]
    return invoice  # type: ignore[no-any-return]


async def test_agency_downloads_its_invoice_with_both_parties_lines_totals_payments_and_due_date(
    world: Any,
) -> None:
    w = world
    invoice = await invoice_of_flown_launch(w)
    paid = await w.client.post(
        f"{A}/invoices/{invoice['id']}/payments",
        headers=w.agency.headers,
        json={"amount_cents": 10_000, "card_token": "tok_ok"},
    )
    assert paid.status == 201, await paid.text()
    text, pages, disposition = await get_pdf(w, f"{A}/invoices/{invoice['id']}.pdf", w.agency.headers)
    assert pages >= 1
    assert disposition == f'attachment; filename="{invoice["number"]}.pdf"'
    flat = text
    profile = await (await w.client.get(f"{A}/profile", headers=w.agency.headers)).json()
    for expected in (
        invoice["number"],
        profile["legal_name"],
        profile["tax_id"],
        profile["legal_address"],
        "AstroBookings",
        "1 % of its net revenue $30,000.00",
        "Total $300.00",
        "Paid $100.00",
        "Balance due $200.00",
        f"Due date {invoice['due_at'][:10]}",
        "card",
    ):
        assert expected in flat, expected


async def test_finance_downloads_any_invoice_and_the_platform_legal_data_comes_from_config(
    make_client: Any, make_employee: Any
) -> None:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    client = await make_client(
        clock=clock,
        company_name="Orbit Ops S.L.",
        company_address="Calle Luna 1, Madrid",
        company_tax_id="ESB123",
    )

    class W:
        pass

    w = W()
    w.client, w.clock = client, clock  # type: ignore[attr-defined]
    w.agency = await register(client, agency_body())  # type: ignore[attr-defined]
    w.traveler = await register(client, traveler_body())  # type: ignore[attr-defined]
    finance = await make_employee("finance")
    invoice = await invoice_of_flown_launch(w)
    text, _, _ = await get_pdf(w, f"{F}/invoices/{invoice['id']}.pdf", finance.headers)
    flat = text
    for expected in ("Orbit Ops S.L.", "Calle Luna 1, Madrid", "Tax ID: ESB123", invoice["number"]):
        assert expected in flat, expected


async def test_invoice_pdf_is_404_to_another_agency_and_for_none_and_403_401_to_others(world: Any) -> None:
    w = world
    invoice = await invoice_of_flown_launch(w)
    resp = await w.client.get(f"{A}/invoices/{invoice['id']}.pdf", headers=w.other_agency.headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await w.client.get(f"{F}/invoices/inv_nope.pdf", headers=w.finance.headers)
    assert resp.status == 404
    assert (await w.client.get(f"{A}/invoices/{invoice['id']}.pdf")).status == 401
    assert (await w.client.get(f"{F}/invoices/{invoice['id']}.pdf", headers=w.agency.headers)).status == 403
    # the JSON invoice is still there beside its PDF
    resp = await w.client.get(f"{F}/invoices/{invoice['id']}", headers=w.finance.headers)
    assert resp.status == 200 and (await resp.json())["invoice"]["number"] == invoice["number"]


async def test_openapi_declares_the_documents_as_pdf(world: Any) -> None:
    spec = await (await world.client.get("/api/openapi.json")).json()
    for path in (
        "/api/booking/bookings/{id}/ticket.pdf",
        "/api/agency/invoices/{id}.pdf",
        "/api/finance/invoices/{id}.pdf",
    ):
        op = spec["paths"][path]["get"]
        assert "application/pdf" in op["responses"]["200"]["content"], path
        assert [p["name"] for p in op["parameters"] if p["in"] == "path"] == ["id"]
    ticket = spec["paths"]["/api/booking/bookings/{id}/ticket.pdf"]["get"]
    assert any(p["name"] == "tz" for p in ticket["parameters"])
    assert re.search(r"404", " ".join(ticket["responses"]))
