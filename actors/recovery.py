"""The recovery worker: finishes whatever a crash, a timeout or an unclear gateway left of money moves.

On start-up and every few seconds, on every node (claims keep them apart), it resolves each payment
attempt left open past its deadline (booked → captured; never booked → released), pays the refunds still
owed, finishes card payments of invoices left pending, and sweeps idempotency records past 24 hours. So
within a minute of the platform running again after any crash, every attempt is final."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Protocol

import structlog

from actors.loop import BackgroundLoop
from actors.payments import Payments
from astro.domain.clock import Clock
from astro.domain.payments import Attempt

log = structlog.get_logger("astro.recovery")

INTERVAL: Final = 2.0  # seconds between rounds
BATCH: Final = 50  # attempts claimed per round
# Attempts of a batch resolved at once. One after another, every attempt the gateway holds nothing for cost
# the Stripe adapter a listing of its recent intents of its own (~1 s on localstripe with a few hundred):
# after a crash that left 21 of them, recovery took 65 s. At once, their finds share listings (Coalesced).
# Bounded below Stripe's test-mode rate limit (25 requests a second).
RESOLVING: Final = 20
# A node's claim on an attempt it is resolving: another node (or this one's next round) may take it
# over after this long, should the node die or the gateway not answer.
LEASE: Final = timedelta(seconds=10)
# Refunds and invoice card payments are left to the request that made them this long before recovery
# pays or finishes them (their gateway calls are idempotent, so overlapping would only cost a call).
SETTLE_AFTER: Final = timedelta(seconds=30)


class IdempotencySweep(Protocol):
    async def sweep(self) -> int: ...


@dataclass(slots=True)
class RecoveryStats:
    rounds: int = 0
    resolved: int = 0
    deferred: int = 0


class RecoveryWorker:
    """One per node; a round at start-up, then every INTERVAL seconds (or at once when woken)."""

    def __init__(
        self,
        *,
        node: str,
        payments: Payments,
        clock: Clock,
        pay_refunds: Callable[[timedelta], Awaitable[int]],
        settle_invoice_payments: Callable[[timedelta], Awaitable[int]],
        idempotency: IdempotencySweep,
        interval: float = INTERVAL,
        wake_waitlists: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self._node = node
        self._payments = payments
        self._clock = clock
        self._pay_refunds = pay_refunds
        self._settle_invoice_payments = settle_invoice_payments
        self._idempotency = idempotency
        # Launches with waiting-list offers past their deadline and no actor to expire them (a restart).
        self._wake_waitlists = wake_waitlists
        self.stats = RecoveryStats()
        self.background = BackgroundLoop(
            self.round, interval=interval, name="payments:recovery", failed_event="payment_recovery_failed"
        )

    def start(self) -> None:
        self.background.start()

    async def stop(self) -> None:
        await self.background.stop()

    def wake(self) -> None:
        self.background.wake()

    async def round(self) -> None:
        """Every attempt past its deadline that it can claim, resolved; then refunds, invoice payments,
        old idempotency records."""
        self.stats.rounds += 1
        gate = asyncio.Semaphore(RESOLVING)

        async def resolved(attempt: Attempt) -> bool:
            async with gate:
                state = await self._payments.resolve(attempt)
            log.info(
                "payment_attempt_resolved", attempt_id=attempt.id, before=attempt.state.value, after=state
            )
            return (
                state is not attempt.state
            )  # unchanged: the gateway did not answer; claimed again after LEASE

        while due := await self._payments.attempts.claim_due(self._node, self._clock.now(), BATCH, LEASE):
            outcomes = await asyncio.gather(*(resolved(attempt) for attempt in due), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):  # the round fails, as it did one attempt at a time
                    raise outcome
            deferred = outcomes.count(False)
            self.stats.resolved += len(due) - deferred
            self.stats.deferred += deferred
            if deferred == len(due):  # the gateway is not answering: try again next round
                break
        await self._pay_refunds(SETTLE_AFTER)
        await self._settle_invoice_payments(SETTLE_AFTER)
        await self._idempotency.sweep()
        if self._wake_waitlists is not None:
            await self._wake_waitlists()
