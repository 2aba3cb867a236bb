"""Redis (CacheDB): revoked tokens, users' cached flags, login limits, launch cards and the public list."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any, Final

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as ConnectionLost

from astro.domain.launches import OPEN
from astro.services.auth import UserFlags
from astro.store.errors import unavailable_as

REVOKED: Final = "auth:revoked:"
USER: Final = "auth:user:"  # a user's flags ("10": VIP, not disabled) or a reader's lease ("?...")
LOGIN_FAILS: Final = "auth:login_fail:"
WARM_MARKER: Final = "auth:warm"  # the revocations were rebuilt from MongoDB since Redis last lost them
# How long a user's cached flags are trusted. Writes drop the copy at once; this bounds how long a copy
# stays wrong when that drop could not reach Redis (or MongoDB was changed by the sync worker).
USER_TTL: Final = 60
LEASE: Final = "?"
LEASE_MS: Final = 5000  # a reader that died between its lease and its fill blocks no one for longer

# KEYS: the user's key. ARGV: the lease, the flags, their TTL. Fill only while the lease is still there.
_FILL: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def connect(url: str, max_connections: int = 64) -> aioredis.Redis:
    """A client whose requests wait for a free connection under load instead of failing.

    A command that finds its pooled connection closed is sent once more on a new one: after a Redis
    restart every idle connection of the pool is dead, and the pool's check on lending one does not see
    it, so each would otherwise fail one request with a 503 although Redis is back. (A timeout is not
    retried: it would only double the wait for a Redis that does not answer.)"""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5,
        decode_responses=True,
        socket_connect_timeout=3,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionLost,)),
    )
    return aioredis.Redis(connection_pool=pool)


@unavailable_as("Redis")
class AuthCache:
    """The hot-path view of token revocation and of users' flags; MongoDB keeps what both are rebuilt from.

    A user's flags are a copy with a TTL, filled on a miss under a lease and dropped (never set) by writes:
    a missing copy means "ask MongoDB", so losing or failing to write a key can never make anyone look
    less (or more) than they are for longer than USER_TTL."""

    def __init__(self, redis: aioredis.Redis, user_ttl: int = USER_TTL) -> None:
        self._redis = redis
        self._user_ttl = max(1, user_ttl)
        self._fill = redis.register_script(_FILL)

    async def revoke(self, jti: str, ttl_seconds: int) -> None:
        await self._redis.set(REVOKED + jti, "1", ex=max(1, ttl_seconds))

    async def state(self, jti: str, user_id: str) -> tuple[bool, UserFlags | None, bool]:
        """(token revoked, the user's flags or None when not cached, revocations warm) in one round trip."""
        revoked, flags, warm = await self._redis.mget(REVOKED + jti, USER + user_id, WARM_MARKER)
        return revoked is not None, _flags(flags), warm is not None

    async def lease(self, user_id: str) -> str | None:
        token = LEASE + secrets.token_hex(8)
        taken = await self._redis.set(USER + user_id, token, nx=True, px=LEASE_MS)
        return token if taken else None

    async def fill(self, user_id: str, lease: str, flags: UserFlags) -> None:
        value = f"{int(flags.vip)}{int(flags.disabled)}"
        await self._fill(keys=[USER + user_id], args=[lease, value, self._user_ttl])

    async def forget(self, user_ids: list[str]) -> None:
        if user_ids:
            await self._redis.delete(*(USER + u for u in user_ids))

    async def is_warm(self) -> bool:
        return bool(await self._redis.exists(WARM_MARKER))

    async def mark_warm(self) -> None:
        await self._redis.set(WARM_MARKER, "1")

    async def login_failures(self, email: str) -> tuple[int, int]:
        """(failures in the current window, seconds until the window ends)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(LOGIN_FAILS + email)
            pipe.ttl(LOGIN_FAILS + email)
            count, ttl = await pipe.execute()
        return int(count or 0), max(int(ttl), 1)

    async def add_login_failure(self, email: str, window: int) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            # SET NX EX then INCR: the window starts at the first failure (works on Redis 6.2).
            pipe.set(LOGIN_FAILS + email, 0, ex=window, nx=True)
            pipe.incr(LOGIN_FAILS + email)
            _, count = await pipe.execute()
        return int(count)

    async def clear_login_failures(self, email: str) -> None:
        await self._redis.delete(LOGIN_FAILS + email)


CARD: Final = "launch:card:"
SLUG: Final = "launch:slug:"
UPCOMING: Final = "launches:upcoming"
UPCOMING_WARM: Final = "launches:warm"
# Goes up with every change of a card: a page rendered from the list is good while it stays the same.
VERSION: Final = "launches:version"
CARD_TTL: Final = 3600


@unavailable_as("Redis")
class LaunchCache:
    """Launch cards and the public list; every key can be rebuilt from PostgreSQL."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def put(self, cards: list[dict[str, Any]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for card in cards:
                pipe.set(CARD + card["id"], json.dumps(card), ex=CARD_TTL)
                pipe.set(SLUG + card["slug"], card["id"], ex=CARD_TTL)
                if card["status"] in OPEN:
                    pipe.zadd(UPCOMING, {card["id"]: _score(card["scheduled_at"])})
                else:
                    pipe.zrem(UPCOMING, card["id"])
            pipe.incr(VERSION)  # last: whoever reads the new version finds the new cards
            await pipe.execute()

    async def fill(self, cards: list[dict[str, Any]]) -> None:
        """Replace the public list with these cards and mark it complete."""
        await self.put(cards)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(UPCOMING)
            if cards:
                pipe.zadd(UPCOMING, {c["id"]: _score(c["scheduled_at"]) for c in cards})
            # A fresh mark each time: a version counted after Redis lost its keys is never taken for
            # the same version counted before.
            pipe.set(UPCOMING_WARM, secrets.token_hex(8), ex=CARD_TTL)
            pipe.incr(VERSION)
            await pipe.execute()

    async def get(self, launch_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(CARD + launch_id)
        return json.loads(raw) if raw else None

    async def id_by_slug(self, slug: str) -> str | None:
        value = await self._redis.get(SLUG + slug)
        return str(value) if value else None

    async def stamp(self) -> str | None:
        """What the public list is at now (its fill mark and version), in one round trip; None when
        it is not complete."""
        mark, version = await self._redis.mget(UPCOMING_WARM, VERSION)
        return f"{mark!s}:{version!s}" if mark else None

    async def upcoming(self) -> list[dict[str, Any]] | None:
        """The cached public list, or None when it is not complete (then read PostgreSQL and fill)."""
        if not await self._redis.exists(UPCOMING_WARM):
            return None
        ids = [str(i) for i in await self._redis.zrange(UPCOMING, 0, -1)]
        if not ids:
            return []
        raws = await self._redis.mget([CARD + i for i in ids])
        cards = [json.loads(r) for r in raws if r is not None]
        return cards if len(cards) == len(ids) else None


def _flags(value: str | bytes | None) -> UserFlags | None:
    """Cached flags; None for a miss, a reader's lease or anything unexpected (then MongoDB is asked)."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if value is None or len(value) != 2 or value.strip("01"):
        return None
    return UserFlags(vip=value[0] == "1", disabled=value[1] == "1")


def _score(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
