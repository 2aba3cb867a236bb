"""The metric sampler: every interval, the platform's key figures become SystemMetric samples.

Figures come from a `read` function (the web layer reads them from its Prometheus registry);
counters (names ending `_total`) also give a `_per_second` rate since the previous sample. When the
store does not answer, that round's samples are lost (logged once): they are a trend, not a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

log = structlog.get_logger("astro.monitor")

Figure = tuple[str, float, dict[str, str]]


class SampleStore(Protocol):
    async def insert(self, samples: list[dict[str, Any]]) -> None: ...


def rate_name(name: str) -> str:
    return name.removesuffix("_total") + "_per_second"


class MetricSampler:
    """One task: sample, store, sleep; see the module docstring."""

    def __init__(
        self,
        read: Callable[[], list[Figure]],
        store: SampleStore,
        *,
        node: str,
        interval: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._store = store
        self._node = node
        self._interval = interval
        self._now = now
        self._clock = clock
        self._previous: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._store_up = True
        self.written = 0
        self.failed = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metric-sampler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def sample(self) -> list[dict[str, Any]]:
        """This moment's samples, with rates of the counters since the previous call."""
        moment = self._now()
        clock = self._clock()
        samples: list[dict[str, Any]] = []
        for name, value, labels in self._read():
            samples.append(self._doc(moment, name, value, labels))
            if not name.endswith("_total"):
                continue
            key = (name, tuple(sorted(labels.items())))
            before = self._previous.get(key)
            self._previous[key] = (clock, value)
            if before is not None and clock > before[0]:
                # A counter that went down was reset (a restart): count from zero.
                delta = value - before[1] if value >= before[1] else value
                samples.append(self._doc(moment, rate_name(name), delta / (clock - before[0]), labels))
        return samples

    async def sample_and_store(self) -> int:
        samples = self.sample()
        try:
            await self._store.insert(samples)
        except Exception as exc:
            self.failed += len(samples)
            if self._store_up:
                self._store_up = False
                log.warning("metric_store_down", error=f"{type(exc).__name__}: {exc}")
            return 0
        if not self._store_up:
            self._store_up = True
            log.info("metric_store_back")
        self.written += len(samples)
        return len(samples)

    def _doc(self, moment: datetime, name: str, value: float, labels: dict[str, str]) -> dict[str, Any]:
        return {"time": moment, "name": name, "value": float(value), "labels": labels, "node": self._node}

    async def _run(self) -> None:
        while True:
            try:
                await self.sample_and_store()
            except Exception as exc:  # a figure that cannot be read must not end sampling
                log.error("metric_sample_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self._interval)
