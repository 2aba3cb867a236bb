"""FinanceAPI with exact cents: invoices issued when launches end, payments, numbering, reports."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from astro.domain.clock import FixedClock
from tests.conftest import Account, agency_body, passengers, register, traveler_body

A, B, F = "/api/agency", "/api/booking", "/api/finance"


@pytest.fixture
async def world(make_client: Any, make_employee: Any) -> Any:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    client = await make_client(clock=clock)

    class World:
        pass

    w = World()
    w.client, w.clock = client, clock  # type: ignore[attr-defined]
    w.agency = await register(client, agency_body())  # type: ignore[attr-defined]
    w.traveler = await register(client, traveler_body())  # type: ignore[attr-defined]
    w.finance = await make_employee("finance")  # type: ignore[attr-defined]
    return w


async def launch(
    w: Any, agency: Account | None = None, *, price: int = 123_457, days: float = 10, capacity: int = 50
) -> dict[str, Any]:
    agency = agency or w.agency
    resp = await w.client.post(
        f"{A}/rockets", headers=agency.headers, json={"name": "Ares", "capacity": capacity, "range": "mars"}
    )
    rocket = (await resp.json())["rocket"]
    at = w.clock.now() + timedelta(days=days)
    resp = await w.client.post(
        f"{A}/launches",
        headers=agency.headers,
        json={
            "rocket_id": rocket["id"],
            "mission": "Ledger run",
            "destination": "mars",
            "scheduled_at": at.isoformat(),
            "price_cents": price,
            "min_passengers": 1,
        },
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["launch"]  # type: ignore[no-any-return]


async def book(w: Any, launch_id: str, seats: int, traveler: Account | None = None) -> dict[str, Any]:
    traveler = traveler or w.traveler
    resp = await w.client.post(
        f"{B}/bookings",
        headers=traveler.headers,
        json={
            "launch_id": launch_id,
            "seats": seats,
            "passengers": passengers(seats),
            "card_token": "tok_ok",
        },
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["booking"]  # type: ignore[no-any-return]


async def status(w: Any, launch_id: str, value: str, agency: Account | None = None) -> Any:
    agency = agency or w.agency
    return await w.client.post(
        f"{A}/launches/{launch_id}/status", headers=agency.headers, json={"status": value}
    )


async def fly(w: Any, launch_id: str, agency: Account | None = None) -> None:
    """Past the launch time and successful."""
    w.clock.advance(timedelta(days=30))
    resp = await status(w, launch_id, "successful", agency)
    assert resp.status == 200, await resp.text()


async def invoices(w: Any, query: str = "") -> list[dict[str, Any]]:
    resp = await w.client.get(f"{F}/invoices{query}", headers=w.finance.headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["items"]  # type: ignore[no-any-return]


async def test_successful_launch_is_invoiced_one_percent_of_net_revenue(world: Any) -> None:
    w = world
    lch = await launch(w, days=400)
    first = await book(w, lch["id"], 3)  # 370_371
    second = await book(w, lch["id"], 2)  # 246_914, cancelled 400 days ahead: 90 % refunded
    resp = await w.client.post(f"{B}/bookings/{second['id']}/cancel", headers=w.traveler.headers)
    refund = (await resp.json())["refund_cents"]
    assert refund == 222_223  # 246_914 * 0.9 = 222_222.6, half up
    w.clock.advance(timedelta(days=401))
    assert (await status(w, lch["id"], "successful")).status == 200
    [invoice] = await invoices(w)
    net = first["total_cents"] + second["total_cents"] - refund
    assert invoice["net_revenue_cents"] == net == 395_062
    assert invoice["kind"] == "commission" and invoice["rate_pct"] == 1.0
    assert invoice["amount_cents"] == 3_951  # 3950.62 → 3951
    assert invoice["number"] == f"INV-{w.clock.now().year}-000001" and invoice["status"] == "issued"
    assert datetime.fromisoformat(invoice["due_at"]) - datetime.fromisoformat(
        invoice["issued_at"]
    ) == timedelta(days=30)
    report = await (await w.client.get(f"{A}/reports/bookings", headers=w.agency.headers)).json()
    assert report["net_cents"] == invoice["net_revenue_cents"]  # the agency's report agrees to the cent


async def test_reliable_agency_pays_0_8_percent_from_its_third_successful_launch(world: Any) -> None:
    w = world
    amounts = []
    for days in (5, 10, 15):
        lch = await launch(w, price=1_000_000, days=days)
        await book(w, lch["id"], 1)
    mine = await (await w.client.get(f"{A}/launches", headers=w.agency.headers)).json()
    w.clock.advance(timedelta(days=20))
    for item in sorted(mine["items"], key=lambda x: x["scheduled_at"]):
        assert (await status(w, item["id"], "successful")).status == 200
    for inv in await invoices(w):
        amounts.append((inv["number"], inv["rate_pct"], inv["amount_cents"]))
    year = w.clock.now().year
    assert amounts == [
        (f"INV-{year}-000001", 1.0, 10_000),
        (f"INV-{year}-000002", 1.0, 10_000),
        (f"INV-{year}-000003", 0.8, 8_000),
    ]


async def test_aborted_launch_is_invoiced_the_flat_fee_and_failed_is_not(world: Any) -> None:
    w = world
    aborted = await launch(w)
    await book(w, aborted["id"], 2)
    assert (await status(w, aborted["id"], "aborted")).status == 200
    failed = await launch(w)
    await book(w, failed["id"], 1)
    w.clock.advance(timedelta(days=11))
    assert (await status(w, failed["id"], "failed")).status == 200
    [invoice] = await invoices(w)
    assert (invoice["launch_id"], invoice["kind"], invoice["amount_cents"]) == (
        aborted["id"],
        "abort_fee",
        100_000,
    )
    resp = await w.client.post(f"{F}/invoices", headers=w.finance.headers, json={"launch_id": failed["id"]})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "launch_not_invoiceable"
    resp = await w.client.post(f"{F}/invoices", headers=w.finance.headers, json={"launch_id": aborted["id"]})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "invoice_exists"
    open_launch = await launch(w)
    resp = await w.client.post(
        f"{F}/invoices", headers=w.finance.headers, json={"launch_id": open_launch["id"]}
    )
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "launch_not_invoiceable"
    assert len(await invoices(w)) == 1


async def test_partial_payments_to_paid_overpayment_and_declined_card(world: Any) -> None:
    w = world
    lch = await launch(w)
    assert (await status(w, lch["id"], "aborted")).status == 200
    [invoice] = await invoices(w)
    pay = f"{A}/invoices/{invoice['id']}/payments"
    resp = await w.client.post(
        pay, headers=w.agency.headers, json={"amount_cents": 30_000, "card_token": "tok_ok"}
    )
    body = await resp.json()
    assert resp.status == 201 and body["invoice"]["status"] == "partially_paid"
    assert (body["invoice"]["paid_cents"], body["invoice"]["balance_cents"]) == (30_000, 70_000)
    resp = await w.client.post(
        pay, headers=w.agency.headers, json={"amount_cents": 70_001, "card_token": "tok_ok"}
    )
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "overpayment"
    resp = await w.client.post(
        pay, headers=w.agency.headers, json={"amount_cents": 10_000, "card_token": "tok_declined"}
    )
    assert resp.status == 402
    got = (await (await w.client.get(f"{F}/invoices/{invoice['id']}", headers=w.finance.headers)).json())[
        "invoice"
    ]
    assert got["paid_cents"] == 30_000 and [p["status"] for p in got["payments"]] == ["done", "declined"]
    resp = await w.client.post(
        f"{F}/invoices/{invoice['id']}/payments",
        headers=w.finance.headers,
        json={"amount_cents": 70_000, "method": "transfer", "reference": "SEPA-77"},
    )
    body = await resp.json()
    assert (
        resp.status == 201 and body["invoice"]["status"] == "paid" and body["invoice"]["balance_cents"] == 0
    )
    resp = await w.client.post(
        pay, headers=w.agency.headers, json={"amount_cents": 1, "card_token": "tok_ok"}
    )
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "overpayment"


async def test_unpaid_invoice_reads_overdue_after_30_days(world: Any) -> None:
    w = world
    lch = await launch(w)
    await status(w, lch["id"], "aborted")
    w.clock.advance(timedelta(days=30, seconds=1))
    [invoice] = await invoices(w)
    assert invoice["status"] == "overdue"
    assert [i["id"] for i in await invoices(w, "?status=overdue")] == [invoice["id"]]
    assert await invoices(w, "?status=issued") == []


async def test_concurrent_payments_never_exceed_the_invoice(world: Any) -> None:
    w = world
    lch = await launch(w)
    await status(w, lch["id"], "aborted")
    [invoice] = await invoices(w)
    pay = f"{A}/invoices/{invoice['id']}/payments"
    results = await asyncio.gather(
        *(
            w.client.post(
                pay, headers=w.agency.headers, json={"amount_cents": 30_000, "card_token": "tok_ok"}
            )
            for _ in range(10)
        )
    )
    assert sorted(r.status for r in results) == [201] * 3 + [422] * 7
    got = (await (await w.client.get(f"{F}/invoices/{invoice['id']}", headers=w.finance.headers)).json())[
        "invoice"
    ]
    assert got["paid_cents"] == 90_000 and got["balance_cents"] == 10_000


async def test_fifty_launches_ending_together_get_numbers_1_to_50(world: Any) -> None:
    w = world
    launches = [await launch(w) for _ in range(50)]
    results = await asyncio.gather(*(status(w, x["id"], "aborted") for x in launches))
    assert all(r.status == 200 for r in results)
    year = w.clock.now().year
    numbers = []
    cursor = None
    while True:
        resp = await w.client.get(
            f"{F}/invoices?limit=20" + (f"&cursor={cursor}" if cursor else ""), headers=w.finance.headers
        )
        body = await resp.json()
        numbers += [i["number"] for i in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, 51)]


async def test_idempotent_card_payment(world: Any) -> None:
    w = world
    lch = await launch(w)
    await status(w, lch["id"], "aborted")
    [invoice] = await invoices(w)
    pay = f"{A}/invoices/{invoice['id']}/payments"
    headers = {**w.agency.headers, "Idempotency-Key": "pay-1"}
    first = await w.client.post(pay, headers=headers, json={"amount_cents": 25_000, "card_token": "tok_ok"})
    again = await w.client.post(pay, headers=headers, json={"amount_cents": 25_000, "card_token": "tok_ok"})
    assert first.status == again.status == 201 and await first.json() == await again.json()
    got = (await (await w.client.get(f"{F}/invoices/{invoice['id']}", headers=w.finance.headers)).json())[
        "invoice"
    ]
    assert got["paid_cents"] == 25_000


async def test_another_agencys_invoice_is_404_and_roles_are_enforced(world: Any) -> None:
    w = world
    lch = await launch(w)
    await status(w, lch["id"], "aborted")
    [invoice] = await invoices(w)
    other = await register(w.client, agency_body())
    resp = await w.client.post(
        f"{A}/invoices/{invoice['id']}/payments",
        headers=other.headers,
        json={"amount_cents": 1, "card_token": "tok_ok"},
    )
    assert resp.status == 404
    assert (await (await w.client.get(f"{A}/invoices", headers=other.headers)).json())["items"] == []
    for who in (w.agency, w.traveler):
        assert (await w.client.get(f"{F}/invoices", headers=who.headers)).status == 403
        assert (await w.client.get(f"{F}/reports/annual", headers=who.headers)).status == 403


async def test_reports_add_up_and_the_new_user_story(world: Any) -> None:
    """Two launches end (one successful, one aborted); the agency pays one invoice in two parts."""
    w = world
    flown = await launch(w, price=500_000)
    await book(w, flown["id"], 4)
    scrubbed = await launch(w, price=200_000)
    await book(w, scrubbed["id"], 1)
    assert (await status(w, scrubbed["id"], "aborted")).status == 200
    await fly(w, flown["id"])
    items = await invoices(w)
    year = w.clock.now().year
    assert [(i["number"], i["kind"], i["amount_cents"]) for i in items] == [
        (f"INV-{year}-000001", "abort_fee", 100_000),
        (f"INV-{year}-000002", "commission", 20_000),
    ]
    commission = items[1]
    pay = f"{A}/invoices/{commission['id']}/payments"
    for part in (12_000, 8_000):
        resp = await w.client.post(
            pay, headers=w.agency.headers, json={"amount_cents": part, "card_token": "tok_ok"}
        )
        assert resp.status == 201
    annual = await (await w.client.get(f"{F}/reports/annual?year={year}", headers=w.finance.headers)).json()
    month = w.clock.now().month
    assert annual["total_actual_cents"] == 20_000 and annual["total_pending_cents"] == 100_000
    assert sum(m["actual_cents"] for m in annual["months"]) == annual["total_actual_cents"]
    assert [m["actual_cents"] for m in annual["months"] if m["month"] == month] == [20_000]
    resp = await w.client.get(f"{F}/reports/annual?year={year}&format=csv", headers=w.finance.headers)
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    # In dollars with their currency, as the screen shows them (not cents).
    assert list(rows[0]) == ["year", "month", "currency", "actual", "pending"]
    assert {r["currency"] for r in rows} == {"USD"}
    assert rows[-1]["month"] == "total" and rows[-1]["actual"] == "200.00"
    assert [r["pending"] for r in rows[:-1] if r["pending"] != "0.00"] == ["1000.00"]
    assert sum(Decimal(r["pending"]) for r in rows[:-1]) == Decimal(rows[-1]["pending"]) == Decimal("1000.00")

    report = await (await w.client.get(f"{F}/reports/agencies", headers=w.finance.headers)).json()
    mine = next(i for i in report["items"] if i["agency_id"] == w.agency.id)
    assert mine == {
        "agency_id": w.agency.id,
        "agency_name": mine["agency_name"],
        "launches": 2,
        "gross_cents": 2_200_000,
        "refund_cents": 200_000,
        "net_cents": 2_000_000,
        "commission_cents": 20_000,
        "abort_fee_cents": 100_000,
        "paid_cents": 20_000,
        "outstanding_cents": 100_000,
    }
    for key, total in report["totals"].items():
        assert total == sum(i[key] for i in report["items"])
    one = await (await w.client.get(f"{F}/reports/agencies/{w.agency.id}", headers=w.finance.headers)).json()
    assert one["report"] == mine
    later = (w.clock.now() + timedelta(days=365)).date().isoformat()
    empty = await (
        await w.client.get(f"{F}/reports/agencies/{w.agency.id}?from={later}", headers=w.finance.headers)
    ).json()
    assert empty["report"]["launches"] == 0 and empty["report"]["gross_cents"] == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/invoices?status=late", "status"),
        ("/invoices?year=20x7", "year"),
        ("/invoices?limit=0", "limit"),
        ("/reports/annual?format=xml", "format"),
        ("/reports/agencies?from=yesterday", "from"),
    ],
)
async def test_bad_queries_name_the_field(world: Any, path: str, field: str) -> None:
    resp = await world.client.get(f"{F}{path}", headers=world.finance.headers)
    assert resp.status == 400 and field in (await resp.json())["error"]["details"]["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount_cents": 0, "method": "transfer", "reference": "x"}, "amount_cents"),
        ({"amount_cents": "5", "method": "transfer", "reference": "x"}, "amount_cents"),
        ({"amount_cents": 5, "method": "card", "reference": "x"}, "method"),
        ({"amount_cents": 5, "method": "transfer"}, "reference"),
        ({"amount_cents": 5, "method": "transfer", "reference": "x", "extra": 1}, "extra"),
    ],
)
async def test_bad_transfer_bodies(world: Any, body: dict[str, Any], field: str) -> None:
    w = world
    lch = await launch(w)
    await status(w, lch["id"], "aborted")
    [invoice] = await invoices(w)
    resp = await w.client.post(f"{F}/invoices/{invoice['id']}/payments", headers=w.finance.headers, json=body)
    assert resp.status == 400 and field in (await resp.json())["error"]["details"]["fields"]
    assert (await invoices(w))[0]["paid_cents"] == 0


async def test_concurrent_on_demand_invoices_issue_exactly_one(world: Any, settings: Any) -> None:
    """A launch that ended before invoicing existed: ten finance requests at once make one invoice."""
    import asyncpg

    w = world
    lch = await launch(w)
    await status(w, lch["id"], "aborted")
    conn = await asyncpg.connect(settings.pg_dsn)
    try:  # take its invoice and its number away, as if it had never been issued
        await conn.execute("DELETE FROM invoices WHERE launch_id = $1", lch["id"])
        await conn.execute("UPDATE invoice_counters SET last = last - 1")
    finally:
        await conn.close()
    create = {"launch_id": lch["id"]}
    results = await asyncio.gather(
        *(w.client.post(f"{F}/invoices", headers=w.finance.headers, json=create) for _ in range(10))
    )
    assert sorted(r.status for r in results) == [201] + [409] * 9
    for r in results:
        if r.status == 409:
            assert (await r.json())["error"]["code"] == "invoice_exists"
    [invoice] = await invoices(w)
    assert invoice["number"] == f"INV-{w.clock.now().year}-000001" and invoice["amount_cents"] == 100_000


async def test_unknown_agency_report_and_unknown_launch_invoice_are_404(world: Any) -> None:
    w = world
    resp = await w.client.get(f"{F}/reports/agencies/agy_nope", headers=w.finance.headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await w.client.post(f"{F}/invoices", headers=w.finance.headers, json={"launch_id": "lch_nope"})
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await w.client.get(f"{F}/invoices/inv_nope", headers=w.finance.headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_finished_launches_without_an_invoice_are_listed_for_issuing_on_demand(
    world: Any, settings: Any
) -> None:
    import asyncpg

    w = world
    flown, scrubbed, failed, still_open = [await launch(w) for _ in range(4)]
    assert (await status(w, scrubbed["id"], "aborted")).status == 200
    w.clock.advance(timedelta(days=30))
    for lch, to in ((flown, "successful"), (failed, "failed")):
        assert (await status(w, lch["id"], "confirmed")).status == 200
        assert (await status(w, lch["id"], to)).status == 200
    url = f"{F}/launches/uninvoiced"
    resp = await w.client.get(url, headers=w.finance.headers)
    assert resp.status == 200 and (await resp.json())["items"] == []  # both were invoiced when they ended
    conn = await asyncpg.connect(settings.pg_dsn)
    try:  # as if their invoices had never been issued
        await conn.execute("DELETE FROM invoices")
    finally:
        await conn.close()
    page = await (await w.client.get(url, headers=w.finance.headers)).json()
    got = {(i["launch_id"], i["status"], i["kind"], i["mission"]) for i in page["items"]}
    assert got == {
        (flown["id"], "successful", "commission", "Ledger run"),
        (scrubbed["id"], "aborted", "abort_fee", "Ledger run"),
    }  # neither the failed launch (never invoiced) nor the open one
    assert all(i["agency_id"] == w.agency.id and i["agency_name"] for i in page["items"])
    first = await (await w.client.get(f"{url}?limit=1", headers=w.finance.headers)).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    rest = await (
        await w.client.get(f"{url}?limit=1&cursor={first['next_cursor']}", headers=w.finance.headers)
    ).json()
    assert {first["items"][0]["launch_id"], rest["items"][0]["launch_id"]} == {flown["id"], scrubbed["id"]}
    resp = await w.client.post(f"{F}/invoices", headers=w.finance.headers, json={"launch_id": flown["id"]})
    assert resp.status == 201
    page = await (await w.client.get(url, headers=w.finance.headers)).json()
    assert [i["launch_id"] for i in page["items"]] == [scrubbed["id"]]
    for who in (w.agency, w.traveler):
        resp = await w.client.get(url, headers=who.headers)
        assert resp.status == 403
    resp = await w.client.get(f"{url}?limit=0", headers=w.finance.headers)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_input"
    assert still_open["status"] == "scheduled"
