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
from astro.services.batching import GroupWriter
from astro.store.errors import unavailable_as

REVOKED: Final = "auth:revoked:"
# A user's flags ("10:3": VIP, not disabled, token generation 3) or a reader's lease ("?...").
USER: Final = "auth:user:"
LOGIN_FAILS: Final = "auth:login_fail:"
LOGIN_FAILS_ADDRESS: Final = "auth:login_fail_ip:"
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

# KEYS: the client address's counter, the email's counter. ARGV: the window (s), the address's limit, the
# email's limit. Counts this attempt before its password is checked; refused when either is over its limit.
# Returns {0 or 1 (go ahead), which limit refused ("" / "address" / "email"), seconds left of that window}.
_ATTEMPT: Final = """
local function count(key)
  local n = redis.call('INCR', KEYS[key])
  if n == 1 then redis.call('EXPIRE', KEYS[key], ARGV[1]) end
  return n
end
local function left(key)
  local ttl = redis.call('TTL', KEYS[key])
  if ttl < 1 then return 1 end
  return ttl
end
if count(1) > tonumber(ARGV[2]) then return {0, 'address', left(1)} end
if count(2) > tonumber(ARGV[3]) then return {0, 'email', left(2)} end
return {1, '', 0}
"""
# KEYS: the address's counter, the email's counter. A right password: the email's failures are forgotten and
# the attempt taken back from the address's count (never creating a key without a TTL once it expired).
_SUCCEEDED: Final = """
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECR', KEYS[1]) end
return 1
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
        self._attempt = redis.register_script(_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)
        self._states = GroupWriter(self._state_many)

    async def revoke(self, jti: str, ttl_seconds: int) -> None:
        await self._redis.set(REVOKED + jti, "1", ex=max(1, ttl_seconds))

    async def state(self, jti: str, user_id: str) -> tuple[bool, UserFlags | None, bool]:
        """(token revoked, the user's flags or None when not cached, revocations warm): one MGET for every
        request that asks meanwhile, each read after it asked (so never older than a revocation that
        had completed by then)."""
        return await self._states.submit((jti, user_id))

    async def _state_many(self, asked: list[tuple[str, str]]) -> list[tuple[bool, UserFlags | None, bool]]:
        keys = [WARM_MARKER]
        for jti, user_id in asked:
            keys += (REVOKED + jti, USER + user_id)
        warm, *values = await self._redis.mget(keys)
        return [
            (values[2 * i] is not None, _flags(values[2 * i + 1]), warm is not None)
            for i in range(len(asked))
        ]

    async def lease(self, user_id: str) -> str | None:
        token = LEASE + secrets.token_hex(8)
        taken = await self._redis.set(USER + user_id, token, nx=True, px=LEASE_MS)
        return token if taken else None

    async def fill(self, user_id: str, lease: str, flags: UserFlags) -> None:
        value = f"{int(flags.vip)}{int(flags.disabled)}:{flags.token_gen}"
        await self._fill(keys=[USER + user_id], args=[lease, value, self._user_ttl])

    async def forget(self, user_ids: list[str]) -> None:
        if user_ids:
            await self._redis.delete(*(USER + u for u in user_ids))

    async def is_warm(self) -> bool:
        return bool(await self._redis.exists(WARM_MARKER))

    async def mark_warm(self) -> None:
        await self._redis.set(WARM_MARKER, "1")

    async def login_attempt(
        self, email: str, address: str, *, window: int, email_limit: int, address_limit: int
    ) -> tuple[str | None, int]:
        """Count a login attempt for this email and client address at once (before its password is
        checked): (None, 0) to go ahead, else ("email" or "address", seconds until that window ends)."""
        go, limit, left = await self._attempt(
            keys=[LOGIN_FAILS_ADDRESS + address, LOGIN_FAILS + email],
            args=[window, address_limit, email_limit],
        )
        return (None, 0) if int(go) else (str(limit), int(left))

    async def login_succeeded(self, email: str, address: str) -> None:
        """A right password: the email's failures are forgotten; the attempt was no failure of the address."""
        await self._succeeded(keys=[LOGIN_FAILS_ADDRESS + address, LOGIN_FAILS + email])


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
    if value is None:
        return None
    bits, _, gen = value.partition(":")
    if len(bits) != 2 or bits.strip("01") or not (gen.isascii() and gen.isdigit()):
        return None
    return UserFlags(vip=bits[0] == "1", disabled=bits[1] == "1", token_gen=int(gen))


def _score(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
