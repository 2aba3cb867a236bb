"""The notification dispatcher: one actor per node claims due rows, renders and sends them, retries."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

import structlog

from actors.loop import BackgroundLoop
from actors.runtime import Actor, ActorRef, ActorStopped, ActorSystem, Envelope
from astro.domain import notifications as rules
from astro.domain.clock import Clock, SystemClock
from astro.domain.errors import Unavailable
from astro.services.notify import MailConnection, Mailer, NotifyMetrics, describe

log = structlog.get_logger("astro.notify")
ACTOR_KEY: Final = "notify:dispatcher"
Row = dict[str, Any]


class DispatchQueue(Protocol):
    """The notification rows as the dispatcher claims, sends and marks them (PostgreSQL in production)."""

    async def claim(self, node: str, limit: int) -> list[Row]: ...
    async def mark_sent_many(self, sent: list[tuple[Row, str]]) -> set[str]: ...
    async def mark_failed(self, row: Row, error: str, *, final: bool, delay: float) -> bool: ...
    async def unclaim(self, rows: list[Row]) -> int: ...
    async def requeue_stuck(self, older_than: float, max_attempts: int) -> list[Row]: ...
    async def live_counts(self) -> dict[str, int]: ...
    async def authors(self, launch_ids: list[str]) -> dict[str, str]: ...
    async def templates(self) -> dict[str, Row]: ...


def launch_of(row: Row) -> str | None:
    """The launch a notification is about (its mission and reason are that launch's agency's text)."""
    launch_id = (row["data"] or {}).get("launch_id")
    return str(launch_id) if launch_id else None


# -- messages ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send every notification that is due now; the reply is the round's RoundResult."""


