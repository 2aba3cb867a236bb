"""Documents: a traveler's e-ticket and receipt, an agency's invoice, as PDF files."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Final, Protocol
from zoneinfo import ZoneInfo, available_timezones

import structlog

from astro.domain.clock import Clock
from astro.domain.errors import InvalidInput
from astro.services import pdf
from astro.services.finance import FinanceService, InvoiceView

log = structlog.get_logger("astro.documents")
ZONE_NAME: Final = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")


# -- what a document is made of ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    """Who issues or receives an invoice: name, legal name, address, tax id, e-mail."""

    name: str
    legal_name: str
    address: str | None
    tax_id: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class TicketPassenger:
    name: str
    birth_date: date


@dataclass(frozen=True, slots=True)
class MoneyMove:
    """The charge of a booking or its refund, as the payment gateway moved it."""

    amount_cents: int
    status: str  # pending | done | failed
    at: datetime


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """Everything an e-ticket and receipt shows, read in one go for its traveler."""

    booking_id: str
    status: str  # confirmed | cancelled
    seats: int
    price_cents: int
    total_cents: int
    booked_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str | None
    refund_pct: int | None
    refund_cents: int | None
    mission: str
    destination: str
    scheduled_at: datetime
    launch_status: str
    launch_slug: str
    rocket: str
    agency: str
    traveler: str
    traveler_email: str
    passengers: tuple[TicketPassenger, ...]
    charge: MoneyMove | None
    refund: MoneyMove | None


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    """An invoice with its parties and its launch's date and destination."""

    invoice: InvoiceView
    seller: Party
    buyer: Party
    launch_at: datetime
    destination: str


@dataclass(frozen=True, slots=True)
class Document:
    """A rendered file: its name for the download, its bytes, and how long rendering took."""

    filename: str
    content: bytes
    seconds: float


class DocumentSource(Protocol):
    """The reads documents are made from (PostgreSQL)."""

    async def ticket(self, traveler_id: str, booking_id: str) -> TicketFacts:
        """The booking's facts; NotFound unless it is this traveler's."""
        ...

    async def invoice_parties(self, agency_id: str, launch_id: str) -> tuple[Party, datetime, str]:
        """The agency's legal data, and the launch's date and destination."""
        ...


def zone_of(name: str | None) -> ZoneInfo:
    """An IANA time zone by name ('Europe/Madrid'); none given: UTC; 400 invalid_input for an unknown one."""
    if name is None or name == "":
        return ZoneInfo("UTC")
    if not ZONE_NAME.fullmatch(name) or name not in _zones():
        raise InvalidInput(
            "tz must be an IANA time zone name like Europe/Madrid or America/New_York",
            {"fields": {"tz": name[:100]}},
        )
    return ZoneInfo(name)


def zone_names() -> frozenset[str]:
    """Every time zone `zone_of` takes (the OpenAPI document lists them)."""
    return _zones()


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones() | {"UTC"})


def safe_filename(text: str) -> str:
    """A file name any browser and file system takes: letters, digits, dot, dash and underscore."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:120] or "document"


class Documents:
    """Renders tickets and invoices off the event loop (a page takes milliseconds of CPU)."""

    def __init__(
        self, source: DocumentSource, finance: FinanceService, platform: Party, clock: Clock
    ) -> None:
        self._source = source
        self._finance = finance
        self._platform = platform
        self._clock = clock

    async def ticket(self, traveler_id: str, booking_id: str, zone: ZoneInfo) -> Document:
        facts = await self._source.ticket(traveler_id, booking_id)
        now = self._clock.now()
        return await self._render(
            "ticket", f"astrobookings-ticket-{facts.booking_id}.pdf", lambda: pdf.ticket(facts, zone, now)
        )

    async def invoice(self, invoice_id: str, agency_id: str | None = None) -> Document:
        """The invoice as PDF: any for finance (agency_id None), only its own for an agency (404 else)."""
        invoice = await self._finance.invoice(invoice_id, agency_id)
        parties = await self._source.invoice_parties(invoice.agency_id, invoice.launch_id)
        buyer, launch_at, destination = parties
        facts = InvoiceFacts(invoice, self._platform, buyer, launch_at, destination)
        now = self._clock.now()
        return await self._render("invoice", f"{invoice.number}.pdf", lambda: pdf.invoice(facts, now))

    async def _render(self, kind: str, filename: str, make: _Maker) -> Document:
        def timed() -> tuple[bytes, float]:
            started = time.perf_counter()
            content = make()
            return content, time.perf_counter() - started

        content, seconds = await asyncio.to_thread(timed)
        log.info("document_rendered", kind=kind, bytes=len(content), ms=round(seconds * 1000, 1))
        return Document(safe_filename(filename), content, seconds)


class _Maker(Protocol):
    def __call__(self) -> bytes: ...
