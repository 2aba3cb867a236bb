"""GET /ready as an attacker would use it (issue 14, finding 12): cached checks, details only for IT."""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from astro.embedded import free_port
from web.health import READINESS, warn_when_metrics_are_open
from web.keys import PROBES


def count_smtp_probes(client: Any) -> list[int]:
    """Wrap the app's SMTP probe; the list's one item counts the SMTP sessions opened."""
    opened = [0]
    probe = client.app[PROBES]["smtp"]

    async def counted() -> object:
        opened[0] += 1
        return await probe()

    client.app[PROBES]["smtp"] = counted
    return opened


async def test_fifty_calls_open_one_smtp_session(client: Any) -> None:
    opened = count_smtp_probes(client)
    answers = await asyncio.gather(*(client.get("/ready") for _ in range(25)))
    answers += [await client.get("/ready") for _ in range(25)]
    assert [r.status for r in answers] == [200] * 50
    assert opened == [1]


async def test_a_failed_smtp_check_is_cached_too(make_client: Any) -> None:
    client = await make_client(smtp_url=f"smtp://127.0.0.1:{free_port()}")
    opened = count_smtp_probes(client)
    answers = await asyncio.gather(*(client.get("/ready") for _ in range(20)))
    assert [r.status for r in answers] == [503] * 20
    assert opened == [1]
    assert client.app[READINESS].every["smtp"] == 30.0


async def test_an_anonymous_caller_learns_only_ready_or_not(make_client: Any, make_traveler: Any) -> None:
    client = await make_client(smtp_url=f"smtp://127.0.0.1:{free_port()}", metrics_token="scrape-me")
    traveler = await make_traveler()
    for headers in ({}, traveler.headers, {"Authorization": "Bearer forged"}):
        resp = await client.get("/ready", headers=headers)
        assert resp.status == 503 and resp.headers["Retry-After"] == "5"
        assert await resp.json() == {"status": "unavailable"}
    resp = await client.get("/ready", headers={"Authorization": "Bearer scrape-me"})
    body = await resp.json()
    assert body["status"] == "unavailable" and body["down"] == ["smtp"]
    assert body["parts"]["smtp"]["ok"] is False and body["parts"]["postgres"]["ok"] is True


async def test_an_it_user_sees_the_parts(client: Any, make_employee: Any) -> None:
    it = await make_employee("it")
    resp = await client.get("/ready")
    assert resp.status == 200 and await resp.json() == {"status": "ready"}
    body = await (await client.get("/ready", headers=it.headers)).json()
    assert body["status"] == "ready" and body["down"] == []
    assert set(body["parts"]) == {"postgres", "mongo", "redis", "smtp"}


async def test_open_metrics_on_a_public_address_warn_at_start_up(make_client: Any) -> None:
    cases = [("0.0.0.0", None, 1), ("192.0.2.10", None, 1), ("127.0.0.1", None, 0), ("0.0.0.0", "tok", 0)]
    for host, token, warnings in cases:
        client = await make_client(host=host, metrics_token=token)
        assert warn_when_metrics_are_open in client.app.on_startup
        with capture_logs() as logs:
            await warn_when_metrics_are_open(client.app)
        found = [e for e in logs if e["event"] == "metrics_open"]
        assert len(found) == warnings, (host, token, logs)
        if found:
            assert found[0]["log_level"] == "warning" and "ASTRO_METRICS_TOKEN" in found[0]["message"]
