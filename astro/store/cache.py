"""Redis (CacheDB): revoked tokens, disabled users and login rate limits."""

from __future__ import annotations

from typing import Final

import redis.asyncio as aioredis

REVOKED: Final = "auth:revoked:"
DISABLED: Final = "auth:disabled:"
LOGIN_FAILS: Final = "auth:login_fail:"
WARM_MARKER: Final = "auth:warm"


def connect(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=3, socket_timeout=5)


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

    async def blocked(self, jti: str, user_id: str) -> tuple[bool, bool]:
        """(token revoked, user disabled) in one round trip."""
        revoked, disabled = await self._redis.mget(REVOKED + jti, DISABLED + user_id)
        return revoked is not None, disabled is not None

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
