"""A store that cannot be reached is Unavailable naming it, raised by the adapter; other errors pass."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from pymongo import AsyncMongoClient

import astro.store
from astro.config import Settings
from astro.domain.errors import Conflict, Unavailable
from astro.domain.users import Role
from astro.embedded import free_port
from astro.services.monitor import LogQuery
from astro.store import cache, postgres
from astro.store.errors import unavailable_as
from astro.store.launches import PgCatalog
from astro.store.mongo import MongoEntryLogs, MongoUsers
from astro.store.people import PgProfiles

# Adapters that do not carry @unavailable_as yet (none: a new one goes here only with a reason).
NOT_YET: set[str] = set()
# Classes of astro/store with async methods that are no adapter of a store of ours.
NOT_ADAPTERS: set[str] = {
    "SandboxGateway",  # no store behind it; a real gateway's errors are its own (GatewayError)
    "StripeGateway",  # touches no database of ours: it turns Stripe's errors into GatewayError itself
    "Coalesced",  # the Stripe gateway's shared listing: its errors are the gateway's
    "MailboxHandler",  # called by aiosmtpd, which answers the SMTP client itself
    "SmtpSender",  # SMTP is no store of ours: it states the server's errors itself (mail.smtp_error)
    "SmtpConnection",
    "NoticeRows",  # writes on the connection of its caller's transaction: the caller translates
}


@pytest.fixture
async def closed_pool(settings: Settings) -> asyncpg.Pool:
    pool = await postgres.create_pool(settings.pg_dsn or "", min_size=1, max_size=2)
    await pool.close()
    return pool


@pytest.fixture
async def nowhere_mongo() -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{free_port()}/", serverSelectionTimeoutMS=300, connectTimeoutMS=300
    )
    yield client
    await client.close()


def assert_unavailable(error: pytest.ExceptionInfo[Unavailable], store: str) -> None:
    assert error.value.code == "unavailable" and error.value.retry_after == 5
    assert error.value.details["store"] == store and store in error.value.message
    assert error.value.__cause__ is not None  # the driver's error is kept for the log


async def test_postgresql_refusing_connections_is_unavailable() -> None:
    pool = await postgres.create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/none", min_size=0)
    try:
        with pytest.raises(Unavailable) as error:
            await PgCatalog(pool).rockets("agc_x", None, 10)
    finally:
        await pool.close()
    assert_unavailable(error, "PostgreSQL")
    assert isinstance(error.value.__cause__, OSError)


async def test_a_closed_pool_is_unavailable_for_calls_and_transactions(closed_pool: asyncpg.Pool) -> None:
    profiles = PgProfiles(closed_pool)
    with pytest.raises(Unavailable) as error:
        await profiles.get("usr_x", Role.TRAVELER)
    assert_unavailable(error, "PostgreSQL")
    with pytest.raises(Unavailable) as error:
        async with profiles.transaction():
            pass
    assert_unavailable(error, "PostgreSQL")


async def test_redis_refusing_connections_is_unavailable() -> None:
    client = cache.connect(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(Unavailable) as error:
            await cache.AuthCache(client).is_warm()
        assert_unavailable(error, "Redis")
        with pytest.raises(Unavailable) as error:
            await cache.LaunchCache(client).upcoming()
        assert_unavailable(error, "Redis")
    finally:
        await client.aclose()


async def test_mongodb_out_of_reach_is_unavailable_for_calls_and_streams(
    nowhere_mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    db = nowhere_mongo["astro"]
    with pytest.raises(Unavailable) as error:
        await MongoUsers(db).by_email("a@example.com")
    assert_unavailable(error, "MongoDB")
    with pytest.raises(Unavailable) as error:
        async for _ in MongoEntryLogs(db).stream(LogQuery()):
            pass
    assert_unavailable(error, "MongoDB")


async def test_errors_that_are_no_outage_pass_unchanged(settings: Settings) -> None:
    pool = await postgres.create_pool(settings.pg_dsn or "", min_size=1, max_size=2)
    try:
        profiles = PgProfiles(pool)
        body = {"phone": "+1 555 0100", "tax_id": "TAX-1", "address": "1 Orbit Road"}
        async with profiles.transaction() as tx:
            await tx.add("usr_a", Role.TRAVELER, "same@example.com", "A", body)
        with pytest.raises(Conflict) as conflict:  # a constraint the adapter translates itself
            async with profiles.transaction() as tx:
                await tx.add("usr_b", Role.TRAVELER, "same@example.com", "B", body)
        assert conflict.value.code == "email_taken"
        with pytest.raises(asyncpg.DataError):  # a value the driver cannot send: a bug, not an outage
            await PgCatalog(pool).rockets(42, None, 10)  # type: ignore[arg-type]
    finally:
        await pool.close()


async def test_a_subclass_is_wrapped_and_its_base_left_alone() -> None:
    class Adapter:
        async def call(self) -> None:
            raise ConnectionRefusedError("refused")

        @staticmethod
        async def helper() -> None:
            raise ConnectionRefusedError("refused")

    wrapped = unavailable_as("Somewhere")(type("Wrapped", (Adapter,), {}))
    assert unavailable_as("Somewhere")(wrapped) is wrapped  # once only
    with pytest.raises(Unavailable) as error:
        await wrapped().call()
    assert_unavailable(error, "Somewhere")
    with pytest.raises(ConnectionRefusedError):
        await Adapter().call()
    with pytest.raises(ConnectionRefusedError):  # a static method builds things; it is left alone
        await wrapped.helper()


def test_every_adapter_of_astro_store_translates_unreachable_stores() -> None:
    undecorated, done = [], []
    for info in pkgutil.iter_modules(astro.store.__path__):
        module = importlib.import_module(f"astro.store.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or name in NOT_ADAPTERS or getattr(cls, "_is_protocol", 0):
                continue  # imported, no adapter, or a port (still declared here: payments.PaymentGateway)
            talks = any(
                not attr.startswith("_")
                and (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn))
                for attr, fn in vars(cls).items()
            )
            decorated = bool(cls.__dict__.get("__unavailable_as__"))
            if name in NOT_YET and decorated:
                done.append(name)
            elif talks and not decorated and name not in NOT_YET:
                undecorated.append(f"{module.__name__}.{name}")
    assert undecorated == [], "put @unavailable_as(<store>) (astro/store/errors.py) on these"
    assert done == [], "these carry the decorator now: take them off NOT_YET"
