"""The actor runtime: batching, refusals, supervision, passivation and shutdown, on real asyncio."""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from structlog.testing import capture_logs

from actors.runtime import (
    Actor,
    ActorCrashed,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    Envelope,
    MailboxFull,
)
from astro.domain.errors import Conflict

KEY = "launch_1"


@dataclass(frozen=True)
class Echo:
    value: object


@dataclass(frozen=True)
class Refuse:
    pass


@dataclass(frozen=True)
class Crash:
    pass


@dataclass(frozen=True)
class Wait:
    """Block on the journal's gate, then reply, refuse or crash."""

    then: str = "reply"


@dataclass
class Journal:
    """What every instance of a probe did; shared across restarts and passivations."""

    instances: int = 0
    starts: int = 0
    stops: int = 0
    handled: list[object] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    failing_starts: int = 0
    start_gate: asyncio.Event | None = None
    willing: bool = True
    passivation_checks: int = 0
    checked: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)


class Probe(Actor):
    """An actor that records everything into its journal."""

    def __init__(self, journal: Journal) -> None:
        journal.instances += 1
        self.journal = journal

    async def on_start(self) -> None:
        self.journal.starts += 1
        if self.journal.start_gate is not None:
            await self.journal.start_gate.wait()
        if self.journal.failing_starts:
            self.journal.failing_starts -= 1
            raise RuntimeError("database down")

    async def on_stop(self) -> None:
        self.journal.stops += 1

    async def receive_batch(self, batch: list[Envelope]) -> None:
        self.journal.batches.append(len(batch))
        await super().receive_batch(batch)

    async def receive(self, message: object) -> Any:
        match message:
            case Echo(value):
                self.journal.handled.append(value)
                return value
            case Refuse():
                raise Conflict("sold out", code="sold_out")
            case Crash():
                raise RuntimeError("boom")
            case Wait(then):
                self.journal.entered.set()
                await self.journal.gate.wait()
                if then == "crash":
                    raise RuntimeError("boom after wait")
                if then == "refuse":
                    raise Conflict("too late", code="sold_out")
                return "released"
        raise AssertionError(message)

    def can_passivate(self) -> bool:
        self.journal.passivation_checks += 1
        self.journal.checked.set()
        return self.journal.willing


class Events:
    """on_event hook that tests can await."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []
        self._changed = asyncio.Event()

    def __call__(self, event: str, key: str, info: dict[str, Any]) -> None:
        self.seen.append((event, key, info))
        self._changed.set()

    def names(self) -> list[str]:
        return [event for event, _, _ in self.seen]

    async def wait_for(self, name: str, count: int = 1) -> None:
        async with asyncio.timeout(2):
            while self.names().count(name) < count:
                self._changed.clear()
                await self._changed.wait()


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until condition holds (runtime state nothing signals); fail after 2 s."""
    async with asyncio.timeout(2):
        while not condition():
            await asyncio.sleep(0)  # one turn of the loop: the tasks that make it true run


MakeSystem = Callable[..., Awaitable[tuple[ActorSystem, Events]]]


@pytest.fixture
async def make_system() -> AsyncIterator[MakeSystem]:
    systems: list[ActorSystem] = []

    async def make(**options: Any) -> tuple[ActorSystem, Events]:
        events = Events()
        system = ActorSystem(on_event=events, **options)
        await system.start()
        systems.append(system)
        return system, events

    yield make
    for system in systems:
        await system.stop(timeout=1)


def probe(journal: Journal) -> Callable[[], Actor]:
    return lambda: Probe(journal)


async def test_ask_returns_the_reply(make_system: MakeSystem) -> None:
    system, _ = await make_system()
    ref = system.ref(KEY, probe(Journal()))
    assert await ref.ask(Echo(42)) == 42
    assert ref.key == KEY
    assert system.active == 1


async def test_tells_and_asks_are_handled_in_send_order(make_system: MakeSystem) -> None:
    system, _ = await make_system()
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    ref.tell(Echo(1))
    ref.tell(Echo(2))
    assert await ref.ask(Echo(3)) == 3
    ref.tell(Echo(4))
    assert await ref.ask(Echo(5)) == 5
    assert journal.handled == [1, 2, 3, 4, 5]


async def test_messages_queued_while_busy_arrive_as_one_batch(make_system: MakeSystem) -> None:
    system, _ = await make_system()
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    blocked = asyncio.create_task(ref.ask(Wait()))
    await journal.entered.wait()
    for i in range(49):
        ref.tell(Echo(i))
    last = asyncio.create_task(ref.ask(Echo(49)))
    await until(lambda: sum(system.mailbox_depths().values()) == 50)  # the ask reached the mailbox
    assert system.mailbox_depths() == {KEY: 50}
    journal.gate.set()
    assert await blocked == "released"
    assert await last == 49
    assert journal.batches == [1, 50]
    assert journal.handled == list(range(50))


