"""Fixtures: real PostgreSQL, MongoDB wire server and Redis, fresh state for every test."""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from pymongo import AsyncMongoClient

from astro import logs
from astro.config import Settings, TestServers
from astro.embedded import EmbeddedServers
from astro.store import postgres
from tests.smtpd import seed_templates
from tests.stripe_server import (  # noqa: F401 (fixtures: localstripe and an app in Stripe mode)
    localstripe,
    make_stripe_client,
    stripe_gateway,
    stripe_settings,
)
from web.app import create_app

JWT_SECRET = "test-secret-" + "x" * 40
_counter = itertools.count(1)


@dataclass(frozen=True)
class Stores:
    pg_dsn: str
    mongo_base: str
    redis_url: str


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


async def _fresh_database(base_dsn: str, name: str) -> str:
    """A new, migrated database beside the one the DSN names, so tests never touch real data."""
    conn = await asyncpg.connect(base_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    dsn = _with_path(base_dsn, "/" + name)
    pool = await postgres.create_pool(dsn, min_size=1, max_size=2)
    try:
        await postgres.migrate(pool)
    finally:
        await pool.close()
    return dsn


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    """The servers of this test session: ASTRO_TEST_* when set, else embedded ones started once."""
    logs.configure("WARNING")
    given = TestServers.from_env()
    embedded = None
    urls: dict[str, str] = {}
    missing = {
        "postgres": given.pg_dsn is None,
        "mongo": given.mongo_url is None,
        "redis": given.redis_url is None,
    }
    if any(missing.values()):
        embedded = EmbeddedServers(tmp_path_factory.mktemp("embedded"))
        urls = asyncio.run(embedded.start(**missing))
    try:
        pg = asyncio.run(_fresh_database(given.pg_dsn or urls["pg_dsn"], given.database))
        redis_url = given.redis_url or _with_path(urls["redis_url"], "/0")
        yield Stores(pg_dsn=pg, mongo_base=given.mongo_url or urls["mongo_url"], redis_url=redis_url)
    finally:
        if embedded is not None:
            embedded.stop()


async def reset_state(stores: Stores, mongo_db: str) -> None:
    conn = await asyncpg.connect(stores.pg_dsn)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
        )
        if tables:
            await conn.execute(
                "TRUNCATE " + ", ".join(t["tablename"] for t in tables) + " RESTART IDENTITY CASCADE"
            )
        await seed_templates(conn)  # the migration's default email templates are data, not test state
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(stores.redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stores.mongo_base)
    try:
        await mongo.drop_database(mongo_db)
    finally:
        await mongo.close()


