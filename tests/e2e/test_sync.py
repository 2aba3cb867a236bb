"""Origins on every change, the continuous sync between the stores, and IT's sync jobs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.conftest import MakeClient, agency_body, passengers, register, traveler_body
from web.clients import MONGO_DB, PG_POOL
from web.keys import JOB_RUNNER, SYNC

S = "/api/system"
# Rounds this often: waiting for the worker to catch up costs a tenth of a second at most, not a second.
SYNC_INTERVAL = 0.1
WAIT = 30.0  # seconds before a test gives up on an event; never reached when the code works


@pytest.fixture
async def client(make_client: MakeClient) -> Any:
    return await make_client(sync_interval=SYNC_INTERVAL)


async def changes(client: Any, it: Any, query: str = "") -> list[dict[str, Any]]:
    resp = await client.get(f"{S}/changes{query}", headers=it.headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["items"]  # type: ignore[no-any-return]


async def caught_up(app: Any) -> bool:
    """Whether the sync worker has passed every change recorded so far in both stores."""
    behind = await app[PG_POOL].fetchval(
        """SELECT count(*) FROM changes WHERE entity = ANY($1::text[]) AND id >
               COALESCE((SELECT position::bigint FROM sync_cursors WHERE name = 'postgres_changes'), 0)""",
        ["travelers", "agencies", "launches"],
    )
    return behind == 0 and await app[MONGO_DB]["changes"].count_documents({"synced": False}) == 0


async def settle_and_sync(client: Any) -> int:
    """Await the worker's rounds until it has passed every change made so far (it takes a PostgreSQL
    change once 2 s old), run one more round; how many changes it has applied in all."""
    worker = client.app[SYNC]
    async with asyncio.timeout(WAIT):
        while not await caught_up(client.app):
            await worker.background.round_end()
    await worker.sync_once()
    return worker.applied  # type: ignore[no-any-return]


async def job_when_ended(client: Any, it: Any, job_id: str) -> dict[str, Any]:
    """The sync job once it has completed or failed, awaiting the job runner's rounds (a round runs
    every pending job)."""
    async with asyncio.timeout(WAIT):
        while True:
            job = (await (await client.get(f"{S}/sync/jobs/{job_id}", headers=it.headers)).json())["job"]
            if job["status"] not in ("pending", "running"):
                return job  # type: ignore[no-any-return]
            await client.app[JOB_RUNNER].background.round_end()


async def test_every_change_records_its_origin(client: Any, make_employee: Any, make_launch: Any) -> None:
    it = await make_employee("it")
    agency = await register(client, agency_body())
    traveler = await register(client, traveler_body())
    launch = await make_launch(agency, capacity=5, min_passengers=1)
    resp = await client.post(
        "/api/booking/bookings",
        headers={**traveler.headers, "X-Request-ID": "trace-77"},
        json={"launch_id": launch["id"], "seats": 1, "passengers": passengers(1), "card_token": "tok_ok"},
    )
    booking = (await resp.json())["booking"]
    found = await changes(client, it, "?entity=bookings")
    [change] = [c for c in found if c["entity_id"] == booking["id"]]
    assert change["op"] == "insert" and change["store"] == "postgres"
    assert change["origin"] == {
        "service": "booking",
        "via": "actor",
        "node": "test-node",
        "user_id": traveler.id,
        "request_id": "trace-77",
    }
    launch_changes = [
        c for c in await changes(client, it, "?entity=launches") if c["entity_id"] == launch["id"]
    ]
    assert {c["op"] for c in launch_changes} == {"insert", "update"}
    assert launch_changes[0]["fields"]["seats_booked"] == 1  # newest first: the booking's update
    registered = [c for c in await changes(client, it, "?entity=travelers") if c["entity_id"] == traveler.id]
    assert registered[0]["origin"]["via"] == "api" and registered[0]["origin"]["service"] == "system"
    user = [c for c in await changes(client, it, "?entity=users") if c["entity_id"] == traveler.id]
    assert user[0]["store"] == "mongo" and user[0]["op"] == "insert" and user[0]["origin"]["via"] == "api"
    assert "password_hash" not in (user[0]["fields"] or {})
    only_actor = await changes(client, it, "?origin=actor")
    assert only_actor and all(c["origin"]["via"] == "actor" for c in only_actor)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert await changes(client, it, f"?since={future}") == []


async def test_bookings_committed_together_each_record_their_own_request(
    client: Any, settings: Any, make_launch: Any
) -> None:
    agency = await register(client, agency_body())
    travelers = [await register(client, traveler_body()) for _ in range(4)]
    launch = await make_launch(agency, capacity=100, min_passengers=100)

    async def book(i: int) -> dict[str, Any]:
        traveler = travelers[i % len(travelers)]
        resp = await client.post(
            "/api/booking/bookings",
            headers={**traveler.headers, "X-Request-ID": f"together-{i}"},
            json={"launch_id": launch["id"], "seats": 2, "passengers": passengers(2), "card_token": "tok_ok"},
        )
        assert resp.status == 201, await resp.text()
        return {**(await resp.json())["booking"], "request_id": f"together-{i}", "user_id": traveler.id}

    booked = await asyncio.gather(*(book(i) for i in range(24)))
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        rows = [
            {"entity": r["entity"], "fields": json.loads(r["fields"]), "origin": json.loads(r["origin"])}
            for r in await conn.fetch(
                """SELECT entity, fields, origin FROM changes
                   WHERE op = 'insert' AND entity IN ('bookings', 'passengers', 'traveler_payments')"""
            )
        ]
    finally:
        await conn.close()
    by_booking: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        key = row["fields"]["id"] if row["entity"] == "bookings" else row["fields"]["booking_id"]
        by_booking.setdefault(key, []).append(row)
    assert len(rows) == 24 * 4  # a booking, two passengers and a charge each, recorded once
    for b in booked:
        mine = by_booking[b["id"]]
        assert sorted(r["entity"] for r in mine) == [
            "bookings",
            "passengers",
            "passengers",
            "traveler_payments",
        ]
        assert all(
            r["origin"]["request_id"] == b["request_id"]
            and r["origin"]["user_id"] == b["user_id"]
            and r["origin"]["via"] == "actor"
            for r in mine
        )
        [row] = [r for r in mine if r["entity"] == "bookings"]
        assert row["fields"]["seats"] == 2 and row["fields"]["status"] == "confirmed"
        assert sorted(r["fields"]["position"] for r in mine if r["entity"] == "passengers") == [0, 1]


async def test_a_profile_change_in_postgres_reaches_mongo_once_and_stops(
    client: Any, make_employee: Any
) -> None:
    it = await make_employee("it")
    traveler = await register(client, traveler_body())
    profile = await (await client.get("/api/booking/profile", headers=traveler.headers)).json()
    resp = await client.put(
        "/api/booking/profile", headers=traveler.headers, json={**profile, "name": "Ada Nova"}
    )
    assert resp.status == 200, await resp.text()
    applied = await settle_and_sync(client)
    assert applied == 1
    me = await (await client.get(f"{S}/auth/me", headers=traveler.headers)).json()
    assert me["user"]["name"] == "Ada Nova"
    before = len(await changes(client, it, "?entity=travelers")) + len(
        await changes(client, it, "?entity=users")
    )
    for _ in range(2):  # more rounds change nothing more: the sync's own writes are not echoed
        assert await settle_and_sync(client) == applied
    after = len(await changes(client, it, "?entity=travelers")) + len(
        await changes(client, it, "?entity=users")
    )
    assert after == before
    synced = next(c for c in await changes(client, it, "?entity=users") if c["entity_id"] == traveler.id)
    assert synced["origin"]["via"] == "sync" and synced["fields"] == {"name": "Ada Nova"}


async def test_a_change_in_mongo_reaches_postgres_once_and_stops(
    client: Any, make_employee: Any, settings: Any
) -> None:
    it = await make_employee("it")
    traveler = await register(client, traveler_body())
    resp = await client.patch(f"{S}/users/{traveler.id}", headers=it.headers, json={"name": "Renamed by IT"})
    assert resp.status == 200 and (await resp.json())["user"]["name"] == "Renamed by IT"
    assert await settle_and_sync(client) == 1
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        assert await conn.fetchval("SELECT name FROM travelers WHERE id = $1", traveler.id) == "Renamed by IT"
    finally:
        await conn.close()
    assert await settle_and_sync(client) == 1  # nothing more: no echo
    pg = [c for c in await changes(client, it, "?entity=travelers") if c["entity_id"] == traveler.id]
    assert pg[0]["origin"]["via"] == "sync" and pg[0]["fields"]["name"] == "Renamed by IT"
    mongo = [c for c in await changes(client, it, "?entity=users") if c["entity_id"] == traveler.id]
    assert [c["origin"]["via"] for c in mongo] == ["api", "api"]  # the rename and the registration, no echo


async def test_the_worker_catches_up_after_being_down(make_client: Any) -> None:
    # No other app runs meanwhile: its worker would carry the change over and count it as its own.
    first = await make_client(sync_interval=SYNC_INTERVAL)
    traveler = await register(first, traveler_body())
    await first.app[SYNC].stop()
    profile = await (await first.get("/api/booking/profile", headers=traveler.headers)).json()
    await first.put("/api/booking/profile", headers=traveler.headers, json={**profile, "name": "While Down"})
    await first.close()
    second = await make_client(sync_interval=SYNC_INTERVAL)
    assert await settle_and_sync(second) >= 1
    me = await (await second.get(f"{S}/auth/me", headers=traveler.headers)).json()
    assert me["user"]["name"] == "While Down"


async def seed_launches(settings: Any, agency_id: str, count: int) -> None:
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        await conn.execute(
            "INSERT INTO rockets (id, agency_id, name, capacity, range) "
            "VALUES ('rkt_seed', $1, 'Seeder', 100, 'mars')",
            agency_id,
        )
        await conn.execute(
            """INSERT INTO launches (id, agency_id, rocket_id, slug, mission, destination, scheduled_at,
                   price_cents, capacity, min_passengers, public_from)
               SELECT 'lch_seed' || lpad(i::text, 6, '0'), $1, 'rkt_seed', 'seed-' || i, 'Mission ' || i,
                      'moon',                      now() + (i || ' minutes')::interval, 1000, 100, 10, now()
               FROM generate_series(1, $2) AS i""",
            agency_id,
            count,
        )
    finally:
        await conn.close()


async def test_a_10000_launch_cache_rebuild_completes_with_monotonic_progress(
    client: Any, settings: Any, make_employee: Any
) -> None:
    it = await make_employee("it")
    agency = await register(client, agency_body())
    await seed_launches(settings, agency.id, 10_000)
    r = aioredis.Redis.from_url(settings.redis_url)
    await r.flushdb()
    resp = await client.post(f"{S}/sync/jobs", headers=it.headers, json={"kind": "launch_cache"})
    assert resp.status == 202
    job = (await resp.json())["job"]
    assert job["status"] == "pending" and job["percent"] == 0
    seen: list[int] = []
    ended = asyncio.ensure_future(job_when_ended(client, it, job["id"]))
    while not ended.done():  # progress as IT sees it while the job runs, every 50 ms
        sample = (await (await client.get(f"{S}/sync/jobs/{job['id']}", headers=it.headers)).json())["job"]
        seen.append(sample["done"])
        await asyncio.wait({ended}, timeout=0.05)
    job = ended.result()
    seen.append(job["done"])
    assert job["status"] == "completed", job
    assert (job["total"], job["done"], job["percent"]) == (10_000, 10_000, 100.0)
    assert seen == sorted(seen) and job["started_at"] and job["finished_at"] and job["errors"] == []
    assert len(await r.keys("launch:card:*")) == 10_000 and await r.zcard("launches:upcoming") == 10_000
    await r.aclose()
    listed = await (await client.get(f"{S}/sync/jobs", headers=it.headers)).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]


async def test_user_directory_job_repairs_postgres_from_mongo(
    client: Any, settings: Any, make_employee: Any
) -> None:
    it = await make_employee("it")
    travelers = [await register(client, traveler_body()) for _ in range(3)]
    await client.app[SYNC].stop()  # as if the continuous sync had missed it
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        await conn.execute("UPDATE travelers SET name = 'drifted' WHERE id = $1", travelers[0].id)
        resp = await client.post(f"{S}/sync/jobs", headers=it.headers, json={"kind": "all"})
        job = await job_when_ended(client, it, (await resp.json())["job"]["id"])
        assert job["status"] == "completed" and job["percent"] == 100.0
        name = await conn.fetchval("SELECT name FROM travelers WHERE id = $1", travelers[0].id)
    finally:
        await conn.close()
    me = await (await client.get(f"{S}/auth/me", headers=travelers[0].headers)).json()
    assert name == me["user"]["name"] != "drifted"


async def test_an_interrupted_job_is_failed_with_its_reason_not_left_running(
    make_client: Any, settings: Any, make_employee: Any
) -> None:
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        await conn.execute(
            """INSERT INTO sync_jobs (id, kind, status, total, done, node, started_at, heartbeat_at) VALUES
               ('job_old', 'all', 'running', 100, 40, 'gone-node', now() - interval '10 minutes',
                now() - interval '10 minutes'),
               ('job_mine', 'all', 'running', 100, 10, 'test-node', now(), now())"""
        )
    finally:
        await conn.close()
    client = await make_client()  # this node restarts: its own running job and the silent node's job fail
    it = await make_employee("it")
    old = (await (await client.get(f"{S}/sync/jobs/job_old", headers=it.headers)).json())["job"]
    mine = (await (await client.get(f"{S}/sync/jobs/job_mine", headers=it.headers)).json())["job"]
    assert old["status"] == "failed" and "gone-node stopped reporting progress" in old["failure"]
    assert mine["status"] == "failed" and "test-node restarted" in mine["failure"]
    assert old["finished_at"] and mine["finished_at"]


async def test_two_nodes_never_run_one_job_twice(
    make_client: Any, settings: Any, client: Any, make_employee: Any
) -> None:
    one, two = await make_client(node="node-a"), await make_client(node="node-b")
    it = await make_employee("it")
    # Only the two drains below run jobs: not the two nodes' runners, nor the employee's app's one.
    for runner in (one.app[JOB_RUNNER], two.app[JOB_RUNNER], client.app[JOB_RUNNER]):
        await runner.stop()
    ids = [
        (await (await one.post(f"{S}/sync/jobs", headers=it.headers, json={"kind": "launch_cache"})).json())[
            "job"
        ]["id"]
        for _ in range(8)
    ]

    async def drain(runner: Any) -> int:
        ran = 0
        while await runner.run_next():
            ran += 1
        return ran

    ran = await asyncio.gather(drain(one.app[JOB_RUNNER]), drain(two.app[JOB_RUNNER]))
    assert sum(ran) == 8
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        rows = await conn.fetch("SELECT id, status, node FROM sync_jobs WHERE id = ANY($1::text[])", ids)
    finally:
        await conn.close()
    assert sorted(r["status"] for r in rows) == ["completed"] * 8
    assert {r["node"] for r in rows} <= {"node-a", "node-b"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?entity=spaceships", "entity"),
        ("?since=yesterday", "since"),
        ("?since=2027-01-01T00:00:00", "since"),
        ("?limit=0", "limit"),
    ],
)
async def test_bad_change_queries(client: Any, make_employee: Any, query: str, field: str) -> None:
    it = await make_employee("it")
    resp = await client.get(f"{S}/changes{query}", headers=it.headers)
    assert resp.status == 400 and field in (await resp.json())["error"]["details"]["fields"]


async def test_sync_endpoints_are_for_it_only(client: Any, make_employee: Any) -> None:
    finance = await make_employee("finance")
    for method, path in (("GET", "/changes"), ("GET", "/sync/jobs"), ("POST", "/sync/jobs")):
        resp = await client.request(method, f"{S}{path}", headers=finance.headers, json={"kind": "all"})
        assert resp.status == 403
    it = await make_employee("it")
    resp = await client.post(f"{S}/sync/jobs", headers=it.headers, json={"kind": "everything"})
    assert resp.status == 400 and "kind" in (await resp.json())["error"]["details"]["fields"]


async def test_sync_figures_are_on_the_prometheus_endpoint(client: Any, make_employee: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    it = await make_employee("it")
    job = (await (await client.post(f"{S}/sync/jobs", headers=it.headers, json={"kind": "all"})).json())[
        "job"
    ]
    job = await job_when_ended(client, it, job["id"])
    assert job["status"] == "completed"
    families = {
        f.name: f for f in text_string_to_metric_families(await (await client.get("/metrics")).text())
    }
    done = {
        (s.labels["kind"], s.labels["status"]): s.value
        for s in families["astro_sync_jobs"].samples
        if s.name.endswith("_total")
    }
    assert done == {("all", "completed"): 1.0}
    assert {"astro_sync_changes_applied", "astro_sync_jobs_running", "astro_sync_job_items"} <= set(families)


async def test_two_nodes_apply_each_change_exactly_once(
    make_client: Any, client: Any, settings: Any, make_employee: Any
) -> None:
    one, two = client, await make_client(node="node-b")
    workers = [one.app[SYNC], two.app[SYNC]]
    for worker in workers:  # only the rounds below run: not the two nodes' own loops
        await worker.stop()
    it = await make_employee("it")
    travelers = [await register(one, traveler_body()) for _ in range(7)]
    for n, traveler in enumerate(travelers[:4]):  # 4 changes in MongoDB (IT renames)
        resp = await one.patch(f"{S}/users/{traveler.id}", headers=it.headers, json={"name": f"IT {n}"})
        assert resp.status == 200, await resp.text()
    for n, traveler in enumerate(travelers[4:]):  # 3 changes in PostgreSQL (profile edits)
        profile = await (await two.get("/api/booking/profile", headers=traveler.headers)).json()
        resp = await two.put(
            "/api/booking/profile", headers=traveler.headers, json={**profile, "name": f"Self {n}"}
        )
        assert resp.status == 200, await resp.text()
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        # Old enough to be taken now (a round leaves a change younger than 2 s for the next one).
        await conn.execute("UPDATE changes SET at = at - interval '1 minute'")
        # Node B's round while node A holds the lock: skipped, nothing applied.
        async with workers[0]._pg.exclusive("sync-worker-round") as held:
            assert held
            assert await workers[1].sync_once() == 0
        assert (workers[1].skipped, workers[1].rounds) == (1, 0)
        # Both nodes' rounds at once, until both logs are passed: each change applied by one of them.
        async with asyncio.timeout(WAIT):
            while not await caught_up(one.app):
                await asyncio.gather(*(w.sync_once() for w in workers))
        await asyncio.gather(*(w.sync_once() for w in workers))  # nothing more to apply
        assert sum(w.applied for w in workers) == 7
        names = await conn.fetch(
            "SELECT id, name FROM travelers WHERE id = ANY($1::text[])", [t.id for t in travelers]
        )
    finally:
        await conn.close()
    assert {r["id"]: r["name"] for r in names} == {
        **{t.id: f"IT {n}" for n, t in enumerate(travelers[:4])},
        **{t.id: f"Self {n}" for n, t in enumerate(travelers[4:])},
    }
    for n, traveler in enumerate(travelers[4:]):
        me = await (await one.get(f"{S}/auth/me", headers=traveler.headers)).json()
        assert me["user"]["name"] == f"Self {n}"
    mongo_renames = [c for c in await changes(one, it, "?entity=users") if c["origin"]["via"] == "sync"]
    assert len(mongo_renames) == 3  # each PostgreSQL change written to MongoDB once
