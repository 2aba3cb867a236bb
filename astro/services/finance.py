"""Finance: invoices to agencies, payments by card or transfer, revenue reports."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Final, Protocol

import structlog

from astro.domain.clock import Clock
from astro.domain.errors import (
    GatewayError,
    NotFound,
    PaymentDeclined,
    Unavailable,
    UnknownCard,
)
from astro.domain.payments import GatewayState
from astro.services.payments import PaymentGateway

log = structlog.get_logger("astro.finance")

# -- read models ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentLine:
    """One payment of an invoice: a card payment (pending, done or declined) or a recorded transfer."""

    id: str
    amount_cents: int
    method: str  # card | transfer
    status: str  # pending | done | declined
    reference: str | None
    gateway_ref: str | None
    created_at: datetime
    paid_at: datetime | None


@dataclass(frozen=True, slots=True)
class InvoiceView:
    """An invoice as finance and its agency see it, at the time they ask."""

    id: str
    number: str
    agency_id: str
    agency_name: str
    launch_id: str
    mission: str
    kind: str  # commission | abort_fee
    net_revenue_cents: int
    rate_bp: int
    amount_cents: int
    paid_cents: int
    pending_cents: int  # set aside for card payments under way
    status: str  # astro.domain.invoices.shown_status at the time of reading: overdue included
    issued_at: datetime
    due_at: datetime
    payments: tuple[PaymentLine, ...] | None = None  # with one invoice, not in a list

    @property
    def balance_cents(self) -> int:
        return self.amount_cents - self.paid_cents


@dataclass(frozen=True, slots=True)
class UninvoicedLaunch:
    """A finished launch that should have an invoice and has none (finance issues it on demand)."""

    launch_id: str
    mission: str
    agency_id: str
    agency_name: str
    status: str  # successful | aborted
    kind: str  # the invoice it gets: commission | abort_fee
    scheduled_at: datetime


@dataclass(frozen=True, slots=True)
class AgencyFigures:
    """One agency's figures for the launches of a period, in cents."""

    agency_id: str
    agency_name: str
    launches: int
    gross_cents: int
    refund_cents: int
    net_cents: int
    commission_cents: int
    abort_fee_cents: int
    paid_cents: int
    outstanding_cents: int


# The figures that add up across agencies, in their order.
SUMMED: tuple[str, ...] = tuple(
    f.name for f in fields(AgencyFigures) if f.name not in ("agency_id", "agency_name")
)


@dataclass(frozen=True, slots=True)
class MonthFigures:
    month: int
    actual_cents: int  # payments received in the month
    pending_cents: int  # still unpaid of the invoices issued in the month


@dataclass(frozen=True, slots=True)
class AnnualFigures:
    year: int
    months: tuple[MonthFigures, ...]

    @property
    def total_actual_cents(self) -> int:
        return sum(m.actual_cents for m in self.months)

    @property
    def total_pending_cents(self) -> int:
        return sum(m.pending_cents for m in self.months)


def totals(items: list[AgencyFigures]) -> dict[str, int]:
    """The figures summed over agencies (none without agencies)."""
    return {name: sum(getattr(i, name) for i in items) for name in SUMMED} if items else {}


CURRENCY: Final = "USD"


def decimal_amount(cents: int) -> str:
    """Cents as a decimal amount of the currency, as a spreadsheet reads it: 58800000 -> 588000.00."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def annual_csv(report: AnnualFigures) -> str:
    """The annual report as CSV: amounts in decimal units of the currency named on each row (the screen
    shows the same dollars)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["year", "month", "currency", "actual", "pending"])
    for m in report.months:
        writer.writerow(
            [report.year, m.month, CURRENCY, decimal_amount(m.actual_cents), decimal_amount(m.pending_cents)]
        )
    total_actual, total_pending = report.total_actual_cents, report.total_pending_cents
    writer.writerow(
        [report.year, "total", CURRENCY, decimal_amount(total_actual), decimal_amount(total_pending)]
    )
    return out.getvalue()


# -- the port ------------------------------------------------------------------------------------


class InvoiceLedger(Protocol):
    """Where invoices and their payments are kept (astro.store.invoices.PgInvoices)."""

    async def create_for(self, launch_id: str, now: datetime) -> InvoiceView:
        """Issue the invoice of a finished launch that has none: Conflict invoice_exists or
        launch_not_invoiceable, NotFound."""

    async def get(self, invoice_id: str, now: datetime, agency_id: str | None = None) -> InvoiceView:
        """One invoice with its payments (NotFound, also when it is another agency's)."""

    async def page(
        self,
        now: datetime,
        *,
        agency_id: str | None,
        status: str | None,
        year: int | None,
        after: str | None,
        limit: int,
    ) -> list[InvoiceView]:
        """Invoices by number after `after`, their status as shown at `now`."""

    async def uninvoiced(self, after: str | None, limit: int) -> list[UninvoicedLaunch]:
        """Finished launches (successful, aborted) without their invoice, by launch id after `after`."""

    async def reserve(self, invoice_id: str, agency_id: str, amount_cents: int, user_id: str) -> str:
        """Set part of the balance aside for a card payment under way; its payment id (RuleViolation
        overpayment when it would overpay)."""

    async def settle(self, payment_id: str, gateway_ref: str | None, now: datetime) -> None:
        """A reserved payment went through (gateway_ref) or was declined (None)."""

    async def pending_card_payments(self, older_than: timedelta) -> list[str]:
        """Card payments still pending that were reserved more than `older_than` ago."""

    async def record_transfer(
        self, invoice_id: str, amount_cents: int, reference: str, user_id: str, now: datetime
    ) -> str:
        """Credit an offline transfer; its payment id."""

    async def agency_report(
        self, agency_id: str | None, start: date | None, end: date | None
    ) -> list[AgencyFigures]:
        """Per agency, for launches scheduled in [start, end)."""

    async def annual(self, year: int) -> list[MonthFigures]:
        """Per month of the year: payments received and what is still unpaid of what was issued."""


