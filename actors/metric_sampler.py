"""The metric sampler: every interval, the platform's key figures become SystemMetric samples.

Figures come from a `read` function (the web layer reads them from its Prometheus registry);
counters (names ending `_total`) also give a `_per_second` rate since the previous sample. When the
store does not answer, that round's samples are lost (logged once): they are a trend, not a record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import structlog

from actors.loop import BackgroundLoop
from astro.domain.clock import Clock, SystemClock

log = structlog.get_logger("astro.monitor")

Figure = tuple[str, float, dict[str, str]]


class SampleStore(Protocol):
    async def insert(self, samples: list[dict[str, Any]]) -> None: ...


def rate_name(name: str) -> str:
    return name.removesuffix("_total") + "_per_second"


class MetricSampler:
    """A background loop: sample, store, wait an interval; see the module docstring."""

    def __init__(
        self,
        read: Callable[[], list[Figure]],
        store: SampleStore,
        *,
        node: str,
        interval: float,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._store = store
        self._node = node
        self._clock = clock or SystemClock()  # the samples' time
        self._monotonic = monotonic  # the rates' time: never jumps
        self._previous: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, float]] = {}
        # A figure that cannot be read must not end sampling: the loop logs it and goes on.
        self.background = BackgroundLoop(
            self.sample_and_store,
            interval=interval,
            name="metric-sampler",
            failed_event="metric_sample_failed",
        )
        self._store_up = True
        self.written = 0
        self.failed = 0

    def start(self) -> None:
        self.background.start()

    async def stop(self) -> None:
        await self.background.stop()

    def sample(self) -> list[dict[str, Any]]:
        """This moment's samples, with rates of the counters since the previous call."""
        moment = self._clock.now()
        clock = self._monotonic()
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
