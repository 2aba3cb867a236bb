"""The notification dispatcher against the real PostgreSQL and a real SMTP server: claims, rendering,
retries with backoff, failing for good, holds, stuck claims, and two dispatchers racing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from actors.dispatcher import DispatcherConfig, NotificationDispatcher, RoundResult
from actors.runtime import ActorSystem
from astro.config import Settings
from astro.domain.notifications import MAX_ATTEMPTS
from astro.services.notify import Mailer, NotifyMetrics
from astro.store import postgres
from astro.store.mail import SmtpSender, SmtpTarget
from astro.store.notices import NoticeRows, Recipient
from astro.store.notifications import PgNotifications
from tests.smtpd import SmtpServer, seed_templates

BASE_URL = "https://astro.example"
BOOKING = {
    "mission": "Tranquility tour",
    "destination": "moon",
    "date": "2027-01-02 10:00 UTC",
    "seats": 2,
    "amount": "$2,000.00",
    "booking_id": "bkg_1",
    "link_path": "/launches/falcon-moon-2027-01-02",
}


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await postgres.create_pool(settings.pg_dsn or "", min_size=1, max_size=10)
    await seed_templates(pool)
    yield pool
    await pool.close()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


MakeDispatcher = Callable[..., Awaitable[NotificationDispatcher]]


@pytest.fixture
async def make_dispatcher(pool: asyncpg.Pool, smtp: SmtpServer) -> AsyncIterator[MakeDispatcher]:
    """A started dispatcher on its own actor system; it only runs when asked (or woken)."""
    started: list[tuple[NotificationDispatcher, ActorSystem]] = []

    async def make(node: str = "n1", url: str | None = None, **changes: Any) -> NotificationDispatcher:
        parts = urlsplit(url) if url else None
        address = (parts.hostname or "", parts.port or 25) if parts else smtp.address
        target = SmtpTarget.of(url, address, timeout=5.0)
        config = DispatcherConfig(
            **{"node": node, "base_url": BASE_URL, "poll_interval": 3600.0, "retry_base": 10.0, **changes}
        )
        system = ActorSystem()
        await system.start()
        metrics = NotifyMetrics(CollectorRegistry())
        dispatcher = NotificationDispatcher(
            system,
            PgNotifications(pool),
            Mailer(SmtpSender(target), "Astro <no-reply@astro.example>"),
            metrics,
            config,
        )
        await dispatcher.start()
        started.append((dispatcher, system))
        return dispatcher

    yield make
    for dispatcher, system in started:
        await dispatcher.stop()
        await system.stop()


async def enqueue(
    pool: asyncpg.Pool, n: int = 1, event: str = "booking_confirmed", data: dict[str, Any] | None = None
) -> list[str]:
    """n notification rows as they are written with a change, one recipient each; their ids in order."""
    rows = NoticeRows()
    recipients = [Recipient(f"trv_{i}", "traveler", f"user{i}@example.com", f"User {i}") for i in range(n)]
    rows.add(event, recipients, dict(BOOKING if data is None else data))
    async with pool.acquire() as conn, conn.transaction():
        await rows.write(conn)
    rows = await pool.fetch("SELECT id FROM notifications ORDER BY recipient_email")
    return [r["id"] for r in rows]


async def rows(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch("SELECT * FROM notifications ORDER BY id")]


async def make_due(pool: asyncpg.Pool) -> None:
    """Let the backoff pass at once."""
    await pool.execute("UPDATE notifications SET next_attempt_at = now() WHERE status = 'pending'")


def sample(dispatcher: NotificationDispatcher, name: str, **labels: str) -> float:
    return float(dispatcher.metrics.registry.get_sample_value(name, labels) or 0.0)


async def test_due_row_is_rendered_sent_and_marked_sent(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher()
    [nid] = await enqueue(pool)
    result = await dispatcher.run_once()
    assert (result.claimed, result.sent, result.retried) == (1, 1, 0)
    [mail] = smtp.received
    assert mail.rcpt_tos == ["user0@example.com"]
    assert mail.notification_id == nid
    assert mail.message["Message-ID"] == f"<{nid}@astro.example>"
    assert mail.message["To"] == "User 0 <user0@example.com>"
    assert mail.subject == "Booking confirmed: 2 seats on Tranquility tour"
    assert "Hello User 0," in mail.body
    assert "Booking bkg_1: 2 seats on Tranquility tour to the Moon on 2027-01-02 10:00 UTC" in mail.body
    assert f"{BASE_URL}/launches/falcon-moon-2027-01-02" in mail.body
    [row] = await rows(pool)
    assert row["status"] == "sent" and row["attempts"] == 1 and row["claimed_by"] == "n1"
    assert row["subject"] == mail.subject and row["sent_at"] is not None and row["last_error"] is None
    assert sample(dispatcher, "astro_notifications_sent_total", event="booking_confirmed") == 1
    assert sample(dispatcher, "astro_notification_queue", status="pending") == 0
    assert sample(dispatcher, "astro_notification_send_seconds_count") == 1
    assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp.received) == 1


async def test_missing_placeholders_render_empty_and_reason_gets_its_own_line(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher()
    await enqueue(pool, event="launch_delayed", data={"mission": "M1", "reason": "weather"})
    await enqueue(pool, event="launch_delayed", data={"mission": "M2"})
    await dispatcher.run_once()
    by_subject = {m.subject: m.body for m in smtp.received}
    # No destination, date or link_path: those placeholders are simply empty.
    assert by_subject.keys() == {"Delayed: M1 now on", "Delayed: M2 now on"}
    assert "M1 to  has been delayed to .\nReason: weather\nCancelling" in by_subject["Delayed: M1 now on"]
    assert "M2 to  has been delayed to .\nCancelling" in by_subject["Delayed: M2 now on"]


async def test_smtp_down_loses_nothing_backs_off_and_delivers_each_once_when_back(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(retry_base=10.0)
    await smtp.stop()
    ids = await enqueue(pool, 30)

    for attempt, delay in ((1, 10.0), (2, 20.0), (3, 40.0)):
        result = await dispatcher.run_once()
        assert result.smtp_down is not None and result.sent == 0 and result.retried == 30
        for row in await rows(pool):
            assert row["status"] == "pending" and row["attempts"] == attempt
            assert "SMTP" in row["last_error"] or "Connect" in row["last_error"], row["last_error"]
            # Exponential backoff: base, 2 base, 4 base, counted from the failed attempt.
            assert (row["next_attempt_at"] - row["updated_at"]).total_seconds() == pytest.approx(delay)
        # Not due yet: the next round leaves them alone.
        assert (await dispatcher.run_once()).claimed == 0
        await make_due(pool)
    assert dispatcher.status()["last_error"] is not None

    await smtp.start()
    result = await dispatcher.run_once()
    assert result.sent == 30 and result.smtp_down is None
    assert smtp.per_notification() == dict.fromkeys(ids, 1)
    assert {(r["status"], r["attempts"]) for r in await rows(pool)} == {("sent", 4)}
    await make_due(pool)
    assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp.received) == 30


async def test_five_failed_attempts_end_failed_with_the_last_error(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(retry_base=0.0)
    smtp.refuse_with = "451 4.3.0 mailbox busy, try later"
    [nid] = await enqueue(pool)
    # One attempt per round: a round stops at a batch where nothing got through.
    outcomes = [await dispatcher.run_once() for _ in range(MAX_ATTEMPTS)]
    assert [o.retried for o in outcomes] == [1, 1, 1, 1, 0]
    assert outcomes[-1].failed == 1
    [row] = await rows(pool)
    assert row["status"] == "failed" and row["attempts"] == MAX_ATTEMPTS
    assert "451" in row["last_error"] and "mailbox busy" in row["last_error"]
    assert (await dispatcher.run_once()).claimed == 0
    assert smtp.received == []
    assert (
        sample(dispatcher, "astro_notifications_failed_total", event="booking_confirmed", outcome="retry")
        == 4
    )
    assert (
        sample(dispatcher, "astro_notifications_failed_total", event="booking_confirmed", outcome="failed")
        == 1
    )
    assert sample(dispatcher, "astro_notification_queue", status="failed") == 1

    # IT retries it: attempts start again and it goes out.
    smtp.refuse_with = None
    moved = await PgNotifications(pool).move(nid, "pending")
    assert moved["attempts"] == 0
    assert (await dispatcher.run_once()).sent == 1
    assert smtp.per_notification() == {nid: 1}


async def test_held_rows_are_not_sent_until_released(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher()
    held, other = await enqueue(pool, 2)
    store = PgNotifications(pool)
    await store.move(held, "held")
    assert (await dispatcher.run_once()).sent == 1
    assert smtp.per_notification() == {other: 1}
    assert (await dispatcher.run_once()).claimed == 0
    await store.move(held, "pending")
    assert (await dispatcher.run_once()).sent == 1
    assert smtp.per_notification() == {other: 1, held: 1}


async def test_two_dispatchers_racing_over_200_rows_send_each_exactly_once(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    first = await make_dispatcher("n1", batch_size=10, connections=3)
    second = await make_dispatcher("n2", batch_size=10, connections=3)
    ids = await enqueue(pool, 200)
    results: list[RoundResult] = []
    while len(smtp.received) < 200:
        before = len(smtp.received)
        results += await asyncio.gather(first.run_once(), second.run_once())
        assert len(smtp.received) > before, "a round sent nothing although rows were pending"
    assert smtp.per_notification() == dict.fromkeys(ids, 1)
    assert sum(r.sent for r in results) == 200 and sum(r.lost for r in results) == 0
    by_node = await pool.fetch("SELECT claimed_by, count(*) AS n FROM notifications GROUP BY claimed_by")
    counts = {r["claimed_by"]: r["n"] for r in by_node}
    assert set(counts) == {"n1", "n2"} and sum(counts.values()) == 200
    assert {r["status"] for r in await rows(pool)} == {"sent"}


async def test_rows_stuck_in_sending_go_back_to_pending_and_are_sent(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(claim_timeout=60.0)
    [nid] = await enqueue(pool)
    # A node claims it and dies before sending.
    [claimed] = await PgNotifications(pool).claim("dead-node", 10)
    assert claimed["id"] == nid
    assert (await dispatcher.run_once()).claimed == 0  # a fresh claim is left alone
    await pool.execute("UPDATE notifications SET claimed_at = now() - interval '61 seconds'")
    result = await dispatcher.run_once()
    assert (result.requeued, result.sent) == (1, 1)
    [row] = await rows(pool)
    assert row["status"] == "sent" and row["attempts"] == 2 and row["claimed_by"] == "n1"
    assert "claim expired: node dead-node" in row["last_error"]
    assert smtp.per_notification() == {nid: 1}


async def test_a_template_edit_changes_the_next_email(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher()
    await enqueue(pool)
    await dispatcher.run_once()
    await PgNotifications(pool).save_template(
        "booking_confirmed", "Your seats on {mission}", "Dear {name}: {seats} seats, see {link}", "usr_it"
    )
    await enqueue(pool, data={**BOOKING, "seats": 3})
    await dispatcher.run_once()
    first, second = smtp.received
    assert first.subject.startswith("Booking confirmed")
    assert second.subject == "Your seats on Tranquility tour"
    assert second.body.strip() == f"Dear User 0: 3 seats, see {BASE_URL}/launches/falcon-moon-2027-01-02"


async def test_wake_sends_at_once_without_waiting_for_the_poll_interval(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(poll_interval=60.0)
    [nid] = await enqueue(pool)
    dispatcher.wake()
    await smtp.count(1, timeout=5.0)
    assert smtp.per_notification() == {nid: 1}
    assert dispatcher.running


async def test_the_poll_interval_picks_up_new_rows_by_itself(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    await make_dispatcher(poll_interval=0.05)
    ids = await enqueue(pool, 3)
    await smtp.count(3, timeout=5.0)
    assert smtp.per_notification() == dict.fromkeys(ids, 1)


async def test_smtp_url_credentials_are_used_to_log_in(
    pool: asyncpg.Pool, make_dispatcher: MakeDispatcher
) -> None:
    server = SmtpServer(credentials=("mailer", "s3cr@t"))
    await server.start()
    try:
        good = await make_dispatcher("n1", url=f"smtp://mailer:s3cr%40t@127.0.0.1:{server.port}")
        bad = await make_dispatcher("n2", url=f"smtp://mailer:wrong@127.0.0.1:{server.port}")
        [nid] = await enqueue(pool)
        # The wrong password fails (and counts as an unreachable server); the right one delivers.
        failed = await bad.run_once()
        assert failed.retried == 1 and "Authentication" in (failed.smtp_down or "")
        await make_due(pool)
        assert (await good.run_once()).sent == 1
        assert server.per_notification() == {nid: 1}
    finally:
        await server.stop()


async def test_stop_gives_claimed_but_untried_rows_back(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(batch_size=50, connections=1)
    await enqueue(pool, 50)
    first_sent, stopping = asyncio.Event(), asyncio.Event()
    original = smtp.handle_DATA

    async def held(*args: Any) -> str:
        reply = await original(*args)
        first_sent.set()
        await stopping.wait()  # the server answers once the dispatcher has been told to stop
        return reply

    smtp.handle_DATA = held  # type: ignore[method-assign]
    round_ = asyncio.ensure_future(dispatcher.run_once())
    await asyncio.wait_for(first_sent.wait(), 5)
    stop = asyncio.ensure_future(dispatcher.stop())
    await asyncio.sleep(0)  # one event-loop turn: stop() has begun (it marks the dispatcher stopping first)
    assert dispatcher.state.stopping
    stopping.set()
    await asyncio.wait_for(stop, 5)
    result = await round_
    assert result.released > 0 and result.sent + result.released == 50
    statuses = [r["status"] for r in await rows(pool)]
    assert statuses.count("sent") == result.sent and statuses.count("pending") == result.released
    assert "sending" not in statuses


async def test_non_ascii_text_and_long_lines_arrive_intact(
    pool: asyncpg.Pool, smtp: SmtpServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher()
    long_reason = "Zoë's lander needs a new gyroscope " * 60
    await PgNotifications(pool).save_template(
        "launch_delayed", "Retardé ✓ {mission}", "Hola {name}!{reason_line}", "usr_it"
    )
    rows = NoticeRows()
    rows.add(
        "launch_delayed",
        [Recipient("trv_1", "traveler", "zoe@example.com", "Zoë Ñandú")],
        {"mission": "Ærø", "reason": long_reason},
    )
    async with pool.acquire() as conn, conn.transaction():
        await rows.write(conn)
    assert (await dispatcher.run_once()).sent == 1
    [mail] = smtp.received
    assert mail.subject == "Retardé ✓ Ærø"
    assert mail.message["To"] == "Zoë Ñandú <zoe@example.com>"
    assert mail.body == f"Hola Zoë Ñandú!\nReason: {long_reason.strip()}\n"
    assert max(len(line) for line in mail.message.as_string().splitlines()) <= 998