# -- the service ---------------------------------------------------------------------------------


class FinanceService:
    def __init__(self, invoices: InvoiceLedger, gateway: PaymentGateway, clock: Clock) -> None:
        self._invoices = invoices
        self._gateway = gateway
        self._clock = clock

    async def create_invoice(self, launch_id: str) -> InvoiceView:
        """The invoice of a finished launch that has none, issued now."""
        invoice = await self._invoices.create_for(launch_id, self._clock.now())
        log.info("invoice_issued", invoice_id=invoice.id, number=invoice.number, launch_id=launch_id)
        return invoice

    async def uninvoiced_launches(self, after: str | None, limit: int) -> list[UninvoicedLaunch]:
        """What finance may invoice on demand: finished launches whose invoice is missing."""
        return await self._invoices.uninvoiced(after, limit)

    async def invoice(self, invoice_id: str, agency_id: str | None = None) -> InvoiceView:
        return await self._invoices.get(invoice_id, self._clock.now(), agency_id)

    async def invoices(
        self, *, agency_id: str | None, status: str | None, year: int | None, after: str | None, limit: int
    ) -> list[InvoiceView]:
        return await self._invoices.page(
            self._clock.now(), agency_id=agency_id, status=status, year=year, after=after, limit=limit
        )

    async def pay_by_card(
        self, *, agency_id: str, invoice_id: str, amount_cents: int, card_token: str, user_id: str
    ) -> InvoiceView:
        """Set the amount aside, authorize and capture it (the payment's id is the gateway's idempotency
        key), then credit it. A declined card leaves nothing paid; a gateway that did not answer clearly
        leaves the payment pending, and recovery asks the gateway and finishes it."""
        payment_id = await self._invoices.reserve(invoice_id, agency_id, amount_cents, user_id)
        metadata = {"invoice_id": invoice_id, "payment_id": payment_id}
        try:
            ref = await self._gateway.authorize(
                key=payment_id, amount_cents=amount_cents, card_token=card_token, metadata=metadata
            )
        except (PaymentDeclined, UnknownCard) as exc:
            await self._invoices.settle(payment_id, None, self._clock.now())
            if isinstance(exc, PaymentDeclined):
                log.info("invoice_payment_declined", invoice_id=invoice_id, amount_cents=amount_cents)
            raise
        try:
            await self._gateway.capture(ref, key=payment_id)
        except GatewayError:
            raise Unavailable(
                "the payment is being completed; the invoice shows it within a minute", retry_after=5
            ) from None
        await self._invoices.settle(payment_id, ref, self._clock.now())
        log.info("payment_received", invoice_id=invoice_id, amount_cents=amount_cents, method="card")
        return await self.invoice(invoice_id)

    async def resolve_card_payments(self, older_than: timedelta) -> int:
        """Finish card payments left pending (a crash, an unclear gateway) by what the gateway holds under
        their id: captured is credited, authorized is captured and credited, nothing is released."""
        done = 0
        for payment_id in await self._invoices.pending_card_payments(older_than):
            try:
                found = await self._gateway.find(payment_id)
                if found is not None and found.state is GatewayState.AUTHORIZED:
                    await self._gateway.capture(found.ref, key=payment_id)
                    found = await self._gateway.find(payment_id)
            except (GatewayError, Unavailable) as exc:
                log.warning("invoice_payment_recovery_deferred", payment_id=payment_id, error=str(exc))
                continue
            ref = found.ref if found is not None and found.state is GatewayState.CAPTURED else None
            await self._invoices.settle(payment_id, ref, self._clock.now())
            done += 1
        return done

    async def record_transfer(
        self, *, invoice_id: str, amount_cents: int, reference: str, user_id: str
    ) -> InvoiceView:
        await self._invoices.record_transfer(invoice_id, amount_cents, reference, user_id, self._clock.now())
        log.info("payment_received", invoice_id=invoice_id, amount_cents=amount_cents, method="transfer")
        return await self.invoice(invoice_id)

    async def agency_report(
        self, agency_id: str | None, start: date | None, end: date | None
    ) -> list[AgencyFigures]:
        return await self._invoices.agency_report(agency_id, start, end)

    async def agency_figures(self, agency_id: str, start: date | None, end: date | None) -> AgencyFigures:
        """One agency's figures (NotFound when there is no such agency)."""
        found = await self._invoices.agency_report(agency_id, start, end)
        if not found:
            raise NotFound("no such agency")
        return found[0]

    async def annual(self, year: int) -> AnnualFigures:
        return AnnualFigures(year, tuple(await self._invoices.annual(year)))
