"""FinanceAPI models: invoices, payments, reports, reconciliation."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from astro.schemas.common import WHOLE, Request, Response

Cents = Annotated[int, Field(gt=0, le=10**12), WHOLE]


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


class UninvoicedLaunchOut(Response):
    launch_id: str
    mission: str
    agency_id: str
    agency_name: str
    status: Literal["successful", "aborted"]
    kind: Literal["commission", "abort_fee"] = Field(description="the invoice it gets when issued")
    scheduled_at: datetime


class UninvoicedPage(Response):
    items: list[UninvoicedLaunchOut]
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


# -- reconciliation ------------------------------------------------------------------------------

AttemptStateName = Literal[
    "created", "authorized", "booked", "captured", "voiding", "voided", "declined", "failed"
]


class ProblemOut(Response):
    code: Literal[
        "captured_without_booking",
        "booking_not_paid",
        "booking_missing",
        "hold_not_released",
        "state_differs",
        "amount_differs",
        "metadata_differs",
        "refund_differs",
        "refund_unpaid",
        "open_past_deadline",
        "gateway_unanswered",
    ]
    what: str = Field(description="what disagrees, naming both sides")
    action: str = Field(description="what to do about it")


class GatewayOut(Response):
    answered: bool = Field(description="false: the gateway could not be asked (down, too slow)")
    state: Literal["pending", "authorized", "captured", "voided", "declined"] | None = Field(
        default=None, description="null when it answered and holds no payment under the attempt's id"
    )
    ref: str | None = None
    amount_cents: int | None = None
    refunded_cents: int | None = None
    booking_id: str | None = Field(default=None, description="the booking its metadata names")
    error: str | None = Field(default=None, description="why it could not be asked")


class BookingSideOut(Response):
    id: str
    status: Literal["confirmed", "cancelled"]
    total_cents: int
    refund_due_cents: int
    refunded_cents: int = Field(description="refunds paid back")
    refund_pending_cents: int = Field(description="refunds owed, not paid yet")


class MismatchOut(Response):
    attempt_id: str
    booking_id: str
    traveler_id: str
    launch_id: str
    amount_cents: int
    state: AttemptStateName = Field(description="the attempt's state in our records")
    created_at: datetime
    deadline: datetime
    booking: BookingSideOut | None = Field(description="the stored booking; null when none is stored")
    gateway: GatewayOut
    problems: list[ProblemOut]


class ReconciliationTotals(Response):
    captured_cents: int = Field(description="what the attempts of the period captured")
    refunded_cents: int = Field(description="refunds paid back on their bookings")
    booked_cents: int = Field(description="the totals of their stored bookings")
    refunds_due_cents: int = Field(description="what those bookings' cancellations give back")
    difference_cents: int = Field(
        description="(captured - refunded) - (booked - refunds_due): 0 when every booking is captured "
        "and every refund paid"
    )


class ReconciliationOut(Response):
    model_config = ConfigDict(frozen=True, serialize_by_alias=True, validate_by_name=True)

    from_: date = Field(alias="from", description="the period's first day")
    to: date = Field(description="the day after the period's last")
    checked: int = Field(description="attempts of this page compared with the gateway (one look-up each)")
    in_flight: int = Field(description="attempts of this page still within their deadline: not judged yet")
    items: list[MismatchOut] = Field(description="the attempts of this page that disagree; expected: none")
    next_cursor: str | None = None
    totals: ReconciliationTotals = Field(description="of the whole period, from our records")
    states: dict[AttemptStateName, int] = Field(description="attempts of the whole period per state")
