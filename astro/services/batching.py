"""Group commit for small writes: many callers' rows in one statement, each caller answered after it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupWriter(Generic[T, R]):
    """Writes submitted one by one, done together: the first submitter starts a write of everything
    pending; whatever arrives while that write is under way goes in the next one (group commit for
    small writes). Each submitter gets back its own item's result once the write is durable, or the
    write's error."""

    def __init__(self, write: Callable[[list[T]], Awaitable[list[R]]], *, max_batch: int = 500) -> None:
        self._write = write
        self._max = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writing = False
        self._task: asyncio.Task[None] | None = None  # referenced while it runs

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if not self._writing:
            self._writing = True
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                try:
                    results = await self._write([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._writing = False