@pytest.fixture
async def settings(stores: Stores, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings for one test, on freshly emptied stores (its own MongoDB database)."""
    mongo_db = f"astro_t{next(_counter)}"
    await reset_state(stores, mongo_db)
    yield Settings(
        pg_dsn=stores.pg_dsn,
        mongo_url=_with_path(stores.mongo_base, "/" + mongo_db),
        redis_url=stores.redis_url,
        jwt_secret=JWT_SECRET,
        data_dir=tmp_path,
        node="test-node",
        log_level="WARNING",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        vip_window=0,
        agency_launches_per_day=1000,  # tests make many launches per agency; the limit's own test sets it
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stores.mongo_base)
    try:
        await mongo.drop_database(mongo_db)
    finally:
        await mongo.close()


MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def make_client(aiohttp_client: Any, settings: Settings) -> MakeClient:
    """A test client for create_app with these settings (changes and a clock may be passed)."""

    async def make(clock: Any = None, **changes: Any) -> TestClient[web.Request, web.Application]:
        app = create_app(settings.replace(**changes) if changes else settings, clock=clock)
        return await aiohttp_client(app)  # type: ignore[no-any-return]

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[web.Request, web.Application]:
    return await make_client()


def traveler_body(email: str | None = None, **changes: Any) -> dict[str, Any]:
    n = next(_counter)
    body: dict[str, Any] = {
        "email": email or f"traveler{n}@example.com",
        "password": "correct-horse",
        "name": f"Traveler {n}",
        "role": "traveler",
        "profile": {"phone": "+1 555 0100", "tax_id": f"TAX-T{n}", "address": f"{n} Orbit Road"},
    }
    body.update(changes)
    return body


def agency_body(email: str | None = None, **changes: Any) -> dict[str, Any]:
    n = next(_counter)
    body: dict[str, Any] = {
        "email": email or f"agency{n}@example.com",
        "password": "correct-horse",
        "name": f"Agency {n}",
        "role": "agency",
        "profile": {
            "legal_name": f"Agency {n} Ltd",
            "tax_id": f"TAX-A{n}",
            "legal_address": f"{n} Launch Pad",
        },
    }
    body.update(changes)
    return body


@dataclass
class Account:
    id: str
    email: str
    password: str
    token: str
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


# One IT employee per app, made the way `run.py create-user` does: it verifies the agencies tests register.
_IT: weakref.WeakKeyDictionary[web.Application, Account] = weakref.WeakKeyDictionary()


async def it_account(client: TestClient[web.Request, web.Application]) -> Account:
    """The app's IT employee (the first one a test made with make_employee, else a new one), logged in."""
    from astro.domain.users import Role
    from web.keys import AUTH

    known = _IT.get(client.app)
    if known is None:
        n = next(_counter)
        email, password = f"it{n}@astro.example", "employee-pass"
        user = await client.app[AUTH].create_employee(
            email=email, password=password, name=f"it {n}", role=Role.IT
        )
        resp = await client.post("/api/system/auth/login", json={"email": email, "password": password})
        assert resp.status == 200, await resp.text()
        known = _IT[client.app] = Account(user.id, email, password, (await resp.json())["token"], "it")
    return known


async def verify_agency(client: TestClient[web.Request, web.Application], agency_id: str) -> None:
    """IT verifies a self-registered agency through SystemAPI, as SystemWeb's users view does."""
    it = await it_account(client)
    resp = await client.patch(f"/api/system/users/{agency_id}", json={"verified": True}, headers=it.headers)
    assert resp.status == 200, await resp.text()


async def register(
    client: TestClient[web.Request, web.Application], body: dict[str, Any], *, verify: bool = True
) -> Account:
    """A self-registered traveler or agency; an agency is then verified by IT unless `verify` is False."""
    resp = await client.post("/api/system/auth/register", json=body)
    assert resp.status == 201, await resp.text()
    data = await resp.json()
    account = Account(data["user"]["id"], body["email"], body["password"], data["token"], body["role"])
    if body["role"] == "agency" and verify:
        await verify_agency(client, account.id)
    return account


@pytest.fixture
def make_traveler(client: TestClient[web.Request, web.Application]) -> Callable[..., Awaitable[Account]]:
    async def make(**changes: Any) -> Account:
        return await register(client, traveler_body(**changes))

    return make


@pytest.fixture
def make_agency(client: TestClient[web.Request, web.Application]) -> Callable[..., Awaitable[Account]]:
    async def make(*, verify: bool = True, **changes: Any) -> Account:
        return await register(client, agency_body(**changes), verify=verify)

    return make


@pytest.fixture
def make_employee(client: TestClient[web.Request, web.Application]) -> Callable[..., Awaitable[Account]]:
    """An IT or finance employee, created the way `run.py create-user` does, then logged in."""
    from astro.domain.users import Role
    from web.keys import AUTH

    async def make(role: str = "it") -> Account:
        n = next(_counter)
        email, password = f"{role}{n}@astro.example", "employee-pass"
        user = await client.app[AUTH].create_employee(
            email=email, password=password, name=f"{role} {n}", role=Role(role)
        )
        resp = await client.post("/api/system/auth/login", json={"email": email, "password": password})
        assert resp.status == 200, await resp.text()
        account = Account(user.id, email, password, (await resp.json())["token"], role)
        if role == "it":
            _IT.setdefault(client.app, account)  # it verifies the agencies this test registers
        return account

    return make


def future(days: float) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def passengers(n: int, born: str = "1990-05-17") -> list[dict[str, str]]:
    return [{"name": f"Passenger {i}", "birth_date": born} for i in range(n)]


@pytest.fixture
def make_launch(client: TestClient[web.Request, web.Application]) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A launch of an agency's new rocket: returns the launch JSON (with `agency` Account attached)."""

    async def make(
        agency: Account,
        *,
        capacity: int = 100,
        min_passengers: int = 10,
        price_cents: int = 100_000,
        days: float = 30,
        destination: str = "moon",
        range_: str = "mars",
    ) -> dict[str, Any]:
        resp = await client.post(
            "/api/agency/rockets",
            headers=agency.headers,
            json={"name": "Falcon Z", "capacity": capacity, "range": range_},
        )
        assert resp.status == 201, await resp.text()
        rocket = (await resp.json())["rocket"]
        resp = await client.post(
            "/api/agency/launches",
            headers=agency.headers,
            json={
                "rocket_id": rocket["id"],
                "mission": "Tranquility tour",
                "destination": destination,
                "scheduled_at": future(days),
                "price_cents": price_cents,
                "min_passengers": min_passengers,
            },
        )
        assert resp.status == 201, await resp.text()
        return (await resp.json())["launch"]  # type: ignore[no-any-return]

    return make


async def create_launch(
    client: TestClient[web.Request, web.Application],
    agency: Account,
    *,
    capacity: int = 100,
    min_passengers: int = 10,
    price_cents: int = 100_000,
    days: float = 30,
    mission: str = "Saga run",
) -> dict[str, Any]:
    """A launch of an agency's new rocket, through this client's app (make_launch uses the `client`
    fixture's app; a test running its own app, on a test clock say, uses this)."""
    resp = await client.post(
        "/api/agency/rockets",
        headers=agency.headers,
        json={"name": "Ares", "capacity": capacity, "range": "mars"},
    )
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        "/api/agency/launches",
        headers=agency.headers,
        json={
            "rocket_id": (await resp.json())["rocket"]["id"],
            "mission": mission,
            "destination": "moon",
            "scheduled_at": future(days),
            "price_cents": price_cents,
            "min_passengers": min_passengers,
        },
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["launch"]  # type: ignore[no-any-return]


@dataclass
class Flaky:
    """The calls a `fail_next` wrapper saw, and how many of them it failed."""

    calls: int = 0
    failed: int = 0


def fail_next(obj: Any, method: str, times: int = 1, error: Exception | None = None) -> Flaky:
    """Make `obj.method` (an async method, e.g. of the app's payment gateway) raise `error` (a
    GatewayError unless told) on its next `times` calls, then behave as before; the calls are counted."""
    from astro.domain.errors import GatewayError

    real = getattr(obj, method)
    seen = Flaky()

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        seen.calls += 1
        if seen.failed < times:
            seen.failed += 1
            raise error or GatewayError("the payment gateway failed (test)", retry_after=2)
        return await real(*args, **kwargs)

    setattr(obj, method, flaky)
    return seen
