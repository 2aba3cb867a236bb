"""Invoices to agencies: commission, abort fee, numbering, due dates and payment status."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from astro.domain.errors import RuleViolation
from astro.domain.launches import Status

COMMISSION_BP: Final = 100  # 1 % in basis points
RELIABLE_COMMISSION_BP: Final = 80  # 0.8 % for an agency with at least two earlier successful launches
RELIABLE_AFTER: Final = 2
ABORT_FEE_CENTS: Final = 100_000
DUE_AFTER: Final = timedelta(days=30)
# A launch that ends so is invoiced, in the transaction that ends it (DESIGN 5).
KIND_BY_STATUS: Final = {Status.SUCCESSFUL: "commission", Status.ABORTED: "abort_fee"}


def invoice_kind_for(status: Status) -> str | None:
    """The invoice a launch ending in `status` gets: commission, abort_fee, or none."""
    return KIND_BY_STATUS.get(status)


def commission_rate_bp(earlier_successful_launches: int) -> int:
    return RELIABLE_COMMISSION_BP if earlier_successful_launches >= RELIABLE_AFTER else COMMISSION_BP


def commission_cents(net_revenue_cents: int, rate_bp: int) -> int:
    """The commission on a launch's net revenue, in cents rounded half up."""
    return (max(net_revenue_cents, 0) * rate_bp + 5_000) // 10_000


def invoice_number(year: int, seq: int) -> str:
    return f"INV-{year}-{seq:06d}"


def due_date(issued_at: datetime) -> datetime:
    return issued_at + DUE_AFTER


def stored_status(amount_cents: int, paid_cents: int) -> str:
    """issued -> partially_paid -> paid, by what has been paid."""
    if paid_cents >= amount_cents:
        return "paid"
    return "partially_paid" if paid_cents > 0 else "issued"


def shown_status(stored: str, due_at: datetime, balance_cents: int, now: datetime) -> str:
    """`overdue` when past due with a balance, else the stored status."""
    return "overdue" if balance_cents > 0 and now > due_at else stored


def check_payment(amount_cents: int, balance_cents: int) -> None:
    if amount_cents > balance_cents:
        raise RuleViolation(
            f"the invoice's open balance is {balance_cents} cents; {amount_cents} would overpay it",
            {"balance_cents": balance_cents, "amount_cents": amount_cents},
            code="overpayment",
        )
