"""Actor runtime: a bounded mailbox per actor drained in batches by one task at a time, with supervision.

An idle actor holds neither a task nor a mailbox (100,000 idle launch actors are common: each costs its
state and a registry entry). The first message creates the mailbox and a task that drains it in order;
the task ends once the mailbox is empty, and the next message starts another.

The actor base class, its envelope and the runtime's errors are in actors/actor.py."""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from actors.actor import (
    Actor,
    ActorCrashed,
    ActorError,
    ActorStopped,
    AskTimeout,
    Envelope,
    MailboxFull,
)
from actors.loop import BackgroundLoop
from astro.domain.errors import DomainError

log = structlog.get_logger("astro.actors")

__all__ = [
    "Actor",
    "ActorCrashed",
    "ActorError",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "Envelope",
    "MailboxFull",
]

EventHook = Callable[[str, str, dict[str, Any]], None]


class _Cell:
    """Runtime state of one actor incarnation chain: mailbox, task and current instance.

    `task` runs while there is something to do (start, mail, stop) and is None while the actor is idle;
    `mailbox` is None while empty. At most one task per cell, so messages are handled one at a time."""

    __slots__ = ("actor", "crashes", "factory", "key", "limit", "mailbox", "started", "stop_reason", "task")

    def __init__(self, key: str, factory: Callable[[], Actor], actor: Actor) -> None:
        self.key = key
        self.factory = factory
        self.actor = actor
        self.limit = actor.mailbox_size
        self.mailbox: deque[Envelope] | None = None
        self.stop_reason: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.started = False  # on_start of the current instance succeeded
        self.crashes: list[float] | None = None  # times of the recent crashes (the restart window)

    @property
    def queued(self) -> int:
        return 0 if self.mailbox is None else len(self.mailbox)


