"""The waiting list as two travelers try it: sold out, B then C join, a cancellation offers B the seats
(e-mail, inbox, live), B books them while C and a stranger get sold_out; an offer left unused passes to C;
a storm of joins and cancellations keeps every seat accounted in PostgreSQL; offers survive a restart;
an abort closes the list."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import asyncpg

from tests.conftest import MakeClient, agency_body, create_launch, register, traveler_body
from tests.e2e.test_live_bookings import book
from tests.e2e.test_notify_api import start
from tests.smtpd import SmtpServer
from web.keys import DESK, DISPATCHER
from web.resources import PG_POOL

B = "/api/booking"


async def booked(client: Any, traveler: Any, launch_id: str, seats: int) -> dict[str, Any]:
    resp = await book(client, traveler, launch_id, seats)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["booking"]  # type: ignore[no-any-return]


async def join(client: Any, traveler: Any, launch_id: str, seats: int) -> Any:
    return await client.post(
        f"{B}/launches/{launch_id}/waitlist", headers=traveler.headers, json={"seats": seats}
    )


async def joined(client: Any, traveler: Any, launch_id: str, seats: int) -> dict[str, Any]:
    resp = await join(client, traveler, launch_id, seats)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["entry"]  # type: ignore[no-any-return]


async def entries(client: Any, traveler: Any) -> list[dict[str, Any]]:
    resp = await client.get(f"{B}/waitlist", headers=traveler.headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["items"]  # type: ignore[no-any-return]


async def cancel(client: Any, traveler: Any, booking_id: str) -> None:
    resp = await client.post(f"{B}/bookings/{booking_id}/cancel", headers=traveler.headers)
    assert resp.status == 200, await resp.text()


async def refused(resp: Any, status: int, code: str) -> None:
    body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (status, code), body


async def launch_of(client: Any, agency: Any, capacity: int, *, days: float = 400) -> dict[str, Any]:
    return await create_launch(
        client,
        agency,
        capacity=capacity,
        min_passengers=1,
        price_cents=250_000,
        days=days,
        mission="Red dust",
    )


async def watch(client: Any, traveler: Any) -> Any:
    """A WebSocket on the traveler's own channel."""
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "auth", "token": traveler.token})
    await ws.send_json({"type": "subscribe", "channel": "traveler"})
    async with asyncio.timeout(5):
        while (frame := await ws.receive_json())["type"] != "subscribed":
            assert frame["type"] in ("auth_ok", "authenticated", "pong", "event"), frame
    return ws


async def next_event(ws: Any, name: str, limit: float = 15) -> dict[str, Any]:
    """The data of the next live event of this name (earlier ones of other names are passed over)."""
    async with asyncio.timeout(limit):
        while True:
            frame = await ws.receive_json()
            if frame.get("type") == "event" and frame["event"] == name:
                return frame["data"]  # type: ignore[no-any-return]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def accounting(pool: asyncpg.Pool, launch_id: str) -> dict[str, int]:
    """The launch's seats as PostgreSQL holds them: sold, offered, free and the list's entries."""
    row = await pool.fetchrow(
        """SELECT l.capacity, l.seats_booked,
                  (SELECT COALESCE(sum(seats), 0) FROM bookings
                    WHERE launch_id = l.id AND status = 'confirmed') AS sold_by_bookings,
                  (SELECT COALESCE(sum(seats), 0) FROM waitlist_entries
                    WHERE launch_id = l.id AND status = 'offered') AS offered
           FROM launches l WHERE l.id = $1""",
        launch_id,
    )
    assert row is not None
    out = dict(row.items())
    out["free"] = out["capacity"] - out["seats_booked"] - out["offered"]
    return out


