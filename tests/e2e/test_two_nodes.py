"""Two nodes in one process on the same PostgreSQL and Redis (DESIGN 8.5): one owner per launch, the others
forward to it; a stale owner's write is refused by the fence; seat counts and status are guarded again by
the database itself. (Real node processes, kill -9 and SIGSTOP: tests/cluster.)"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import pytest

from astro.embedded import free_port
from tests.conftest import passengers
from web.app import create_app
from web.keys import ACTORS, LEASES

B = "/api/booking"


async def book(node: Any, traveler: Any, launch_id: str, seats: int = 1, **headers: str) -> Any:
    return await node.post(
        f"{B}/bookings",
        headers={**traveler.headers, **headers},
        json={
            "launch_id": launch_id,
            "seats": seats,
            "passengers": passengers(seats),
            "card_token": "tok_ok",
        },
    )


@pytest.fixture
async def nodes(aiohttp_client: Any, settings: Any) -> list[Any]:
    """Nodes a and b, each at a URL of its own that the other forwards to."""
    made = []
    for name in ("node-a", "node-b"):
        port = free_port()
        app = create_app(settings.replace(node=name, port=port, node_url=f"http://127.0.0.1:{port}"))
        made.append(await aiohttp_client(app, server_kwargs={"port": port}))
    return made


@pytest.fixture
async def travelers(make_traveler: Any) -> list[Any]:
    return list(await asyncio.gather(*(make_traveler() for _ in range(40))))


async def db(settings: Any, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        return await conn.fetchrow(query, *args)
    finally:
        await conn.close()


async def counts(settings: Any, launch_id: str) -> tuple[int, int]:
    """(launches.seats_booked, seats of confirmed bookings)."""
    row = await db(
        settings,
        """SELECT l.seats_booked, (SELECT COALESCE(sum(seats), 0) FROM bookings b
               WHERE b.launch_id = l.id AND b.status = 'confirmed') AS confirmed
           FROM launches l WHERE l.id = $1""",
        launch_id,
    )
    return int(row["seats_booked"]), int(row["confirmed"])


async def test_a_storm_split_over_two_nodes_sells_each_seat_once(
    nodes: list[Any], settings: Any, make_agency: Any, make_launch: Any, travelers: list[Any]
) -> None:
    launch = await make_launch(await make_agency(), capacity=30, min_passengers=5)
    answers = await asyncio.gather(*(book(nodes[i % 2], travelers[i % 40], launch["id"]) for i in range(80)))
    statuses = Counter(a.status for a in answers)
    assert statuses == {201: 30, 409: 50}, statuses
    for answer in answers:
        if answer.status == 409:
            assert (await answer.json())["error"]["code"] == "sold_out"
    assert await counts(settings, launch["id"]) == (30, 30)
    # One node owns the launch; the other answered by forwarding, naming itself.
    lease = await db(settings, "SELECT node, epoch FROM launch_leases WHERE launch_id = $1", launch["id"])
    assert lease["node"] in ("node-a", "node-b") and lease["epoch"] == 1
    assert {a.headers["X-Astro-Node"] for a in answers} == {"node-a", "node-b"}
    owner = nodes[0] if lease["node"] == "node-a" else nodes[1]
    other = nodes[1] if owner is nodes[0] else nodes[0]
    assert other.app[LEASES].held == {}
    assert other.app[ACTORS].get(f"launch:{launch['id']}") is None


async def test_an_abort_on_one_node_stops_bookings_on_the_other(
    nodes: list[Any], settings: Any, make_agency: Any, make_launch: Any, travelers: list[Any]
) -> None:
    agency = await make_agency()
    launch = await make_launch(agency, capacity=100, min_passengers=5)
    first = await asyncio.gather(*(book(nodes[1], t, launch["id"]) for t in travelers[:10]))
    assert [a.status for a in first] == [201] * 10
    aborted = await nodes[0].post(
        f"/api/agency/launches/{launch['id']}/status",
        headers=agency.headers,
        json={"status": "aborted", "reason": "weather"},
    )
    assert aborted.status == 200, await aborted.text()
    after = await asyncio.gather(*(book(nodes[1], t, launch["id"]) for t in travelers[10:30]))
    assert Counter(a.status for a in after) == {409: 20}
    row = await db(
        settings,
        """SELECT status, seats_booked,
                  (SELECT count(*) FROM bookings WHERE launch_id = $1 AND status = 'confirmed') AS active
           FROM launches WHERE id = $1""",
        launch["id"],
    )
    assert (row["status"], row["active"]) == ("aborted", 0)


async def test_a_stale_owner_cannot_commit(
    nodes: list[Any], settings: Any, make_agency: Any, make_launch: Any, travelers: list[Any]
) -> None:
    """Node a owns the launch; its lease is taken over behind its back (as when a was paused past its
    lease): a's next write carries the old epoch and is refused -- nothing is stored, the card is not
    charged, and a's actor stops."""
    launch = await make_launch(await make_agency(), capacity=10, min_passengers=5)
    assert (await book(nodes[0], travelers[0], launch["id"])).status == 201
    key = f"launch:{launch['id']}"
    assert nodes[0].app[ACTORS].get(key) is not None
    taken = await db(
        settings,
        """UPDATE launch_leases SET epoch = epoch + 1, node = 'intruder', holder = 'intruder:1',
               url = 'http://127.0.0.1:9', expires_at = now() + interval '1 minute'
           WHERE launch_id = $1 RETURNING epoch""",
        launch["id"],
    )
    assert taken["epoch"] == 2
    answer = await book(nodes[0], travelers[1], launch["id"])
    assert answer.status == 503, await answer.text()
    assert await counts(settings, launch["id"]) == (1, 1)
    attempts = await db(
        settings,
        "SELECT array_agg(state ORDER BY created_at) AS states FROM payment_attempts WHERE launch_id = $1",
        launch["id"],
    )
    assert attempts["states"][0] in ("booked", "captured")
    # Refused before its payment (the keeper had already seen the lease lost and stopped the actor: the
    # request went to the intruder's address) or after it (the fence refused the commit): then released.
    assert all(state == "voided" for state in attempts["states"][1:]), attempts["states"]
    # Its actor stops (lost lease) or crashes and cannot start again (owned elsewhere), maybe just after
    # the answer: polled, bounded.
    async with asyncio.timeout(10):
        while nodes[0].app[ACTORS].get(key) is not None:
            await asyncio.sleep(0.05)