async def test_batch_size_is_capped_by_max_batch(make_system: MakeSystem) -> None:
    class SmallBatches(Probe):
        max_batch: ClassVar[int] = 8

    system, _ = await make_system()
    journal = Journal()
    ref = system.ref(KEY, lambda: SmallBatches(journal))
    blocked = asyncio.create_task(ref.ask(Wait()))
    await journal.entered.wait()
    for i in range(19):
        ref.tell(Echo(i))
    journal.gate.set()
    await blocked
    assert await ref.ask(Echo("after")) == "after"
    assert journal.batches == [1, 8, 8, 3, 1]


async def test_domain_refusal_reaches_only_its_asker_and_the_actor_goes_on(make_system: MakeSystem) -> None:
    system, events = await make_system()
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    blocked = asyncio.create_task(ref.ask(Wait()))
    await journal.entered.wait()
    # All three land in one batch, so the refusal must not spill onto its neighbours.
    before, refused, after = (
        asyncio.create_task(ref.ask(Echo("a"))),
        asyncio.create_task(ref.ask(Refuse())),
        asyncio.create_task(ref.ask(Echo("b"))),
    )
    await until(lambda: system.mailbox_depths() == {KEY: 3})
    journal.gate.set()
    await blocked
    assert await before == "a"
    with pytest.raises(Conflict) as refusal:
        await refused
    assert refusal.value.code == "sold_out"
    assert await after == "b"
    assert journal.batches == [1, 3]
    assert (journal.instances, journal.starts) == (1, 1)
    assert "crashed" not in events.names()


async def test_crash_fails_that_request_and_a_restarted_instance_handles_the_next(
    make_system: MakeSystem,
) -> None:
    system, events = await make_system()
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    with capture_logs() as logs, pytest.raises(ActorCrashed) as crash:
        await ref.ask(Crash())
    assert KEY in str(crash.value)
    assert "RuntimeError: boom" in str(crash.value)
    assert isinstance(crash.value.__cause__, RuntimeError)
    assert await ref.ask(Echo("next")) == "next"
    assert (journal.instances, journal.starts, journal.stops) == (2, 2, 0)
    assert [entry["event"] for entry in logs] == ["actor_crashed"]
    assert logs[0]["key"] == KEY
    assert logs[0]["exc_info"] is crash.value.__cause__
    assert events.names() == ["started", "crashed", "restarted"]


async def test_messages_queued_during_a_crash_are_still_handled(make_system: MakeSystem) -> None:
    system, _ = await make_system()
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    crashing = asyncio.create_task(ref.ask(Wait(then="crash")))
    await journal.entered.wait()
    ref.tell(Echo(1))
    queued = asyncio.create_task(ref.ask(Echo(2)))
    await until(lambda: system.mailbox_depths() == {KEY: 2})
    journal.gate.set()
    with pytest.raises(ActorCrashed):
        await crashing
    assert await queued == 2
    assert journal.handled == [1, 2]
    assert journal.instances == 2


async def test_gives_up_after_max_restarts_and_a_later_ref_starts_afresh(make_system: MakeSystem) -> None:
    system, events = await make_system(max_restarts=2, restart_window=60.0)
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    for _ in range(2):
        with pytest.raises(ActorCrashed):
            await ref.ask(Crash())
    crashing = asyncio.create_task(ref.ask(Wait(then="crash")))
    await journal.entered.wait()
    queued = asyncio.create_task(ref.ask(Echo("queued")))
    await until(lambda: system.mailbox_depths() == {KEY: 1})
    journal.gate.set()
    with pytest.raises(ActorCrashed):
        await crashing
    with pytest.raises(ActorStopped, match="gave up"):
        await queued
    assert events.names() == ["started", "crashed", "restarted", "crashed", "restarted", "crashed", "gave_up"]
    assert system.active == 0
    assert system.get(KEY) is None
    assert journal.handled == []
    assert await system.ref(KEY, probe(journal)).ask(Echo("fresh")) == "fresh"
    assert journal.instances == 4


