"""Adapters behind the workers' ports: a store or mail server that does not answer comes out as the domain's
Unavailable (the driver's error kept as its cause); a refusal or a missing row stays what it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from pymongo import AsyncMongoClient

from astro.config import Settings
from astro.domain.errors import DomainError, NotFound, Unavailable
from astro.embedded import free_port
from astro.services.notify import describe
from astro.store import postgres
from astro.store.changes import MongoChanges, PgChanges, PgJobs
from astro.store.mail import SmtpSender, SmtpTarget
from astro.store.notifications import MongoMailbox, PgNotifications
from astro.store.sync_sources import MongoPeople, PgLaunchRows
from tests.smtpd import SmtpServer


@pytest.fixture
async def dead_pool() -> AsyncIterator[asyncpg.Pool]:
    """A pool for a port nothing listens on; it connects only when used."""
    pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/none", min_size=0)
    yield pool
    await pool.close()


@pytest.fixture
async def dead_mongo() -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{free_port()}/", serverSelectionTimeoutMS=200, connectTimeoutMS=200
    )
    yield client["none"]
    await client.close()


async def test_postgres_adapters_raise_unavailable_when_postgres_does_not_answer(
    dead_pool: asyncpg.Pool,
) -> None:
    calls = [
        lambda: PgNotifications(dead_pool).claim("n1", 10),
        lambda: PgNotifications(dead_pool).queue(),
        lambda: PgChanges(dead_pool).after(0, ["travelers"], 10),
        lambda: PgJobs(dead_pool).claim("n1"),
        lambda: PgLaunchRows(dead_pool).count(),
    ]
    for call in calls:
        with pytest.raises(Unavailable) as caught:
            await call()
        assert isinstance(caught.value.__cause__, OSError)
        assert caught.value.details["error"] == type(caught.value.__cause__).__name__
        # The queue and the logs see what happened underneath, not only "unavailable".
        assert type(caught.value.__cause__).__name__ in describe(caught.value)


async def test_mongo_adapters_raise_unavailable_when_mongo_does_not_answer(dead_mongo: Any) -> None:
    with pytest.raises(Unavailable):
        await MongoChanges(dead_mongo).unsynced(10)
    with pytest.raises(Unavailable):
        await MongoMailbox(dead_mongo).page(None, None, 10)
    with pytest.raises(Unavailable):
        await MongoPeople(dead_mongo).count()
    with pytest.raises(Unavailable):
        async for _ in MongoPeople(dead_mongo).batches(10):
            pass


async def test_a_missing_row_is_not_taken_for_an_outage(settings: Settings) -> None:
    pool = await postgres.create_pool(settings.pg_dsn or "", min_size=1, max_size=2)
    try:
        with pytest.raises(NotFound):
            await PgJobs(pool).get("job_missing")
    finally:
        await pool.close()


async def test_an_smtp_server_that_is_not_there_is_unavailable_and_its_probe_says_so() -> None:
    sender = SmtpSender(SmtpTarget("127.0.0.1", free_port(), timeout=2.0))
    with pytest.raises(Unavailable) as caught:
        await sender.connect()
    assert "SMTP" in caught.value.message or "Connect" in caught.value.message
    status = await sender.check()
    assert status["reachable"] is False and status["error"] and status["latency_ms"] is None


async def test_a_message_the_server_refuses_is_a_refusal_not_an_outage() -> None:
    server = SmtpServer()
    await server.start()
    server.refuse_with = "451 4.3.0 mailbox busy"
    try:
        connection = await SmtpSender(SmtpTarget("127.0.0.1", server.port, timeout=5.0)).connect()
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@astro.example", "b@example.com", "hi"
        message.set_content("hello")
        with pytest.raises(DomainError) as caught:
            await connection.send(message)
        assert not isinstance(caught.value, Unavailable) and caught.value.code == "mail_refused"
        assert "451" in caught.value.message and "mailbox busy" in caught.value.message
        assert connection.connected  # the server is still there: the connection may go on
        await connection.close()
        assert not connection.connected
    finally:
        await server.stop()
