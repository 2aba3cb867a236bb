"""Invoices to agencies: commission, abort fee, numbering, due dates and payment status (DESIGN 5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from astro.domain.errors import RuleViolation
from astro.domain.events import InvoiceIssued, PaymentReceived
from astro.domain.launches import Status

Kind = Literal["commission", "abort_fee"]
COMMISSION_BP: Final = 100  # 1 % in basis points
RELIABLE_COMMISSION_BP: Final = 80  # 0.8 % for an agency with at least two earlier successful launches
RELIABLE_AFTER: Final = 2
ABORT_FEE_CENTS: Final = 100_000
DUE_AFTER: Final = timedelta(days=30)
# A launch that ends so is invoiced, in the transaction that ends it (DESIGN 5).
KIND_BY_STATUS: Final[dict[Status, Kind]] = {Status.SUCCESSFUL: "commission", Status.ABORTED: "abort_fee"}
# An earlier launch of the agency that ended so counts towards "reliable".
RELIABLE_STATUS: Final = Status.SUCCESSFUL

# What is stored follows the payments; what is shown adds `overdue`, which depends on the time of asking.
ISSUED: Final = "issued"
PARTIALLY_PAID: Final = "partially_paid"
PAID: Final = "paid"
OVERDUE: Final = "overdue"
SHOWN_STATUSES: Final = (ISSUED, PARTIALLY_PAID, PAID, OVERDUE)


def invoice_kind_for(status: Status) -> Kind | None:
    """The invoice a launch ending in `status` gets: commission, abort_fee, or none."""
    return KIND_BY_STATUS.get(status)


def commission_rate_bp(earlier_successful_launches: int) -> int:
    """1 %, or 0.8 % once the agency has flown at least two launches successfully before this one."""
    return RELIABLE_COMMISSION_BP if earlier_successful_launches >= RELIABLE_AFTER else COMMISSION_BP


def commission_cents(net_revenue_cents: int, rate_bp: int) -> int:
    """The commission on a launch's net revenue, in cents rounded half up."""
    return (max(net_revenue_cents, 0) * rate_bp + 5_000) // 10_000


def invoice_number(year: int, seq: int) -> str:
    """The invoice number: gapless per year, six digits, e.g. INV-2027-000042."""
    return f"INV-{year}-{seq:06d}"


def due_date(issued_at: datetime) -> datetime:
    """Invoices are due 30 days after they are issued."""
    return issued_at + DUE_AFTER


def stored_status(amount_cents: int, paid_cents: int) -> str:
    """issued -> partially_paid -> paid, by what has been paid."""
    if paid_cents >= amount_cents:
        return PAID
    return PARTIALLY_PAID if paid_cents > 0 else ISSUED


def is_overdue(due_at: datetime, balance_cents: int, now: datetime) -> bool:
    """Overdue: an open balance, and the due instant has passed (at the due instant itself it is not)."""
    return balance_cents > 0 and now > due_at


def shown_status(stored: str, due_at: datetime, balance_cents: int, now: datetime) -> str:
    """`overdue` when past due with a balance, else the stored status."""
    return OVERDUE if is_overdue(due_at, balance_cents, now) else stored


def check_payment(amount_cents: int, balance_cents: int) -> None:
    """Refuse a payment larger than what is still open (paid and under way subtracted)."""
    if amount_cents > balance_cents:
        raise RuleViolation(
            f"the invoice's open balance is {balance_cents} cents; {amount_cents} would overpay it",
            {"balance_cents": balance_cents, "amount_cents": amount_cents},
            code="overpayment",
        )


def check_payable(amount_cents: int, total_cents: int, paid_cents: int, pending_cents: int) -> None:
    """Refuse a payment to an invoice paid in full, or one larger than its open balance (what card
    payments under way have set aside is not open)."""
    if paid_cents >= total_cents:
        raise RuleViolation("this invoice is paid in full", {"balance_cents": 0}, code="overpayment")
    check_payment(amount_cents, total_cents - paid_cents - pending_cents)


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    """What the store knows when a launch's invoice is issued."""

    launch_id: str
    agency_id: str
    mission: str
    net_revenue_cents: int  # bookings minus refunds
    earlier_successful_launches: int  # the agency's, scheduled before this one


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice as issued: what it charges, its number and when it is due."""

    id: str
    number: str
    year: int
    seq: int
    agency_id: str
    launch_id: str
    mission: str
    kind: Kind
    net_revenue_cents: int
    rate_bp: int
    amount_cents: int
    status: str
    issued_at: datetime
    due_at: datetime

    def issued(self) -> InvoiceIssued:
        """The event that tells the agency."""
        return InvoiceIssued(
            invoice_id=self.id,
            number=self.number,
            agency_id=self.agency_id,
            launch_id=self.launch_id,
            mission=self.mission,
            kind=self.kind,
            amount_cents=self.amount_cents,
            due_at=self.due_at,
        )


def issue(kind: str, facts: InvoiceFacts, *, invoice_id: str, seq: int, now: datetime) -> Invoice:
    """The `kind` invoice of a launch, numbered `seq` of this year: a commission on its net revenue
    (the reliable agency's lower rate), or the flat abort fee."""
    checked: Kind
    if kind == "commission":
        checked, rate = "commission", commission_rate_bp(facts.earlier_successful_launches)
        net, amount = facts.net_revenue_cents, commission_cents(facts.net_revenue_cents, rate)
    elif kind == "abort_fee":
        checked, rate, net, amount = "abort_fee", 0, 0, ABORT_FEE_CENTS
    else:
        raise ValueError(f"no invoice of kind {kind!r}")
    return Invoice(
        id=invoice_id,
        number=invoice_number(now.year, seq),
        year=now.year,
        seq=seq,
        agency_id=facts.agency_id,
        launch_id=facts.launch_id,
        mission=facts.mission,
        kind=checked,
        net_revenue_cents=net,
        rate_bp=rate,
        amount_cents=amount,
        status=stored_status(amount, 0),
        issued_at=now,
        due_at=due_date(now),
    )


@dataclass(frozen=True, slots=True)
class Credit:
    """A payment credited to an invoice: its new stored status and the event that tells the agency."""

    status: str
    received: PaymentReceived


def credit(
    *, invoice_id: str, number: str, agency_id: str, amount_cents: int, total_cents: int, paid_cents: int
) -> Credit:
    """`amount_cents` received on an invoice of `total_cents`, of which `paid_cents` is paid now (this
    payment included)."""
    received = PaymentReceived(invoice_id, number, agency_id, amount_cents, total_cents - paid_cents)
    return Credit(stored_status(total_cents, paid_cents), received)
