"""Redis (CacheDB): revoked tokens, disabled users and login rate limits."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any, Final

import redis.asyncio as aioredis

from astro.domain.launches import OPEN
from astro.store.errors import unavailable_as

REVOKED: Final = "auth:revoked:"
DISABLED: Final = "auth:disabled:"
VIP: Final = "auth:vip:"
LOGIN_FAILS: Final = "auth:login_fail:"
WARM_MARKER: Final = "auth:warm"


def connect(url: str, max_connections: int = 64) -> aioredis.Redis:
    """A client whose requests wait for a free connection under load instead of failing."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5,
        decode_responses=True,
        socket_connect_timeout=3,
        socket_timeout=5,
    )
    return aioredis.Redis(connection_pool=pool)


@unavailable_as("Redis")
class AuthCache:
    """The hot-path view of token revocation; MongoDB keeps the durable copy it is rebuilt from."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def revoke(self, jti: str, ttl_seconds: int) -> None:
        await self._redis.set(REVOKED + jti, "1", ex=max(1, ttl_seconds))

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        if disabled:
            await self._redis.set(DISABLED + user_id, "1")
        else:
            await self._redis.delete(DISABLED + user_id)

    async def set_vip(self, user_ids: list[str], vip: bool) -> None:
        if not user_ids:
            return
        if vip:
            await self._redis.mset({VIP + u: "1" for u in user_ids})
        else:
            await self._redis.delete(*(VIP + u for u in user_ids))

    async def state(self, jti: str, user_id: str) -> tuple[bool, bool, bool, bool]:
        """(token revoked, user disabled, user VIP, cache warm) in one round trip."""
        revoked, disabled, vip, warm = await self._redis.mget(
            REVOKED + jti, DISABLED + user_id, VIP + user_id, WARM_MARKER
        )
        return revoked is not None, disabled is not None, vip is not None, warm is not None

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


def _score(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