async def check_accounting(client: Any, launch_id: str) -> dict[str, int]:
    """sold + offered + free = capacity with nothing negative, no waiting party that fits the free seats,
    and every offer made in joining order to the parties that fit."""
    await client.app[DESK].launch(launch_id)  # the actor's earlier batches are settled when it answers
    pool = client.app[PG_POOL]
    seats = await accounting(pool, launch_id)
    assert seats["seats_booked"] == seats["sold_by_bookings"]
    assert (
        seats["free"] >= 0 and seats["seats_booked"] + seats["offered"] + seats["free"] == seats["capacity"]
    )
    rows = await pool.fetch(
        """SELECT id, seats, status, joined_at FROM waitlist_entries
           WHERE launch_id = $1 ORDER BY joined_at, id""",
        launch_id,
    )
    waiting = [r for r in rows if r["status"] == "waiting"]
    assert all(w["seats"] > seats["free"] for w in waiting), (seats, [w["seats"] for w in waiting])
    for o in (r for r in rows if r["status"] in ("offered", "booked")):
        earlier = [w for w in waiting if w["joined_at"] < o["joined_at"] and w["seats"] <= o["seats"]]
        assert not earlier, ("an earlier party that fitted was passed over", o, earlier)
    return seats


async def test_the_story_b_and_c_wait_b_is_offered_and_books_while_c_and_a_stranger_are_sold_out(
    make_client: MakeClient,
) -> None:
    smtp = SmtpServer()
    await smtp.start()
    client = await start(make_client, smtp_url=smtp.url, public_url="https://astro.example")
    agency = await register(client, agency_body())
    a, b, c, stranger = [await register(client, traveler_body()) for _ in range(4)]
    launch = await launch_of(client, agency, capacity=2)
    first = await booked(client, a, launch["id"], 2)

    await refused(await join(client, b, launch["id"], 5), 422, "seat_limit")
    entry_b = await joined(client, b, launch["id"], 2)
    entry_c = await joined(client, c, launch["id"], 2)
    assert (entry_b["status"], entry_b["position"], entry_c["position"]) == ("waiting", 1, 2)
    await refused(await join(client, b, launch["id"], 1), 409, "already_waiting")
    ws_b, ws_c = await watch(client, b), await watch(client, c)
    resp = await client.get(f"/api/agency/launches/{launch['id']}", headers=agency.headers)
    demand = (await resp.json())["launch"]
    assert (demand["waitlist_length"], demand["waitlist_seats"], demand["seats_offered"]) == (2, 4, 0)

    await cancel(client, a, first["id"])  # 400 days ahead: refunded, the seats come free
    offer = await next_event(ws_b, "waitlist_offer")
    assert (offer["entry_id"], offer["seats"], offer["status"]) == (entry_b["id"], 2, "offered")
    moved = await next_event(ws_c, "waitlist_position")
    assert (moved["entry_id"], moved["position"]) == (entry_c["id"], 1)
    [mine] = await entries(client, b)
    assert mine["status"] == "offered"
    assert at(mine["offer_expires_at"]) == at(offer["offer_expires_at"])
    assert mine["position"] is None
    # E-mail and inbox.
    await client.app[DISPATCHER].run_once()
    [mail] = [m for m in smtp.received if b.email in m.rcpt_tos and "yours until" in m.subject]
    assert mail.subject.startswith("2 seats are yours until ") and mail.subject.endswith("UTC: Red dust")
    assert "https://astro.example/traveler#waitlist" in mail.body
    resp = await client.get("/api/notify/inbox", headers=b.headers)
    assert "waitlist_offer" in [n["event"] for n in (await resp.json())["items"]]

    # The offered seats are B's alone.
    await refused(await book(client, c, launch["id"], 2), 409, "sold_out")
    await refused(await book(client, stranger, launch["id"], 1), 409, "sold_out")
    assert (await check_accounting(client, launch["id"]))["offered"] == 2
    mine_booked = await booked(client, b, launch["id"], 2)
    [mine] = await entries(client, b)
    assert (mine["status"], mine["booking_id"]) == ("booked", mine_booked["id"])
    [theirs] = await entries(client, c)
    assert (theirs["status"], theirs["position"]) == ("waiting", 1)
    seats = await check_accounting(client, launch["id"])
    assert (seats["seats_booked"], seats["offered"], seats["free"]) == (2, 0, 0)
    await refused(await book(client, stranger, launch["id"], 1), 409, "sold_out")
    for ws in (ws_b, ws_c):
        await ws.close()
    await smtp.stop()


