"""GET /api/finance/reconciliation: bookings, a cancel with refund, an abort and declined cards agree to the
cent; rows and the sandbox's ledger edited by hand show up with the right reason; paging, roles, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from astro.domain.clock import FixedClock
from tests.conftest import Account, agency_body, passengers, register, traveler_body
from tests.e2e.test_api_bad_input import LIMIT_CURSOR_VALUES
from web.clients import PG_POOL
from web.http import encode_cursor
from web.keys import DESK

A, B, F = "/api/agency", "/api/booking", "/api/finance"
RECON = f"{F}/reconciliation"
PRICE_A, PRICE_B = 123_457, 100_000


class World:
    """The platform on a fixed clock, its people, two launches and what was booked on them."""

    client: TestClient[Any, Any]
    clock: FixedClock
    agency: Account
    travelers: list[Account]
    finance: Account
    bookings: dict[str, dict[str, Any]]
    declined: list[str]  # attempt ids of declined cards


async def _launch(w: World, *, price: int, days: float) -> dict[str, Any]:
    resp = await w.client.post(
        f"{A}/rockets", headers=w.agency.headers, json={"name": "Ares", "capacity": 50, "range": "mars"}
    )
    rocket = (await resp.json())["rocket"]
    resp = await w.client.post(
        f"{A}/launches",
        headers=w.agency.headers,
        json={
            "rocket_id": rocket["id"],
            "mission": "Ledger run",
            "destination": "mars",
            "scheduled_at": (w.clock.now() + timedelta(days=days)).isoformat(),
            "price_cents": price,
            "min_passengers": 1,
        },
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["launch"]  # type: ignore[no-any-return]


async def _book(w: World, traveler: Account, launch_id: str, seats: int, card: str = "tok_ok") -> Any:
    return await w.client.post(
        f"{B}/bookings",
        headers=traveler.headers,
        json={"launch_id": launch_id, "seats": seats, "passengers": passengers(seats), "card_token": card},
    )


async def _booked(w: World, traveler: Account, launch_id: str, seats: int) -> dict[str, Any]:
    resp = await _book(w, traveler, launch_id, seats)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["booking"]  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def client(make_client: Any, clock: FixedClock) -> TestClient[Any, Any]:
    """The platform on a fixed clock (employees are made on it too). Recovery only runs its start-up
    round, so the tests' edits are not repaired under them."""
    return await make_client(clock=clock, recovery_interval=3600.0)


@pytest.fixture
async def world(client: TestClient[Any, Any], clock: FixedClock, make_employee: Any) -> World:
    """Four bookings on two launches, one cancelled 400 days ahead (90 % back), a launch aborted (all
    back), three declined cards; every refund paid."""
    w = World()
    w.clock, w.client = clock, client
    w.agency = await register(w.client, agency_body())
    w.travelers = [await register(w.client, traveler_body()) for _ in range(2)]
    w.finance = await make_employee("finance")
    t1, t2 = w.travelers
    far, near = await _launch(w, price=PRICE_A, days=400), await _launch(w, price=PRICE_B, days=30)
    w.bookings = {
        "far1": await _booked(w, t1, far["id"], 3),
        "far2": await _booked(w, t2, far["id"], 2),
        "near1": await _booked(w, t1, near["id"], 1),
        "near2": await _booked(w, t2, near["id"], 2),
    }
    resp = await w.client.post(f"{B}/bookings/{w.bookings['far2']['id']}/cancel", headers=t2.headers)
    assert resp.status == 200 and (await resp.json())["refund_cents"] == 222_223  # 90 % of 246_914
    resp = await w.client.post(
        f"{A}/launches/{near['id']}/status", headers=w.agency.headers, json={"status": "aborted"}
    )
    assert resp.status == 200, await resp.text()
    for _ in range(3):
        assert (await _book(w, t1, far["id"], 1, "tok_declined")).status == 402
    await w.client.app[DESK].wait_background()  # the refunds are paid
    rows = await _sql(w, "SELECT id FROM payment_attempts WHERE state = 'declined' ORDER BY id")
    w.declined = [r["id"] for r in rows]
    return w


async def _sql(w: World, query: str, *args: Any) -> list[Any]:
    return await w.client.app[PG_POOL].fetch(query, *args)  # type: ignore[no-any-return]


async def _attempt_of(w: World, name: str) -> str:
    [row] = await _sql(w, "SELECT id FROM payment_attempts WHERE booking_id = $1", w.bookings[name]["id"])
    return row["id"]  # type: ignore[no-any-return]


