"""Commission, abort fee, numbering and invoice status rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from astro.domain import invoices as rules
from astro.domain.errors import RuleViolation


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
