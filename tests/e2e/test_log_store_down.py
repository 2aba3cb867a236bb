"""With the entry log store stopped, the platform answers as usual; every entry appears once it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import agency_body, future, passengers, register, traveler_body
from tests.e2e.test_monitor_api import it_headers
from tests.stoppable_mongo import StoppableMongo
from web.monitoring import LOG_SHIPPER

S = "/api/system"


@pytest.fixture
async def log_server(tmp_path: Path) -> AsyncIterator[StoppableMongo]:
    server = StoppableMongo(tmp_path / "log-mongo")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def figure(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return sum(s.value for s in family.samples if not s.name.endswith("_created"))
    raise KeyError(name)


async def test_requests_succeed_while_the_log_store_is_down_and_every_entry_arrives_later(
    make_client: Callable[..., Any], log_server: StoppableMongo
) -> None:
    client = await make_client(log_mongo_url=log_server.url())
    shipper = client.app[LOG_SHIPPER]
    it = await it_headers(client)
    agency = await register(client, agency_body())
    traveler = await register(client, traveler_body())
    await shipper.flush()
    assert shipper.store_up and shipper.shipped > 0

    await log_server.stop()
    ids = [f"down-{i}" for i in range(6)]
    resp = await client.post(
        "/api/agency/rockets",
        headers={**agency.headers, "X-Request-ID": ids[0]},
        json={"name": "Falcon Z", "capacity": 10, "range": "mars"},
    )
    assert resp.status == 201
    resp = await client.post(
        "/api/agency/launches",
        headers={**agency.headers, "X-Request-ID": ids[1]},
        json={
            "rocket_id": (await resp.json())["rocket"]["id"],
            "mission": "Tranquility tour",
            "destination": "moon",
            "scheduled_at": future(30),
            "price_cents": 100_000,
            "min_passengers": 2,
        },
    )
    assert resp.status == 201
    launch = (await resp.json())["launch"]
    for rid, seats in ((ids[2], 1), (ids[3], 2)):
        resp = await client.post(
            "/api/booking/bookings",
            headers={**traveler.headers, "X-Request-ID": rid},
            json={
                "launch_id": launch["id"],
                "seats": seats,
                "passengers": passengers(seats),
                "card_token": "tok_ok",
            },
        )
        assert resp.status == 201, await resp.text()
    resp = await client.get("/api/booking/bookings", headers={**traveler.headers, "X-Request-ID": ids[4]})
    assert resp.status == 200
    resp = await client.post(f"{S}/auth/logout", headers={**traveler.headers, "X-Request-ID": ids[5]})
    assert resp.status == 204
    await shipper.flush()
    metrics = await (await client.get("/metrics")).text()
    assert (
        figure(metrics, "astro_log_store_up") == 0 and figure(metrics, "astro_log_shipper_spool_pending") > 0
    )
    assert shipper.spool_pending == shipper.spooled and shipper.dropped == 0
    # Only the log API needs the store that is down: it answers 503, not a hang and not a 500.
    resp = await client.get(f"{S}/logs", headers=it)
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "unavailable"

    await log_server.start()
    await shipper.flush()
    assert shipper.store_up and shipper.spool_pending == 0 and shipper.replayed == shipper.spooled
    expected_per_request = (
        {"request"},
        {"request", "launch_scheduled"},
        {"request", "booking_confirmed"},
        {"request", "booking_confirmed"},
        {"request"},
        {"request", "logout"},
    )
    for rid, expected in zip(ids, expected_per_request, strict=True):
        resp = await client.get(f"{S}/logs", headers=it, params={"request_id": rid})
        entries = (await resp.json())["items"]
        assert {e["message"] for e in entries} >= expected, (rid, [e["message"] for e in entries])
    # The actor spawned by the first booking logs its start too, under the launch and not under that request.
    resp = await client.get(f"{S}/logs", headers=it, params={"entity_id": launch["id"]})
    started = [e for e in (await resp.json())["items"] if e["message"] == "actor_started"]
    assert len(started) == 1 and started[0].get("request_id") in (None, ""), started
    resp = await client.get(f"{S}/logs", headers=it, params={"service": "monitor"})
    messages = [e["message"] for e in (await resp.json())["items"]]
    assert "log_store_down" in messages and "log_store_back" in messages
