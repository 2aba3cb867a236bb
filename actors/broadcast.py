"""Live events: consecutive offsets per channel and epoch, delivered in order to listeners on every node.

Where offsets, history and the fan-out between nodes are kept is the LiveStore port (Redis in production:
astro/store/live.py); this module holds what happens on one node: order, gaps, epochs, coalescing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import structlog

from actors.loop import TaskSet
from astro.domain.errors import Unavailable
from astro.domain.users import Principal
from astro.services.live import LAUNCHES, LAUNCHES_VIP, SignedOut

log = structlog.get_logger("astro.broadcast")

KINDS: Final = ("launch", "launches", "agency", "traveler")
GAP_WAIT: Final = 0.25  # how long an out-of-order event waits for the ones before it
# A coalesced event (occupancy) of one channel reaches this node's listeners at most this often: the
# first at once, the newest of those that came meanwhile at the end of the interval. Under booking load
# every group commit changes the occupancy, and each change is a frame to every watcher.
PACE: Final = 0.05
RETRY_DELAY: Final = 1.0

Provider = Callable[[Principal | None, str], Awaitable[dict[str, Any]]]

# (epoch, offset): where an event was recorded, or where a channel stands
Position = tuple[str, int]
# (offset, event, data, coalesce): an event as the history keeps it
Recorded = tuple[int, str, dict[str, Any], str | None]
# (channel, epoch, offset, event, data JSON, coalesce): an event another node published
Arrival = tuple[str, str, int, str, str, str | None]


class LiveStore(Protocol):
    """The port to where channel epochs, offsets and recent history are shared by every node, and to the
    fan-out between nodes. Every method raises Unavailable when the store cannot be reached."""

    async def append(
        self,
        events: Sequence[tuple[str, str, str, str | None]],
        *,
        sender: str | None = None,
        numbers: Sequence[int] | None = None,
    ) -> list[Position]:
        """Record each (channel, event, data JSON, coalesce) with its channel's next offset (a new epoch
        when the channel is unknown) and send it to the other nodes, in order; the position of each. An
        event numbered by `sender` (one publisher) that was recorded already is not again: offset -1."""
        ...

    async def restart(self, channels: Sequence[str]) -> list[Position]:
        """Start each channel over in a new epoch at offset 0 (its history gone) and tell the other nodes
        (an arrival at offset 0); the new position of each."""
        ...

    async def position(self, channel: str) -> Position:
        """Where the channel stands; a channel the store does not know starts a new epoch at offset 0."""
        ...

    async def peek(self, channel: str) -> Position | None:
        """Where the channel stands; None, and nothing written, when the store does not know it."""
        ...

    async def sign_out(self, signed_out: SignedOut) -> None:
        """Tell the other nodes that this user or token signed out."""
        ...

    async def history_after(self, channel: str, epoch: str, offset: int) -> list[Recorded] | None:
        """Every event after `offset` in `epoch`, oldest first; None when they cannot all be recovered."""
        ...

    @property
    def listening(self) -> bool:
        """Subscribed to the fan-out."""
        ...

    async def listen(self) -> None:
        """Subscribe to the fan-out; returns once subscribed."""
        ...

    async def receive(self) -> Arrival | SignedOut:
        """The next event another node published (never one of this node's own); at offset 0, no event
        but the news that the channel restarted in that epoch. Or a sign-out another node told."""
        ...

    async def stop_listening(self) -> None:
        """Leave the fan-out; never raises."""
        ...


class SignOutListener(Protocol):
    """Whoever holds sessions on this node; both methods are called synchronously and must never wait."""

    def signed_out(self, user_id: str | None, jti: str | None) -> None:
        """A user (every token) or a token signed out, on this node or another; one of them is None."""

    def missed_sign_outs(self) -> None:
        """The fan-out was lost for a while: sign-outs told meanwhile never arrived; check every session."""


class Listener(Protocol):
    """A local subscriber; both methods are called synchronously and must never wait."""

    def deliver(self, channel: str, offset: int, event: str, frame: bytes, coalesce: str | None) -> None:
        """One event, as the ready-made `event` frame shared by every listener of the channel."""

    def restart(self, channel: str) -> None:
        """The channel's epoch changed (the store lost it): offsets start over, a new snapshot is needed."""


def channel_kind(channel: str) -> str:
    """`launch`, `launches` (and its VIP twin), `agency` or `traveler`; ValueError for anything else."""
    kind, _, rest = channel.partition(":")
    if channel in (LAUNCHES, LAUNCHES_VIP) or (kind in KINDS and kind != LAUNCHES and rest):
        return kind
    raise ValueError(f"not a live channel: {channel!r}")


def public_name(channel: str) -> str:
    """The name a client uses: private channels are just `agency` and `traveler`, the VIP list `launches`."""
    kind = channel_kind(channel)
    return kind if kind in ("agency", "traveler", LAUNCHES) else channel


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(eq=False, slots=True)
class _Channel:
    """Local state of a channel with listeners: delivery in offset order, without gaps or repeats."""

    listeners: dict[Listener, None] = field(default_factory=dict)
    epoch: str | None = None
    head: int | None = None  # the last offset delivered here; None until known
    held: dict[int, tuple[str, str, str | None]] = field(default_factory=dict)
    gap_task: asyncio.Task[None] | None = None
    paced_at: float = float("-inf")  # when the last coalesced event was delivered (the loop's clock)
    pace_task: asyncio.Task[None] | None = None


class Broadcaster:
    """Publishes events with consecutive offsets per channel and delivers them once to local listeners."""

    def __init__(self, store: LiveStore) -> None:
        self._store = store
        self._channels: dict[str, _Channel] = {}
        self._providers: dict[str, Provider] = {}
        self.superseded = 0  # coalesced events never delivered here: a newer one arrived with them
        self._task: asyncio.Task[None] | None = None
        self._tasks = TaskSet()
        self._sign_out_listeners: list[SignOutListener] = []

    async def start(self) -> None:
        """Listen for the events other nodes publish; returns once subscribed."""
        await self._store.listen()
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="broadcast-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._store.stop_listening()
        await self._tasks.cancel()
        for state in self._channels.values():
            for task in (state.gap_task, state.pace_task):
                if task is not None:
                    task.cancel()
        self._channels.clear()

    # Publishing and history

    async def publish(
        self, channel: str, event: str, data: dict[str, Any], *, coalesce: str | None = None
    ) -> int:
        """Record the event with the channel's next offset, fan it out to every node, return the offset."""
        return (await self.publish_many([(channel, event, data, coalesce)]))[0]

    async def publish_many(
        self,
        events: Sequence[tuple[str, str, dict[str, Any], str | None]],
        *,
        sender: str | None = None,
        numbers: Sequence[int] | None = None,
    ) -> list[int]:
        """publish() for many events, in order, in one round trip to the store. An event numbered by
        `sender` that a failed try recorded already is not again (offset -1); it is read back for here."""
        prepared = []
        encoded: dict[int, str] = {}  # one event for several channels (agency, traveler) is encoded once
        for channel, event, data, coalesce in events:
            channel_kind(channel)
            data_json = encoded.get(id(data))
            if data_json is None:
                data_json = encoded[id(data)] = _dumps(data)
            prepared.append((channel, event, data_json, coalesce))
        positions = await self._store.append(prepared, sender=sender, numbers=numbers)
        offsets, arrived, recorded_before = [], {}, set()
        for (channel, event, data_json, coalesce), (epoch, offset) in zip(prepared, positions, strict=True):
            offsets.append(offset)
            if offset < 0:  # recorded by an earlier try that failed before its events were delivered here
                recorded_before.add(channel)
                continue
            state = self._arrive(channel, epoch, offset, event, data_json, coalesce, flush=False)
            if state is not None:
                arrived[channel] = state
        for channel, state in arrived.items():  # all of them first: a value already superseded is skipped
            self._flush(channel, state)
        if recorded_before:
            self._tasks.spawn(self._catch_up(recorded_before))
        return offsets

    async def restart_channels(self, channels: Sequence[str]) -> None:
        """Start these channels over in a new epoch on every node (events meant for them were lost): each
        listener restarts with a fresh snapshot, and a client resuming the old epoch gets one too."""
        if not channels:
            return
        positions = await self._store.restart(channels)
        for channel, (epoch, _) in zip(channels, positions, strict=True):
            self._restarted(channel, epoch)

    async def position(self, channel: str) -> tuple[str, int]:
        """(epoch, current offset) of a channel; a channel the store does not know starts a new epoch."""
        epoch, offset = await self._store.position(channel)
        state = self._channels.get(channel)
        if state is not None and state.epoch in (None, epoch) and state.head is None:
            state.epoch, state.head = epoch, offset
            for stale in [o for o in state.held if o <= offset]:
                del state.held[stale]
            self._flush(channel, state)
        return epoch, offset

    async def peek(self, channel: str) -> tuple[str, int] | None:
        """(epoch, current offset) of a channel the store knows; None (and nothing written) otherwise."""
        return await self._store.peek(channel)

    # Sign-outs

    def on_sign_out(self, listener: SignOutListener) -> None:
        """Tell `listener` of every sign-out, told on this node or on another (and of those it may have
        missed while the fan-out was lost)."""
        self._sign_out_listeners.append(listener)

    async def sign_out(self, *, user_id: str | None = None, jti: str | None = None) -> None:
        """Close the live sessions of this user (every token) or of this one token, on every node: here at
        once, elsewhere through the fan-out. When the store cannot be reached the other nodes are not told
        (logged): their sessions still refuse the token at its next subscribe."""
        if (user_id is None) == (jti is None):
            raise ValueError("sign out a user or a token")
        self._signed_out(user_id, jti)
        try:
            await self._store.sign_out(SignedOut(user_id, jti))
        except Unavailable as exc:
            log.warning("live_sign_out_not_told", user_id=user_id, error=_why(exc))

    def _signed_out(self, user_id: str | None, jti: str | None) -> None:
        for listener in self._sign_out_listeners:
            try:
                listener.signed_out(user_id, jti)
            except Exception:
                log.exception("live_sign_out_failed")

    def _missed_sign_outs(self) -> None:
        for listener in self._sign_out_listeners:
            try:
                listener.missed_sign_outs()
            except Exception:
                log.exception("live_sign_out_failed")

    async def since(self, channel: str, epoch: str, offset: int) -> list[dict[str, Any]] | None:
        """Events after `offset` in `epoch`, oldest first; None when they cannot all be recovered."""
        entries = await self._store.history_after(channel, epoch, offset)
        if entries is None:
            return None
        return [{"offset": at, "event": event, "data": data} for at, event, data, _ in entries]

    # Snapshots

    def register_snapshot(self, kind: str, provider: Provider) -> None:
        """The provider of the current state for one kind of channel (it may raise NotFound or Forbidden)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        self._providers[kind] = provider

    async def snapshot(self, principal: Principal | None, channel: str) -> dict[str, Any]:
        kind = channel_kind(channel)
        provider = self._providers.get(kind)
        if provider is None:
            raise Unavailable(f"live {kind} channels are not available yet")
        return await provider(principal, channel)

    # Local listeners

    def subscribe(self, channel: str, listener: Listener) -> None:
        channel_kind(channel)
        self._channels.setdefault(channel, _Channel()).listeners[listener] = None

    def unsubscribe(self, channel: str, listener: Listener) -> None:
        state = self._channels.get(channel)
        if state is None:
            return
        state.listeners.pop(listener, None)
        if not state.listeners:
            del self._channels[channel]
            for task in (state.gap_task, state.pace_task):
                if task is not None:
                    task.cancel()

    def _arrive(
        self,
        channel: str,
        epoch: str,
        offset: int,
        event: str,
        data_json: str,
        coalesce: str | None,
        *,
        flush: bool = True,
    ) -> _Channel | None:
        """Hold an event for the channel's listeners (delivered in offset order); the channel's state
        when it has listeners here and the event is new."""
        state = self._channels.get(channel)
        if state is None:
            return None
        if state.epoch is not None and state.epoch != epoch:
            self._new_epoch(channel, state, epoch, None)
        state.epoch = epoch
        if state.head is not None and offset <= state.head:
            return None
        state.held[offset] = (event, data_json, coalesce)
        if flush:
            self._flush(channel, state)
        return state

    def _restarted(self, channel: str, epoch: str) -> None:
        """The channel restarted in `epoch` at offset 0 (this node's doing or another's)."""
        state = self._channels.get(channel)
        if state is not None and state.epoch != epoch:
            self._new_epoch(channel, state, epoch, 0)

    def _new_epoch(self, channel: str, state: _Channel, epoch: str, head: int | None) -> None:
        """Offsets start over: every listener restarts (a new snapshot); `head` when the start is known."""
        log.warning("live_channel_epoch_changed", channel=channel)
        state.epoch, state.head = epoch, head
        state.held.clear()
        for listener in list(state.listeners):
            listener.restart(channel)

    def _flush(self, channel: str, state: _Channel) -> None:
        """Deliver the held events that continue the sequence; wait a moment for a missing one.

        A coalesced event (occupancy) directly followed by a newer one of the same key is not delivered:
        everyone gets the newest value, once (DESIGN 7), instead of every value that arrived together."""
        loop = asyncio.get_running_loop()
        while state.head is not None and state.head + 1 in state.held:
            event, data_json, coalesce = state.held[state.head + 1]
            if coalesce is not None:
                after = state.held.get(state.head + 2)
                if after is not None and after[2] == coalesce:
                    del state.held[state.head + 1]
                    state.head += 1
                    self.superseded += 1
                    continue
                wait = state.paced_at + PACE - loop.time()
                if wait > 0:  # too soon after the last one: the newest by then goes at the end of the pace
                    if state.pace_task is None:
                        state.pace_task = loop.create_task(self._paced(channel, state, wait))
                    return
                state.paced_at = loop.time()
            del state.held[state.head + 1]
            state.head += 1
            self._deliver(channel, state, state.head, event, data_json, coalesce)
        if state.held and state.gap_task is None:
            state.gap_task = loop.create_task(self._fill_gap(channel, state))

    async def _paced(self, channel: str, state: _Channel, wait: float) -> None:
        try:
            await asyncio.sleep(wait)
        finally:
            state.pace_task = None
        if self._channels.get(channel) is state:
            self._flush(channel, state)

    def _deliver(
        self, channel: str, state: _Channel, offset: int, event: str, data_json: str, coalesce: str | None
    ) -> None:
        frame = (
            f'{{"type":"event","channel":{_dumps(public_name(channel))},"offset":{offset},'
            f'"event":{_dumps(event)},"data":{data_json}}}'
        ).encode()
        for listener in list(state.listeners):
            try:
                listener.deliver(channel, offset, event, frame, coalesce)
            except Exception:
                log.exception("live_listener_failed", channel=channel)

    async def _fill_gap(self, channel: str, state: _Channel) -> None:
        """A missing event (lost on the wire, or still in flight) is read back from the history."""
        try:
            await asyncio.sleep(GAP_WAIT)
            if self._channels.get(channel) is not state or not state.held:
                return
            if state.head is not None and state.head + 1 not in state.held:
                await self._read_back(channel, state)
            if state.held and (state.head is None or state.head + 1 not in state.held):
                state.head = min(state.held) - 1
        finally:
            state.gap_task = None
        self._flush(channel, state)

    async def _read_back(self, channel: str, state: _Channel) -> None:
        """Hold the events after `head` from the history; when it no longer has them, start over."""
        epoch = state.epoch
        if state.head is None or epoch is None:
            return
        try:
            entries = await self._store.history_after(channel, epoch, state.head)
        except Unavailable as exc:
            log.warning("live_history_unavailable", channel=channel, error=_why(exc))
            return
        if state.epoch != epoch:  # the channel restarted meanwhile: the old epoch's answer is moot
            return
        if entries is None:
            log.warning("live_events_lost", channel=channel, after=state.head)
            state.epoch, state.head = None, None  # (the epoch may have changed: resubscribing reads it)
            for listener in list(state.listeners):
                listener.restart(channel)
            return
        for offset, event, data, coalesce in entries:
            if state.head is not None and offset > state.head:
                state.held.setdefault(offset, (event, _dumps(data), coalesce))

    async def _catch_up(self, channels: set[str] | None = None) -> None:
        """After the fan-out connection was lost: what other nodes published meanwhile (on `channels`, or
        on every channel with listeners here)."""
        for channel, state in list(self._channels.items()):
            if channels is not None and channel not in channels:
                continue
            await self._read_back(channel, state)
            if self._channels.get(channel) is state:
                self._flush(channel, state)

    # Events from other nodes

    async def _listen(self) -> None:
        """Deliver what the other nodes publish; when the fan-out is lost, listen again and catch up."""
        store = self._store
        while True:
            try:
                if not store.listening:
                    await store.listen()
                    log.info("live_fanout_reconnected")
                    self._tasks.spawn(self._catch_up())
                    self._missed_sign_outs()
                arrival = await store.receive()
            except Unavailable as exc:
                log.warning("live_fanout_disconnected", error=_why(exc))
                await store.stop_listening()
                await asyncio.sleep(RETRY_DELAY)
                continue
            try:
                self._remote(arrival)
            except Exception:
                log.exception("live_fanout_message_failed")

    def _remote(self, arrival: Arrival | SignedOut) -> None:
        if isinstance(arrival, SignedOut):
            self._signed_out(arrival.user_id, arrival.jti)
            return
        channel, epoch, offset, event, data_json, coalesce = arrival
        if offset == 0:  # another node restarted the channel: it lost events meant for it
            self._restarted(channel, epoch)
            return
        self._arrive(channel, epoch, offset, event, data_json, coalesce)


def _why(exc: Unavailable) -> str:
    """The store's own error behind an Unavailable, for the log."""
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}"