async def test_messages_sent_during_on_start_are_handled_after_it(make_system: MakeSystem) -> None:
    system, _ = await make_system()
    loaded = asyncio.Event()
    journal = Journal(start_gate=loaded)
    ref = system.ref(KEY, probe(journal))
    ref.tell(Echo(1))
    second = asyncio.create_task(ref.ask(Echo(2)))
    await until(lambda: journal.starts == 1 and sum(system.mailbox_depths().values()) == 2)
    assert (journal.starts, system.mailbox_depths()) == (1, {KEY: 2})
    loaded.set()
    assert await second == 2
    assert journal.batches == [2]


async def test_failed_start_fails_queued_asks_and_a_later_ref_retries(make_system: MakeSystem) -> None:
    system, events = await make_system()
    loaded = asyncio.Event()
    journal = Journal(failing_starts=1, start_gate=loaded)
    ref = system.ref(KEY, probe(journal))
    first = asyncio.create_task(ref.ask(Echo(1)))
    second = asyncio.create_task(ref.ask(Echo(2)))
    await until(lambda: system.mailbox_depths() == {KEY: 2})
    loaded.set()
    for ask in (first, second):
        with pytest.raises(ActorStopped, match="start failed: RuntimeError: database down"):
            await ask
    assert events.names() == ["start_failed"]
    assert system.active == 0
    assert await system.ref(KEY, probe(journal)).ask(Echo(3)) == 3
    assert journal.starts == 2
    assert journal.stops == 0


async def test_ask_timeout_raises_and_a_late_reply_is_dropped_quietly(make_system: MakeSystem) -> None:
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: loop_errors.append(context))
    system, _ = await make_system()
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    for then in ("reply", "refuse"):
        journal.entered.clear()
        journal.gate.clear()
        with pytest.raises(AskTimeout):
            await ref.ask(Wait(then=then), timeout=0.01)
        await journal.entered.wait()
        journal.gate.set()
        assert await ref.ask(Echo(then)) == then
    gc.collect()  # an unretrieved exception on an abandoned future would be reported now
    assert loop_errors == []
    assert journal.instances == 1


async def test_full_mailbox_raises_mailbox_full(make_system: MakeSystem) -> None:
    class Small(Probe):
        mailbox_size: ClassVar[int] = 3

    system, _ = await make_system()
    journal = Journal()
    ref = system.ref(KEY, lambda: Small(journal))
    blocked = asyncio.create_task(ref.ask(Wait()))
    await journal.entered.wait()
    for i in range(3):
        ref.tell(Echo(i))
    with pytest.raises(MailboxFull):
        ref.tell(Echo(3))
    with pytest.raises(MailboxFull):
        await ref.ask(Echo(4))
    journal.gate.set()
    await blocked
    assert await ref.ask(Echo(5)) == 5
    assert journal.handled == [0, 1, 2, 5]


async def test_idle_actor_is_passivated_and_the_next_ref_gets_a_new_instance(make_system: MakeSystem) -> None:
    system, events = await make_system(passivate_after=0.05, reap_interval=0.01)
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    assert await ref.ask(Echo(1)) == 1
    await events.wait_for("passivated")
    assert journal.stops == 1
    assert system.active == 0
    assert system.get(KEY) is None
    assert await ref.ask(Echo(2)) == 2  # a ref held from before still works
    assert (journal.instances, journal.starts) == (2, 2)
    assert system.active == 1


async def test_actor_that_cannot_passivate_stays_alive(make_system: MakeSystem) -> None:
    system, events = await make_system(passivate_after=0.01, reap_interval=0.005)
    journal = Journal(willing=False)
    ref = system.ref(KEY, probe(journal))
    await ref.ask(Echo(1))
    async with asyncio.timeout(2):  # the reaper found it idle long enough three times, and it said no
        while journal.passivation_checks < 3:
            journal.checked.clear()
            await journal.checked.wait()
    assert system.active == 1
    assert journal.stops == 0
    journal.willing = True
    await events.wait_for("passivated")
    assert system.active == 0


async def test_passivate_idle_retires_only_actors_idle_that_long_and_willing(make_system: MakeSystem) -> None:
    now = 0.0
    system, events = await make_system(passivate_after=3600, reap_interval=3600, clock=lambda: now)
    quiet, busy, stubborn = Journal(), Journal(), Journal(willing=False)
    quiet_ref, busy_ref = system.ref("quiet", probe(quiet)), system.ref("busy", probe(busy))
    stubborn_ref = system.ref("stubborn", probe(stubborn))
    for ref in (quiet_ref, busy_ref, stubborn_ref):
        await ref.ask(Echo(1))
    now = 0.2
    await busy_ref.ask(Echo(2))  # busy was used just now
    assert system.passivate_idle(0.1) == 1  # quiet only: busy is too fresh, stubborn unwilling
    await events.wait_for("passivated")
    assert (quiet.stops, busy.stops, stubborn.stops) == (1, 0, 0)
    assert system.get("quiet") is None and system.active == 2
    assert system.passivate_idle(0) == 1  # now busy too; stubborn still refuses
    assert system.active == 1 and await quiet_ref.ask(Echo(3)) == 3


