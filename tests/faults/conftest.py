"""Fixtures of the fault tests: clean stores, platform processes and a private PostgreSQL, all ended in
a finally so that no process outlives its test, even a failed one."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from pymongo import AsyncMongoClient

from astro.embedded import free_port
from tests.conftest import Stores, _with_path, reset_state
from tests.faults.platform import PlatformProcess, StoreUrls
from tests.faults.private_pg import PrivatePostgres

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
