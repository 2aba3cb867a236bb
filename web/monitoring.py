"""Monitoring wiring: the log shipper and the metric sampler as cleanup contexts, platform metrics.

`setup_monitoring(app)` registers a Prometheus collector that reads actors, pools and the shipper at scrape
time. The shipper's and the sampler's contexts are listed, first and last, in web/resources.py.
"""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any, Final

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.log_shipper import LogShipper
from actors.metric_sampler import Figure, MetricSampler
from astro.services.monitor import EntryLogReader, MetricSampleReader
from web.clients import PG_POOL, REDIS
from web.keys import ACTORS, REGISTRY

log = structlog.get_logger("astro.actors")

LOG_SHIPPER = web.AppKey("log_shipper", LogShipper)
ENTRY_LOGS: Final[web.AppKey[EntryLogReader]] = web.AppKey("entry_logs")
METRIC_SAMPLES: Final[web.AppKey[MetricSampleReader]] = web.AppKey("metric_samples")
SAMPLER = web.AppKey("metric_sampler", MetricSampler)


class ActorMetrics:
    """Counts of the actor runtime's life-cycle events."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.starts = Counter("astro_actor_starts", "Actors started (first use)", registry=registry)
        self.restarts = Counter("astro_actor_restarts", "Actors restarted after a crash", registry=registry)
        self.crashes = Counter("astro_actor_crashes", "Actor crashes", registry=registry)
        self.passivations = Counter(
            "astro_actor_passivations", "Actors passivated when idle", registry=registry
        )
        self.failures = Counter(
            "astro_actor_failures", "Actors that failed to start or gave up restarting", registry=registry
        )

    def count(self, event: str) -> None:
        counter = {
            "started": self.starts,
            "restarted": self.restarts,
            "crashed": self.crashes,
            "passivated": self.passivations,
            "start_failed": self.failures,
            "gave_up": self.failures,
        }.get(event)
        if counter is not None:
            counter.inc()


ACTOR_METRICS = web.AppKey("actor_metrics", ActorMetrics)
# The runtime logs these itself, with the error; the hook only counts them.
_LOGGED_BY_RUNTIME: Final = frozenset({"crashed", "start_failed", "gave_up"})


def actor_events(app: web.Application) -> Callable[[str, str, dict[str, Any]], None]:
    """The ActorSystem's on_event hook: count every event and log it."""
    metrics = app[ACTOR_METRICS]

    def on_event(event: str, key: str, info: dict[str, Any]) -> None:
        metrics.count(event)
        if event in _LOGGED_BY_RUNTIME:
            return
        fields: dict[str, str | None] = {k: str(v) for k, v in info.items()}
        if event != "started":
            # The actor's task was started inside some request; only its start belongs to that request.
            fields.update(request_id=None, user_id=None)
        log.info(f"actor_{event}", actor=key, **fields)

    return on_event


def setup_monitoring(app: web.Application) -> None:
    """Monitoring for this app: the actor counters and the figures read at scrape time."""
    registry = app[REGISTRY]
    app[ACTOR_METRICS] = ActorMetrics(registry)
    registry.register(PlatformCollector(app))


# -- figures -------------------------------------------------------------------------------------

# Prometheus family → the SystemMetric name it is sampled as (summed over labels, unless one is named).
SAMPLED: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "astro_http_requests": ("http_requests_total", {}),
    "astro_bookings_accepted": ("bookings_accepted_total", {}),
    "astro_bookings_refused": ("bookings_refused_total", {}),
    "astro_actors_active": ("actors_active", {}),
    "astro_actor_mailbox_depth": ("actor_mailbox_depth", {}),
    "astro_actor_restarts": ("actor_restarts_total", {}),
    "astro_ws_connections": ("ws_connections", {}),
    "astro_pg_pool_size": ("pg_pool_size", {}),
    "astro_pg_pool_idle": ("pg_pool_free", {}),
    "astro_redis_pool_connections": ("redis_pool_in_use", {"state": "in_use"}),
    "astro_log_shipper_backlog": ("log_shipper_backlog", {}),
    "astro_log_shipper_dropped": ("log_shipper_dropped_total", {}),
    "astro_process_resident_memory_bytes": ("process_resident_memory_bytes", {}),
}


