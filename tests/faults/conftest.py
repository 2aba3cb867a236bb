"""Fixtures of the fault tests: clean stores, platform processes and a private PostgreSQL, all ended in
a finally so that no process outlives its test, even a failed one; the payment gateway a test runs on
(the sandbox, or Stripe on the session's localstripe)."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
from pymongo import AsyncMongoClient

from astro.embedded import free_port
from tests.conftest import Stores, _with_path, reset_state
from tests.faults.audit import Ledger, SandboxLedger, StripeLedger
from tests.faults.platform import PlatformProcess, StoreUrls
from tests.faults.private_pg import PrivatePostgres
from tests.stripe_server import LocalStripe

_counter = itertools.count(1)


@pytest.fixture
async def shared_stores(stores: Stores) -> AsyncIterator[StoreUrls]:
    """The session's PostgreSQL database and Redis db, emptied, and a MongoDB database of this test."""
    mongo_db = f"astro_fault{next(_counter)}"
    await reset_state(stores, mongo_db)
    yield StoreUrls(stores.pg_dsn, _with_path(stores.mongo_base, "/" + mongo_db), stores.redis_url)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stores.mongo_base)
    try:
        await mongo.drop_database(mongo_db)
    finally:
        await mongo.close()


class MakePlatform(Protocol):
    def __call__(self, stores: StoreUrls, node: str | None = None, **env: str) -> PlatformProcess: ...


@pytest.fixture
def platforms(tmp_path: Path) -> Iterator[MakePlatform]:
    """Makes platform processes (not started); every one still running at the end is stopped. A `node`
    name gives the process that ASTRO_NODE and a data and log directory of its own; `env` is added to
    its environment (ASTRO_LEASE_SECONDS="2", ...)."""
    made: list[PlatformProcess] = []

    def make(stores: StoreUrls, node: str | None = None, **env: str) -> PlatformProcess:
        if node is None:
            platform = PlatformProcess(stores, tmp_path / "data", free_port(), tmp_path / "logs")
        else:
            home = tmp_path / node
            platform = PlatformProcess(stores, home / "data", free_port(), home / "logs", node=node)
        platform.extra_env.update(env)
        made.append(platform)
        return platform

    try:
        yield make
    finally:
        for platform in made:
            platform.close()


@pytest.fixture
def private_pg(tmp_path: Path) -> Iterator[PrivatePostgres]:
    """A PostgreSQL of this test's own, initialised, not started; never left running."""
    pg = PrivatePostgres(tmp_path / "private-pg")
    try:
        pg.init()
        yield pg
    finally:
        pg.close()


@dataclass(frozen=True)
class Gateway:
    """The payment gateway of a fault test: what the platform is told (env), the card the storm pays
    with, and where the audit reads the gateway's own ledger."""

    name: str
    card_token: str
    ledger: Ledger
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def gateway(request: pytest.FixtureRequest) -> Gateway:
    """Parametrized indirectly with "sandbox" (the default, in-process) or "stripe": ASTRO_PAYMENT_URL on
    the session's localstripe, pm_card_visa, and localstripe's intents created from now on as the ledger."""
    name = getattr(request, "param", "sandbox")
    if name == "sandbox":
        return Gateway("sandbox", "tok_ok", SandboxLedger())
    assert name == "stripe", name
    server: LocalStripe = request.getfixturevalue("localstripe")
    since = int(time.time()) - 1  # localstripe keeps the session's intents: this test's are the newer
    return Gateway(
        "stripe",
        "pm_card_visa",
        StripeLedger(server.api_base, server.secret_key, since),
        {"ASTRO_PAYMENT_URL": server.payment_url},
    )
