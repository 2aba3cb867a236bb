"""Invoices in PostgreSQL: the store's facts, numbers and notification rows, and its SQL status filter
agreeing with the domain's overdue rule (real PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from astro.config import Settings
from astro.domain import invoices as rules
from astro.domain.errors import Conflict
from astro.domain.events import InvoiceDue, InvoiceIssued
from astro.store import postgres
from astro.store.invoices import PgInvoices, issue_invoice

NOW = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)  # timestamptz's resolution: the closest two instants can be


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await postgres.create_pool(settings.pg_dsn or "", min_size=1, max_size=4)
    yield pool
    await pool.close()


async def add_agency(conn: asyncpg.Connection, agency_id: str = "agy_1") -> None:
    await conn.execute(
        """INSERT INTO agencies (id, email, name, legal_name, tax_id, legal_address, contact_email)
           VALUES ($1, $1 || '@login.example', 'Orbital ' || $1, 'Orbital Ltd', 'TAX-' || $1, '1 Pad Road',
                   'billing@' || $1 || '.example')""",
        agency_id,
    )
    await conn.execute(
        """INSERT INTO rockets (id, agency_id, name, capacity, range)
           VALUES ('rkt_' || $1, $1, 'Ares', 100, 'mars')""",
        agency_id,
    )


async def add_launch(
    conn: asyncpg.Connection, launch_id: str, status: str, scheduled_at: datetime, agency_id: str = "agy_1"
) -> None:
    await conn.execute(
        """INSERT INTO launches (id, agency_id, rocket_id, slug, mission, destination, scheduled_at,
               price_cents, capacity, min_passengers, status, public_from)
           VALUES ($1, $2, 'rkt_' || $2, $1, 'Mission ' || $1, 'mars', $3, 100000, 100, 1, $4, $3)""",
        launch_id,
        agency_id,
        scheduled_at,
        status,
    )


async def add_booking(
    conn: asyncpg.Connection, booking_id: str, launch_id: str, total: int, refund: int | None = None
) -> None:
    await conn.execute(
        """INSERT INTO travelers (id, email, name, phone, tax_id, address)
           VALUES ('usr_' || $1, $1 || '@example.com', $1, '+1 555 0100', 'T-' || $1, '1 Orbit Road')""",
        booking_id,
    )
    await conn.execute(
        """INSERT INTO bookings (id, launch_id, traveler_id, seats, price_cents, total_cents, status,
               refund_cents)
           VALUES ($1, $2, 'usr_' || $1, 1, $3, $3, $4, $5)""",
        booking_id,
        launch_id,
        total,
        "confirmed" if refund is None else "cancelled",
        refund,
    )


async def notification_rows(conn: asyncpg.Connection, event: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT recipient_id, recipient_role, recipient_email, data::text FROM notifications
           WHERE event = $1 ORDER BY id""",
        event,
    )
    return [{**dict(r.items()), "data": json.loads(r["data"])} for r in rows]


# -- the overdue rule: SQL filter and domain agree ---------------------------------------------------

# (amount, paid, pending, due_at) of invoices at the rule's boundaries, and how they read at NOW.
CASES = {
    "due_exactly_now": (100_000, 0, 0, NOW, "issued"),
    "due_a_tick_ago": (100_000, 0, 0, NOW - TICK, "overdue"),
    "due_in_a_tick": (100_000, 0, 0, NOW + TICK, "issued"),
    "part_paid_a_tick_late": (100_000, 99_999, 0, NOW - TICK, "overdue"),
    "part_paid_due_now": (100_000, 40_000, 0, NOW, "partially_paid"),
    "paid_long_ago_due": (100_000, 100_000, 0, NOW - timedelta(days=400), "paid"),
    "zero_commission_late": (0, 0, 0, NOW - timedelta(days=1), "paid"),  # balance 0: nothing to chase
    "card_under_way_late": (100_000, 0, 100_000, NOW - TICK, "overdue"),  # set aside is not paid
}