async def test_an_offer_left_unused_expires_and_passes_to_the_next(make_client: MakeClient) -> None:
    client = await start(make_client, waitlist_offer_seconds=1.5)
    agency = await register(client, agency_body())
    a, b, c = [await register(client, traveler_body()) for _ in range(3)]
    launch = await launch_of(client, agency, capacity=2)
    first = await booked(client, a, launch["id"], 2)
    await joined(client, b, launch["id"], 2)
    entry_c = await joined(client, c, launch["id"], 2)
    ws_c = await watch(client, c)
    await cancel(client, a, first["id"])
    [mine] = await entries(client, b)
    deadline = at(mine["offer_expires_at"])
    offer = await next_event(ws_c, "waitlist_offer")  # B did nothing: at the deadline, C is offered
    assert offer["entry_id"] == entry_c["id"] and datetime.now(UTC) >= deadline
    [mine] = await entries(client, b)
    assert mine["status"] == "expired"
    await refused(await book(client, b, launch["id"], 2), 409, "sold_out")
    await booked(client, c, launch["id"], 2)
    seats = await check_accounting(client, launch["id"])
    assert (seats["seats_booked"], seats["offered"]) == (2, 0)
    await ws_c.close()


async def test_an_offer_deadline_holds_across_a_restart_and_then_passes_on(make_client: MakeClient) -> None:
    client = await start(make_client, waitlist_offer_seconds=2.0, recovery_interval=0.2)
    agency = await register(client, agency_body())
    a, b, c = [await register(client, traveler_body()) for _ in range(3)]
    launch = await launch_of(client, agency, capacity=2)
    first = await booked(client, a, launch["id"], 2)
    await joined(client, b, launch["id"], 2)
    await joined(client, c, launch["id"], 2)
    await cancel(client, a, first["id"])
    [before] = await entries(client, b)
    assert before["status"] == "offered"
    await client.close()  # the node stops mid-offer: its actor, its reminder, its lease are gone

    client = await start(make_client, waitlist_offer_seconds=2.0, recovery_interval=0.2)
    [after] = await entries(client, b)
    assert (after["status"], after["offer_expires_at"]) == ("offered", before["offer_expires_at"])
    ws_c = await watch(client, c)
    offer = await next_event(ws_c, "waitlist_offer")  # nobody asked for the launch: recovery woke it
    assert datetime.now(UTC) >= at(before["offer_expires_at"])
    assert offer["seats"] == 2
    [mine] = await entries(client, b)
    assert mine["status"] == "expired"
    await check_accounting(client, launch["id"])
    await ws_c.close()


async def test_aborting_the_launch_closes_its_list_and_tells_everyone_on_it(make_client: MakeClient) -> None:
    smtp = SmtpServer()
    await smtp.start()
    client = await start(make_client, smtp_url=smtp.url)
    agency = await register(client, agency_body())
    a, b, c = [await register(client, traveler_body()) for _ in range(3)]
    launch = await launch_of(client, agency, capacity=3)
    await booked(client, a, launch["id"], 3)
    await joined(client, b, launch["id"], 1)
    await joined(client, c, launch["id"], 4)
    ws_b = await watch(client, b)
    resp = await client.post(
        f"/api/agency/launches/{launch['id']}/status",
        headers=agency.headers,
        json={"status": "aborted", "reason": "weather"},
    )
    assert resp.status == 200, await resp.text()
    closed = await next_event(ws_b, "waitlist_position")
    assert (closed["status"], closed["position"]) == ("closed", None)
    for traveler in (b, c):
        [entry] = await entries(client, traveler)
        assert entry["status"] == "closed"
    await client.app[DISPATCHER].run_once()
    subjects = {(m.rcpt_tos[0], m.subject) for m in smtp.received}
    assert {
        (b.email, "The waiting list of Red dust is closed"),
        (c.email, "The waiting list of Red dust is closed"),
    } <= subjects
    await refused(await join(client, b, launch["id"], 1), 409, "launch_not_bookable")
    await ws_b.close()
    await smtp.stop()


