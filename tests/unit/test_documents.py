"""The PDF layouts without I/O: what a ticket and an invoice say, the QR code, names outside the fonts."""

from __future__ import annotations

import io
import re
import zlib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import segno
from pypdf import PdfReader

from astro.domain.errors import InvalidInput
from astro.services import pdf
from astro.services.documents import (
    InvoiceFacts,
    MoneyMove,
    Party,
    TicketFacts,
    TicketPassenger,
    safe_filename,
    zone_of,
)
from astro.services.finance import InvoiceView, PaymentLine

NOW = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
LAUNCH_AT = datetime(2027, 7, 20, 20, 17, tzinfo=UTC)


def ticket_facts(**changes: object) -> TicketFacts:
    values: dict[str, object] = {
        "booking_id": "bkg_01TESTREF",
        "status": "confirmed",
        "seats": 2,
        "price_cents": 123_457,
        "total_cents": 246_914,
        "booked_at": NOW,
        "cancelled_at": None,
        "cancel_reason": None,
        "refund_pct": None,
        "refund_cents": None,
        "mission": "Tranquility tour",
        "destination": "moon",
        "scheduled_at": LAUNCH_AT,
        "launch_status": "confirmed",
        "launch_slug": "falcon-moon-2027-07-20",
        "rocket": "Falcon Z",
        "agency": "Selene Lines",
        "traveler": "Ada Lovelace",
        "traveler_email": "ada@example.com",
        "passengers": (
            TicketPassenger("Ada Lovelace", date(1990, 12, 10)),
            TicketPassenger("Zoë Ørsted", date(1985, 1, 2)),
        ),
        "charge": MoneyMove(246_914, "done", NOW),
        "refund": None,
    }
    values.update(changes)
    return TicketFacts(**values)  # type: ignore[arg-type]


def read(data: bytes) -> tuple[str, int]:
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(p.extract_text() for p in reader.pages).split()), len(reader.pages)


def test_ticket_shows_the_launch_in_the_travelers_zone_and_utc() -> None:
    text, pages = read(pdf.ticket(ticket_facts(), ZoneInfo("America/New_York"), NOW))
    assert pages == 1
    assert "bkg_01TESTREF" in text and "Tranquility tour to Moon, operated by Selene Lines" in text
    assert "Tuesday 20 July 2027, 16:17 EDT (America/New_York, UTC-04:00)" in text
    assert "2027-07-20 20:17 UTC" in text
    assert "Passengers (2 seats)" in text and "Zoë Ørsted 1985-01-02" in text
    assert "2 x seat $1,234.57 $2,469.14" in text and "Refunds none" in text


def test_ticket_of_one_seat_says_seat() -> None:
    one = ticket_facts(seats=1, total_cents=123_457, passengers=(TicketPassenger("Ada", date(1990, 1, 1)),))
    text, _ = read(pdf.ticket(one, ZoneInfo("UTC"), NOW))
    assert "Passengers (1 seat)" in text


def test_a_name_outside_the_built_in_fonts_loses_its_accent_or_becomes_a_question_mark() -> None:
    assert pdf.text("Łukasz Żółć") == "Lukasz Zólc"
    assert pdf.text("Ōtsuka 大塚") == "Otsuka ??"
    text, _ = read(pdf.ticket(ticket_facts(traveler="Łukasz 大塚"), ZoneInfo("UTC"), NOW))
    assert "Lukasz ??" in text


def test_the_qr_code_is_the_references_modules_drawn_as_runs() -> None:
    data = pdf.ticket(ticket_facts(), ZoneInfo("UTC"), NOW)
    stream = b"".join(
        zlib.decompress(s) for s in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.DOTALL)
    )
    filled = len(re.findall(rb" re f\b", stream))
    rows = list(segno.make_qr("bkg_01TESTREF", error="m").matrix_iter(scale=1, border=0))
    runs = sum(len(re.findall(r"1+", "".join("1" if m else "0" for m in row))) for row in rows)
    assert filled >= runs > 0  # every run of dark modules is one filled rectangle


def test_a_cancelled_ticket_is_a_receipt_with_the_refund() -> None:
    facts = ticket_facts(
        status="cancelled",
        cancelled_at=NOW + timedelta(days=1),
        cancel_reason="launch_aborted",
        refund_pct=100,
        refund_cents=246_914,
        refund=MoneyMove(246_914, "pending", NOW + timedelta(days=1)),
    )
    text, _ = read(pdf.ticket(facts, ZoneInfo("UTC"), NOW))
    assert "CANCELLED - not valid for boarding" in text
    assert "the launch was aborted on 2027-03-02 09:30 UTC" in text
    assert "Refund $2,469.14 (100 % of the total), under way" in text and "Net paid $0.00" in text


def test_invoice_names_both_parties_and_adds_up() -> None:
    invoice = InvoiceView(
        "inv_1",
        "INV-2027-000042",
        "agy_1",
        "Selene",
        "lch_1",
        "Tranquility tour",
        "abort_fee",
        0,
        0,
        100_000,
        40_000,
        10_000,
        "partially_paid",
        NOW,
        NOW + timedelta(days=30),
        (PaymentLine("pay_1", 40_000, "transfer", "done", "BANK-77", None, NOW, NOW),),
    )
    seller = Party("AstroBookings", "AstroBookings", None, None, "billing@astro.example")
    buyer = Party("Selene", "Selene Lines Ltd", "1 Crater Rd\nTycho", "TAX-S1", "selene@example.com")
    text, pages = read(pdf.invoice(InvoiceFacts(invoice, seller, buyer, LAUNCH_AT, "moon"), NOW))
    assert pages == 1
    for expected in (
        "Invoice INV-2027-000042",
        "address not configured (ASTRO_COMPANY_ADDRESS)",
        "Selene Lines Ltd trading as Selene 1 Crater Rd Tycho Tax ID: TAX-S1",
        "Flat fee for the aborted launch Tranquility tour $1,000.00",
        "Total $1,000.00 Paid $400.00 Card payment under way $100.00 Balance due $600.00",
        "Due date 2027-03-31",
        "transfer BANK-77 paid $400.00",
    ):
        assert expected in text, expected


@pytest.mark.parametrize("name", ["", None, "UTC", "Europe/Madrid", "America/Argentina/Buenos_Aires"])
def test_known_zones_are_taken(name: str | None) -> None:
    assert zone_of(name).key == (name or "UTC")


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "../etc/passwd", "/etc/localtime", "Europe", "x" * 65, "utc "]
)
def test_unknown_zones_are_400_naming_tz(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        zone_of(name)
    assert "tz" in caught.value.details["fields"]


def test_file_names_are_safe() -> None:
    assert safe_filename("INV-2027-000001.pdf") == "INV-2027-000001.pdf"
    assert safe_filename('a"b/../c\r\n.pdf') == "a-b-..-c-.pdf"
