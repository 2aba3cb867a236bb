"""Redis (CacheDB) for live channels: epochs, offsets, a short history, and the fan-out between nodes."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Awaitable, Iterator, Sequence
from typing import Any, Final, cast

import redis.asyncio as aioredis
import structlog
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from astro.domain.errors import Unavailable
from astro.services.live import SignedOut
from astro.store.errors import unavailable_as

log = structlog.get_logger("astro.store.live")

FANOUT: Final = "astro:events"  # the Redis pub/sub channel every node listens on
STATE_TTL: Final = 30 * 86400  # epoch and offset outlive the history: a quiet channel keeps its epoch
UNAVAILABLE: Final = "live data is unavailable; retry shortly"
DRIVER_ERRORS: Final = (RedisError, OSError)

# KEYS: state hash, history list. ARGV: epoch if new, history length, state ttl, history ttl,
# fan-out channel, node message head (JSON object without its end), event JSON, coalesce JSON, data JSON,
# then the sender's field in the state hash ('' for none), the sender, the event's number from it.
# The field holds "<sender>:<number>" of the newest event this node's sender recorded on the channel: a
# retry of one already recorded (its reply lost with the connection) is answered with offset -1.
_APPEND: Final = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
elseif ARGV[10] ~= '' then
  local last = redis.call('HGET', KEYS[1], ARGV[10])
  if last then
    local at = string.find(last, ':', 1, true)
    if at and string.sub(last, 1, at - 1) == ARGV[11]
        and tonumber(string.sub(last, at + 1)) >= tonumber(ARGV[12]) then
      return {epoch, -1}
    end
  end
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[10], ARGV[11] .. ':' .. ARGV[12])
end
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


# KEYS: state hash, history list. ARGV: the new epoch, state ttl, fan-out channel, node message head.
_RESTART: Final = """
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'offset', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ',"epoch":"' .. ARGV[1] .. '","offset":0}\\n')
return ARGV[1]
"""


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Redis and socket errors leave this module as the domain's Unavailable."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise Unavailable(UNAVAILABLE) from exc


@unavailable_as("Redis")
class RedisLiveStore:
    """The Broadcaster's LiveStore on Redis: one Lua script per event keeps offset, history and fan-out
    atomic, so every node sees one order per channel."""

    def __init__(self, redis: aioredis.Redis, node: str, history: int = 200, history_ttl: int = 3600) -> None:
        self._redis = redis
        self._node = node
        self._history = max(1, history)
        self._history_ttl = max(1, history_ttl)
        self._append = redis.register_script(_APPEND)
        self._position = redis.register_script(_POSITION)
        self._restart = redis.register_script(_RESTART)
        self._pubsub: PubSub | None = None
        self._listener: aioredis.Redis | None = None

    async def append(
        self,
        events: Sequence[tuple[str, str, str, str | None]],
        *,
        sender: str | None = None,
        numbers: Sequence[int] | None = None,
    ) -> list[tuple[str, int]]:
        """Record each (channel, event, data JSON, coalesce) with its channel's next offset and send it to
        the other nodes, in order, in one round trip; (epoch, offset) of each. With a sender and each
        event's number from it, an event of that sender recorded already gets offset -1 (not recorded)."""
        if sender is not None and (numbers is None or len(numbers) != len(events) or ":" in sender):
            raise ValueError("a sender needs one number per event (and no ':' in its name)")
        field = f"sent:{self._node}" if sender is not None else ""
        with _translated():
            async with self._redis.pipeline(transaction=False) as pipe:
                for i, (channel, event, data_json, coalesce) in enumerate(events):
                    meta = {"node": self._node, "channel": channel, "event": event, "coalesce": coalesce}
                    head = _dumps(meta)
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
                        field,
                        sender or "",
                        numbers[i] if numbers is not None else 0,
                    ]
                    await self._append(keys=_keys(channel), args=args, client=pipe)
                answers = await pipe.execute()
        return [(_text(epoch), int(offset)) for epoch, offset in answers]

    async def restart(self, channels: Sequence[str]) -> list[tuple[str, int]]:
        """Each channel starts over in a new epoch at offset 0, its history gone; the other nodes are told
        (a fan-out message at offset 0). One round trip; (epoch, 0) of each."""
        with _translated():
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel in channels:
                    head = _dumps({"node": self._node, "channel": channel, "event": None, "coalesce": None})
                    args: list[str | int] = [secrets.token_hex(8), STATE_TTL, FANOUT, head[:-1]]
                    await self._restart(keys=_keys(channel), args=args, client=pipe)
                answers = await pipe.execute()
        return [(_text(epoch), 0) for epoch in answers]

    async def position(self, channel: str) -> tuple[str, int]:
        """(epoch, current offset); a channel Redis does not know starts a new epoch at offset 0."""
        args: list[str | int] = [secrets.token_hex(8), self._history_ttl]
        with _translated():
            epoch, offset = await cast(Awaitable[list[Any]], self._position(keys=_keys(channel), args=args))
        return _text(epoch), int(offset)

    async def peek(self, channel: str) -> tuple[str, int] | None:
        """(epoch, current offset), or None when Redis does not know the channel: nothing is written (a
        client refused the channel must leave no key behind)."""
        with _translated():
            epoch, offset = await self._redis.hmget(_keys(channel)[0], ["epoch", "offset"])
        return None if epoch is None else (_text(epoch), int(offset or 0))

    async def sign_out(self, signed_out: SignedOut) -> None:
        """Tell the other nodes (on the fan-out) that this user or token signed out."""
        head = _dumps({"node": self._node, "sign_out": {"user": signed_out.user_id, "jti": signed_out.jti}})
        with _translated():
            await self._redis.publish(FANOUT, head + "\n")

    async def history_after(
        self, channel: str, epoch: str, offset: int
    ) -> list[tuple[int, str, dict[str, Any], str | None]] | None:
        """(offset, event, data, coalesce) of every event after `offset` in `epoch`, oldest first; None when
        the history no longer holds them all (another epoch, trimmed or expired)."""
        state_key, history_key = _keys(channel)
        with _translated():
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
        return [(e["offset"], e["event"], e["data"], e["coalesce"]) for e in entries if e["offset"] > offset]

    # The fan-out: what the other nodes publish

    async def listen(self) -> None:
        """Subscribe to the fan-out; returns once subscribed.

        On a client of its own that never reconnects by itself (the app's client sends a command once more
        on a new connection when its connection was closed): a lost subscription must be noticed, so that
        the Broadcaster catches up from the history, not silently resumed with what was published meanwhile
        missing."""
        client = _without_retries(self._redis)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            with _translated():
                await pubsub.subscribe(FANOUT)
        except BaseException:
            await _close(pubsub, client)
            raise
        self._pubsub, self._listener = pubsub, client

    @property
    def listening(self) -> bool:
        return self._pubsub is not None

    async def receive(self) -> tuple[str, str, int, str, str, str | None] | SignedOut:
        """The next event another node published: (channel, epoch, offset, event, data JSON, coalesce); or
        a sign-out another node told.

        Our own come back too and are skipped: they were delivered here when they were published."""
        while True:
            if self._pubsub is None:
                raise Unavailable(UNAVAILABLE)
            with _translated():
                message = await self._pubsub.get_message(timeout=None)
            if message is None or message.get("type") != "message":
                continue
            try:
                head, _, data_json = _text(message["data"]).partition("\n")
                meta = json.loads(head)
                if meta["node"] == self._node:
                    continue
                if "sign_out" in meta:
                    who = meta["sign_out"]
                    return SignedOut(who.get("user"), who.get("jti"))
                offset = int(meta["offset"])
                if offset == 0:  # the channel restarted: no event
                    return meta["channel"], meta["epoch"], 0, "", "", None
                return meta["channel"], meta["epoch"], offset, meta["event"], data_json, meta["coalesce"]
            except (ValueError, KeyError, TypeError):
                log.exception("live_fanout_message_failed")

    async def stop_listening(self) -> None:
        """Leave the fan-out; errors on the way out do not matter."""
        if self._pubsub is not None and self._listener is not None:
            await _close(self._pubsub, self._listener)
        self._pubsub = self._listener = None


def _without_retries(redis: aioredis.Redis) -> aioredis.Redis:
    """A client for the same server whose single connection fails, rather than reconnects, when lost."""
    pool = redis.connection_pool
    kwargs = {**pool.connection_kwargs, "retry": Retry(NoBackoff(), 0)}
    return aioredis.Redis.from_pool(
        aioredis.ConnectionPool(connection_class=pool.connection_class, max_connections=1, **kwargs)
    )


async def _close(pubsub: PubSub, client: aioredis.Redis) -> None:
    with contextlib.suppress(*DRIVER_ERRORS):
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    with contextlib.suppress(*DRIVER_ERRORS):
        await client.aclose()


def _keys(channel: str) -> list[str]:
    """The state hash and the history list; one hash tag, so both live on the same cluster node."""
    return [f"astro:live:{{{channel}}}", f"astro:live:{{{channel}}}:history"]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
