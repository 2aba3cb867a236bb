"""The app's common behaviour: request ids, error bodies, health, readiness, metrics, OpenAPI."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from astro.embedded import free_port
from tests.conftest import agency_body, register
from web.app import create_app
from web.clients import PG_POOL
from web.http import Handler


async def test_request_id_is_generated_and_passed_through(client: Any) -> None:
    resp = await client.get("/health")
    generated = resp.headers["X-Request-ID"]
    assert len(generated) == 32
    resp = await client.get("/health", headers={"X-Request-ID": "trace-42.a"})
    assert resp.headers["X-Request-ID"] == "trace-42.a"
    resp = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert resp.headers["X-Request-ID"] != "bad id with spaces"
    resp = await client.get("/nowhere", headers={"X-Request-ID": "on-errors-too"})
    assert resp.headers["X-Request-ID"] == "on-errors-too"


async def test_every_response_names_the_node_that_answered(aiohttp_client: Any, settings: Any) -> None:
    app = create_app(settings)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    answers = [
        await client.get("/health"),
        await client.get("/nowhere"),  # 404 of the router
        await client.get("/api/system/auth/login"),  # 405
        await client.post(
            "/api/system/auth/login", data=b"{", headers={"Content-Type": "application/json"}
        ),  # 400 of a handler
        await client.post(
            "/api/system/auth/login",
            data=b"x" * (2 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
        ),  # 413
        await client.get("/boom"),  # 500
        await client.get("/ws"),  # a plain GET of the WebSocket: refused
    ]
    assert [r.status for r in answers] == [200, 404, 405, 400, 413, 500, 400]
    assert [r.headers.get("X-Astro-Node") for r in answers] == ["test-node"] * len(answers)
    ws = await client.ws_connect("/ws")
    try:
        assert ws._response.headers["X-Astro-Node"] == "test-node"  # the 101 upgrade
    finally:
        await ws.close()


async def test_router_404_and_405_use_the_error_body(client: Any) -> None:
    resp = await client.get("/api/system/nope")
    body = await resp.json()
    assert resp.status == 404 and body["error"]["code"] == "not_found" and body["error"]["details"] == {}
    resp = await client.get("/api/system/auth/login")
    body = await resp.json()
    assert resp.status == 405 and body["error"]["code"] == "method_not_allowed"
    assert "POST" in resp.headers["Allow"]


async def test_too_large_body_is_413_with_the_error_body(client: Any) -> None:
    resp = await client.post(
        "/api/system/auth/login", data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "payload_too_large"


async def test_unexpected_error_is_a_generic_500_naming_the_request_id(
    aiohttp_client: Any, settings: Any
) -> None:
    app = create_app(settings)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    resp = await client.get("/boom", headers={"X-Request-ID": "req-500"})
    body = await resp.json()
    assert resp.status == 500 and body["error"]["code"] == "internal"
    assert "req-500" in body["error"]["message"] and "secret" not in body["error"]["message"]


async def test_health_and_ready(client: Any) -> None:
    assert (await (await client.get("/health")).json()) == {"status": "ok"}
    resp = await client.get("/ready")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "ready" and body["down"] == []
    assert set(body["parts"]) == {"postgres", "mongo", "redis", "smtp"}
    assert all(part["ok"] for part in body["parts"].values())


async def test_ready_is_503_naming_the_part_that_is_down(make_client: Any) -> None:
    client = await make_client(smtp_url=f"smtp://127.0.0.1:{free_port()}")
    resp = await client.get("/ready")
    body = await resp.json()
    assert resp.status == 503 and resp.headers["Retry-After"] == "5"
    assert (
        body["down"] == ["smtp"] and body["parts"]["smtp"]["ok"] is False and body["parts"]["postgres"]["ok"]
    )


async def test_a_store_that_is_down_answers_503_with_retry_after(client: Any) -> None:
    agency = await register(client, agency_body())
    await client.app[PG_POOL].close()  # PostgreSQL is gone for this app: its pool is closed
    resp = await client.get("/api/agency/rockets", headers=agency.headers)
    body = await resp.json()
    assert resp.status == 503 and resp.headers["Retry-After"] == "5", body
    assert body["error"]["code"] == "unavailable" and body["error"]["details"]["store"] == "PostgreSQL"
    resp = await client.get("/ready")
    assert resp.status == 503 and (await resp.json())["down"] == ["postgres"]


async def test_metrics_count_requests_by_route_template(client: Any) -> None:
    for _ in range(3):
        await client.patch(f"/api/system/users/usr_{_}", json={"vip": True})
    await client.get("/health")
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
    counts = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in families["astro_http_requests"].samples
        if s.name.endswith("_total")
    }
    assert counts[("/health", "GET", "200")] == 1
    assert counts[("/api/system/users/{id}", "PATCH", "401")] == 3
    latency = families["astro_http_request_duration_seconds"]
    assert any(
        s.name.endswith("_count") and s.labels["route"] == "/health" and s.value == 1 for s in latency.samples
    )


async def test_metrics_token_is_required_when_set(make_client: Any) -> None:
    client = await make_client(metrics_token="scrape-me")
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})).status == 200


async def test_openapi_document_is_generated_from_the_models(client: Any) -> None:
    resp = await client.get("/api/openapi.json")
    spec = await resp.json()
    assert spec["openapi"].startswith("3.1")
    register = spec["paths"]["/api/system/auth/register"]["post"]
    assert "201" in register["responses"] and "400" in register["responses"]
    body_schema = register["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["discriminator"]["propertyName"] == "role"
    schemas = spec["components"]["schemas"]
    assert {
        "RegisterTraveler",
        "RegisterAgency",
        "TravelerProfile",
        "AgencyProfile",
        "AuthOut",
        "ErrorBody",
    } <= set(schemas)
    assert set(schemas["TravelerProfile"]["required"]) == {"phone", "tax_id", "address"}
    assert schemas["RegisterTraveler"]["additionalProperties"] is False
    users = spec["paths"]["/api/system/users/{id}"]["patch"]
    assert users["security"] == [{"bearer": []}] and "it" in users["description"]
    assert users["parameters"][0]["name"] == "id"
    # every $ref resolves
    import json
    import re

    for ref in re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(spec)):
        assert ref in schemas


async def test_docs_page_lists_every_endpoint(client: Any) -> None:
    resp = await client.get("/api/docs")
    html = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    for path in ("/api/system/auth/register", "/api/system/auth/login", "/api/system/users/{id}"):
        assert path in html


async def test_a_client_that_leaves_mid_body_is_not_a_store_outage(settings: Any) -> None:
    import asyncio

    import aiohttp

    app = create_app(settings)
    entered, answered = asyncio.Event(), asyncio.Event()

    @web.middleware
    async def watch(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Outermost, so once `answered` is set the app's own middleware has recorded the answer.
        if request.path != "/api/system/auth/login":
            return await handler(request)
        entered.set()
        try:
            return await handler(request)
        finally:
            answered.set()

    app.middlewares.insert(0, watch)
    # Served as `python run.py` serves it: aiohttp's test server cancels the handler of a client that
    # left, run.py's does not, and the handler then meets the lost connection itself.
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /api/system/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 500\r\n\r\n{"email": '
        )
        await writer.drain()
        async with asyncio.timeout(5):
            await entered.wait()  # the handler runs, and is reading the body
        writer.close()
        async with asyncio.timeout(5):
            await answered.wait()

        metrics = f"http://127.0.0.1:{port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(metrics) as resp:
            families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
        seen = {
            (s.labels["route"], s.labels["status"]): s.value
            for s in families["astro_http_requests"].samples
            if s.name.endswith("_total")
        }
    finally:
        await runner.cleanup()
    assert seen.get(("/api/system/auth/login", "499")) == 1
    assert ("/api/system/auth/login", "503") not in seen
