"""The background-loop helper: rounds on the interval and when woken, failures logged, one stop behaviour;
and the task set."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from actors.loop import BackgroundLoop, LoopStopped, TaskSet

WAIT = 5.0  # seconds before a test gives up on an event; never reached when the code works


class Work:
    """A round that counts itself; it blocks while `gate` is clear and fails while `failures` remain."""

    def __init__(self, *, failures: int = 0) -> None:
        self.started = 0
        self.ended = 0
        self.failures = failures
        self.gate = asyncio.Event()
        self.gate.set()
        self.in_round = asyncio.Event()
        self.cancelled = 0

    async def __call__(self) -> None:
        self.started += 1
        self.in_round.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_round.clear()
        if self.failures:
            self.failures -= 1
            raise RuntimeError("round broke")
        self.ended += 1


async def rounds(loop: BackgroundLoop, n: int) -> None:
    """Until the loop has ended `n` rounds in all."""
    async with asyncio.timeout(WAIT):
        while loop.rounds < n:
            await loop.round_end()


async def test_rounds_run_on_the_interval_without_being_woken() -> None:
    work = Work()
    loop = BackgroundLoop(work, interval=0.001, name="t")
    loop.start()
    await rounds(loop, 3)
    assert work.ended >= 3 and loop.rounds >= 3
    await loop.stop()


async def test_a_wake_runs_a_round_at_once_and_only_then() -> None:
    work = Work()
    loop = BackgroundLoop(work, interval=None, name="t", first_round_at_start=False)
    loop.start()
    waiting = loop.round_end()
    await asyncio.sleep(0)  # one event-loop turn for the loop's task
    assert work.started == 0 and not waiting.done()  # no interval, not woken: nothing runs
    loop.wake()
    async with asyncio.timeout(WAIT):
        await waiting
    assert (work.started, work.ended, loop.rounds) == (1, 1, 1)
    await loop.stop()


async def test_a_wake_during_a_round_asks_for_one_more_right_after() -> None:
    work = Work()
    work.gate.clear()
    loop = BackgroundLoop(work, interval=3600, name="t")
    loop.start()
    async with asyncio.timeout(WAIT):
        await work.in_round.wait()
    loop.wake()
    loop.wake()  # two wakes during one round ask for one more round, not two
    work.gate.set()
    await rounds(loop, 2)
    assert work.ended == 2
    waiting = loop.round_end()
    await asyncio.sleep(0)  # one event-loop turn for the loop's task
    assert work.started == 2 and not waiting.done()  # then it waits for its hour
    await loop.stop()
    with pytest.raises(LoopStopped):
        await waiting


async def test_a_failing_round_is_logged_and_the_loop_goes_on() -> None:
    work = Work(failures=2)
    loop = BackgroundLoop(work, interval=0.001, name="flaky", failed_event="flaky_round_failed")
    with capture_logs() as logs:
        loop.start()
        await rounds(loop, 3)
    await loop.stop()
    failed = [e for e in logs if e["event"] == "flaky_round_failed"]
    assert len(failed) == 2 and all(e["loop"] == "flaky" and e["log_level"] == "error" for e in failed)
    assert work.ended >= 1 and loop.rounds >= 3


async def test_stop_while_a_round_runs_cancels_it_and_ends_the_loop() -> None:
    work = Work()
    work.gate.clear()  # the round never ends by itself
    loop = BackgroundLoop(work, interval=0.001, name="t")
    loop.start()
    async with asyncio.timeout(WAIT):
        await work.in_round.wait()
    waiting = loop.round_end()
    async with asyncio.timeout(WAIT):
        await loop.stop()
    assert not loop.running and work.cancelled == 1 and work.ended == 0 and loop.rounds == 0
    with pytest.raises(LoopStopped):  # the round waited for never ended: its waiter is told
        await waiting


async def test_stop_while_waiting_ends_the_loop_without_another_round() -> None:
    work = Work()
    loop = BackgroundLoop(work, interval=3600, name="t")
    loop.start()
    await rounds(loop, 1)
    async with asyncio.timeout(WAIT):
        await loop.stop()
    assert not loop.running and (work.started, work.cancelled) == (1, 0)


async def test_stop_twice_and_stop_before_start_do_nothing_more() -> None:
    work = Work()
    loop = BackgroundLoop(work, interval=3600, name="t")
    await loop.stop()  # never started
    loop.start()
    await rounds(loop, 1)
    await loop.stop()
    await loop.stop()
    assert not loop.running and work.started == 1
    with pytest.raises(LoopStopped):
        await loop.round_end()


async def test_stop_with_grace_runs_one_last_round_after_the_one_under_way() -> None:
    work = Work()
    work.gate.clear()
    loop = BackgroundLoop(work, interval=3600, name="t", first_round_at_start=False)
    loop.start()
    loop.wake()
    async with asyncio.timeout(WAIT):
        await work.in_round.wait()
    stopping = asyncio.ensure_future(loop.stop(grace=WAIT))
    await asyncio.sleep(0)  # one turn: stop() has asked for the last round
    work.gate.set()  # the round under way ends; the last one follows, then the loop ends
    async with asyncio.timeout(WAIT):
        await stopping
    assert (work.started, work.ended, work.cancelled) == (2, 2, 0) and not loop.running


async def test_stop_with_grace_while_waiting_runs_the_last_round_at_once() -> None:
    work = Work()
    loop = BackgroundLoop(work, interval=3600, name="t", first_round_at_start=False)
    loop.start()
    async with asyncio.timeout(WAIT):
        await loop.stop(grace=WAIT)
    assert (work.started, work.ended) == (1, 1) and not loop.running


async def test_a_last_round_past_its_grace_is_cancelled() -> None:
    work = Work()
    work.gate.clear()
    loop = BackgroundLoop(work, interval=3600, name="t", first_round_at_start=False)
    loop.start()
    async with asyncio.timeout(WAIT):
        await loop.stop(grace=0.01)
    assert (work.started, work.ended, work.cancelled) == (1, 0, 1) and not loop.running


async def test_a_zero_interval_runs_a_round_every_event_loop_turn() -> None:
    work = Work()
    loop = BackgroundLoop(work, interval=0.0, name="t")
    loop.start()
    await rounds(loop, 20)
    await loop.stop()
    assert work.ended >= 20


async def test_the_task_set_keeps_tasks_until_done_and_waits_for_late_ones() -> None:
    tasks = TaskSet()
    gate = asyncio.Event()
    done: list[str] = []

    async def late() -> None:
        done.append("late")

    async def first() -> None:
        await gate.wait()
        tasks.spawn(late())  # started while wait() is waiting: waited for too
        done.append("first")

    async def broken() -> None:
        raise RuntimeError("its own business")

    tasks.spawn(first())
    tasks.spawn(broken())
    assert len(tasks) == 2
    waiting = asyncio.ensure_future(tasks.wait())
    await asyncio.sleep(0)  # one turn: wait() is waiting before `first` starts another task
    gate.set()
    async with asyncio.timeout(WAIT):
        await waiting
    assert done == ["first", "late"] and len(tasks) == 0


async def test_the_task_set_cancels_every_task_and_waits_for_them() -> None:
    tasks = TaskSet()
    cleaned: list[int] = []

    async def forever(n: int) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(n)

    spawned = [tasks.spawn(forever(n)) for n in range(3)]
    await asyncio.sleep(0)  # one turn: each task is inside its try
    async with asyncio.timeout(WAIT):
        await tasks.cancel()
    assert sorted(cleaned) == [0, 1, 2] and all(t.cancelled() for t in spawned) and len(tasks) == 0


async def test_group_writer_writes_what_arrives_together_in_one_write_and_answers_each() -> None:
    from astro.services.batching import GroupWriter

    writes: list[list[int]] = []
    release = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        if len(writes) == 1:
            await release.wait()  # the first write is slow: everything submitted meanwhile waits for it
        return [i * 10 for i in items]

    writer: GroupWriter[int, int] = GroupWriter(write)
    first = asyncio.ensure_future(writer.submit(1))
    await asyncio.sleep(0)  # one turn: the first write starts
    rest = [asyncio.ensure_future(writer.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    assert writes == [[1]]
    release.set()
    assert [await first, *[await r for r in rest]] == [10, 20, 30, 40]
    assert writes == [[1], [2, 3, 4]]


async def test_group_writer_gives_each_submitter_of_a_failed_write_its_error() -> None:
    from astro.services.batching import GroupWriter

    async def write(items: list[int]) -> list[int]:
        raise OSError("disk gone")

    writer: GroupWriter[int, int] = GroupWriter(write)
    results = await asyncio.gather(*(writer.submit(i) for i in range(3)), return_exceptions=True)
    assert [type(r) for r in results] == [OSError, OSError, OSError]
