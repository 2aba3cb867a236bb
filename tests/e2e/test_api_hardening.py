"""Issue 14's findings 9 and 14 as an attacker tries them: NUL bytes and dates at the edge of the
calendar are 400 naming the field, every API answer carries nosniff and no-store, and a body that is
not JSON is 415."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import Account, future

A = "/api/agency"
B = "/api/booking"
EDGES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-02:00"]


def cursor_of(value: str) -> str:
    """A cursor as the API encodes one (web/http.py: encode_cursor)."""
    return base64.urlsafe_b64encode(json.dumps([value]).encode()).decode().rstrip("=")


async def answer(resp: Any) -> tuple[int, dict[str, Any]]:
    return resp.status, await resp.json()


def names(body: dict[str, Any]) -> list[str]:
    return list(body["error"]["details"].get("fields", {}))


# -- finding 9: NUL -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "path", "field"),
    [
        ("finance", "/api/finance/invoices?agency_id=a%00b", "agency_id"),
        ("it", "/api/system/changes?origin=a%00b", "origin"),
        ("it", "/api/system/changes?entity=launches&origin=ok&limit=5&x%00y=1", "x\x00y"),
        ("it", "/api/notify/notifications?recipient=a%00b", "recipient"),
        ("it", "/api/system/users?role=it%00", "role"),
    ],
)
async def test_a_nul_in_a_query_parameter_is_400_naming_it(
    client: Any, make_employee: Callable[..., Awaitable[Account]], role: str, path: str, field: str
) -> None:
    who = await make_employee(role)
    status, body = await answer(await client.get(path, headers=who.headers))
    assert status == 400, body
    assert body["error"]["code"] == "invalid_input"
    assert names(body) == [field]


@pytest.mark.parametrize(
    ("role", "path", "field"),
    [
        ("traveler", f"{B}/launches/lch_%00", "ref"),
        ("traveler", f"{B}/bookings/bkg_a%00b", "id"),
        ("agency", f"{A}/rockets/%00", "id"),
        ("finance", "/api/finance/invoices/inv_%00", "id"),
    ],
)
async def test_a_nul_in_a_path_id_is_400_naming_it(
    client: Any,
    make_traveler: Callable[..., Awaitable[Account]],
    make_agency: Callable[..., Awaitable[Account]],
    make_employee: Callable[..., Awaitable[Account]],
    role: str,
    path: str,
    field: str,
) -> None:
    account = await {"traveler": make_traveler, "agency": make_agency}.get(role, make_employee)(
        *(() if role in ("traveler", "agency") else (role,))
    )
    status, body = await answer(await client.get(path, headers=account.headers))
    assert status == 400, body
    assert body["error"]["code"] == "invalid_input"
    assert names(body) == [field]


# -- finding 9: dates whose offset leaves the calendar ---------------------------------------------


@pytest.mark.parametrize("when", EDGES)
async def test_scheduled_at_past_the_calendar_is_400_naming_it(
    client: Any, make_agency: Callable[..., Awaitable[Account]], when: str
) -> None:
    agency = await make_agency()
    resp = await client.post(
        f"{A}/rockets", headers=agency.headers, json={"name": "Ares", "capacity": 10, "range": "moon"}
    )
    rocket = (await resp.json())["rocket"]["id"]
    launch = {
        "rocket_id": rocket,
        "mission": "Edge",
        "destination": "moon",
        "scheduled_at": when,
        "price_cents": 1000,
        "min_passengers": 1,
    }
    status, body = await answer(await client.post(f"{A}/launches", headers=agency.headers, json=launch))
    assert status == 400, body
    assert names(body) == ["scheduled_at"]
    resp = await client.post(
        f"{A}/launches", headers=agency.headers, json={**launch, "scheduled_at": future(30)}
    )
    assert resp.status == 201, await resp.text()
    launch_id = (await resp.json())["launch"]["id"]
    delay = {"status": "delayed", "scheduled_at": when}
    resp = await client.post(f"{A}/launches/{launch_id}/status", headers=agency.headers, json=delay)
    status, body = await answer(resp)
    assert status == 400, body
    assert names(body) == ["scheduled_at"]


@pytest.mark.parametrize("when", EDGES)
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/system/changes?since={}", "since"),
        ("/api/system/logs?since={}", "since"),
        ("/api/system/metrics?until={}", "until"),
    ],
)
async def test_since_past_the_calendar_is_400_naming_it(
    client: Any, make_employee: Callable[..., Awaitable[Account]], when: str, path: str, field: str
) -> None:
    it = await make_employee("it")
    status, body = await answer(await client.get(path.format(when.replace("+", "%2B")), headers=it.headers))
    assert status == 400, body
    assert names(body) == [field]


@pytest.mark.parametrize("when", EDGES)
async def test_a_cursor_past_the_calendar_is_400_naming_it(
    client: Any, make_employee: Callable[..., Awaitable[Account]], when: str
) -> None:
    it = await make_employee("it")
    resp = await client.get(f"/api/system/changes?cursor={cursor_of(when)}", headers=it.headers)
    status, body = await answer(resp)
    assert status == 400, body
    assert names(body) == ["cursor"]


async def test_metrics_an_hour_before_year_1_start_at_year_1(
    client: Any, make_employee: Callable[..., Awaitable[Account]]
) -> None:
    it = await make_employee("it")
    resp = await client.get("/api/system/metrics?until=0001-01-01T00:30:00Z", headers=it.headers)
    status, body = await answer(resp)
    assert status == 200, body
    assert body["since"].startswith("0001-01-01T00:00:00")


# -- finding 14: headers and media types -----------------------------------------------------------


async def test_every_api_answer_is_nosniff_and_no_store_errors_included(
    client: Any, make_traveler: Callable[..., Awaitable[Account]]
) -> None:
    traveler = await make_traveler()
    answers = [
        await client.get("/api/system/auth/me", headers=traveler.headers),  # 200 with a tax id
        await client.get(f"{B}/profile", headers=traveler.headers),
        await client.get(f"{B}/launches"),  # anonymous
        await client.get("/api/system/auth/me"),  # 401
        await client.get("/api/finance/invoices", headers=traveler.headers),  # 403
        await client.get(f"{B}/bookings/bkg_nope", headers=traveler.headers),  # 404
        await client.get("/api/system/nope"),  # the router's 404
        await client.put("/api/system/auth/me"),  # 405
        await client.post("/api/system/auth/login", json={"email": 1}),  # 400
        await client.get("/api/openapi.json"),
        await client.get("/health"),
        await client.get("/ready"),
        await client.get("/metrics"),
    ]
    got = [
        (r.url.path, r.status, r.headers.get("X-Content-Type-Options"), r.headers.get("Cache-Control"))
        for r in answers
    ]
    assert [g[1] for g in got] == [200, 200, 200, 401, 403, 404, 404, 405, 400, 200, 200, 200, 200], got
    assert [g for g in got if g[2:] != ("nosniff", "no-store")] == []


async def test_the_api_docs_page_has_a_strict_csp_that_allows_its_own_style(client: Any) -> None:
    import hashlib
    import re

    resp = await client.get("/api/docs")
    assert resp.status == 200
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    [style] = re.findall(r"<style>(.*?)</style>", await resp.text(), re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp
    assert "<script" not in await resp.text()
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_a_json_endpoint_refuses_a_body_that_is_not_json_with_415(
    client: Any,
    make_traveler: Callable[..., Awaitable[Account]],
    make_agency: Callable[..., Awaitable[Account]],
    content_type: str | None,
) -> None:
    """A cross-site form can post text/plain with no preflight: login, register and the rest refuse it."""
    traveler, agency = await make_traveler(), await make_agency()
    login = json.dumps({"email": traveler.email, "password": traveler.password}).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    for path, body, who in [
        ("/api/system/auth/login", login, {}),
        ("/api/system/auth/register", login, {}),
        (f"{A}/rockets", b'{"name": "Ares", "capacity": 3, "range": "moon"}', agency.headers),
        (f"{B}/bookings", b'{"launch_id": "lch_x"}', {**traveler.headers, "Idempotency-Key": "k1"}),
    ]:
        resp = await client.post(path, data=body, headers={**who, **headers})
        status, answer_body = await answer(resp)
        assert (path, status) == (path, 415), answer_body
        assert answer_body["error"]["code"] == "unsupported_media_type"
    # the same login as JSON works, and so does a JSON-based type; the key refused above is still free
    resp = await client.post(
        "/api/system/auth/login", data=login, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 200
    resp = await client.post(
        "/api/system/auth/login",
        data=login,
        headers={"Content-Type": "application/merge-patch+json; charset=utf-8"},
    )
    assert resp.status == 200
    resp = await client.post(
        f"{B}/bookings",
        data=b'{"launch_id": "lch_x"}',
        headers={**traveler.headers, "Idempotency-Key": "k1", "Content-Type": "application/json"},
    )
    assert resp.status == 400 and "Idempotent-Replayed" not in resp.headers  # its own answer, not the 415
