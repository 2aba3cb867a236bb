"""Commission, abort fee, numbering and invoice status rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from astro.domain import invoices as rules
from astro.domain.errors import RuleViolation
from astro.domain.events import InvoiceIssued, PaymentReceived


@pytest.mark.parametrize(
    ("net", "earlier", "cents"),
    [
        (1_000_000, 0, 10_000),
        (1_000_000, 1, 10_000),
        (1_000_000, 2, 8_000),
        (1_000_000, 9, 8_000),
        (50, 0, 1),
        (49, 0, 0),
        (62, 2, 0),
        (63, 2, 1),
        (123_456_789, 0, 1_234_568),
        (123_456_789, 2, 987_654),
        (0, 0, 0),
    ],
)
def test_commission_is_1_percent_or_0_8_for_reliable_agencies_rounded_half_up(
    net: int, earlier: int, cents: int
) -> None:
    assert rules.commission_cents(net, rules.commission_rate_bp(earlier)) == cents


def test_numbers_are_per_year_with_six_digits() -> None:
    assert rules.invoice_number(2026, 1) == "INV-2026-000001"
    assert rules.invoice_number(2027, 123456) == "INV-2027-123456"


def test_status_follows_payments_and_reads_overdue_past_due() -> None:
    issued = datetime(2027, 3, 1, tzinfo=UTC)
    due = rules.due_date(issued)
    assert due == issued + timedelta(days=30)
    assert [rules.stored_status(100, p) for p in (0, 40, 100)] == ["issued", "partially_paid", "paid"]
    assert rules.shown_status("partially_paid", due, 60, due + timedelta(seconds=1)) == "overdue"
    assert rules.shown_status("partially_paid", due, 60, due) == "partially_paid"
    assert rules.shown_status("paid", due, 0, due + timedelta(days=9)) == "paid"


def test_overpayment_is_refused() -> None:
    rules.check_payment(60, 60)
    with pytest.raises(RuleViolation) as caught:
        rules.check_payment(61, 60)
    assert caught.value.code == "overpayment" and caught.value.details["balance_cents"] == 60


# -- the overdue rule at its boundaries ------------------------------------------------------------

DUE = datetime(2027, 4, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)  # PostgreSQL's timestamptz resolution


@pytest.mark.parametrize(
    ("stored", "balance", "now", "shown"),
    [
        ("issued", 100_000, DUE - TICK, "issued"),
        ("issued", 100_000, DUE, "issued"),  # due exactly now: not yet overdue
        ("issued", 100_000, DUE + TICK, "overdue"),
        ("partially_paid", 1, DUE + TICK, "overdue"),  # partly paid, one cent open
        ("partially_paid", 1, DUE, "partially_paid"),
        ("paid", 0, DUE + timedelta(days=400), "paid"),  # balance 0: never overdue
        ("paid", 0, DUE, "paid"),
    ],
)
def test_overdue_is_an_open_balance_strictly_after_the_due_instant(
    stored: str, balance: int, now: datetime, shown: str
) -> None:
    assert rules.shown_status(stored, DUE, balance, now) == shown
    assert rules.is_overdue(DUE, balance, now) is (shown == "overdue")


def test_the_shown_statuses_are_the_stored_ones_and_overdue() -> None:
    assert rules.SHOWN_STATUSES == ("issued", "partially_paid", "paid", "overdue")
    assert {rules.stored_status(100, p) for p in (0, 1, 99, 100)} == set(rules.SHOWN_STATUSES) - {"overdue"}


# -- issuing ---------------------------------------------------------------------------------------

ISSUED_AT = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)


def facts(net: int = 395_062, earlier: int = 0) -> rules.InvoiceFacts:
    return rules.InvoiceFacts("lch_1", "agy_1", "Ledger run", net, earlier)


def test_a_commission_invoice_charges_1_percent_of_net_revenue_to_the_cent() -> None:
    invoice = rules.issue("commission", facts(), invoice_id="inv_1", seq=1, now=ISSUED_AT)
    assert invoice == rules.Invoice(
        id="inv_1",
        number="INV-2027-000001",
        year=2027,
        seq=1,
        agency_id="agy_1",
        launch_id="lch_1",
        mission="Ledger run",
        kind="commission",
        net_revenue_cents=395_062,
        rate_bp=100,
        amount_cents=3_951,  # 3950.62 rounded half up
        status="issued",
        issued_at=ISSUED_AT,
        due_at=datetime(2027, 3, 31, 9, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("earlier", "rate_bp", "cents"),
    [(0, 100, 12_346), (1, 100, 12_346), (2, 80, 9_877), (7, 80, 9_877)],
)
def test_a_reliable_agency_is_charged_0_8_percent_from_two_earlier_successes(
    earlier: int, rate_bp: int, cents: int
) -> None:
    # 1_234_567 cents: 1 % is 12_345.67 -> 12_346; 0.8 % is 9_876.536 -> 9_877
    invoice = rules.issue("commission", facts(1_234_567, earlier), invoice_id="inv_1", seq=9, now=ISSUED_AT)
    assert (invoice.rate_bp, invoice.amount_cents, invoice.net_revenue_cents) == (rate_bp, cents, 1_234_567)


def test_commission_rounds_half_a_cent_up_and_less_down() -> None:
    assert rules.issue("commission", facts(150), invoice_id="i", seq=1, now=ISSUED_AT).amount_cents == 2
    assert rules.issue("commission", facts(149), invoice_id="i", seq=1, now=ISSUED_AT).amount_cents == 1


def test_an_abort_fee_is_flat_whatever_the_revenue() -> None:
    invoice = rules.issue("abort_fee", facts(9_999_999, 5), invoice_id="inv_2", seq=123_456, now=ISSUED_AT)
    assert (invoice.kind, invoice.amount_cents, invoice.rate_bp, invoice.net_revenue_cents) == (
        "abort_fee",
        100_000,
        0,
        0,
    )
    assert (invoice.number, invoice.status) == ("INV-2027-123456", "issued")


def test_the_number_takes_the_year_of_issue() -> None:
    new_year = datetime(2028, 1, 1, 0, 0, tzinfo=UTC)
    invoice = rules.issue("abort_fee", facts(), invoice_id="inv_3", seq=1, now=new_year)
    assert (invoice.number, invoice.year, invoice.seq) == ("INV-2028-000001", 2028, 1)


def test_an_unknown_kind_is_not_issued() -> None:
    with pytest.raises(ValueError, match="refund"):
        rules.issue("refund", facts(), invoice_id="inv_4", seq=1, now=ISSUED_AT)


def test_an_issued_invoice_raises_invoice_issued() -> None:
    invoice = rules.issue("commission", facts(), invoice_id="inv_1", seq=42, now=ISSUED_AT)
    assert invoice.issued() == InvoiceIssued(
        invoice_id="inv_1",
        number="INV-2027-000042",
        agency_id="agy_1",
        launch_id="lch_1",
        mission="Ledger run",
        kind="commission",
        amount_cents=3_951,
        due_at=datetime(2027, 3, 31, 9, 30, tzinfo=UTC),
    )


# -- payments --------------------------------------------------------------------------------------


def test_a_credit_moves_the_status_and_tells_the_balance() -> None:
    part = rules.credit(
        invoice_id="inv_1",
        number="INV-2027-000001",
        agency_id="agy_1",
        amount_cents=30_000,
        total_cents=100_000,
        paid_cents=30_000,
    )
    assert part == rules.Credit(
        "partially_paid", PaymentReceived("inv_1", "INV-2027-000001", "agy_1", 30_000, 70_000)
    )
    rest = rules.credit(
        invoice_id="inv_1",
        number="INV-2027-000001",
        agency_id="agy_1",
        amount_cents=70_000,
        total_cents=100_000,
        paid_cents=100_000,
    )
    assert (rest.status, rest.received.balance_cents) == ("paid", 0)


def test_money_set_aside_for_a_card_payment_under_way_is_not_open() -> None:
    rules.check_payable(40_000, 100_000, 30_000, 30_000)
    with pytest.raises(RuleViolation) as caught:
        rules.check_payable(40_001, 100_000, 30_000, 30_000)
    assert caught.value.code == "overpayment" and caught.value.details["balance_cents"] == 40_000
    with pytest.raises(RuleViolation) as caught:
        rules.check_payable(1, 100_000, 100_000, 0)
    assert caught.value.code == "overpayment" and caught.value.details == {"balance_cents": 0}