def _consume(fut: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned reply's exception so asyncio does not warn about it."""
    if not fut.cancelled():
        fut.exception()


def _fail(
    envelopes: list[Envelope] | deque[Envelope],
    kind: type[ActorError],
    text: str,
    cause: BaseException | None = None,
) -> None:
    """Fail every unanswered ask among envelopes; tells have nobody to tell."""
    for env in envelopes:
        if env.reply is not None and not env.reply.done():
            error = kind(text)
            error.__cause__ = cause
            env.reply.set_exception(error)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class ActorRef:
    """Handle to the actor for a key; resolved on every send, so it outlives passivation and restarts."""

    __slots__ = ("_factory", "_system", "key")

    def __init__(self, system: ActorSystem, key: str, factory: Callable[[], Actor]) -> None:
        self._system = system
        self.key = key
        self._factory = factory

    def __repr__(self) -> str:
        return f"ActorRef({self.key!r})"

    def tell(self, message: object) -> None:
        """Queue message without waiting for it to be handled."""
        self._system._deliver(self.key, self._factory, Envelope(message, None))

    async def ask(self, message: object, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Send message and return the reply, or raise the refusal or a runtime error."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._system._deliver(self.key, self._factory, Envelope(message, fut))
        try:
            # asyncio.wait leaves fut alone on timeout: the actor may still answer, nobody listens.
            await asyncio.wait((fut,), timeout=timeout)
            if not fut.done():
                raise AskTimeout(f"actor {self.key!r} did not reply within {timeout} s")
            return fut.result()
        finally:
            if not fut.done():
                fut.add_done_callback(_consume)


class ActorSystem:
    """Registry and supervisor of actors: spawns on first use, restarts on crash, passivates when idle."""

    def __init__(
        self,
        *,
        passivate_after: float = 300.0,
        reap_interval: float = 10.0,
        max_restarts: int = 5,
        restart_window: float = 60.0,
        on_event: EventHook | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._passivate_after = passivate_after
        # Monotonic seconds for idle times and the crash window: the loop's, unless a test passes its own.
        self._clock = clock
        self._max_restarts = max_restarts
        self._restart_window = restart_window
        self._on_event = on_event
        self._cells: dict[str, _Cell] = {}
        # Cells leaving the registry whose task has not ended; a successor waits for them.
        self._retiring: dict[str, _Cell] = {}
        self._reaper = BackgroundLoop(
            self._reap, interval=reap_interval, name="actors:reaper", first_round_at_start=False
        )
        self._closed = False

    @property
    def active(self) -> int:
        """Number of live actors."""
        return len(self._cells)

    @property
    def idle(self) -> int:
        """Number of live actors started with no mail queued: no task runs for them (what tests await)."""
        return sum(1 for cell in self._cells.values() if cell.task is None)

    def mailbox_depths(self) -> dict[str, int]:
        """Queued messages per live actor."""
        return {key: cell.queued for key, cell in self._cells.items()}

    async def start(self) -> None:
        """Start the passivation reaper."""
        if self._closed:
            raise ActorStopped("actor system stopped")
        self._reaper.start()

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Stop every actor after its current batch, failing queued asks; cancel stragglers after timeout."""
        # Mark everything before the first await, so no actor starts another batch meanwhile.
        self._closed = True
        cells = [*self._cells.values(), *self._retiring.values()]
        for cell in cells:
            self._retire(cell, "system stopping")
        await self._reaper.stop()
        tasks = {cell.task for cell in cells if cell.task is not None}
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def ref(self, key: str, factory: Callable[[], Actor]) -> ActorRef:
        """Return a ref to the actor for key, spawning it with factory() if none is running."""
        if self._closed:
            raise ActorStopped(f"actor {key!r}: actor system stopped")
        if key not in self._cells:
            self._spawn(key, factory)
        return ActorRef(self, key, factory)

    @property
    def stopping(self) -> int:
        """Actors out of the registry whose stop (on_stop) has not finished yet."""
        return len(self._retiring)

    def get(self, key: str) -> ActorRef | None:
        """Return a ref to the running actor for key, or None."""
        cell = self._cells.get(key)
        return None if cell is None else ActorRef(self, key, cell.factory)

    async def stop_actor(self, key: str) -> None:
        """Stop the actor for key after its current batch and wait until on_stop has run."""
        cell = self._cells.get(key)
        if cell is None:
            return
        self._retire(cell, "stopped")
        if cell.task is not None:
            await asyncio.wait((cell.task,))

    def _deliver(self, key: str, factory: Callable[[], Actor], env: Envelope) -> None:
        # Synchronous from lookup to append: the reaper cannot retire the cell in between, so a
        # message lands either in a live mailbox or in a fresh actor's, never in a dying one.
        if self._closed:
            raise ActorStopped(f"actor {key!r}: actor system stopped")
        cell = self._cells.get(key)
        if cell is None:
            cell = self._spawn(key, factory)
        mailbox = cell.mailbox
        if mailbox is None:
            cell.mailbox = mailbox = deque()
        elif len(mailbox) >= cell.limit:
            raise MailboxFull(f"actor {key!r}: mailbox full ({cell.limit} messages)")
        mailbox.append(env)
        if cell.task is None:
            self._run_task(cell, None)

    def _spawn(self, key: str, factory: Callable[[], Actor]) -> _Cell:
        cell = _Cell(key, factory, factory())
        previous = self._retiring.get(key)
        self._cells[key] = cell
        self._run_task(cell, None if previous is None else previous.task)
        return cell

    def _run_task(self, cell: _Cell, previous: asyncio.Task[None] | None) -> None:
        """Start the cell's task: it starts the actor if need be, drains the mailbox, stops if asked."""
        # An empty context: the actor serves many requests, so it must not keep the request id (or any
        # other context) of the request that happened to start its task.
        cell.task = asyncio.get_running_loop().create_task(
            self._run(cell, previous), name=f"actor:{cell.key}", context=contextvars.Context()
        )

    def _retire(self, cell: _Cell, reason: str) -> None:
        """Take cell out of the registry (new sends spawn afresh) and ask its task to stop."""
        if cell.stop_reason is None:
            cell.stop_reason = reason
        if self._cells.get(cell.key) is cell:
            del self._cells[cell.key]
            self._retiring[cell.key] = cell
            if cell.task is None:  # idle: a task runs on_stop (the successor waits for it)
                self._run_task(cell, None)

    async def _run(self, cell: _Cell, previous: asyncio.Task[None] | None) -> None:
        """The cell's one task: start the actor if it has not started, handle the mail in batches, and
        either stop (asked to) or end with the mailbox empty, leaving the actor idle without a task."""
        batch: list[Envelope] = []
        idle = False
        try:
            if previous is not None:
                # The old incarnation may still be saving state in on_stop; load only after it.
                await asyncio.wait((previous,))
            if not cell.started and not await self._start(cell, cell.actor, "started"):
                return
            while cell.stop_reason is None and cell.mailbox:
                batch = [cell.mailbox.popleft() for _ in range(min(len(cell.mailbox), cell.actor.max_batch))]
                try:
                    await cell.actor.receive_batch(batch)
                except Exception as exc:
                    if not await self._restart(cell, batch, exc):
                        return
                else:
                    cell.actor._idle_since = self._now()
                # Idle actors must not keep their last messages alive.
                batch = []
            if cell.stop_reason is None:
                # Nothing between this check and the end awaits: the next message sees no task and starts one.
                cell.task, cell.mailbox, idle = None, None, True
                return
            reason = cell.stop_reason
            self._close(cell, reason)
            try:
                await cell.actor.on_stop()
            except Exception as exc:
                log.error("actor_stop_failed", key=cell.key, error=_describe(exc), exc_info=exc)
            self._emit("passivated" if reason == "passivated" else "stopped", cell.key, {"reason": reason})
        finally:
            # Reached with work left only on cancellation or a runtime bug; no ask may hang.
            _fail(batch, ActorStopped, f"actor {cell.key!r} stopped while handling the message")
            if not idle:
                self._close(cell, "stopped")
                # Only now may a successor load state: on_stop, if any, has finished saving it.
                if self._retiring.get(cell.key) is cell:
                    del self._retiring[cell.key]

    async def _restart(self, cell: _Cell, batch: list[Envelope], exc: Exception) -> bool:
        """The batch crashed the actor: a fresh instance reloads its state, the queued messages wait for
        it. False when it must not go on (too many crashes in the window, or the new one failed to start)."""
        self._crashed(cell, batch, exc)
        now = self._now()
        crashes = [t for t in cell.crashes or () if now - t < self._restart_window]
        crashes.append(now)
        cell.crashes = crashes
        if len(crashes) > self._max_restarts:
            reason = f"gave up after {len(crashes)} crashes: {_describe(exc)}"
            self._abandon(cell, "gave_up", reason, exc, crashes=len(crashes))
            return False
        cell.started = False
        try:
            actor = cell.factory()
        except Exception as error:
            self._abandon(cell, "start_failed", f"start failed: {_describe(error)}", error)
            return False
        return await self._start(cell, actor, "restarted")

    async def _start(self, cell: _Cell, actor: Actor, event: str) -> bool:
        """Run on_start for a new instance; False when the actor must not go on."""
        actor.key = cell.key
        actor._idle_since = self._now()
        cell.actor = actor
        if cell.stop_reason is not None:
            # Stopped before it ever started: nothing to load, nothing to save.
            self._close(cell, cell.stop_reason)
            return False
        try:
            await actor.on_start()
        except Exception as exc:
            # A refusal to start (no such launch, owned by another node) is an answer, not a fault.
            quiet = isinstance(exc, DomainError)
            self._abandon(cell, "start_failed", f"start failed: {_describe(exc)}", exc, quiet=quiet)
            return False
        cell.started = True
        self._emit(event, cell.key, {})
        return True

    def _close(self, cell: _Cell, reason: str, cause: Exception | None = None) -> None:
        """Leave the registry and fail the queued asks, in one step so none slips in between."""
        if self._cells.get(cell.key) is cell:
            del self._cells[cell.key]
        if cell.mailbox is not None:
            _fail(cell.mailbox, ActorStopped, f"actor {cell.key!r}: {reason}", cause)
            cell.mailbox = None

    def _crashed(self, cell: _Cell, batch: list[Envelope], exc: Exception) -> None:
        log.error("actor_crashed", key=cell.key, error=_describe(exc), exc_info=exc)
        _fail(batch, ActorCrashed, f"actor {cell.key!r} crashed: {_describe(exc)}", exc)
        self._emit("crashed", cell.key, {"error": _describe(exc)})

    def _abandon(
        self, cell: _Cell, event: str, reason: str, exc: Exception, *, quiet: bool = False, **info: Any
    ) -> None:
        """Stop for good without on_stop: the instance is broken or never started."""
        if quiet:
            log.info(f"actor_{event}", key=cell.key, reason=reason)
        else:
            log.error(f"actor_{event}", key=cell.key, reason=reason, exc_info=exc)
        self._close(cell, reason, exc)
        self._emit(event, cell.key, {"error": _describe(exc), **info})

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def _emit(self, event: str, key: str, info: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event, key, info)
        except Exception as exc:
            # Metrics and logs must never take an actor down.
            log.error("actor_event_hook_failed", key=key, actor_event=event, exc_info=exc)

    async def _reap(self) -> None:
        """Passivate idle actors; the reaper runs this every reap interval."""
        self.passivate_idle(self._passivate_after)

    def passivate_idle(self, idle_for: float) -> int:
        """Passivate now every actor idle for `idle_for` seconds or more that is willing; how many.

        Synchronous, so no message slips in mid-decision."""
        deadline = self._now() - idle_for
        # Idle = no task: started, with no mail queued (mail starts a task at once).
        idle = [
            cell for cell in self._cells.values() if cell.task is None and cell.actor._idle_since <= deadline
        ]
        retired = 0
        for cell in idle:
            try:
                willing = cell.actor.can_passivate()
            except Exception as exc:
                log.error("actor_can_passivate_failed", key=cell.key, exc_info=exc)
                continue
            if willing:
                self._retire(cell, "passivated")
                retired += 1
        return retired