def read_figures(registry: CollectorRegistry) -> list[Figure]:
    """The sampled figures, read from the same registry `/metrics` shows."""
    totals: dict[str, float] = {}
    for metric in registry.collect():
        spec = SAMPLED.get(metric.name)
        if spec is None:
            continue
        name, wanted = spec
        totals.setdefault(name, 0.0)
        for sample in metric.samples:
            if metric.type == "counter" and not sample.name.endswith("_total"):
                continue  # the _created timestamps
            if all(sample.labels.get(k) == v for k, v in wanted.items()):
                totals[name] += sample.value
    return [(name, value, {}) for name, value in sorted(totals.items())]


class PlatformCollector(Collector):
    """Figures read at scrape time: actors, database pools, the log shipper, the sampler, memory."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        for part in (self._actors, self._pools, self._shipper, self._process):
            try:
                yield from part()
            except Exception as exc:  # one broken figure must not cost the whole scrape
                structlog.get_logger("astro.monitor").error(
                    "metrics_collect_failed", part=part.__name__, error=f"{type(exc).__name__}: {exc}"
                )

    def _actors(self) -> Iterator[Metric]:
        active = GaugeMetricFamily("astro_actors_active", "Live actors, by kind", labels=["kind"])
        depth = GaugeMetricFamily(
            "astro_actor_mailbox_depth", "Messages waiting in actor mailboxes, by kind", labels=["kind"]
        )
        counts: collections.Counter[str] = collections.Counter({"launch": 0})
        queued: collections.Counter[str] = collections.Counter({"launch": 0})
        system = self._app.get(ACTORS)
        if system is not None:
            for key, waiting in system.mailbox_depths().items():
                kind = key.partition(":")[0]
                counts[kind] += 1
                queued[kind] += waiting
        for kind in sorted(counts):
            active.add_metric([kind], counts[kind])
            depth.add_metric([kind], queued[kind])
        yield active
        yield depth

    def _pools(self) -> Iterator[Metric]:
        size = GaugeMetricFamily("astro_pg_pool_size", "PostgreSQL connections open in the pool")
        idle = GaugeMetricFamily("astro_pg_pool_idle", "PostgreSQL connections open and free")
        top = GaugeMetricFamily("astro_pg_pool_max", "PostgreSQL pool size limit")
        pool = self._app.get(PG_POOL)
        for family, value in (
            (size, pool.get_size() if pool else 0),
            (idle, pool.get_idle_size() if pool else 0),
            (top, pool.get_max_size() if pool else 0),
        ):
            family.add_metric([], value)
            yield family
        conns = GaugeMetricFamily(
            "astro_redis_pool_connections", "Redis connections open, by state", labels=["state"]
        )
        limit = GaugeMetricFamily("astro_redis_pool_max", "Redis pool size limit")
        redis = self._app.get(REDIS)
        rpool = redis.connection_pool if redis is not None else None
        conns.add_metric(["in_use"], len(getattr(rpool, "_in_use_connections", ())))
        conns.add_metric(["idle"], len(getattr(rpool, "_available_connections", ())))
        limit.add_metric([], getattr(rpool, "max_connections", 0) or 0)
        yield conns
        yield limit

    def _shipper(self) -> Iterator[Metric]:
        shipper = self._app.get(LOG_SHIPPER)
        sampler = self._app.get(SAMPLER)
        gauges = (
            ("astro_log_shipper_backlog", "Log entries not stored yet (queued and spooled)", "backlog"),
            ("astro_log_shipper_queued", "Log entries waiting in memory", "queued"),
            ("astro_log_shipper_spool_pending", "Log entries waiting in the spool file", "spool_pending"),
            ("astro_log_store_up", "1 while the entry log store answers", "store_up"),
        )
        for name, text, attr in gauges:
            yield GaugeMetricFamily(name, text, value=float(getattr(shipper, attr, 0)))
        counters = (
            ("astro_log_shipper_shipped", "Log entries stored", "shipped"),
            (
                "astro_log_shipper_spooled",
                "Log entries written to the spool while the store was down",
                "spooled",
            ),
            ("astro_log_shipper_replayed", "Spooled log entries stored later", "replayed"),
            ("astro_log_shipper_dropped", "Log entries lost: queue or spool full", "dropped"),
        )
        for name, text, attr in counters:
            yield CounterMetricFamily(name, text, value=float(getattr(shipper, attr, 0)))
        yield CounterMetricFamily(
            "astro_metric_samples_written",
            "SystemMetric samples stored",
            value=float(getattr(sampler, "written", 0)),
        )

    def _process(self) -> Iterator[Metric]:
        rss = 0
        with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        yield GaugeMetricFamily(
            "astro_process_resident_memory_bytes", "Resident memory of this process", value=rss
        )