async def add_invoices(conn: asyncpg.Connection) -> dict[str, str]:
    """One invoice per case; their ids by case."""
    ids = {}
    for seq, (case, (amount, paid, pending, due_at, _)) in enumerate(CASES.items(), start=1):
        await add_launch(conn, f"lch_{case}", "aborted", NOW - timedelta(days=60))
        ids[case] = f"inv_{case}"
        await conn.execute(
            """INSERT INTO invoices (id, number, year, seq, agency_id, launch_id, kind, amount_cents,
                   paid_cents, pending_cents, status, issued_at, due_at)
               VALUES ($1, $2, 2027, $3, 'agy_1', $4, 'abort_fee', $5, $6, $7, $8, $9, $10)""",
            ids[case],
            rules.invoice_number(2027, seq),
            seq,
            f"lch_{case}",
            amount,
            paid,
            pending,
            rules.stored_status(amount, paid),
            due_at - rules.DUE_AFTER,
            due_at,
        )
    return ids


async def test_the_sql_status_filter_agrees_with_the_domains_overdue_rule_at_its_boundaries(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await add_agency(conn)
        ids = await add_invoices(conn)
    invoices = PgInvoices(pool)
    everything = await invoices.page(NOW, agency_id=None, status=None, year=None, after=None, limit=100)
    shown = {v.id: v.status for v in everything}
    # What the domain says each one is, and the rule itself on the stored figures: the same.
    assert shown == {ids[case]: expected for case, (*_, expected) in CASES.items()}
    for v in everything:
        assert v.status == rules.shown_status(
            rules.stored_status(v.amount_cents, v.paid_cents), v.due_at, v.balance_cents, NOW
        )
    for status in rules.SHOWN_STATUSES:  # what SQL filters is what the domain shows, status by status
        page = await invoices.page(NOW, agency_id=None, status=status, year=None, after=None, limit=100)
        assert {v.id for v in page} == {i for i, s in shown.items() if s == status}, status
        assert all(v.status == status for v in page)
    one = await invoices.get(ids["due_a_tick_ago"], NOW)
    assert one.status == "overdue" and one.payments == ()
    assert (await invoices.get(ids["due_a_tick_ago"], NOW - TICK)).status == "issued"  # due exactly then


# -- issuing --------------------------------------------------------------------------------------


async def test_a_commission_is_computed_from_net_revenue_and_earlier_successes(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await add_agency(conn)
        await add_agency(conn, "agy_other")
        for n, days in enumerate((-30, -20)):  # two earlier successes: a reliable agency
            await add_launch(conn, f"lch_before{n}", "successful", NOW + timedelta(days=days))
        await add_launch(conn, "lch_later", "successful", NOW + timedelta(days=5))  # not earlier
        await add_launch(conn, "lch_aborted", "aborted", NOW - timedelta(days=40))  # not a success
        await add_launch(conn, "lch_theirs", "successful", NOW - timedelta(days=50), "agy_other")
        await add_launch(conn, "lch_now", "successful", NOW - timedelta(days=1))
        await add_booking(conn, "bkg_a", "lch_now", 1_000_000)
        await add_booking(conn, "bkg_b", "lch_now", 234_567)
        await add_booking(conn, "bkg_c", "lch_now", 500_000, refund=450_000)  # net 50_000
        await add_booking(conn, "bkg_elsewhere", "lch_later", 777_777)
    async with postgres.write_tx(pool) as conn:
        issued = await issue_invoice(conn, InvoiceDue("lch_now", "agy_1", "commission", NOW))
    assert issued == InvoiceIssued(
        invoice_id=issued.invoice_id,
        number="INV-2027-000001",
        agency_id="agy_1",
        launch_id="lch_now",
        mission="Mission lch_now",
        kind="commission",
        amount_cents=10_277,  # 0.8 % of 1_284_567 is 10_276.536
        due_at=NOW + timedelta(days=30),
    )
    got = await PgInvoices(pool).get(issued.invoice_id, NOW)
    assert (got.net_revenue_cents, got.rate_bp, got.amount_cents, got.status) == (
        1_284_567,
        80,
        10_277,
        "issued",
    )


async def test_an_issued_invoice_writes_its_agencys_row_at_the_contact_address(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await add_agency(conn)
        await add_launch(conn, "lch_1", "aborted", NOW + timedelta(days=3))
    async with postgres.write_tx(pool) as conn:
        issued = await issue_invoice(conn, InvoiceDue("lch_1", "agy_1", "abort_fee", NOW))
    async with pool.acquire() as conn:
        rows = await notification_rows(conn, "invoice_issued")
        assert await conn.fetchval("SELECT count(*) FROM notifications") == 1
    assert rows == [
        {
            "recipient_id": "agy_1",
            "recipient_role": "agency",
            "recipient_email": "billing@agy_1.example",
            "data": {
                "invoice_id": issued.invoice_id,
                "invoice_number": "INV-2027-000001",
                "mission": "Mission lch_1",
                "launch_id": "lch_1",
                "kind": "abort fee",
                "amount": "$1,000.00",
                "due_date": "2027-05-31",
                "invoice_path": f"/agency#invoices/{issued.invoice_id}",
                "name": "Orbital agy_1",
            },
        }
    ]


async def test_a_second_invoice_of_a_launch_is_refused_and_gives_its_number_back(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await add_agency(conn)
        for launch_id in ("lch_1", "lch_2"):
            await add_launch(conn, launch_id, "aborted", NOW + timedelta(days=3))
    async with postgres.write_tx(pool) as conn:
        await issue_invoice(conn, InvoiceDue("lch_1", "agy_1", "abort_fee", NOW))
    with pytest.raises(Conflict) as caught:
        async with postgres.write_tx(pool) as conn:
            await issue_invoice(conn, InvoiceDue("lch_1", "agy_1", "abort_fee", NOW))
    assert caught.value.code == "invoice_exists"
    async with postgres.write_tx(pool) as conn:
        second = await issue_invoice(conn, InvoiceDue("lch_2", "agy_1", "abort_fee", NOW))
    assert second.number == "INV-2027-000002"
    async with pool.acquire() as conn:
        assert len(await notification_rows(conn, "invoice_issued")) == 2  # none for the refused one


# -- payments -------------------------------------------------------------------------------------


async def test_a_payment_writes_the_agencys_row_with_the_open_balance(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await add_agency(conn)
        await add_launch(conn, "lch_1", "aborted", NOW + timedelta(days=3))
    async with postgres.write_tx(pool) as conn:
        issued = await issue_invoice(conn, InvoiceDue("lch_1", "agy_1", "abort_fee", NOW))
    invoices = PgInvoices(pool)
    await invoices.record_transfer(issued.invoice_id, 25_050, "SEPA-1", "usr_finance", NOW)
    payment_id = await invoices.reserve(issued.invoice_id, "agy_1", 74_950, "agy_1")
    await invoices.settle(payment_id, "ch_1", NOW)
    async with pool.acquire() as conn:
        rows = await notification_rows(conn, "payment_received")
    expected = {"invoice_id": issued.invoice_id, "invoice_number": "INV-2027-000001", "name": "Orbital agy_1"}
    assert rows == [
        {
            "recipient_id": "agy_1",
            "recipient_role": "agency",
            "recipient_email": "billing@agy_1.example",
            "data": {**expected, "amount": "$250.50", "balance": "$749.50"},
        },
        {
            "recipient_id": "agy_1",
            "recipient_role": "agency",
            "recipient_email": "billing@agy_1.example",
            "data": {**expected, "amount": "$749.50", "balance": "$0.00"},
        },
    ]
    got = await invoices.get(issued.invoice_id, NOW)
    assert (got.status, got.paid_cents, got.pending_cents) == ("paid", 100_000, 0)
    assert [(p.method, p.status, p.amount_cents) for p in got.payments or ()] == [
        ("transfer", "done", 25_050),
        ("card", "done", 74_950),
    ]


async def test_a_declined_card_gives_the_set_aside_back_and_writes_no_row(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await add_agency(conn)
        await add_launch(conn, "lch_1", "aborted", NOW + timedelta(days=3))
    async with postgres.write_tx(pool) as conn:
        issued = await issue_invoice(conn, InvoiceDue("lch_1", "agy_1", "abort_fee", NOW))
    invoices = PgInvoices(pool)
    payment_id = await invoices.reserve(issued.invoice_id, "agy_1", 100_000, "agy_1")
    assert (await invoices.get(issued.invoice_id, NOW)).pending_cents == 100_000
    await invoices.settle(payment_id, None, NOW)
    got = await invoices.get(issued.invoice_id, NOW)
    assert (got.status, got.paid_cents, got.pending_cents) == ("issued", 0, 0)
    async with pool.acquire() as conn:
        assert await notification_rows(conn, "payment_received") == []
