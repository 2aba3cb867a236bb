"""Background work: a loop that runs a round every interval or when woken; a set of side tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, TypeVar

import structlog

log = structlog.get_logger("astro.loop")

T = TypeVar("T")
# How long stop() waits after each cancel before cancelling again.
CANCEL_PATIENCE: Final = 1.0


class LoopStopped(Exception):
    """The loop stopped before the round waited for ended."""


class BackgroundLoop:
    """Runs `work`, one round, every `interval` seconds (counted from the end of the previous round) or at
    once when woken; `interval=None` runs only when woken. A round that raises is logged and the loop
    goes on. A wake that arrives during a round asks for one more round right after it.

    Stopping is the same for every loop: `stop()` cancels until the task is done; `stop(grace=s)` first
    wakes it for one last round (after the one under way) and gives it `s` seconds in all."""

    def __init__(
        self,
        work: Callable[[], Awaitable[object]],
        *,
        interval: float | None,
        name: str,
        first_round_at_start: bool = True,
        failed_event: str = "background_round_failed",
    ) -> None:
        self._work = work
        self._interval = interval
        self.name = name
        self._first_at_start = first_round_at_start
        self._failed_event = failed_event
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_round = False
        self._waiters: list[asyncio.Future[None]] = []
        self.rounds = 0  # rounds ended, failed ones included

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin on the running event loop; a second start while running does nothing."""
        if self.running:
            return
        self._last_round = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Run a round now, or right after the one under way (event-loop thread only)."""
        self._wake.set()

    def round_end(self) -> asyncio.Future[None]:
        """A future done at the end of the round under way, or of the next one when none is, as of this
        call; it fails with LoopStopped if the loop stops first. Callers re-check what they wait for."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self.running:
            waiter.set_exception(LoopStopped(f"{self.name} is not running"))
        else:
            self._waiters.append(waiter)
        return waiter

    async def stop(self, *, grace: float = 0.0) -> None:
        """Stop; with a grace, one last round runs first (bounded by it). Safe to call twice."""
        task, self._task = self._task, None
        if task is None:
            return
        self._last_round = True
        if grace > 0 and not task.done():
            self._wake.set()
            await asyncio.wait({task}, timeout=grace)
        # Cancel until it is done: a cancel that lands as a round ends (or as the wake event is set)
        # must not leave the loop running.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=CANCEL_PATIENCE)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()
        self._release(LoopStopped(f"{self.name} stopped"))

    async def _run(self) -> None:
        try:
            if not self._first_at_start:
                await self._pause()
            while True:
                last = self._last_round
                self._wake.clear()  # from here on, a wake asks for another round after this one
                try:
                    await self._work()
                except Exception:
                    log.exception(self._failed_event, loop=self.name)
                # Not reached when the round is cancelled: its waiters learn that the loop stopped.
                self.rounds += 1
                if self._waiters:
                    self._release(None)
                if last:
                    return
                if self._wake.is_set():
                    continue  # woken during the round: the next one starts at once
                if self._interval is None:
                    await self._wake.wait()  # inline: the live publisher's hot path has no frame to spare
                else:
                    await self._pause()
        finally:
            self._release(LoopStopped(f"{self.name} stopped"))

    async def _pause(self) -> None:
        """Until woken or the interval has passed."""
        if self._wake.is_set():
            return
        if self._interval is None:
            await self._wake.wait()
            return
        if self._interval <= 0:
            await asyncio.sleep(0)  # every event-loop turn, as often as asked
            return
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that arrives as
        # the event is set, and stop() then waited for ever (seen once in CI).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._interval):
                await self._wake.wait()

    def _release(self, error: Exception | None) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


class TaskSet:
    """Tasks started and forgotten by their owner: kept referenced until done, waited for or cancelled
    together (refunds after a booking, a socket's side tasks, gap fills)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Start `coro` as a task on the running loop; it leaves the set when done."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait(self) -> None:
        """Wait until every task, including ones started meanwhile, has ended (errors are theirs)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def cancel(self) -> None:
        """Cancel every task and wait until each has ended."""
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
