"""What an issued invoice and a received payment tell the agency: one notice each, its data pinned."""

from __future__ import annotations

from datetime import UTC, datetime

from astro.domain.events import InvoiceDue, InvoiceIssued, PaymentReceived
from astro.services.announcements import Notice, ToAgency, live_events, notices

NOW = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)


def test_an_issued_invoice_notifies_its_agency_only() -> None:
    issued = InvoiceIssued(
        invoice_id="inv_1",
        number="INV-2027-000007",
        agency_id="agy_1",
        launch_id="lch_1",
        mission="Ledger run",
        kind="abort_fee",
        amount_cents=100_000,
        due_at=datetime(2027, 3, 31, 9, 30, tzinfo=UTC),
    )
    assert notices([issued]) == [
        Notice(
            "invoice_issued",
            ToAgency("agy_1"),
            {
                "invoice_id": "inv_1",
                "invoice_number": "INV-2027-000007",
                "mission": "Ledger run",
                "launch_id": "lch_1",
                "kind": "abort fee",
                "amount": "$1,000.00",
                "due_date": "2027-03-31",
                "invoice_path": "/agency#invoices/inv_1",
            },
        )
    ]
    commission = InvoiceIssued("inv_2", "INV-2027-000008", "agy_1", "lch_2", "M", "commission", 3_951, NOW)
    [notice] = notices([commission])
    assert (notice.data["kind"], notice.data["amount"]) == ("commission", "$39.51")


def test_a_received_payment_notifies_its_agency_with_the_open_balance() -> None:
    received = PaymentReceived("inv_1", "INV-2027-000007", "agy_1", 30_000, 70_000)
    assert notices([received]) == [
        Notice(
            "payment_received",
            ToAgency("agy_1"),
            {
                "invoice_id": "inv_1",
                "invoice_number": "INV-2027-000007",
                "amount": "$300.00",
                "balance": "$700.00",
            },
        )
    ]


def test_finance_events_are_not_live_and_an_invoice_due_is_told_by_its_issue() -> None:
    events = [
        InvoiceDue("lch_1", "agy_1", "commission", NOW),
        PaymentReceived("inv_1", "INV-2027-000007", "agy_1", 1, 0),
    ]
    assert notices(events[:1]) == []
    assert live_events(events, NOW) == []