async def test_the_database_refuses_a_seat_count_or_status_it_did_not_expect(
    nodes: list[Any], settings: Any, make_agency: Any, make_launch: Any, travelers: list[Any]
) -> None:
    """The second line, behind the fence: seats are added to the stored count (so the CHECK guards it)
    and the status is compare-and-set, so even an actor whose memory is wrong cannot overbook."""
    launch = await make_launch(await make_agency(), capacity=10, min_passengers=5)
    assert (await book(nodes[0], travelers[0], launch["id"])).status == 201
    # Seats sold behind the actor's back: it believes 9 are left; the database has 1.
    await db(settings, "UPDATE launches SET seats_booked = 9 WHERE id = $1", launch["id"])
    answer = await book(nodes[0], travelers[1], launch["id"], seats=2)
    assert answer.status == 503, await answer.text()
    booked = await db(settings, "SELECT seats_booked FROM launches WHERE id = $1", launch["id"])
    assert booked["seats_booked"] == 9
    # The status moved behind an actor's back: its next commit compares it and is refused.
    other = await make_launch(await make_agency(), capacity=10, min_passengers=5)
    assert (await book(nodes[0], travelers[2], other["id"])).status == 201
    await db(settings, "UPDATE launches SET status = 'aborted' WHERE id = $1", other["id"])
    answer = await book(nodes[0], travelers[3], other["id"])
    assert answer.status == 503, await answer.text()
    assert await counts(settings, other["id"]) == (1, 1)


