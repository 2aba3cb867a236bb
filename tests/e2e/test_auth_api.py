"""SystemAPI authentication over HTTP: register, login, logout, me, refresh, validate, attacks."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import asyncpg
import jwt
import pytest
from pymongo import AsyncMongoClient

from tests.conftest import JWT_SECRET, agency_body, passengers, register, traveler_body

API = "/api/system"


async def error_of(resp: Any, status: int) -> dict[str, Any]:
    body = await resp.json()
    assert resp.status == status, body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]  # type: ignore[no-any-return]


async def pg_count(settings: Any, table: str, email: str) -> int:
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE email = $1", email))
    finally:
        await conn.close()


async def mongo_users(settings: Any, email: str) -> int:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    try:
        return await client[settings.mongo_db]["users"].count_documents({"email": email})
    finally:
        await client.close()


async def test_register_login_me_logout_me(client: Any, settings: Any) -> None:
    body = traveler_body()
    resp = await client.post(f"{API}/auth/register", json=body)
    assert resp.status == 201
    data = await resp.json()
    assert data["user"]["email"] == body["email"] and data["user"]["role"] == "traveler"
    assert data["user"]["vip"] is False and "password" not in json.dumps(data["user"])
    assert data["user"]["profile"]["tax_id"] == body["profile"]["tax_id"]
    assert await pg_count(settings, "travelers", body["email"]) == 1
    assert await mongo_users(settings, body["email"]) == 1

    resp = await client.post(
        f"{API}/auth/login", json={"email": body["email"].upper(), "password": body["password"]}
    )
    assert resp.status == 200
    login = await resp.json()
    headers = {"Authorization": f"Bearer {login['token']}"}
    resp = await client.get(f"{API}/auth/me", headers=headers)
    assert resp.status == 200
    me = (await resp.json())["user"]
    assert me["id"] == data["user"]["id"] and me["profile"]["phone"] == body["profile"]["phone"]

    resp = await client.post(f"{API}/auth/logout", headers=headers)
    assert resp.status == 204
    err = await error_of(await client.get(f"{API}/auth/me", headers=headers), 401)
    assert err["code"] == "token_revoked"
    # The registration token is a different token and still works.
    resp = await client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {data['token']}"})
    assert resp.status == 200


async def test_agency_registers_with_legal_profile(client: Any, settings: Any) -> None:
    body = agency_body()
    body["profile"]["description"] = "We fly."
    resp = await client.post(f"{API}/auth/register", json=body)
    assert resp.status == 201
    assert (await resp.json())["user"]["profile"]["legal_name"] == body["profile"]["legal_name"]
    assert await pg_count(settings, "agencies", body["email"]) == 1


async def test_token_expiry_is_reported(client: Any) -> None:
    data = await (await client.post(f"{API}/auth/register", json=traveler_body())).json()
    assert data["expires_at"].endswith("Z")
    claims = jwt.decode(data["token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 900  # ASTRO_TOKEN_TTL: a short-lived access token


async def test_refresh_gives_a_new_token_and_revokes_the_old(client: Any, make_traveler: Any) -> None:
    account = await make_traveler()
    resp = await client.post(f"{API}/auth/refresh", headers=account.headers)
    assert resp.status == 200
    new_token = (await resp.json())["token"]
    assert new_token != account.token
    assert (
        await client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {new_token}"})
    ).status == 200
    assert (await error_of(await client.get(f"{API}/auth/me", headers=account.headers), 401))[
        "code"
    ] == "token_revoked"


async def test_validate_says_whether_a_token_is_good(client: Any, make_traveler: Any) -> None:
    account = await make_traveler()
    resp = await client.post(f"{API}/auth/validate", json={"token": account.token})
    data = await resp.json()
    assert resp.status == 200 and data["valid"] is True and data["user"]["id"] == account.id
    await client.post(f"{API}/auth/logout", headers=account.headers)
    data = await (await client.post(f"{API}/auth/validate", json={"token": account.token})).json()
    assert data == {"valid": False, "user": None, "expires_at": None}
    data = await (await client.post(f"{API}/auth/validate", json={"token": "junk"})).json()
    assert data["valid"] is False


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def forged(account_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": account_id, "role": "it", "jti": "forged", "iat": now, "exp": now + 600}
    claims.update(changes)
    return claims


@pytest.mark.parametrize(
    ("attack", "header", "code"),
    [
        ("no token", None, "unauthenticated"),
        ("empty bearer", "Bearer ", "invalid_token"),
        ("basic scheme", "Basic dXNlcjpwYXNz", "invalid_token"),
        ("malformed", "Bearer abc.def", "invalid_token"),
        (
            "wrong signature",
            lambda uid: jwt.encode(forged(uid), "another-secret-" * 3, "HS256"),
            "invalid_token",
        ),
        (
            "alg none",
            lambda uid: f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(forged(uid))}.",
            "invalid_token",
        ),
        ("HS512", lambda uid: jwt.encode(forged(uid), JWT_SECRET, "HS512"), "invalid_token"),
        (
            "expired",
            lambda uid: jwt.encode(forged(uid, exp=int(time.time()) - 1), JWT_SECRET, "HS256"),
            "token_expired",
        ),
        (
            "missing jti",
            lambda uid: jwt.encode({k: v for k, v in forged(uid).items() if k != "jti"}, JWT_SECRET, "HS256"),
            "invalid_token",
        ),
    ],
)
async def test_token_attacks_are_refused_with_401(
    client: Any, make_traveler: Any, attack: str, header: Any, code: str
) -> None:
    account = await make_traveler()
    headers = {}
    if isinstance(header, str):
        headers["Authorization"] = header
    elif header is not None:
        headers["Authorization"] = f"Bearer {header(account.id)}"
    err = await error_of(await client.get(f"{API}/auth/me", headers=headers), 401)
    assert err["code"] == code, attack


async def test_disabled_user_is_refused_at_once_and_enabled_again(
    client: Any, make_traveler: Any, make_employee: Any
) -> None:
    traveler, it = await make_traveler(), await make_employee("it")
    resp = await client.patch(f"{API}/users/{traveler.id}", json={"disabled": True}, headers=it.headers)
    assert resp.status == 200 and (await resp.json())["user"]["disabled"] is True
    assert (await error_of(await client.get(f"{API}/auth/me", headers=traveler.headers), 401))[
        "code"
    ] == "user_disabled"
    login = await client.post(
        f"{API}/auth/login", json={"email": traveler.email, "password": traveler.password}
    )
    assert (await error_of(login, 401))["code"] == "user_disabled"
    await client.patch(f"{API}/users/{traveler.id}", json={"disabled": False}, headers=it.headers)
    assert (await client.get(f"{API}/auth/me", headers=traveler.headers)).status == 200


async def test_five_failed_logins_a_minute_answer_429(client: Any, make_traveler: Any) -> None:
    account = await make_traveler()
    wrong = {"email": account.email, "password": "wrong-password"}
    for _ in range(5):
        assert (await error_of(await client.post(f"{API}/auth/login", json=wrong), 401))[
            "code"
        ] == "invalid_credentials"
    resp = await client.post(f"{API}/auth/login", json={"email": account.email, "password": account.password})
    err = await error_of(resp, 429)
    assert err["code"] == "too_many_attempts"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Another email is not affected.
    other = await make_traveler()
    resp = await client.post(f"{API}/auth/login", json={"email": other.email, "password": other.password})
    assert resp.status == 200


async def test_unknown_email_fails_like_a_wrong_password(client: Any) -> None:
    resp = await client.post(
        f"{API}/auth/login", json={"email": "nobody@example.com", "password": "whatever1"}
    )
    assert (await error_of(resp, 401))["code"] == "invalid_credentials"


async def test_successful_login_resets_the_failure_count(client: Any, make_traveler: Any) -> None:
    account = await make_traveler()
    for _ in range(4):
        await client.post(f"{API}/auth/login", json={"email": account.email, "password": "nope-nope"})
    assert (
        await client.post(f"{API}/auth/login", json={"email": account.email, "password": account.password})
    ).status == 200
    for _ in range(4):
        await client.post(f"{API}/auth/login", json={"email": account.email, "password": "nope-nope"})
    assert (
        await client.post(f"{API}/auth/login", json={"email": account.email, "password": account.password})
    ).status == 200


async def test_duplicate_email_is_409_and_writes_nothing(client: Any, settings: Any) -> None:
    first = traveler_body()
    await register(client, first)
    dup = agency_body(email=first["email"].upper())
    err = await error_of(await client.post(f"{API}/auth/register", json=dup), 409)
    assert err["code"] == "email_taken"
    assert await pg_count(settings, "agencies", first["email"]) == 0
    assert await mongo_users(settings, first["email"]) == 1


async def test_registration_refused_by_postgres_leaves_no_user_in_mongo(client: Any, settings: Any) -> None:
    first = agency_body()
    await register(client, first)
    second = agency_body()
    second["profile"]["tax_id"] = first["profile"]["tax_id"]
    err = await error_of(await client.post(f"{API}/auth/register", json=second), 409)
    assert err["code"] == "tax_id_taken"
    assert await mongo_users(settings, second["email"]) == 0
    assert await pg_count(settings, "agencies", second["email"]) == 0


async def test_concurrent_registrations_of_one_email_create_one_user(client: Any, settings: Any) -> None:
    import asyncio

    body = traveler_body()
    bodies = [dict(body, profile=dict(body["profile"], tax_id=f"TAX-C{i}")) for i in range(10)]
    responses = await asyncio.gather(*(client.post(f"{API}/auth/register", json=b) for b in bodies))
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] + [409] * 9
    assert await mongo_users(settings, body["email"]) == 1
    assert await pg_count(settings, "travelers", body["email"]) == 1


async def test_revocation_survives_an_app_restart_and_a_redis_flush(make_client: Any, settings: Any) -> None:
    import redis.asyncio as aioredis

    first = await make_client()
    account = await register(first, traveler_body())
    assert (await first.post(f"{API}/auth/logout", headers=account.headers)).status == 204
    await first.close()
    r = aioredis.Redis.from_url(settings.redis_url)
    await r.flushdb()
    await r.aclose()
    second = await make_client()
    err = await error_of(await second.get(f"{API}/auth/me", headers=account.headers), 401)
    assert err["code"] == "token_revoked"


async def test_role_guard_answers_403_for_other_roles(
    client: Any, make_traveler: Any, make_agency: Any, make_employee: Any
) -> None:
    for account in (await make_traveler(), await make_agency(), await make_employee("finance")):
        for method, path, body in (
            ("GET", "/users", None),
            ("POST", "/users", {}),
            ("PATCH", "/users/usr_x", {"vip": True}),
        ):
            resp = await client.request(method, f"{API}{path}", json=body, headers=account.headers)
            err = await error_of(resp, 403)
            assert err["code"] == "forbidden" and "it" in err["message"]
    resp = await client.get(f"{API}/users")
    assert (await error_of(resp, 401))["code"] == "unauthenticated"


async def test_a_redis_flush_while_running_loses_no_revocation_or_vip_flag(
    client: Any, settings: Any, make_employee: Any, make_agency: Any, make_launch: Any
) -> None:
    import redis.asyncio as aioredis

    it = await make_employee("it")
    gone, vip = await register(client, traveler_body()), await register(client, traveler_body())
    assert (await client.post(f"{API}/auth/logout", headers=gone.headers)).status == 204
    assert (await client.patch(f"{API}/users/{vip.id}", json={"vip": True}, headers=it.headers)).status == 200
    r = aioredis.Redis.from_url(settings.redis_url)
    await r.flushdb()
    await r.aclose()
    assert (await error_of(await client.get(f"{API}/auth/me", headers=gone.headers), 401))[
        "code"
    ] == "token_revoked"
    launch = await make_launch(await make_agency(), capacity=10, min_passengers=1)
    resp = await client.post(
        "/api/booking/bookings",
        headers=vip.headers,
        json={  # 6 seats: VIPs only
            "launch_id": launch["id"],
            "seats": 6,
            "passengers": passengers(6),
            "card_token": "tok_ok",
        },
    )
    assert resp.status == 201, await resp.text()
