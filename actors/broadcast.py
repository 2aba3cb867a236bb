"""Live events: per-channel offsets, epochs and history in Redis, fanned out to listeners on every node."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast

import redis.asyncio as aioredis
import structlog
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from astro.domain.errors import Unavailable
from astro.domain.users import Principal

log = structlog.get_logger("astro.broadcast")

FANOUT: Final = "astro:events"  # the Redis pub/sub channel every node listens on
KINDS: Final = ("launch", "launches", "agency", "traveler")
LAUNCHES: Final = "launches"
STATE_TTL: Final = 30 * 86400  # epoch and offset outlive the history: a quiet channel keeps its epoch
GAP_WAIT: Final = 0.25  # how long an out-of-order event waits for the ones before it
RETRY_DELAY: Final = 1.0

Provider = Callable[[Principal | None, str], Awaitable[dict[str, Any]]]

# KEYS: state hash, history list. ARGV: epoch if new, history length, state ttl, history ttl,
# fan-out channel, node message head (JSON object without its end), event JSON, coalesce JSON, data JSON.
_PUBLISH: Final = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local entry = ',"event":' .. ARGV[7] .. ',"coalesce":' .. ARGV[8] .. ',"data":' .. ARGV[9] .. '}'
redis.call('RPUSH', KEYS[2], '{"offset":' .. offset .. entry)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
local tail = ',"epoch":"' .. epoch .. '","offset":' .. offset .. '}\\n'
redis.call('PUBLISH', ARGV[5], ARGV[6] .. tail .. ARGV[9])
return {epoch, offset}
"""

# KEYS: state hash, history list. ARGV: epoch if new, ttl for a channel nothing was published on yet.
_POSITION: Final = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {epoch, tonumber(redis.call('HGET', KEYS[1], 'offset'))}
"""


class Listener(Protocol):
    """A local subscriber; both methods are called synchronously and must never wait."""

    def deliver(self, channel: str, offset: int, event: str, frame: bytes, coalesce: str | None) -> None:
        """One event, as the ready-made `event` frame shared by every listener of the channel."""

    def restart(self, channel: str) -> None:
        """The channel's epoch changed (Redis lost it): offsets start over, a new snapshot is needed."""


def launch_channel(launch_id: str) -> str:
    return f"launch:{launch_id}"


def agency_channel(agency_user_id: str) -> str:
    return f"agency:{agency_user_id}"


def traveler_channel(traveler_user_id: str) -> str:
    return f"traveler:{traveler_user_id}"


def channel_kind(channel: str) -> str:
    """`launch`, `launches`, `agency` or `traveler`; ValueError for anything else."""
    kind, sep, rest = channel.partition(":")
    if (kind == LAUNCHES and not sep) or (kind in KINDS and kind != LAUNCHES and rest):
        return kind
    raise ValueError(f"not a live channel: {channel!r}")


def public_name(channel: str) -> str:
    """The name a client uses: private channels are just `agency` and `traveler`."""
    kind = channel_kind(channel)
    return kind if kind in ("agency", "traveler") else channel


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