async def test_a_forged_forwarding_header_grants_nothing(
    nodes: list[Any], settings: Any, make_agency: Any, make_launch: Any, travelers: list[Any]
) -> None:
    launch = await make_launch(await make_agency(), capacity=10, min_passengers=5)
    assert (await book(nodes[0], travelers[0], launch["id"])).status == 201  # a owns it
    forged = {
        "X-Astro-Forwarded-By": "node-a",
        "X-Astro-Forwarded-At": "0",
        "X-Astro-Forward-Signature": "0" * 64,
    }
    answer = await book(nodes[1], travelers[1], launch["id"], **forged)
    assert answer.status == 201, await answer.text()  # routed to the owner as any request
    lease = await db(settings, "SELECT node, epoch FROM launch_leases WHERE launch_id = $1", launch["id"])
    assert (lease["node"], lease["epoch"]) == ("node-a", 1)
    assert nodes[1].app[ACTORS].get(f"launch:{launch['id']}") is None


async def test_a_restarted_node_takes_its_own_launches_back_at_once(
    nodes: list[Any], settings: Any, make_agency: Any, make_launch: Any, travelers: list[Any]
) -> None:
    """A node killed and started again is a new run under the same name: the leases its earlier run held
    are its own to take, without waiting for them to expire (nor forwarding to the dead run's address)."""
    launch = await make_launch(await make_agency(), capacity=10, min_passengers=5)
    await db(
        settings,
        """INSERT INTO launch_leases (launch_id, epoch, node, holder, url, expires_at)
           VALUES ($1, 7, 'node-a', 'node-a:dead-run', 'http://127.0.0.1:9', now() + interval '1 minute')""",
        launch["id"],
    )
    answer = await book(nodes[0], travelers[0], launch["id"])
    assert answer.status == 201, await answer.text()
    lease = await db(
        settings, "SELECT node, epoch, holder FROM launch_leases WHERE launch_id = $1", launch["id"]
    )
    assert (lease["node"], lease["epoch"]) == ("node-a", 8)
    assert lease["holder"] == nodes[0].app[LEASES].owner.holder


async def test_waitlist_offers_are_made_by_the_owner_alone_and_a_stale_owner_offers_nothing(
    nodes: list[Any], settings: Any, make_agency: Any, make_launch: Any, travelers: list[Any]
) -> None:
    """Joins and a cancellation sent to the other node are forwarded: the owner makes the offer, in the
    cancellation's transaction. Once the lease is taken behind the owner's back, its cancellation (and
    with it any offer) is refused by the fence: nothing is written."""

    async def entries(launch_id: str) -> list[str]:
        row = await db(
            settings,
            "SELECT array_agg(status ORDER BY joined_at) AS s FROM waitlist_entries WHERE launch_id = $1",
            launch_id,
        )
        return list(row["s"] or [])

    async def join(node: Any, traveler: Any, launch_id: str) -> Any:
        return await node.post(
            f"{B}/launches/{launch_id}/waitlist", headers=traveler.headers, json={"seats": 2}
        )

    launch = await make_launch(await make_agency(), capacity=2, min_passengers=1, days=400)
    first = await book(nodes[0], travelers[0], launch["id"], seats=2)
    assert first.status == 201
    for traveler in travelers[1:3]:
        assert (await join(nodes[1], traveler, launch["id"])).status == 201
    cancel = await nodes[1].post(
        f"{B}/bookings/{(await first.json())['booking']['id']}/cancel", headers=travelers[0].headers
    )
    assert cancel.status == 200, await cancel.text()
    assert await entries(launch["id"]) == ["offered", "waiting"]
    assert nodes[1].app[ACTORS].get(f"launch:{launch['id']}") is None  # node b made nothing itself

    other = await make_launch(await make_agency(), capacity=2, min_passengers=1, days=400)
    held = await book(nodes[0], travelers[3], other["id"], seats=2)
    assert held.status == 201
    assert (await join(nodes[0], travelers[4], other["id"])).status == 201
    await db(
        settings,
        """UPDATE launch_leases SET epoch = epoch + 1, node = 'intruder', holder = 'intruder:1',
               url = 'http://127.0.0.1:9', expires_at = now() + interval '1 minute'
           WHERE launch_id = $1 RETURNING epoch""",
        other["id"],
    )
    answer = await nodes[0].post(
        f"{B}/bookings/{(await held.json())['booking']['id']}/cancel", headers=travelers[3].headers
    )
    assert answer.status == 503, await answer.text()
    assert await entries(other["id"]) == ["waiting"]
    assert await counts(settings, other["id"]) == (2, 2)