class Counter(Actor):
    """Counts messages; the count lives in a "database" loaded on start and saved on stop."""

    def __init__(self, db: dict[str, int]) -> None:
        self.db = db
        self.count = 0

    async def on_start(self) -> None:
        await asyncio.sleep(0)  # a database round trip
        self.count = self.db["count"]

    async def on_stop(self) -> None:
        for _ in range(3):  # saving takes longer than loading
            await asyncio.sleep(0)
        self.db["count"] = self.count

    async def receive(self, message: object) -> Any:
        self.count += 1
        return message


async def test_messages_racing_passivation_are_never_lost(make_system: MakeSystem) -> None:
    # Passivate anything idle at every loop iteration: every gap between asks is a race.
    system, events = await make_system(passivate_after=0.0, reap_interval=0.0)
    db = {"count": 0}
    held = system.ref(KEY, lambda: Counter(db))
    tells = 0

    async def client(n: int) -> list[object]:
        nonlocal tells
        jitter = random.Random(n)  # seeded: a failure replays the same interleaving
        replies = []
        for i in range(50):
            for _ in range(jitter.randrange(4)):
                await asyncio.sleep(0)  # yields are the interleaving under test, not a wait
            if jitter.random() < 0.3:
                held.tell(("tell", n, i))
                tells += 1
            replies.append(await held.ask((n, i), timeout=2))
        return replies

    results = await asyncio.gather(*(client(n) for n in range(20)))
    assert results == [[(n, i) for i in range(50)] for n in range(20)]
    assert events.names().count("passivated") > 10
    await system.stop()
    # The successor loads only after its predecessor saved, so no increment is lost either.
    assert db["count"] == 1000 + tells


async def test_system_stop_fails_queued_asks_and_then_refuses_messages(make_system: MakeSystem) -> None:
    system, events = await make_system()
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    blocked = asyncio.create_task(ref.ask(Wait()))
    await journal.entered.wait()
    queued = asyncio.create_task(ref.ask(Echo(1)))
    await until(lambda: system.mailbox_depths() == {KEY: 1})
    stopping = asyncio.create_task(system.stop())
    await until(lambda: system.active == 0)  # the stop is under way: the actor left the registry
    journal.gate.set()  # the batch being handled still finishes
    await stopping
    assert await blocked == "released"
    with pytest.raises(ActorStopped, match="system stopping"):
        await queued
    assert journal.stops == 1
    assert journal.handled == []
    assert system.active == 0
    assert events.names() == ["started", "stopped"]
    with pytest.raises(ActorStopped):
        ref.tell(Echo(2))
    with pytest.raises(ActorStopped):
        await ref.ask(Echo(3))
    with pytest.raises(ActorStopped):
        system.ref("launch_2", probe(journal))


async def test_system_stop_cancels_an_actor_that_overruns_the_timeout(make_system: MakeSystem) -> None:
    system, _ = await make_system()
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    stuck = asyncio.create_task(ref.ask(Wait()))
    await journal.entered.wait()
    await system.stop(timeout=0.01)
    with pytest.raises(ActorStopped):
        await stuck
    assert system.active == 0


async def test_stop_actor_runs_on_stop_and_a_later_message_spawns_afresh(make_system: MakeSystem) -> None:
    system, events = await make_system()
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    await ref.ask(Echo(1))
    await system.stop_actor(KEY)
    assert journal.stops == 1
    assert system.get(KEY) is None
    assert await ref.ask(Echo(2)) == 2
    assert journal.instances == 2
    assert [(name, key) for name, key, _ in events.seen] == [
        ("started", KEY),
        ("stopped", KEY),
        ("started", KEY),
    ]


async def test_on_event_receives_the_lifecycle_events(make_system: MakeSystem) -> None:
    system, events = await make_system(passivate_after=0.01, reap_interval=0.005, max_restarts=0)
    ok, crashing, broken = Journal(), Journal(), Journal(failing_starts=1)
    await system.ref("ok", probe(ok)).ask(Echo(1))
    with pytest.raises(ActorCrashed):
        await system.ref("crashing", probe(crashing)).ask(Crash())
    with pytest.raises(ActorStopped):
        await system.ref("broken", probe(broken)).ask(Echo(1))
    await events.wait_for("passivated")
    assert [(name, key) for name, key, _ in events.seen] == [
        ("started", "ok"),
        ("started", "crashing"),
        ("crashed", "crashing"),
        ("gave_up", "crashing"),
        ("start_failed", "broken"),
        ("passivated", "ok"),
    ]
    infos = {name: info for name, _, info in events.seen}
    assert infos["crashed"]["error"] == "RuntimeError: boom"
    assert infos["start_failed"]["error"] == "RuntimeError: database down"