async def _report(w: World, query: str = "", who: Account | None = None) -> dict[str, Any]:
    resp = await w.client.get(RECON + query, headers=(who or w.finance).headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def _problems(w: World, query: str = "") -> dict[str, list[str]]:
    """Attempt id -> the codes of its problems, over every page."""
    found: dict[str, list[str]] = {}
    cursor: str | None = None
    while True:
        page = await _report(w, query + (f"&cursor={cursor}" if cursor else ""))
        found.update({i["attempt_id"]: [p["code"] for p in i["problems"]] for i in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return found


CAPTURED = 370_371 + 246_914 + 100_000 + 200_000  # 3 and 2 seats at 123_457, 1 and 2 at 100_000
REFUNDED = 222_223 + 100_000 + 200_000  # the cancel's 90 %, the abort's 100 %
TOTALS = {
    "captured_cents": CAPTURED,
    "refunded_cents": REFUNDED,
    "booked_cents": CAPTURED,
    "refunds_due_cents": REFUNDED,
    "difference_cents": 0,
}


async def test_every_payment_matches_its_booking_to_the_cent(world: World) -> None:
    w = world
    report = await _report(w)
    assert report["items"] == [] and report["next_cursor"] is None
    assert report["checked"] == 7 and report["in_flight"] == 0
    assert report["totals"] == TOTALS
    assert report["states"] == {
        "created": 0,
        "authorized": 0,
        "booked": 0,
        "captured": 4,
        "voiding": 0,
        "voided": 0,
        "declined": 3,
        "failed": 0,
    }
    today = w.clock.now().date()
    assert report["from"] == (today - timedelta(days=29)).isoformat()
    assert report["to"] == (today + timedelta(days=1)).isoformat()
    # The gateway's own ledger says the same.
    ledger = await _sql(w, "SELECT state, amount_cents, refunded_cents FROM sandbox_payments")
    assert sum(r["amount_cents"] for r in ledger if r["state"] == "captured") == CAPTURED
    assert sum(r["refunded_cents"] for r in ledger) == REFUNDED


async def test_disagreements_made_by_hand_are_listed_with_their_reason(world: World) -> None:
    w = world
    w.clock.advance(timedelta(minutes=5))  # every attempt well past its deadline (45 s) and recovery's minute
    paid_twice, hold_kept, stuck = w.declined
    not_captured, refund_lost, amount_off = [await _attempt_of(w, n) for n in ("far1", "far2", "near1")]
    edit = "UPDATE sandbox_payments SET {} WHERE key = $1"
    await w.client.app[PG_POOL].execute(edit.format("state = 'captured'"), paid_twice)
    await w.client.app[PG_POOL].execute(edit.format("state = 'authorized'"), hold_kept)
    await w.client.app[PG_POOL].execute(
        "UPDATE payment_attempts SET state = 'voided' WHERE id = $1", hold_kept
    )
    await w.client.app[PG_POOL].execute(
        "UPDATE payment_attempts SET state = 'authorized', deadline = $2 WHERE id = $1",
        stuck,
        w.clock.now() - timedelta(seconds=90),
    )
    await w.client.app[PG_POOL].execute(edit.format("state = 'authorized'"), not_captured)
    await w.client.app[PG_POOL].execute(edit.format("refunded_cents = 0"), refund_lost)
    await w.client.app[PG_POOL].execute(edit.format("amount_cents = amount_cents + 1"), amount_off)

    report = await _report(w)
    found = {i["attempt_id"]: i for i in report["items"]}
    assert {a: [p["code"] for p in i["problems"]] for a, i in found.items()} == {
        paid_twice: ["captured_without_booking"],
        hold_kept: ["hold_not_released"],
        stuck: ["open_past_deadline"],
        not_captured: ["booking_not_paid"],
        refund_lost: ["refund_differs"],
        amount_off: ["amount_differs"],
    }
    voided = found[hold_kept]
    assert voided["state"] == "voided" and voided["booking"] is None
    assert voided["gateway"]["answered"] is True and voided["gateway"]["state"] == "authorized"
    assert voided["problems"][0]["action"].startswith("Void the authorization")
    charged = found[paid_twice]["problems"][0]
    assert f"captured {PRICE_A} cents" in charged["what"] and charged["action"].startswith(
        f"Refund {PRICE_A}"
    )
    unpaid = found[not_captured]
    assert unpaid["booking"]["id"] == w.bookings["far1"]["id"] and unpaid["booking"]["status"] == "confirmed"
    assert unpaid["state"] == "captured" and unpaid["gateway"]["state"] == "authorized"
    assert (
        found[refund_lost]["problems"][0]["what"]
        == "the gateway refunded 0 cents, our records say 222223 paid"
    )
    assert found[refund_lost]["booking"]["refunded_cents"] == 222_223
    assert found[amount_off]["gateway"]["amount_cents"] == PRICE_B + 1
    assert found[stuck]["problems"][0]["what"] == "the attempt is still authorized, 90 s past its deadline"
    # Our records did not change: the totals are those of our rows, to the cent.
    assert report["totals"] == TOTALS
    assert report["states"]["declined"] == 1 and report["states"]["voided"] == 1
    assert report["states"]["authorized"] == 1 and report["checked"] == 7

    # An open attempt still within its deadline is in flight: counted, not judged.
    await w.client.app[PG_POOL].execute(
        "UPDATE payment_attempts SET deadline = $2 WHERE id = $1",
        stuck,
        w.clock.now() + timedelta(seconds=30),
    )
    report = await _report(w)
    assert report["in_flight"] == 1 and report["checked"] == 6
    assert stuck not in {i["attempt_id"] for i in report["items"]} and len(report["items"]) == 5


async def test_pages_bound_the_attempts_checked_and_together_list_them_all(world: World) -> None:
    w = world
    await w.client.app[PG_POOL].execute(
        "UPDATE sandbox_payments SET state = 'voided' WHERE key = ANY($1::text[])",
        [await _attempt_of(w, n) for n in w.bookings],
    )
    whole = await _report(w)
    assert len(whole["items"]) == 4  # every booking's payment is released at the gateway
    pages, cursor, seen = 0, None, 0
    while True:
        page = await _report(w, "?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        pages += 1
        seen += page["checked"] + page["in_flight"]
        assert page["checked"] + page["in_flight"] <= 2
        assert page["totals"] == whole["totals"]  # of the whole period on every page
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4 and seen == 7
    assert await _problems(w, "?limit=2") == {i["attempt_id"]: ["booking_not_paid"] for i in whole["items"]}


async def test_the_period_is_on_the_attempts_creation_day(world: World) -> None:
    w = world
    today = w.clock.now().date()
    later = await _report(w, f"?from={today + timedelta(days=1)}")
    assert later["checked"] == 0 and later["to"] == (today + timedelta(days=31)).isoformat()
    assert later["totals"] == dict.fromkeys(TOTALS, 0) and set(later["states"].values()) == {0}
    assert (await _report(w, f"?to={today}"))["checked"] == 0  # `to` is not included
    one_day = await _report(w, f"?from={today}&to={today + timedelta(days=1)}")
    assert one_day["checked"] == 7 and one_day["totals"] == TOTALS
    edges = await _report(w, "?from=0001-01-01&to=0001-12-31")  # any calendar day will do
    assert edges["checked"] == 0 and (await _report(w, "?from=9999-12-01&to=9999-12-31"))["checked"] == 0


async def test_only_finance_reads_it(world: World, make_employee: Any) -> None:
    w = world
    for who in (w.travelers[0], w.agency, await make_employee("it")):
        resp = await w.client.get(RECON, headers=who.headers)
        assert resp.status == 403, who.role
        assert (await resp.json())["error"]["code"] == "forbidden"
    assert (await w.client.get(RECON)).status == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2027-1-05", "from"),
        ("from=2027-02-30", "from"),
        ("from=yesterday", "from"),
        ("to=2027-01-05T00:00:00", "to"),
        ("from=9999-12-31", "from"),  # no 30 days after it
        ("to=0001-01-01", "to"),
        *[(query, field) for _, query, field in LIMIT_CURSOR_VALUES],
        (f"cursor={encode_cursor('not one of ours')}", "cursor"),
        (f"cursor={encode_cursor('2027-01-01T00:00:00 att_1')}", "cursor"),  # no time zone
        (f"cursor={encode_cursor('0001-01-01T00:00:00+05:00 att_1')}", "cursor"),  # before year 1 in UTC
    ],
)
async def test_bad_input_is_400_naming_the_field(
    client: TestClient[Any, Any], make_employee: Any, query: str, field: str
) -> None:
    resp = await client.get(f"{RECON}?{query}", headers=(await make_employee("finance")).headers)
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_input" and list(error["details"]["fields"]) == [field]


@pytest.mark.parametrize(
    "query",
    ["from=2027-01-05&to=2027-01-05", "from=2027-01-05&to=2027-01-01", "from=2026-01-01&to=2027-01-03"],
    ids=["empty", "backwards", "367 days"],
)
async def test_a_period_out_of_order_or_too_long_is_refused_by_rule(
    client: TestClient[Any, Any], make_employee: Any, query: str
) -> None:
    # two well-formed days, a pair the rule refuses: 422 (the schema states each day, not the pair)
    resp = await client.get(f"{RECON}?{query}", headers=(await make_employee("finance")).headers)
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_range" and list(error["details"]["fields"]) == ["to"]


async def test_the_openapi_document_states_it(client: TestClient[Any, Any]) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    op = spec["paths"][RECON]["get"]
    assert {p["name"] for p in op["parameters"]} == {"from", "to", "limit", "cursor"}
    assert op["description"] == "Roles: finance" and "once per attempt" in op["summary"]
    out = spec["components"]["schemas"]["ReconciliationOut"]
    assert {"from", "to", "items", "totals", "states", "next_cursor"} <= set(out["properties"])
