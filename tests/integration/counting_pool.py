"""A real asyncpg pool that counts the connections taken from it: how many statements a batch took."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg


class CountingPool:
    """The real pool, counting the connections taken from it (each one statement's transaction here)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.taken = pool, 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        self.taken += 1
        async with self.pool.acquire() as conn:
            yield conn
