"""Helpers of the Stripe gateway's `find`: one listing shared by concurrent finds, and the payment to tell
when several carry one key."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Generic, TypeVar

from astro.domain.payments import GatewayPayment, GatewayState

T = TypeVar("T")

# When several intents carry one key (a server that ignores idempotency keys, or a key older than Stripe's
# 24 h), the one that took or holds money is the one the saga must know of.
RANK: Final = {
    GatewayState.CAPTURED: 0,
    GatewayState.AUTHORIZED: 1,
    GatewayState.PENDING: 2,
    GatewayState.VOIDED: 3,
    GatewayState.DECLINED: 4,
}


def best_of(payments: Sequence[GatewayPayment]) -> GatewayPayment | None:
    """The payment that matters most of those under one key (money taken, then held), None for none."""
    return min(payments, key=lambda p: RANK[p.state], default=None)


class Coalesced(Generic[T]):
    """Runs `work` for many callers at once. A caller joins the run that starts next, never one already
    under way (it may have passed what the caller looks for): a burst of recovery finds after a crash
    costs one listing of the intents, not one each."""

    def __init__(self, work: Callable[[], Awaitable[T]]) -> None:
        self._work = work
        self._running: asyncio.Task[T] | None = None
        self._next: asyncio.Task[T] | None = None

    async def __call__(self) -> T:
        if self._next is None:
            self._next = asyncio.create_task(self._after(self._running))
            self._next.add_done_callback(_retrieve)
        return await asyncio.shield(self._next)

    async def _after(self, previous: asyncio.Task[T] | None) -> T:
        if previous is not None:
            await asyncio.wait([previous])
        self._running, self._next = self._next, None  # later callers queue the run after this one
        return await self._work()

    async def close(self) -> None:
        for task in (self._next, self._running):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def _retrieve(task: asyncio.Task[T]) -> None:
    """Its error is its callers' (each gets it); read it here too, so none is reported as lost."""
    if not task.cancelled():
        task.exception()