class Broadcaster:
    """Publishes events with consecutive offsets per channel and delivers them once to local listeners."""

    def __init__(self, redis: aioredis.Redis, node: str, history: int = 200, history_ttl: int = 3600) -> None:
        self._redis = redis
        self.node = node
        self._history = max(1, history)
        self._history_ttl = max(1, history_ttl)
        self._publish = redis.register_script(_PUBLISH)
        self._position = redis.register_script(_POSITION)
        self._channels: dict[str, _Channel] = {}
        self._providers: dict[str, Provider] = {}
        self.superseded = 0  # coalesced events never delivered here: a newer one arrived with them
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen for the events other nodes publish; returns once subscribed."""
        self._pubsub = await self._subscribe()
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="broadcast-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_pubsub()
        for task in list(self._tasks):
            task.cancel()
        for state in self._channels.values():
            if state.gap_task is not None:
                state.gap_task.cancel()
        self._channels.clear()

    # Publishing and history

    async def publish(
        self, channel: str, event: str, data: dict[str, Any], *, coalesce: str | None = None
    ) -> int:
        """Record the event with the channel's next offset, fan it out to every node, return the offset."""
        return (await self.publish_many([(channel, event, data, coalesce)]))[0]

    async def publish_many(self, events: Sequence[tuple[str, str, dict[str, Any], str | None]]) -> list[int]:
        """publish() for many events, in order, in one round trip to Redis (one script call each)."""
        prepared = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, event, data, coalesce in events:
                channel_kind(channel)
                data_json = _dumps(data)
                head = _dumps({"node": self.node, "channel": channel, "event": event, "coalesce": coalesce})
                args: list[str | int] = [
                    secrets.token_hex(8),
                    self._history,
                    STATE_TTL,
                    self._history_ttl,
                    FANOUT,
                    head[:-1],
                    _dumps(event),
                    _dumps(coalesce),
                    data_json,
                ]
                await self._publish(keys=_keys(channel), args=args, client=pipe)
                prepared.append((channel, event, data_json, coalesce))
            answers = await pipe.execute()
        offsets, arrived = [], {}
        for (channel, event, data_json, coalesce), (epoch, offset) in zip(prepared, answers, strict=True):
            state = self._arrive(channel, _text(epoch), int(offset), event, data_json, coalesce, flush=False)
            if state is not None:
                arrived[channel] = state
            offsets.append(int(offset))
        for channel, state in arrived.items():  # all of them first: a value already superseded is skipped
            self._flush(channel, state)
        return offsets

    async def position(self, channel: str) -> tuple[str, int]:
        """(epoch, current offset) of a channel; a channel Redis does not know starts a new epoch."""
        args: list[str | int] = [secrets.token_hex(8), self._history_ttl]
        epoch, offset = await cast(Awaitable[list[Any]], self._position(keys=_keys(channel), args=args))
        epoch, offset = _text(epoch), int(offset)
        state = self._channels.get(channel)
        if state is not None and state.epoch in (None, epoch) and state.head is None:
            state.epoch, state.head = epoch, offset
            for stale in [o for o in state.held if o <= offset]:
                del state.held[stale]
            self._flush(channel, state)
        return epoch, offset

    async def since(self, channel: str, epoch: str, offset: int) -> list[dict[str, Any]] | None:
        """Events after `offset` in `epoch`, oldest first; None when they cannot all be recovered."""
        entries = await self._history_after(channel, epoch, offset)
        if entries is None:
            return None
        return [{"offset": e["offset"], "event": e["event"], "data": e["data"]} for e in entries]

    async def _history_after(self, channel: str, epoch: str, offset: int) -> list[dict[str, Any]] | None:
        state_key, history_key = _keys(channel)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(state_key, ["epoch", "offset"])
            pipe.lrange(history_key, 0, -1)
            (current_epoch, current), raw = await pipe.execute()
        if current_epoch is None or _text(current_epoch) != epoch:
            return None
        current = int(current or 0)
        if not 0 <= offset <= current:
            return None
        if offset == current:
            return []
        entries = [json.loads(r) for r in raw]
        if not entries or entries[0]["offset"] > offset + 1 or entries[-1]["offset"] != current:
            return None
        return [e for e in entries if e["offset"] > offset]

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
            if state.gap_task is not None:
                state.gap_task.cancel()

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
            log.warning("live_channel_epoch_changed", channel=channel)
            state.head = None
            state.held.clear()
            for listener in list(state.listeners):
                listener.restart(channel)
        state.epoch = epoch
        if state.head is not None and offset <= state.head:
            return None
        state.held[offset] = (event, data_json, coalesce)
        if flush:
            self._flush(channel, state)
        return state

    def _flush(self, channel: str, state: _Channel) -> None:
        """Deliver the held events that continue the sequence; wait a moment for a missing one.

        A coalesced event (occupancy) directly followed by a newer one of the same key is not delivered:
        everyone gets the newest value, once (DESIGN 7), instead of every value that arrived together."""
        while state.head is not None and state.head + 1 in state.held:
            state.head += 1
            event, data_json, coalesce = state.held.pop(state.head)
            after = state.held.get(state.head + 1)
            if coalesce is not None and after is not None and after[2] == coalesce:
                self.superseded += 1
                continue
            self._deliver(channel, state, state.head, event, data_json, coalesce)
        if state.held and state.gap_task is None:
            state.gap_task = asyncio.get_running_loop().create_task(self._fill_gap(channel, state))

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
        if state.head is None or state.epoch is None:
            return
        try:
            entries = await self._history_after(channel, state.epoch, state.head)
        except RedisError as exc:
            log.warning("live_history_unavailable", channel=channel, error=str(exc))
            return
        if entries is None:
            log.warning("live_events_lost", channel=channel, after=state.head)
            state.head = None
            for listener in list(state.listeners):
                listener.restart(channel)
            return
        for e in entries:
            if state.head is not None and e["offset"] > state.head:
                state.held.setdefault(e["offset"], (e["event"], _dumps(e["data"]), e["coalesce"]))

    async def _catch_up(self) -> None:
        """After the fan-out connection was lost: what other nodes published meanwhile."""
        for channel, state in list(self._channels.items()):
            await self._read_back(channel, state)
            if self._channels.get(channel) is state:
                self._flush(channel, state)

    # Events from other nodes

    async def _subscribe(self) -> PubSub:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(FANOUT)
        return pubsub

    async def _close_pubsub(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None

    async def _listen(self) -> None:
        while True:
            try:
                if self._pubsub is None:
                    self._pubsub = await self._subscribe()
                    log.info("live_fanout_reconnected")
                    self._spawn(self._catch_up())
                message = await self._pubsub.get_message(timeout=None)
            except (RedisError, OSError) as exc:
                log.warning("live_fanout_disconnected", error=f"{type(exc).__name__}: {exc}")
                await self._close_pubsub()
                await asyncio.sleep(RETRY_DELAY)
                continue
            if message is not None and message.get("type") == "message":
                try:
                    self._remote(_text(message["data"]))
                except Exception:
                    log.exception("live_fanout_message_failed")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _remote(self, message: str) -> None:
        head, _, data_json = message.partition("\n")
        meta = json.loads(head)
        if meta["node"] == self.node:
            return  # delivered locally when it was published
        self._arrive(
            meta["channel"], meta["epoch"], int(meta["offset"]), meta["event"], data_json, meta["coalesce"]
        )


def _keys(channel: str) -> list[str]:
    """The state hash and the history list; one hash tag, so both live on the same cluster node."""
    return [f"astro:live:{{{channel}}}", f"astro:live:{{{channel}}}:history"]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
