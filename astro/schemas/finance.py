"""FinanceAPI models: invoices, payments, reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from astro.schemas.common import Request, Response

Cents = Annotated[int, Field(gt=0, le=10**12)]


class InvoiceRequest(Request):
    launch_id: Annotated[str, Field(min_length=1, max_length=64)]


class CardPaymentIn(Request):
    amount_cents: Cents
    card_token: Annotated[str, Field(min_length=1, max_length=200)]


class TransferIn(Request):
    amount_cents: Cents
    method: Literal["transfer"]
    reference: Annotated[str, Field(min_length=1, max_length=200)]


class PaymentOut(Response):
    id: str
    amount_cents: int
    method: Literal["card", "transfer"]
    status: Literal["pending", "done", "declined"]
    reference: str | None = None
    gateway_ref: str | None = None
    created_at: datetime
    paid_at: datetime | None = None


class InvoiceOut(Response):
    id: str
    number: str
    agency_id: str
    agency_name: str
    launch_id: str
    mission: str
    kind: Literal["commission", "abort_fee"]
    net_revenue_cents: int
    rate_pct: float
    amount_cents: int
    paid_cents: int
    balance_cents: int
    status: Literal["issued", "partially_paid", "paid", "overdue"]
    issued_at: datetime
    due_at: datetime
    payments: list[PaymentOut] | None = None


class InvoiceEnvelope(Response):
    invoice: InvoiceOut


class InvoicePage(Response):
    items: list[InvoiceOut]
    next_cursor: str | None = None


class AgencyFigures(Response):
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


class AgencyReport(Response):
    items: list[AgencyFigures]
    totals: dict[str, int]


class AgencyReportOne(Response):
    report: AgencyFigures


class MonthFigures(Response):
    month: int
    actual_cents: int
    pending_cents: int


class AnnualReport(Response):
    year: int
    months: list[MonthFigures]
    total_actual_cents: int
    total_pending_cents: int
