"""The background loops of the sync worker and job runner stop when told, however busy they are."""

from __future__ import annotations

import asyncio
import contextlib

from actors.sync import _Ticker


class Busy(_Ticker):
    def __init__(self) -> None:
        self._interval = 0.001
        self._task = None
        self._wake = asyncio.Event()
        self.rounds = 0

    async def round(self) -> None:
        self.rounds += 1


async def test_stop_ends_the_loop_even_when_woken_as_it_is_cancelled() -> None:
    # Python 3.11's wait_for can swallow a cancel that arrives as the awaited event is set; the loop
    # must stop anyway, every time.
    stopped = 0
    for attempt in range(300):
        ticker = Busy()
        ticker._begin()

        async def waker(t: Busy = ticker) -> None:
            while True:
                t.wake()
                await asyncio.sleep(0)

        waking = asyncio.get_running_loop().create_task(waker())
        await asyncio.sleep(0.001 * (attempt % 5))
        stopping = asyncio.get_running_loop().create_task(ticker.stop())
        done, _ = await asyncio.wait({stopping}, timeout=2.0)  # wait, never cancel: a hang is the failure
        if not done:  # end it the hard way, so that the failure is reported instead of hanging
            waking.cancel()
            while ticker._task is not None and not ticker._task.done():
                ticker._task.cancel()
                await asyncio.wait({ticker._task}, timeout=0.1)
            await asyncio.wait({stopping}, timeout=1.0)
        assert done and ticker._task is not None and ticker._task.done(), f"stop() hung on attempt {attempt}"
        rounds = ticker.rounds
        await asyncio.sleep(0.005)
        assert ticker.rounds == rounds  # no round after stop
        waking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waking
        stopped += 1
    assert stopped == 300
