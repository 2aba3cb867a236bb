"""The log shipper: stores every log entry as an EntryLog in batches, never blocking the one who logs.

Entries arrive through a structlog processor (`offer`) into a bounded in-memory queue; one task
writes them with one insert per batch. While the store does not answer, batches go to a spool file
on disk, and are replayed in order, before anything newer, once it answers again (also after a
restart). A full queue drops entries and counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol

import structlog

from actors.loop import BackgroundLoop
from astro.services.monitor import EntryIds, entry_document, plain

log = structlog.get_logger("astro.monitor")

RETRY_INTERVAL: Final = 1.0
STOP_TIMEOUT: Final = 10.0


class EntryStore(Protocol):
    async def prepare(self) -> None:
        """Create what the store needs (indexes); called until it succeeds once."""

    async def insert(self, docs: list[dict[str, Any]]) -> None:
        """Store the entries in order; entries stored before (same `_id`) are skipped."""


class Spool(Protocol):
    """Batches kept on disk while the store is down, read back in order (astro.store.spool.Spool).

    Synchronous (file I/O): the shipper calls it from a worker thread, one call at a time."""

    path: Path
    pending: int  # documents written and not replayed yet

    def load(self) -> int:
        """Find what an earlier run left; how many documents wait."""

    def append(self, docs: list[dict[str, Any]]) -> int:
        """Write the documents after everything spooled; how many were written (0 when full)."""

    def read(self, limit: int) -> tuple[list[dict[str, Any]], int, int]:
        """Up to `limit` documents from where the replay stands: (documents, next offset, lines used)."""

    def commit(self, offset: int, used: int) -> None:
        """Everything before `offset` is stored."""


class LogShipper:
    """Batches entries into the store, spooling to disk while it is down; see the module docstring."""

    def __init__(
        self,
        store: EntryStore,
        *,
        node: str,
        spool: Spool,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_queue: int = 50_000,
        retry_interval: float = RETRY_INTERVAL,
    ) -> None:
        self._store = store
        self._node = node
        self._spool = spool
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._retry_interval = retry_interval
        self._queue: deque[Mapping[str, Any]] = deque()
        self._ids = EntryIds()
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        # Ships every flush interval, or at once when a batch is full; a last round when stopping.
        self.background = BackgroundLoop(
            self._ship,
            interval=flush_interval,
            name="log-shipper",
            first_round_at_start=False,
            failed_event="log_shipper_failed",
        )
        self._closing = False
        self._prepared = False
        self._retry_at = 0.0
        self.store_up = True
        self.shipped = 0
        self.spooled = 0
        self.replayed = 0
        self.dropped = 0
        self.failures = 0

    # -- the logging side: synchronous, never waits ----------------------------------------------

    def offer(self, entry: Mapping[str, Any]) -> None:
        """Queue one entry; drop it (counted) when the queue is full or the shipper has stopped."""
        if self._closing:
            self.dropped += 1
            return
        if len(self._queue) >= self._max_queue:
            self.dropped += 1
            return
        self._queue.append(entry)
        if len(self._queue) == self._batch_size and self._loop is not None:
            if threading.get_ident() == self._thread:
                self.background.wake()
            else:  # a log call from another thread; the timer ships it anyway if the loop is gone
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self.background.wake)

    # -- figures ---------------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Entries not stored yet: queued in memory plus waiting in the spool."""
        return len(self._queue) + self._spool.pending

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def spool_pending(self) -> int:
        return self._spool.pending

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Count what a previous run left in the spool, then ship in the background."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        left = await asyncio.to_thread(self._spool.load)
        if left:
            log.warning("log_spool_found", entries=left, path=str(self._spool.path))
        self.background.start()

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:  # noqa: ASYNC109
        """Store (or spool) everything queued so far, then stop; a later start replays the spool."""
        self._closing = True
        if not self.background.running:
            return
        # The last round ships what is queued (no replay); it gets `timeout` seconds, then is cancelled.
        await self.background.stop(grace=timeout)
        if self._queue:
            # The store hung past the timeout: what is left goes to disk, not away.
            self.store_up = False
            await self._pump(replay=False)

    async def flush(self) -> None:
        """Ship everything queued now, and replay the spool if the store answers (tests, shutdown)."""
        await self._pump(replay=True, force=True)

    async def _ship(self) -> None:
        await self._pump(replay=not self._closing)

    async def _pump(self, *, replay: bool, force: bool = False) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            if self._spool.pending and replay and (force or loop.time() >= self._retry_at):
                await self._replay()
            while self._queue:
                docs = [
                    self._document(self._queue.popleft())
                    for _ in range(min(len(self._queue), self._batch_size))
                ]
                if self._spool.pending or not self.store_up or not await self._insert(docs):
                    await self._to_spool(docs)
            if not self.store_up and not self._spool.pending and (force or loop.time() >= self._retry_at):
                await self._probe()

    def _document(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        try:
            doc = entry_document(entry, node=self._node)
        except Exception as exc:  # an entry we cannot read is kept as text rather than lost
            doc = entry_document(
                {"event": "unreadable_log_entry", "entry": plain(repr(entry))}, node=self._node
            )
            doc["data"]["error"] = repr(exc)
        doc["_id"] = self._ids.next(doc["time"])
        return doc

    async def _insert(self, docs: list[dict[str, Any]]) -> bool:
        try:
            if not self._prepared:
                await self._store.prepare()
                self._prepared = True
            await self._store.insert(docs)
        except Exception as exc:
            self._down(exc)
            return False
        self.shipped += len(docs)
        return True

    async def _to_spool(self, docs: list[dict[str, Any]]) -> None:
        written = await asyncio.to_thread(self._spool.append, docs)
        self.spooled += written
        self.dropped += len(docs) - written

    async def _replay(self) -> None:
        """Store the spool's batches oldest first; stop at the first failure and keep the rest."""
        while self._spool.pending:
            docs, offset, used = await asyncio.to_thread(self._spool.read, self._batch_size)
            if not used:  # nothing readable is left (a torn last line): the spool is done
                await asyncio.to_thread(self._spool.commit, offset, self._spool.pending)
                break
            if docs and not await self._insert(docs):
                return
            await asyncio.to_thread(self._spool.commit, offset, used)
            self.replayed += len(docs)
        self._up()

    async def _probe(self) -> None:
        try:
            await self._store.prepare()
        except Exception as exc:
            self._down(exc)
            return
        self._prepared = True
        self._up()

    def _down(self, exc: Exception) -> None:
        self.failures += 1
        self._retry_at = asyncio.get_running_loop().time() + self._retry_interval
        if self.store_up:
            self.store_up = False
            log.warning("log_store_down", error=f"{type(exc).__name__}: {exc}", spool=str(self._spool.path))

    def _up(self) -> None:
        if not self.store_up:
            self.store_up = True
            log.info("log_store_back", replayed=self.replayed)