async def test_a_failing_event_hook_does_not_break_the_actor() -> None:
    def hook(event: str, key: str, info: dict[str, Any]) -> None:
        raise ValueError("metrics down")

    system = ActorSystem(on_event=hook)
    with capture_logs() as logs:
        assert await system.ref(KEY, probe(Journal())).ask(Echo(1)) == 1
        await system.stop()
    assert {entry["event"] for entry in logs} == {"actor_event_hook_failed"}


async def test_an_idle_actor_costs_under_5_kb() -> None:
    class Idle(Actor):
        pass

    system = ActorSystem()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(5_000):
            system.ref(f"launch_{i}", Idle)
        await until(lambda: system.idle == 5_000)  # every task reaches its first wait for mail
        per_actor = (tracemalloc.get_traced_memory()[0] - before) / 5_000
    finally:
        tracemalloc.stop()
        await system.stop()
    assert per_actor < 5_000


def actor_tasks() -> list[str]:
    return sorted(t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("actor:"))


async def an_idle_actor(make_system: MakeSystem) -> tuple[Any, Any, Journal, Any]:
    """(system, events, journal, ref) of an actor that handled Echo(1) and is idle now."""
    system, events = await make_system()
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    assert await ref.ask(Echo(1)) == 1
    await until(lambda: system.idle == 1)
    return system, events, journal, ref


async def test_an_idle_actor_holds_no_task_and_mail_after_idleness_is_handled_in_order(
    make_system: MakeSystem,
) -> None:
    system, events, journal, ref = await an_idle_actor(make_system)
    assert actor_tasks() == []  # idle: its state stays, its task ended
    assert system.mailbox_depths() == {KEY: 0}
    for i in range(2, 6):
        ref.tell(Echo(i))  # the first starts a task; the others queue behind it
    assert actor_tasks() == [f"actor:{KEY}"]
    assert await ref.ask(Echo(6)) == 6
    await until(lambda: system.idle == 1)
    assert actor_tasks() == []
    assert journal.handled == [1, 2, 3, 4, 5, 6]
    assert (journal.instances, journal.starts, events.names()) == (1, 1, ["started"])


async def test_mail_sent_while_a_batch_is_handled_is_handled_by_the_same_task_in_order(
    make_system: MakeSystem,
) -> None:
    system, _ = await make_system()
    journal = Journal()
    ref = system.ref(KEY, probe(journal))
    blocked = asyncio.create_task(ref.ask(Wait()))
    await journal.entered.wait()
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == f"actor:{KEY}"]
    later = [asyncio.create_task(ref.ask(Echo(i))) for i in range(3)]
    await until(lambda: system.mailbox_depths() == {KEY: 3})
    journal.gate.set()
    assert [await blocked, *[await t for t in later]] == ["released", 0, 1, 2]
    await until(lambda: system.idle == 1)
    assert task.done() and actor_tasks() == []
    assert journal.batches == [1, 3]


async def test_an_idle_actor_is_passivated_and_stopped_without_a_task_of_its_own(
    make_system: MakeSystem,
) -> None:
    system, events, journal, ref = await an_idle_actor(make_system)
    assert system.passivate_idle(0) == 1
    assert (system.active, system.stopping) == (0, 1)  # a task runs on_stop
    await events.wait_for("passivated")
    await until(lambda: system.stopping == 0)
    assert (journal.stops, actor_tasks()) == (1, [])
    assert await ref.ask(Echo(2)) == 2  # a fresh instance, started after the old one's on_stop
    await until(lambda: system.idle == 1)
    await system.stop_actor(KEY)
    assert (journal.starts, journal.stops, system.active, actor_tasks()) == (2, 2, 0, [])


async def test_an_actor_does_not_keep_the_context_of_the_request_that_spawned_it() -> None:
    import contextvars

    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")

    class Peek(Actor):
        async def receive(self, message: object) -> Any:
            return request_id.get()

    system = ActorSystem()
    await system.start()
    try:
        request_id.set("first-request")
        ref = system.ref("peek", Peek)
        assert await ref.ask("what is my request?") == "none"
    finally:
        await system.stop()
