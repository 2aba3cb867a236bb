"""GET /api/system/nodes: every node, whether it is alive, the launches its current run owns."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.conftest import agency_body, register, traveler_body

S = "/api/system"


async def test_nodes_alive_stopped_silent_and_the_launches_each_run_owns(
    client: Any, settings: Any, make_employee: Any, make_launch: Any
) -> None:
    it = await make_employee("it")
    agency = await register(client, agency_body())
    launches = [(await make_launch(agency))["id"] for _ in range(4)]
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        await conn.execute(
            """INSERT INTO nodes (name, holder, url, pid, started_at, heartbeat_at, stopped_at) VALUES
                 ('zz-alive', 'zz-alive/11/r2', 'http://127.0.0.1:4001', 11, now() - interval '1 hour',
                  now() - interval '2 seconds', NULL),
                 ('zz-silent', 'zz-silent/12/r1', 'http://127.0.0.1:4002', 12, now() - interval '1 hour',
                  now() - interval '16 seconds', NULL),
                 ('zz-stopped', 'zz-stopped/13/r1', 'http://127.0.0.1:4003', 13, now() - interval '1 hour',
                  now(), now())"""
        )
        await conn.executemany(
            """INSERT INTO launch_leases (launch_id, epoch, node, holder, url, expires_at)
               VALUES ($1, 1, $2, $3, 'http://127.0.0.1:4001', now() + make_interval(secs => $4))""",
            [
                (launches[0], "zz-alive", "zz-alive/11/r2", 5.0),  # owned
                (launches[1], "zz-alive", "zz-alive/11/r2", 5.0),  # owned
                (launches[2], "zz-alive", "zz-alive/11/r2", -1.0),  # expired: owned by no one
                (launches[3], "zz-alive", "zz-alive/10/r1", 5.0),  # the node's previous run's
            ],
        )
    finally:
        await conn.close()
    resp = await client.get(f"{S}/nodes", headers=it.headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["lease_seconds"] == settings.lease_seconds == 5.0 and body["node"] == "test-node"
    found = {n["name"]: n for n in body["items"] if n["name"].startswith("zz-")}
    assert [n["name"] for n in body["items"] if n["name"].startswith("zz-")] == sorted(found)
    assert {name: (n["alive"], n["launches_owned"], n["pid"]) for name, n in found.items()} == {
        "zz-alive": (True, 2, 11),
        "zz-silent": (False, 0, 12),  # 16 s without a heartbeat > 3 leases of 5 s
        "zz-stopped": (False, 0, 13),
    }
    assert found["zz-alive"]["url"] == "http://127.0.0.1:4001" and found["zz-alive"]["stopped_at"] is None
    assert found["zz-stopped"]["stopped_at"] is not None
    # Any other node is one of this test's apps registering itself (once nodes register): never more.
    assert {n["name"] for n in body["items"]} - set(found) <= {"test-node"}


async def test_nodes_are_for_it_only(client: Any, make_employee: Any) -> None:
    traveler = await register(client, traveler_body())
    finance = await make_employee("finance")
    assert (await client.get(f"{S}/nodes")).status == 401
    for account in (traveler, finance):
        resp = await client.get(f"{S}/nodes", headers=account.headers)
        assert resp.status == 403, await resp.text()
    spec = await (await client.get("/api/openapi.json")).json()
    assert "NodeList" in str(spec["paths"][f"{S}/nodes"]["get"])
