"""IT monitoring over HTTP: entry log filters and export, a booking traced by request id, metrics."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from astro.domain.users import Role
from astro.services.monitor import EntryIds, LogQuery, entry_document
from tests.conftest import passengers
from web.http import encode_cursor
from web.keys import ACTORS, AUTH, DESK
from web.monitoring import ENTRY_LOGS, LOG_SHIPPER, SAMPLED, SAMPLER, actor_events

S = "/api/system"
# Seeded entries live on one day in the past; every query below stays inside it, so the entries
# the test's own requests make (today) never match.
DAY = datetime(2020, 3, 1, tzinfo=UTC)
WINDOW = {"since": DAY.isoformat(), "until": (DAY + timedelta(days=1)).isoformat()}
LEVELS = ("debug", "info", "warning", "error", "critical")
SERVICES = ("web", "booking", "auth", "actors", "finance")
USERS = ("usr_a", "usr_b", "usr_c", None)
MESSAGES = ("request", "booking_confirmed", "Login failed", "actor_started", "payment received")


def seed_entries(n: int = 240) -> list[dict[str, Any]]:
    ids = EntryIds()
    docs = []
    for i in range(n):
        moment = DAY + timedelta(seconds=i * 300)
        event: dict[str, Any] = {
            "event": MESSAGES[i % 5],
            "level": LEVELS[i % 5],
            "logger": f"astro.{SERVICES[(i // 5) % 5]}",
            "timestamp": moment.isoformat(),
            "user_id": USERS[i % 4],
            "request_id": f"req{i % 7}",
            "seq": i,
        }
        if i % 3 == 0:
            event["launch_id"] = f"lch_{i % 4}"
        if i % 6 == 0:
            event["booking_id"] = f"bkg_{i % 5}"
        docs.append(entry_document(event, node="seed", entry_id=ids.next(moment)))
    return docs


def matches(doc: dict[str, Any], q: dict[str, str]) -> bool:
    if "level" in q and doc["level"] not in q["level"].split(","):
        return False
    if "service" in q and doc["service"] not in q["service"].split(","):
        return False
    for field in ("user_id", "request_id"):
        if field in q and doc[field] != q[field]:
            return False
    if "entity_id" in q and q["entity_id"] not in doc["entity_ids"]:
        return False
    return "q" not in q or q["q"].lower() in doc["message"].lower()


FILTERS: list[dict[str, str]] = [
    {},
    {"level": "error"},
    {"level": "warning,critical"},
    {"service": "booking"},
    {"service": "web,auth", "level": "info"},
    {"user_id": "usr_b"},
    {"entity_id": "lch_2"},
    {"entity_id": "bkg_3"},
    {"request_id": "req4"},
    {"q": "LOGIN"},
    {"q": "ed", "user_id": "usr_a", "level": "warning,error,critical"},
    {"entity_id": "lch_0", "request_id": "req3", "service": "auth"},
]


@pytest.fixture
async def seeded(client: Any) -> list[dict[str, Any]]:
    docs = seed_entries()
    await client.app[ENTRY_LOGS].insert([dict(d) for d in docs])
    return docs


async def all_pages(client: Any, it: Any, params: dict[str, str], limit: int = 50) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        query = {**params, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        resp = await client.get(f"{S}/logs", headers=it.headers, params=query)
        body = await resp.json()
        assert resp.status == 200, body
        ids += [e["id"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: "&".join(f"{k}={v}" for k, v in f.items()) or "all")
async def test_log_filters_list_exactly_the_matching_entries_newest_first(
    client: Any, make_employee: Any, seeded: list[dict[str, Any]], flt: dict[str, str]
) -> None:
    it = await make_employee("it")
    expected = [d["_id"] for d in sorted(seeded, key=lambda d: d["_id"], reverse=True) if matches(d, flt)]
    assert expected or flt.get("entity_id") == "lch_0", "each filter should find something"
    assert await all_pages(client, it, {**WINDOW, **flt}) == expected


async def test_since_and_until_bound_the_entries(
    client: Any, make_employee: Any, seeded: list[dict[str, Any]]
) -> None:
    it = await make_employee("it")
    since, until = DAY + timedelta(hours=2), DAY + timedelta(hours=5)
    expected = [d["_id"] for d in reversed(seeded) if since <= d["time"] < until]
    got = await all_pages(client, it, {"since": since.isoformat(), "until": until.isoformat()}, limit=7)
    assert got == expected and len(expected) == 36


async def test_an_entry_comes_back_with_every_field(
    client: Any, make_employee: Any, seeded: list[dict[str, Any]]
) -> None:
    it = await make_employee("it")
    resp = await client.get(f"{S}/logs", headers=it.headers, params={**WINDOW, "entity_id": "bkg_0"})
    first = (await resp.json())["items"][-1]
    doc = next(d for d in seeded if d["_id"] == first["id"])
    assert first == {
        "id": doc["_id"],
        "time": first["time"],
        "level": doc["level"],
        "service": doc["service"],
        "message": doc["message"],
        "user_id": doc["user_id"],
        "entity": {"type": "booking", "id": "bkg_0"},
        "request_id": doc["request_id"],
        "node": "seed",
        "data": {"seq": 0, "launch_id": "lch_0"},
    }
    assert datetime.fromisoformat(first["time"]) == doc["time"]


def parse_ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize(
    "flt", FILTERS[:7], ids=lambda f: "&".join(f"{k}={v}" for k, v in f.items()) or "all"
)
async def test_export_ndjson_and_csv_hold_exactly_the_matching_entries_oldest_first(
    client: Any, make_employee: Any, seeded: list[dict[str, Any]], flt: dict[str, str]
) -> None:
    it = await make_employee("it")
    expected = [d for d in seeded if matches(d, flt)]
    resp = await client.get(f"{S}/logs/export", headers=it.headers, params={**WINDOW, **flt})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/x-ndjson")
    assert resp.headers.get("Transfer-Encoding") == "chunked" and "X-Request-ID" in resp.headers
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = parse_ndjson(await resp.text())
    assert [r["id"] for r in rows] == [d["_id"] for d in expected]
    assert [r["message"] for r in rows] == [d["message"] for d in expected]

    resp = await client.get(f"{S}/logs/export", headers=it.headers, params={**WINDOW, **flt, "format": "csv"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [r["id"] for r in table] == [d["_id"] for d in expected]
    for row, doc in zip(table, expected, strict=True):
        assert (row["level"], row["service"], row["message"]) == (
            doc["level"],
            doc["service"],
            doc["message"],
        )
        assert row["user_id"] == (doc["user_id"] or "") and row["request_id"] == doc["request_id"]
        assert row["entity_id"] == (doc["entity"]["id"] if doc["entity"] else "")
        assert json.loads(row["data"])["seq"] == doc["data"]["seq"]
        assert datetime.fromisoformat(row["time"]) == doc["time"]


async def test_export_of_nothing_is_an_empty_file_and_csv_keeps_its_header(
    client: Any, make_employee: Any, seeded: list[dict[str, Any]]
) -> None:
    it = await make_employee("it")
    params = {**WINDOW, "user_id": "nobody"}
    resp = await client.get(f"{S}/logs/export", headers=it.headers, params=params)
    assert resp.status == 200 and await resp.text() == ""
    resp = await client.get(f"{S}/logs/export", headers=it.headers, params={**params, "format": "csv"})
    assert (await resp.text()).splitlines() == [
        "id,time,level,service,message,user_id,entity_type,entity_id,request_id,node,data"
    ]


async def test_a_large_export_streams_every_entry(client: Any, make_employee: Any) -> None:
    it = await make_employee("it")
    ids = EntryIds()
    docs = [
        entry_document(
            {"event": f"entry {i} " + "x" * 300, "timestamp": (DAY + timedelta(milliseconds=i)).isoformat()},
            node="seed",
            entry_id=ids.next(DAY + timedelta(milliseconds=i)),
        )
        for i in range(5000)
    ]
    for start in range(0, len(docs), 1000):
        await client.app[ENTRY_LOGS].insert(docs[start : start + 1000])
    resp = await client.get(f"{S}/logs/export", headers=it.headers, params=WINDOW)
    chunks = 0
    lines: list[str] = []
    buffer = b""
    async for data in resp.content.iter_any():
        chunks += 1
        buffer += data
    lines = buffer.decode().splitlines()
    assert len(lines) == 5000 and json.loads(lines[-1])["message"].startswith("entry 4999 ")
    assert chunks > 1


async def test_without_since_pages_reach_back_over_quiet_days_to_the_retention_horizon(
    client: Any, make_employee: Any
) -> None:
    it = await make_employee("it")
    now = datetime.now(UTC)
    ids = EntryIds()
    ages = [
        timedelta(days=40),
        timedelta(days=29),
        timedelta(days=3),
        timedelta(hours=5),
        timedelta(seconds=30),
    ]
    ages.append(-timedelta(minutes=5))  # a node whose clock runs ahead
    docs = [
        entry_document(
            {"event": "probe", "logger": "astro.probe", "timestamp": (now - age).isoformat(), "n": i},
            node="seed",
            entry_id=ids.next(now - age),
        )
        for i, age in enumerate(ages)
    ]
    await client.app[ENTRY_LOGS].insert(docs)
    newest_first = [d["_id"] for d in reversed(docs)]
    assert await all_pages(client, it, {"service": "probe"}, limit=1) == newest_first[:-1]
    since = (now - timedelta(days=45)).isoformat()
    assert await all_pages(client, it, {"service": "probe", "since": since}, limit=2) == newest_first
    resp = await client.get(
        f"{S}/logs/export", headers=it.headers, params={"service": "probe", "since": since}
    )
    assert [r["id"] for r in parse_ndjson(await resp.text())] == [d["_id"] for d in docs]
    resp = await client.get(f"{S}/logs/export", headers=it.headers, params={"service": "probe"})
    assert [r["id"] for r in parse_ndjson(await resp.text())] == [d["_id"] for d in docs[1:]]


# -- one booking, traced --------------------------------------------------------------------------


async def test_every_step_of_a_booking_is_found_by_its_request_id(
    client: Any, make_employee: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    it, agency, traveler = await make_employee("it"), await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=10, min_passengers=5)
    resp = await client.post(
        "/api/booking/bookings",
        headers={**traveler.headers, "X-Request-ID": "abc"},
        json={"launch_id": launch["id"], "seats": 2, "passengers": passengers(2), "card_token": "tok_ok"},
    )
    assert resp.status == 201 and resp.headers["X-Request-ID"] == "abc"
    booking = (await resp.json())["booking"]
    await client.app[LOG_SHIPPER].flush()

    resp = await client.get(f"{S}/logs", headers=it.headers, params={"request_id": "abc"})
    entries = (await resp.json())["items"]
    by_message = {e["message"]: e for e in entries}
    assert {"request", "booking_confirmed"} <= set(by_message), [e["message"] for e in entries]
    assert all(e["request_id"] == "abc" and e["user_id"] == traveler.id for e in entries)
    line = by_message["request"]
    assert line["service"] == "web" and line["data"]["route"] == "/api/booking/bookings"
    assert line["data"]["status"] == 201 and line["level"] == "info" and line["node"] == "test-node"
    confirmed = by_message["booking_confirmed"]
    assert confirmed["service"] == "booking" and confirmed["entity"] == {
        "type": "booking",
        "id": booking["id"],
    }
    assert confirmed["data"]["launch_id"] == launch["id"]
    # The request line is made last: newest first, it leads.
    assert entries[0]["message"] == "request"

    about_launch = await client.get(f"{S}/logs", headers=it.headers, params={"entity_id": launch["id"]})
    messages = {e["message"] for e in (await about_launch.json())["items"]}
    assert {"booking_confirmed", "launch_scheduled", "actor_started"} <= messages
    mine = await client.get(
        f"{S}/logs", headers=it.headers, params={"user_id": traveler.id, "q": "confirmed"}
    )
    assert [e["request_id"] for e in (await mine.json())["items"]] == ["abc"]


async def test_login_and_logout_are_logged_with_the_user(client: Any, make_employee: Any) -> None:
    it = await make_employee("it")
    resp = await client.post(f"{S}/auth/logout", headers={**it.headers, "X-Request-ID": "bye-1"})
    assert resp.status == 204
    it = await make_employee("it")
    await client.app[LOG_SHIPPER].flush()
    resp = await client.get(f"{S}/logs", headers=it.headers, params={"request_id": "bye-1"})
    entries = (await resp.json())["items"]
    # the logout ends the browser session of the login's cookie too
    assert {e["message"] for e in entries} == {"logout", "session_ended", "request"}
    resp = await client.get(f"{S}/logs", headers=it.headers, params={"service": "auth", "q": "login"})
    assert {e["message"] for e in (await resp.json())["items"]} >= {"login"}


# -- the guard and bad filters --------------------------------------------------------------------

ENDPOINTS = [f"{S}/logs", f"{S}/logs/export", f"{S}/metrics"]


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_only_it_may_read_logs_and_metrics(
    client: Any, make_employee: Any, make_traveler: Any, make_agency: Any, path: str
) -> None:
    for account in (await make_traveler(), await make_agency(), await make_employee("finance")):
        resp = await client.get(path, headers=account.headers)
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    resp = await client.get(path)
    assert resp.status == 401


BAD: list[tuple[str, dict[str, str], str]] = [
    ("/logs", {"level": "loud"}, "level"),
    ("/logs", {"level": "info,"}, "level"),  # exactly as the OpenAPI pattern states: no empty part
    ("/logs", {"level": "INFO"}, "level"),
    ("/logs", {"service": "we b"}, "service"),
    ("/logs", {"since": "yesterday"}, "since"),
    ("/logs", {"until": "2026-13-01"}, "until"),
    ("/logs", {"q": ""}, ""),  # an empty parameter is an absent one
    ("/logs", {"user_id": "a\x00b"}, "user_id"),
    ("/logs", {"request_id": "r" * 501}, "request_id"),
    ("/logs", {"levle": "info"}, "levle"),
    ("/logs", {"limit": "0"}, "limit"),
    ("/logs", {"cursor": "not-ours"}, "cursor"),
    ("/logs", {"cursor": encode_cursor("not-an-entry-id")}, "cursor"),
    ("/logs/export", {"format": "xml"}, "format"),
    ("/logs/export", {"level": "loud"}, "level"),
    ("/logs/export", {"limit": "5"}, "limit"),
    ("/metrics", {"name": "Bad-Name"}, "name"),
    ("/metrics", {"since": "soon"}, "since"),
    ("/metrics", {"step": "5"}, "step"),
]


@pytest.mark.parametrize(("path", "params", "field"), BAD, ids=[f"{p}:{f or 'ok'}" for p, _, f in BAD])
async def test_bad_filters_are_400_naming_the_field(
    client: Any, make_employee: Any, path: str, params: dict[str, str], field: str
) -> None:
    it = await make_employee("it")
    resp = await client.get(S + path, headers=it.headers, params=params)
    body = await resp.json() if resp.content_type == "application/json" else {}
    if not field:
        assert resp.status == 200, body
        return
    assert resp.status == 400, body
    assert body["error"]["code"] == "invalid_input" and field in body["error"]["details"]["fields"]


# -- metrics --------------------------------------------------------------------------------------


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams: dict[str, Any], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in fams[name].samples
        if not s.name.endswith("_created") and all(s.labels.get(k) == v for k, v in labels.items())
    )


PROMETHEUS_FAMILIES = [
    "astro_http_requests",
    "astro_bookings_accepted",
    "astro_bookings_refused",
    "astro_actors_active",
    "astro_actor_mailbox_depth",
    "astro_actor_starts",
    "astro_actor_restarts",
    "astro_actor_crashes",
    "astro_actor_passivations",
    "astro_pg_pool_size",
    "astro_pg_pool_idle",
    "astro_pg_pool_max",
    "astro_redis_pool_connections",
    "astro_redis_pool_max",
    "astro_log_shipper_backlog",
    "astro_log_shipper_queued",
    "astro_log_shipper_spool_pending",
    "astro_log_shipper_shipped",
    "astro_log_shipper_spooled",
    "astro_log_shipper_replayed",
    "astro_log_shipper_dropped",
    "astro_log_store_up",
    "astro_metric_samples_written",
    "astro_process_resident_memory_bytes",
    "astro_ws_connections",
]


async def test_prometheus_families_are_present_and_move_with_bookings(
    client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    before = families(await (await client.get("/metrics")).text())
    assert set(PROMETHEUS_FAMILIES) <= set(before), set(PROMETHEUS_FAMILIES) - set(before)
    assert value(before, "astro_bookings_accepted") == 0
    assert value(before, "astro_actors_active", kind="launch") == 0
    assert value(before, "astro_pg_pool_size") >= 1 and value(before, "astro_pg_pool_max") == 10
    assert (
        value(before, "astro_log_store_up") == 1
        and value(before, "astro_process_resident_memory_bytes") > 1e6
    )

    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=3, min_passengers=3)

    async def book(seats: int, card: str = "tok_ok") -> int:
        resp = await client.post(
            "/api/booking/bookings",
            headers=traveler.headers,
            json={
                "launch_id": launch["id"],
                "seats": seats,
                "passengers": passengers(seats),
                "card_token": card,
            },
        )
        return int(resp.status)

    assert [await book(2), await book(1), await book(1), await book(1, "tok_declined"), await book(9)] == [
        201,
        201,
        409,
        409,
        422,
    ]
    await client.app[LOG_SHIPPER].flush()
    after = families(await (await client.get("/metrics")).text())
    assert value(after, "astro_bookings_accepted") == 2
    assert value(after, "astro_bookings_refused", reason="sold_out") == 2
    assert value(after, "astro_bookings_refused", reason="seat_limit") == 1
    assert value(after, "astro_actors_active", kind="launch") == 1
    assert value(after, "astro_actor_starts") >= 1
    assert value(after, "astro_actor_mailbox_depth") == 0
    assert value(after, "astro_log_shipper_shipped") > value(before, "astro_log_shipper_shipped")
    assert value(after, "astro_log_shipper_backlog") == 0
    assert value(after, "astro_http_requests", route="/api/booking/bookings", method="POST") == 5


async def test_an_idempotent_replay_is_not_counted_twice(
    client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency)
    body = {"launch_id": launch["id"], "seats": 1, "passengers": passengers(1), "card_token": "tok_ok"}
    headers = {**traveler.headers, "Idempotency-Key": "k-1"}
    for _ in range(3):
        assert (await client.post("/api/booking/bookings", headers=headers, json=body)).status == 201
    fams = families(await (await client.get("/metrics")).text())
    assert value(fams, "astro_bookings_accepted") == 1


async def test_actor_counters_follow_the_runtime_events(
    client: Any, make_agency: Any, make_launch: Any
) -> None:
    launch = await make_launch(await make_agency())
    await client.app[DESK].launch(launch["id"])
    start = families(await (await client.get("/metrics")).text())
    await client.app[ACTORS].stop_actor(f"launch:{launch['id']}")
    hook = actor_events(client.app)  # what the runtime calls; crashes and passivations are rare on demand
    hook("passivated", "launch:lch_x", {"reason": "passivated"})
    hook("crashed", "launch:lch_x", {"error": "RuntimeError: boom"})
    hook("restarted", "launch:lch_x", {})
    fams = families(await (await client.get("/metrics")).text())
    assert value(start, "astro_actors_active", kind="launch") == 1
    assert value(fams, "astro_actors_active", kind="launch") == 0
    assert value(fams, "astro_actor_starts") >= 1
    for name in ("astro_actor_passivations", "astro_actor_crashes", "astro_actor_restarts"):
        assert value(fams, name) == value(start, name) + 1, name
    await client.app[LOG_SHIPPER].flush()
    rows = await client.app[ENTRY_LOGS].page(LogQuery(entity_id="lch_x"), before=None, limit=10)
    # The runtime logs a crash itself (with the stack); the hook logs the rest, outside any request.
    assert [(r["message"], r["request_id"]) for r in rows] == [
        ("actor_restarted", None),
        ("actor_passivated", None),
    ]


async def it_headers(client: Any) -> dict[str, str]:
    """An IT employee of this client's app (not of the `client` fixture's)."""
    email = f"it-{next(_emails)}@astro.example"
    await client.app[AUTH].create_employee(email=email, password="employee-pass", name="IT", role=Role.IT)
    login = await client.post(f"{S}/auth/login", json={"email": email, "password": "employee-pass"})
    return {"Authorization": f"Bearer {(await login.json())['token']}"}


_emails = itertools.count()


async def test_the_sampler_stores_figures_every_interval_and_the_api_returns_series(
    make_client: Callable[..., Any],
) -> None:
    client = await make_client(metrics_interval=0.05)
    headers = await it_headers(client)
    sampler = client.app[SAMPLER]
    deadline = asyncio.get_running_loop().time() + 10
    while sampler.written < 4 * len(SAMPLED) and asyncio.get_running_loop().time() < deadline:
        await client.get("/health")
        async with asyncio.timeout(10):  # the sampler runs on its own clock: await its next round
            await sampler.background.round_end()
    resp = await client.get(f"{S}/metrics", headers=headers)
    body = await resp.json()
    assert resp.status == 200, body
    series = body["series"]
    expected = {
        "http_requests_total",
        "http_requests_per_second",
        "bookings_accepted_total",
        "bookings_refused_total",
        "actors_active",
        "actor_mailbox_depth",
        "ws_connections",
        "pg_pool_size",
        "pg_pool_free",
        "redis_pool_in_use",
        "log_shipper_backlog",
        "log_shipper_dropped_total",
        "process_resident_memory_bytes",
    }
    assert expected <= set(series), expected - set(series)
    requests = [p["value"] for p in series["http_requests_total"]]
    assert len(requests) >= 3 and requests == sorted(requests) and requests[-1] > requests[0]
    assert all(p["node"] == "test-node" for p in series["pg_pool_size"])
    assert any(p["value"] > 0 for p in series["http_requests_per_second"])
    times = [p["time"] for p in series["actors_active"]]
    assert times == sorted(times)

    resp = await client.get(f"{S}/metrics", headers=headers, params={"name": "pg_pool_size,actors_active"})
    assert set((await resp.json())["series"]) == {"pg_pool_size", "actors_active"}
    resp = await client.get(f"{S}/metrics", headers=headers, params={"name": "no_such_metric"})
    assert (await resp.json())["series"] == {"no_such_metric": []}
    past = {"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z", "name": "pg_pool_size"}
    resp = await client.get(f"{S}/metrics", headers=headers, params=past)
    assert (await resp.json())["series"] == {"pg_pool_size": []}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    resp = await client.get(f"{S}/metrics", headers=headers, params={"since": tomorrow})
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "invalid_range"  # since > now


@pytest.mark.parametrize("path", ["/logs", "/metrics"])
async def test_times_out_of_order_are_refused_by_rule(client: Any, make_employee: Any, path: str) -> None:
    # each time is well-formed (as OpenAPI states it); the pair is refused: 422 invalid_range
    it = await make_employee("it")
    params = {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    resp = await client.get(S + path, headers=it.headers, params=params)
    assert resp.status == 422
    body = await resp.json()
    assert body["error"]["code"] == "invalid_range" and "until" in body["error"]["details"]["fields"]


@pytest.mark.parametrize(
    "since", ["0149-03-10T02:22:29.55300-06:45", "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z"]
)
async def test_a_time_long_before_any_entry_finds_what_there_is(
    client: Any, make_employee: Any, since: str
) -> None:
    # schemathesis found a 500 for a well-formed time before 1970 (issue 14, finding 15)
    it = await make_employee("it")
    resp = await client.get(S + "/logs", headers=it.headers, params={"since": since, "level": "info"})
    assert resp.status == 200, await resp.text()
    assert isinstance((await resp.json())["items"], list)


@pytest.mark.parametrize("until", ["9999-12-31T23:59:59Z", "2999-01-01T00:00:00Z"])
async def test_an_export_until_far_ahead_ends_after_the_newest_entry(
    client: Any, make_employee: Any, until: str
) -> None:
    # The CI's schemathesis run as IT timed out on such an export: after the newest entry it went on
    # reading empty day-long windows up to `until`, hundreds of thousands of them.
    it = await make_employee("it")
    now, ids = datetime.now(UTC), EntryIds()
    docs = [
        entry_document(
            {"event": "probe", "logger": "astro.probe", "timestamp": (now - age).isoformat()},
            node="seed",
            entry_id=ids.next(now - age),
        )
        for age in (timedelta(hours=2), timedelta(minutes=1))
    ]
    await client.app[ENTRY_LOGS].insert(docs)
    params = {"service": "probe", "until": until}
    resp = await asyncio.wait_for(client.get(f"{S}/logs/export", headers=it.headers, params=params), 30)
    assert resp.status == 200
    rows = parse_ndjson(await asyncio.wait_for(resp.text(), 30))
    assert [r["id"] for r in rows] == [d["_id"] for d in docs]
