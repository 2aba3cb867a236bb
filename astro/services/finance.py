"""Finance: invoices to agencies, payments by card or transfer, revenue reports."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import structlog

from astro.domain.clock import Clock
from astro.domain.errors import PaymentDeclined
from astro.services.payments import PaymentGateway
from astro.store.invoices import PgInvoices

log = structlog.get_logger("astro.finance")
Row = dict[str, Any]


class FinanceService:
    def __init__(self, invoices: PgInvoices, gateway: PaymentGateway, clock: Clock) -> None:
        self._invoices = invoices
        self._gateway = gateway
        self._clock = clock

    async def create_invoice(self, launch_id: str) -> Row:
        invoice = await self._invoices.create_for(launch_id, self._clock.now())
        log.info("invoice_issued", invoice_id=invoice["id"], number=invoice["number"], launch_id=launch_id)
        return invoice

    async def invoice(self, invoice_id: str, agency_id: str | None = None) -> Row:
        return await self._invoices.get(invoice_id, self._clock.now(), agency_id)

    async def invoices(
        self, *, agency_id: str | None, status: str | None, year: int | None, after: str | None, limit: int
    ) -> list[Row]:
        return await self._invoices.page(
            self._clock.now(), agency_id=agency_id, status=status, year=year, after=after, limit=limit
        )

    async def pay_by_card(
        self, *, agency_id: str, invoice_id: str, amount_cents: int, card_token: str, user_id: str
    ) -> Row:
        """Set the amount aside, charge the card, then credit it; a declined card leaves nothing paid."""
        reservation = await self._invoices.reserve(invoice_id, agency_id, amount_cents, user_id)
        try:
            ref = await self._gateway.charge(amount_cents, card_token, reservation.payment_id)
        except BaseException as exc:
            await self._invoices.settle(reservation.payment_id, None, self._clock.now())
            if isinstance(exc, PaymentDeclined):
                log.info("invoice_payment_declined", invoice_id=invoice_id, amount_cents=amount_cents)
            raise
        await self._invoices.settle(reservation.payment_id, ref, self._clock.now())
        log.info("payment_received", invoice_id=invoice_id, amount_cents=amount_cents, method="card")
        return await self.invoice(invoice_id)

    async def record_transfer(
        self, *, invoice_id: str, amount_cents: int, reference: str, user_id: str
    ) -> Row:
        await self._invoices.record_transfer(invoice_id, amount_cents, reference, user_id, self._clock.now())
        log.info("payment_received", invoice_id=invoice_id, amount_cents=amount_cents, method="transfer")
        return await self.invoice(invoice_id)

    async def agency_report(self, agency_id: str | None, start: date | None, end: date | None) -> list[Row]:
        return await self._invoices.agency_report(agency_id, start, end)

    async def annual(self, year: int) -> Row:
        months = await self._invoices.annual(year)
        return {
            "year": year,
            "months": months,
            "total_actual_cents": sum(m["actual_cents"] for m in months),
            "total_pending_cents": sum(m["pending_cents"] for m in months),
        }


def annual_csv(report: Row) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["year", "month", "actual_cents", "pending_cents"])
    for m in report["months"]:
        writer.writerow([report["year"], m["month"], m["actual_cents"], m["pending_cents"]])
    writer.writerow([report["year"], "total", report["total_actual_cents"], report["total_pending_cents"]])
    return out.getvalue()