@dataclass(slots=True)
class RoundResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    requeued: int = 0
    released: int = 0
    lost: int = 0
    smtp_down: str | None = None

    def add(self, other: RoundResult) -> None:
        for name in ("claimed", "sent", "retried", "failed", "requeued", "released", "lost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.smtp_down = other.smtp_down or self.smtp_down


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    node: str
    base_url: str
    poll_interval: float = 1.0
    batch_size: int = 50
    connections: int = 4
    retry_base: float = 60.0
    retry_cap: float = 3600.0
    claim_timeout: float = 300.0
    max_attempts: int = rules.MAX_ATTEMPTS


@dataclass(slots=True)
class DispatcherState:
    """What the node's dispatcher has seen, kept across restarts of its actor (for /status)."""

    started_at: datetime | None = None
    stopping: bool = False
    last_round_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    sent: int = 0
    failed_attempts: int = 0

    def error(self, text: str, at: datetime) -> None:
        self.last_error, self.last_error_at = text, at


# Deliveries are recorded in groups of this many: one UPDATE instead of one per e-mail. A node that dies
# between sending and recording resends about this many (plus one per other connection sending
# meanwhile) after the claim times out; delivery is at least once either way.
MARK_EVERY: Final = 10


@dataclass(frozen=True, slots=True)
class _Sent:
    row: Row
    subject: str
    seconds: float


@dataclass
class _Connections:
    """The SMTP connections of one round, one per sending slot, opened on first use."""

    mailer: Mailer
    clients: dict[int, MailConnection] = field(default_factory=dict)
    down: str | None = None

    async def get(self, slot: int) -> MailConnection:
        client = self.clients.get(slot)
        if client is None or not client.connected:
            try:
                client = await self.mailer.open()
            except Unavailable as exc:
                # The server is not there: the rest of this round is not tried.
                self.down = describe(exc)
                raise
            self.clients[slot] = client
        return client

    async def drop(self, slot: int) -> None:
        client = self.clients.pop(slot, None)
        if client is not None:
            await client.close()

    async def close(self) -> None:
        await asyncio.gather(*(self.drop(slot) for slot in list(self.clients)))


class DispatcherActor(Actor):
    """Handles Dispatch messages one round at a time; asks queued during a round share the next one."""

    mailbox_size = 1000

    def __init__(
        self,
        store: DispatchQueue,
        mailer: Mailer,
        metrics: NotifyMetrics,
        config: DispatcherConfig,
        state: DispatcherState,
        clock: Clock,
    ) -> None:
        self.store, self.mailer, self.metrics = store, mailer, metrics
        self.config, self.state, self.clock = config, state, clock

    def can_passivate(self) -> bool:
        return False

    async def receive_batch(self, batch: list[Envelope]) -> None:
        # A failing round (PostgreSQL down) must not crash the actor: it is noted and tried again.
        try:
            result: RoundResult | BaseException = await self.round()
        except Exception as exc:
            self.state.error(describe(exc), self.clock.now())
            log.error("notification_round_failed", error=describe(exc), node=self.config.node)
            result = exc
        for env in batch:
            if env.reply is not None and not env.reply.done():
                if isinstance(result, BaseException):
                    env.reply.set_exception(result)
                else:
                    env.reply.set_result(result)

    async def round(self) -> RoundResult:
        """Requeue rows whose node died mid-send, then claim and send batches until none is due."""
        cfg, total = self.config, RoundResult()
        self.state.last_round_at = self.clock.now()
        for row in await self.store.requeue_stuck(cfg.claim_timeout, cfg.max_attempts):
            total.requeued += 1
            self._log_failure(row, row["last_error"], final=row["status"] == "failed", delay=0.0)
        connections = _Connections(self.mailer)
        try:
            while not self.state.stopping:
                rows = await self.store.claim(cfg.node, cfg.batch_size)
                if not rows:
                    break
                batch = await self._deliver(rows, connections)
                total.add(batch)
                # Server unreachable, or nothing got through: the rest waits for its backoff.
                if connections.down is not None or (batch.sent == 0 and batch.retried + batch.failed > 0):
                    break
        finally:
            await connections.close()
        self.metrics.set_queue(await self.store.live_counts())
        return total

    async def _deliver(self, rows: list[Row], connections: _Connections) -> RoundResult:
        """Send one claimed batch over up to `connections` SMTP connections at once."""
        result = RoundResult(claimed=len(rows))
        templates = await self.store.templates()
        authors = await self.store.authors(sorted({i for row in rows if (i := launch_of(row))}))
        queue = deque(rows)
        sent: list[_Sent] = []

        async def sender(slot: int) -> None:
            while queue and not self.state.stopping:
                row = queue.popleft()
                if connections.down is not None:
                    await self._failed(row, f"SMTP server unreachable: {connections.down}", result)
                    continue
                delivered = await self._send(slot, row, templates, authors, connections, result)
                if delivered is not None:
                    sent.append(delivered)
                    if len(sent) >= MARK_EVERY:
                        await self._mark_sent(sent, result)

        try:
            await asyncio.gather(*(sender(i) for i in range(min(self.config.connections, len(rows)))))
        finally:
            await self._mark_sent(sent, result)  # also when stopping: what went out is recorded
            # Stopping (or cancelled): rows never tried go back to the queue, no attempt counted.
            if queue:
                result.released += await self.store.unclaim(list(queue))
        result.smtp_down = connections.down
        return result

    async def _mark_sent(self, sent: list[_Sent], result: RoundResult) -> None:
        """Record deliveries in one statement (not one transaction per e-mail), then count and log them."""
        if not sent:
            return
        done, sent[:] = list(sent), []
        marked = await self.store.mark_sent_many([(d.row, d.subject) for d in done])
        deliveries = []
        for d in done:
            row = d.row
            if row["id"] not in marked:
                result.lost += 1
                log.warning("notification_claim_lost", notification_id=row["id"], notify_event=row["event"])
                continue
            result.sent += 1
            self.state.sent += 1
            self.metrics.sent.labels(row["event"]).inc()
            deliveries.append(
                {
                    "notification_id": row["id"],
                    "notify_event": row["event"],
                    "recipient": row["recipient_email"],
                    "recipient_id": row["recipient_id"],
                    "attempts": row["attempts"] + 1,
                    "send_ms": round(d.seconds * 1000, 2),
                }
            )
        if deliveries:
            # One entry per batch marked (up to MARK_EVERY e-mails), not one per e-mail: under booking
            # load every entry is a write into seven indexes of the log store. Each notification and
            # recipient id is among the entry's entity ids, so a search by either finds it.
            log.info(
                "notifications_sent",
                sent=len(deliveries),
                notification_ids=[x["notification_id"] for x in deliveries],
                recipient_ids=sorted({x["recipient_id"] for x in deliveries if x["recipient_id"]}),
                deliveries=deliveries,
                node=self.config.node,
            )
        if marked:
            self.state.last_success_at = self.clock.now()

    async def _send(
        self,
        slot: int,
        row: Row,
        templates: dict[str, Row],
        authors: dict[str, str],
        connections: _Connections,
        result: RoundResult,
    ) -> _Sent | None:
        """Render and send one notification: what was sent (to be marked), or None when it failed."""
        template = templates.get(row["event"])
        if template is None:
            await self._failed(row, f"no template for the event {row['event']!r}", result)
            return None
        try:
            subject, body = rules.render(
                template["subject"],
                template["body"],
                row["data"],
                self.config.base_url,
                author=authors.get(launch_of(row) or ""),
            )
            message = self.mailer.message(row, subject, body)
        except Exception as exc:
            await self._failed(row, f"template {row['event']}: {describe(exc)}", result)
            return None
        started = time.perf_counter()
        try:
            client = await connections.get(slot)
            await client.send(message)
        except Exception as exc:
            await connections.drop(slot)
            await self._failed(row, describe(exc), result)
            return None
        seconds = time.perf_counter() - started
        self.metrics.send_seconds.observe(seconds)
        return _Sent(row, subject, seconds)

    async def _failed(self, row: Row, error: str, result: RoundResult) -> None:
        cfg = self.config
        attempts = row["attempts"] + 1
        final = attempts >= cfg.max_attempts
        delay = rules.retry_delay(attempts, cfg.retry_base, cfg.retry_cap)
        if not await self.store.mark_failed(row, error, final=final, delay=delay):
            result.lost += 1
            log.warning("notification_claim_lost", notification_id=row["id"], notify_event=row["event"])
            return
        if final:
            result.failed += 1
        else:
            result.retried += 1
        self._log_failure({**row, "attempts": attempts}, error, final=final, delay=delay)

    def _log_failure(self, row: Row, error: str, *, final: bool, delay: float) -> None:
        self.state.failed_attempts += 1
        self.state.error(error, self.clock.now())
        self.metrics.failed.labels(row["event"], "failed" if final else "retry").inc()
        fields = {
            "notification_id": row["id"],
            "notify_event": row["event"],
            "recipient": row["recipient_email"],
            "attempts": row["attempts"],
            "error": error,
            "node": self.config.node,
        }
        if final:
            log.error("notification_failed", **fields)
        else:
            log.warning("notification_attempt_failed", retry_in_s=delay, **fields)


class NotificationDispatcher:
    """This node's dispatcher: its actor, and a background loop that asks for a round every poll
    interval or at once when woken. Any number of nodes may run one on the same database."""

    def __init__(
        self,
        system: ActorSystem,
        store: DispatchQueue,
        mailer: Mailer,
        metrics: NotifyMetrics,
        config: DispatcherConfig,
        clock: Clock | None = None,
    ) -> None:
        self._system = system
        self.config = config
        self.metrics = metrics
        self.state = DispatcherState()
        self._clock = clock or SystemClock()
        self._factory = lambda: DispatcherActor(store, mailer, metrics, config, self.state, self._clock)
        self._ask_timeout = max(config.claim_timeout, 60.0)
        self.background = BackgroundLoop(
            self._tick, interval=config.poll_interval, name="notify:ticker", first_round_at_start=False
        )
        self._ref: ActorRef | None = None

    @property
    def running(self) -> bool:
        return self.background.running and not self.state.stopping and self._system.get(ACTOR_KEY) is not None

    async def start(self) -> None:
        self._ref = self._system.ref(ACTOR_KEY, self._factory)
        self.state.started_at = self._clock.now()
        self.background.start()

    def wake(self) -> None:
        """Look for due notifications now instead of at the next tick."""
        self.background.wake()

    async def run_once(self, timeout: float = 60.0) -> RoundResult:  # noqa: ASYNC109
        """One round now (after the one in progress, if any); raises what made the round fail."""
        if self._ref is None:
            raise ActorStopped("the dispatcher is not started")
        result: RoundResult = await self._ref.ask(Dispatch(), timeout=timeout)
        return result

    async def stop(self) -> None:
        """Finish the message being sent, give the rest of the claimed rows back, stop."""
        self.state.stopping = True
        await self.background.stop()
        await self._system.stop_actor(ACTOR_KEY)

    def status(self) -> dict[str, Any]:
        s = self.state
        return {
            "running": self.running,
            "node": self.config.node,
            "poll_interval_seconds": self.config.poll_interval,
            "started_at": s.started_at,
            "last_round_at": s.last_round_at,
            "last_success_at": s.last_success_at,
            "last_error": s.last_error,
            "last_error_at": s.last_error_at,
            "sent_since_start": s.sent,
            "failed_attempts_since_start": s.failed_attempts,
        }

    async def _tick(self) -> None:
        """Ask the actor for a round; a failed one is already noted and logged by the actor (or it is
        still busy), and the next tick retries."""
        if self.state.stopping:
            return
        # ActorStopped among them, while stopping: the loop is being stopped too.
        with contextlib.suppress(Exception):
            await self._system.ref(ACTOR_KEY, self._factory).ask(Dispatch(), timeout=self._ask_timeout)