async def test_joining_while_seats_are_free_and_leaving(make_client: MakeClient) -> None:
    client = await start(make_client)
    agency = await register(client, agency_body())
    a, b, c = [await register(client, traveler_body()) for _ in range(3)]
    launch = await launch_of(client, agency, capacity=4)
    await booked(client, a, launch["id"], 3)
    await refused(await join(client, b, launch["id"], 1), 409, "seats_available")
    entry = await joined(client, b, launch["id"], 2)  # one seat free: sold out for a party of two
    assert entry["position"] == 1
    await joined(client, c, launch["id"], 2)
    resp = await client.delete(f"{B}/launches/{launch['id']}/waitlist", headers=b.headers)
    assert resp.status == 204
    [mine] = await entries(client, b)
    assert mine["status"] == "left"
    [theirs] = await entries(client, c)
    assert theirs["position"] == 1
    resp = await client.delete(f"{B}/launches/{launch['id']}/waitlist", headers=b.headers)
    await refused(resp, 404, "not_found")
    await joined(client, b, launch["id"], 2)  # who left may join again, last
    assert [e["position"] for e in await entries(client, b) if e["status"] == "waiting"] == [2]


async def test_a_storm_of_joins_and_cancellations_offers_every_freed_seat_once_in_order(
    make_client: MakeClient,
) -> None:
    client = await start(make_client)
    agency = await register(client, agency_body())
    capacity = 24
    launch = await launch_of(client, agency, capacity=capacity)
    holders = await asyncio.gather(*(register(client, traveler_body()) for _ in range(capacity // 2)))
    bookings = await asyncio.gather(*(booked(client, t, launch["id"], 2) for t in holders))
    waiting = list(await asyncio.gather(*(register(client, traveler_body()) for _ in range(30))))
    strangers = await asyncio.gather(*(register(client, traveler_body()) for _ in range(3)))
    rng = random.Random(16)
    pool = client.app[PG_POOL]
    live = list(zip(holders, bookings, strict=True))
    queue = list(waiting)
    # Sold out: the first ten join for sure, in whatever order the actor takes them.
    first = [queue.pop() for _ in range(10)]
    for resp in await asyncio.gather(*(join(client, t, launch["id"], rng.randint(1, 4)) for t in first)):
        assert resp.status == 201, await resp.text()
    for _round in range(8):
        joins = [queue.pop() for _ in range(min(3, len(queue)))]
        cancels = [live.pop(rng.randrange(len(live))) for _ in range(min(3, len(live)))]
        # Joins, cancellations and travelers not on the list trying to book, all at once.
        results = await asyncio.gather(
            *(join(client, t, launch["id"], rng.randint(1, 4)) for t in joins),
            *(client.post(f"{B}/bookings/{bk['id']}/cancel", headers=t.headers) for t, bk in cancels),
            *(book(client, s, launch["id"], 1) for s in strangers),
        )
        for resp in results:
            assert resp.status in (200, 201, 409), await resp.text()
        for resp, s in zip(results[len(joins) + len(cancels) :], strangers, strict=True):
            if resp.status == 201:
                live.append((s, (await resp.json())["booking"]))
        await check_accounting(client, launch["id"])
        # Half the offers are booked (strangers try the same seats at the same time), the rest left open.
        offers = await pool.fetch(
            """SELECT w.traveler_id, w.seats FROM waitlist_entries w
               WHERE w.launch_id = $1 AND w.status = 'offered' ORDER BY w.joined_at""",
            launch["id"],
        )
        by_id = {t.id: t for t in waiting}
        takers = [o for i, o in enumerate(offers) if i % 2 == 0]
        results = await asyncio.gather(
            *(book(client, by_id[o["traveler_id"]], launch["id"], o["seats"]) for o in takers),
            *(book(client, s, launch["id"], 1) for s in strangers),
        )
        for resp, o in zip(results, takers, strict=False):
            assert resp.status == 201, await resp.text()  # the offered traveler always gets the seats
            live.append((by_id[o["traveler_id"]], (await resp.json())["booking"]))
        for resp, s in zip(results[len(takers) :], strangers, strict=True):
            assert resp.status in (201, 409), await resp.text()  # only seats nobody is offered
            if resp.status == 201:
                live.append((s, (await resp.json())["booking"]))
        seats = await check_accounting(client, launch["id"])
        assert seats["seats_booked"] + seats["offered"] + seats["free"] == capacity
    # Every offer went to one entry once: an entry's offered_at is set once and it was never offered again.
    rows = await pool.fetch(
        "SELECT status, count(*) AS n FROM waitlist_entries WHERE launch_id = $1 GROUP BY status",
        launch["id"],
    )
    statuses = {r["status"]: r["n"] for r in rows}
    assert statuses.get("booked", 0) >= 4, statuses
    changes = await pool.fetchval(
        """SELECT count(*) FROM changes WHERE entity = 'waitlist_entries'
           AND fields ->> 'status' = 'offered' AND op = 'update'""",
    )
    offered_ever = await pool.fetchval(
        "SELECT count(*) FROM waitlist_entries WHERE launch_id = $1 AND offered_at IS NOT NULL", launch["id"]
    )
    assert changes == offered_ever  # each entry moved to offered exactly once
    assert offered_ever >= 6, statuses


async def test_offered_seats_are_not_shown_as_available_until_the_list_lets_them_go(
    make_client: MakeClient,
) -> None:
    """The public card, the occupancy events and the agency's view count offered seats as taken: a visitor
    sees no seat that would answer 409 sold_out. An offer passing on keeps them taken; the last one
    expiring with nobody left to offer frees them."""
    client = await start(make_client, waitlist_offer_seconds=1.5)
    agency = await register(client, agency_body())
    a, b, c, stranger = [await register(client, traveler_body()) for _ in range(4)]
    launch = await launch_of(client, agency, capacity=2)
    first = await booked(client, a, launch["id"], 2)
    await joined(client, b, launch["id"], 2)
    entry_c = await joined(client, c, launch["id"], 2)
    public = await client.ws_connect("/ws")
    await public.send_json({"type": "subscribe", "channel": f"launch:{launch['id']}"})
    async with asyncio.timeout(5):
        while (await public.receive_json())["type"] != "subscribed":
            pass
    ws_c = await watch(client, c)

    async def shown() -> tuple[int, int, int]:
        """seats_available on the public card, in the agency's view, and the seats on offer there."""
        resp = await client.get(f"{B}/launches/{launch['id']}")
        assert resp.status == 200, await resp.text()
        card = (await resp.json())["launch"]
        resp = await client.get(f"/api/agency/launches/{launch['id']}", headers=agency.headers)
        assert resp.status == 200, await resp.text()
        mine = (await resp.json())["launch"]
        return card["seats_available"], mine["seats_available"], mine["seats_offered"]

    await cancel(client, a, first["id"])  # refunded: the 2 seats go to B's offer in the same transaction
    occupancy = await next_event(public, "occupancy")
    assert (occupancy["seats_booked"], occupancy["seats_available"]) == (0, 0), occupancy
    assert await shown() == (0, 0, 2)
    await refused(await book(client, stranger, launch["id"], 1), 409, "sold_out")

    offer = await next_event(ws_c, "waitlist_offer")  # B let it expire: it passes on to C
    assert offer["entry_id"] == entry_c["id"]
    await client.app[DESK].launch(launch["id"])
    assert await shown() == (0, 0, 2)
    await refused(await book(client, stranger, launch["id"], 1), 409, "sold_out")

    # C lets it expire too, and nobody is left: the seats are free, and shown free, again.
    async with asyncio.timeout(15):
        while (occupancy := await next_event(public, "occupancy"))["seats_available"] == 0:
            pass
    assert (occupancy["seats_booked"], occupancy["seats_available"]) == (0, 2), occupancy
    assert await shown() == (2, 2, 0)
    seats = await check_accounting(client, launch["id"])
    assert (seats["offered"], seats["free"]) == (0, 2)
    await booked(client, stranger, launch["id"], 1)
    for ws in (public, ws_c):
        await ws.close()
