"""Background loops (the sync worker's and job runner's among them) stop when told, however busy they are."""

from __future__ import annotations

import asyncio
import contextlib

from actors.loop import BackgroundLoop

INTERVAL = 0.001


class Busy:
    """A round that only counts itself."""

    def __init__(self) -> None:
        self.rounds = 0

    async def __call__(self) -> None:
        self.rounds += 1


async def several_intervals(witness: BackgroundLoop, n: int = 5) -> None:
    """Until a loop with the same interval has ended `n` more rounds."""
    target = witness.rounds + n
    async with asyncio.timeout(5.0):
        while witness.rounds < target:
            await witness.round_end()


async def test_stop_ends_the_loop_even_when_woken_as_it_is_cancelled() -> None:
    # Python 3.11's wait_for can swallow a cancel that arrives as the awaited event is set; the loop
    # must stop anyway, every time.
    witness = BackgroundLoop(Busy(), interval=INTERVAL, name="witness")
    witness.start()
    stopped = 0
    for attempt in range(300):
        busy = Busy()
        ticker = BackgroundLoop(busy, interval=INTERVAL, name="busy")
        ticker.start()
        task = ticker._task

        async def waker(t: BackgroundLoop = ticker) -> None:
            while True:
                t.wake()
                await asyncio.sleep(0)  # a yield: wake it at every event-loop turn

        waking = asyncio.get_running_loop().create_task(waker())
        await several_intervals(witness, attempt % 5)  # stop lands at a different moment each time
        stopping = asyncio.get_running_loop().create_task(ticker.stop())
        done, _ = await asyncio.wait({stopping}, timeout=2.0)  # wait, never cancel: a hang is the failure
        if not done:  # end it the hard way, so that the failure is reported instead of hanging
            waking.cancel()
            while task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            await asyncio.wait({stopping}, timeout=1.0)
        assert done and task is not None and task.done(), f"stop() hung on attempt {attempt}"
        rounds = busy.rounds
        await several_intervals(witness)  # long enough for a loop left running to run again
        assert busy.rounds == rounds  # no round after stop
        waking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waking
        stopped += 1
    await witness.stop()
    assert stopped == 300
