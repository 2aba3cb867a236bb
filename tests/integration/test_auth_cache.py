"""Users' flags in the auth cache (real Redis, MongoDB and PostgreSQL): a copy of MongoDB that expires, filled
on a miss under a lease, dropped by writes; a miss is "ask MongoDB", never "not VIP"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from argon2 import PasswordHasher

from astro.config import Settings
from astro.domain.errors import Unauthenticated
from astro.domain.users import Role
from astro.services.auth import AuthService, UserFlags
from astro.services.tokens import TokenIssuer
from astro.store import cache, mongo, postgres
from astro.store.mongo import MongoUsers
from astro.store.people import PgProfiles
from tests.conftest import JWT_SECRET, traveler_body

WAIT = 10.0


@dataclass
class Parts:
    auth: AuthService
    cache: cache.AuthCache
    users: MongoUsers
    redis: aioredis.Redis


@pytest.fixture
async def parts(settings: Settings) -> AsyncIterator[Parts]:
    """An AuthService whose cached flags live one second."""
    pool: asyncpg.Pool = await postgres.create_pool(settings.pg_dsn or "", min_size=1, max_size=4)
    client = mongo.connect(settings.mongo_url or "")
    redis = cache.connect(settings.redis_url or "")
    users = MongoUsers(client[settings.mongo_db])
    auth_cache = cache.AuthCache(redis, user_ttl=1)
    auth = AuthService(
        users, PgProfiles(pool), auth_cache, TokenIssuer(JWT_SECRET, 3600), PasswordHasher(time_cost=1)
    )
    await auth.warm_cache()
    yield Parts(auth, auth_cache, users, redis)
    await redis.aclose()
    await client.close()
    await pool.close()


async def new_traveler(auth: AuthService) -> tuple[str, str]:
    body: dict[str, Any] = traveler_body()
    session = await auth.register(
        email=body["email"],
        password=body["password"],
        name=body["name"],
        role=Role.TRAVELER,
        profile=body["profile"],
    )
    return session.user.id, session.token


async def test_a_read_that_raced_a_write_is_not_cached(parts: Parts) -> None:
    user_id, token = await new_traveler(parts.auth)
    lease = await parts.cache.lease(user_id)
    assert lease is not None
    assert await parts.cache.lease(user_id) is None  # one reader fills at a time
    await parts.cache.forget([user_id])  # a write landed after the reader read MongoDB
    await parts.cache.fill(user_id, lease, UserFlags(vip=False, disabled=False))
    assert (await parts.cache.state("jti", user_id))[1] is None
    # Without a race the copy is kept, and read with the token's revocation in one round trip.
    assert (await parts.auth.authenticate(token)).vip is False
    assert (await parts.cache.state("jti", user_id))[1] == UserFlags(vip=False, disabled=False)


async def test_a_copy_the_promotion_could_not_drop_heals_within_its_ttl(parts: Parts) -> None:
    user_id, token = await new_traveler(parts.auth)
    assert (await parts.auth.authenticate(token)).vip is False  # cached: not VIP
    # The promotion reached MongoDB, but dropping the cached copy did not reach Redis.
    assert await parts.users.promote_vip([user_id]) == 1
    assert (await parts.auth.authenticate(token)).vip is False  # the stale copy, for now
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not (await parts.auth.authenticate(token)).vip:  # nothing signals an expiry: poll
        assert loop.time() < deadline, "the cached flags never expired"
        await asyncio.sleep(0.05)
    assert (await parts.cache.state("jti", user_id))[1] == UserFlags(vip=True, disabled=False)


async def test_a_promotion_and_a_manual_flag_take_effect_at_once(parts: Parts) -> None:
    user_id, token = await new_traveler(parts.auth)
    assert (await parts.auth.authenticate(token)).vip is False
    assert await parts.auth.promote_vip([user_id]) == 1
    assert (await parts.auth.authenticate(token)).vip is True
    await parts.auth.set_flags(user_id, vip=False, disabled=None)
    assert (await parts.auth.authenticate(token)).vip is False
    await parts.auth.set_flags(user_id, vip=None, disabled=True)
    with pytest.raises(Unauthenticated) as refused:
        await parts.auth.authenticate(token)
    assert refused.value.code == "user_disabled"


async def test_requests_authenticated_together_share_one_redis_read(parts: Parts) -> None:
    travelers = [await new_traveler(parts.auth) for _ in range(4)]
    _, kept_token = travelers[0]
    await parts.auth.logout(
        await parts.auth.authenticate(kept_token)
    )  # revoked: still refused when read with the others
    for _, token in travelers[1:]:
        await parts.auth.authenticate(token)  # the flags are cached
    reads = 0
    mget = parts.redis.mget

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await mget(*args, **kwargs)

    parts.redis.mget = counted  # type: ignore[method-assign]
    tokens = [token for _, token in travelers[1:]] * 16
    outcomes = await asyncio.gather(
        *(parts.auth.authenticate(t) for t in [kept_token, *tokens]), return_exceptions=True
    )
    assert reads == 1  # was one MGET per request: 49
    assert isinstance(outcomes[0], Unauthenticated) and outcomes[0].code == "token_revoked"
    assert [p.user_id for p in outcomes[1:]] == [u for u, _ in travelers[1:]] * 16  # type: ignore[union-attr]
