"""Prometheus metrics of the web layer, in the app's own registry, and the /metrics endpoint."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from astro.domain.errors import Unauthenticated
from web.keys import REGISTRY, SETTINGS

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """Requests by route template, method and status; latency by route template and method."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "astro_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=registry
        )
        self.latency = Histogram(
            "astro_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

        # Each (route, method, status)'s two series, looked up once: labels() validates and locks on
        # every call, and every request observes.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self._series.get((route, method, status))
        if series is None:
            series = self._series[route, method, status] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
        series[0].inc()
        series[1].observe(seconds)


class BookingMetrics:
    """Bookings accepted, and refused by error code: the BookingObserver the booking desk tells."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter("astro_bookings_accepted", "Bookings accepted", registry=registry)
        self.refused = Counter(
            "astro_bookings_refused", "Bookings refused, by error code", ["reason"], registry=registry
        )

    def booking_accepted(self) -> None:
        self.accepted.inc()

    def booking_refused(self, reason: str) -> None:
        self.refused.labels(reason).inc()


async def prometheus(request: web.Request) -> web.Response:
    """Prometheus text exposition; needs ASTRO_METRICS_TOKEN as a Bearer token when that is set."""
    token = request.app[SETTINGS].metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthenticated("send the metrics token: Authorization: Bearer <ASTRO_METRICS_TOKEN>")
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
