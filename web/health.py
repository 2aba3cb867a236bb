"""GET /health and GET /ready: readiness from cached checks, its details only for IT and the metrics token."""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from aiohttp import web

from astro.config import is_loopback
from astro.domain.errors import DomainError
from astro.domain.users import Role
from web.http import authenticate
from web.keys import PROBES, SETTINGS, Probe

log = structlog.get_logger("astro.web")

READY_TIMEOUT: Final = 2.0
# How long a check's result is reused. SMTP costs a session at the mail provider (TLS and login with
# smtps://), so a flood of /ready calls opens at most one every 30 s; the stores are cheap, but a burst
# still shares one answer.
SMTP_EVERY: Final = 30.0
STORES_EVERY: Final = 1.0


@dataclass
class _Cached:
    result: dict[str, Any]
    at: float


@dataclass
class Readiness:
    """The last result of each probe, and the one check in flight per part that concurrent callers share."""

    probes: dict[str, Probe]
    every: dict[str, float] = field(default_factory=lambda: {"smtp": SMTP_EVERY})
    _cached: dict[str, _Cached] = field(default_factory=dict)
    _running: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    checks: int = 0  # probes actually run (the tests count them)

    async def parts(self) -> dict[str, dict[str, Any]]:
        names = list(self.probes)
        results = await asyncio.gather(*(self._part(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def _part(self, name: str) -> dict[str, Any]:
        cached = self._cached.get(name)
        if cached is not None and time.monotonic() - cached.at < self.every.get(name, STORES_EVERY):
            return cached.result
        running = self._running.get(name)
        if running is None:
            running = self._running[name] = asyncio.ensure_future(self._check(name))
            running.add_done_callback(lambda _: self._running.pop(name, None))
        return await asyncio.shield(running)

    async def _check(self, name: str) -> dict[str, Any]:
        self.checks += 1
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self.probes[name](), READY_TIMEOUT)
        except Exception as exc:
            result = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
            }
        else:
            result = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
        self._cached[name] = _Cached(result, time.monotonic())
        return result


READINESS: Final = web.AppKey("readiness", Readiness)


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: 200 `ready` or 503 `unavailable`; which parts are down only for IT or the metrics token."""
    parts = await request.app[READINESS].parts()
    down = [name for name, part in parts.items() if not part["ok"]]
    body: dict[str, Any] = {"status": "unavailable" if down else "ready"}
    if await _may_see_details(request):
        body |= {"down": down, "parts": parts}
    headers = {"Retry-After": "5"} if down else None
    return web.json_response(body, status=503 if down else 200, headers=headers)


async def _may_see_details(request: web.Request) -> bool:
    """The metrics token, or an IT user's token. Anyone else -- a wrong token too -- sees only the status:
    the parts' errors name hosts and ports."""
    header = request.headers.get("Authorization", "")
    if not header:
        return False
    token = request.app[SETTINGS].metrics_token
    given = header.removeprefix("Bearer ").strip()
    if token is not None and hmac.compare_digest(given.encode(), token.encode()):
        return True
    try:
        return (await authenticate(request)).role is Role.IT
    except DomainError:  # a bad token, or the store that checks it is down: no details, still an answer
        return False


async def warn_when_metrics_are_open(app: web.Application) -> None:
    """on_startup: /metrics without ASTRO_METRICS_TOKEN on an address others reach shows business counters
    to anyone; it stays open (a scraper on the network may rely on it), but the operator is told."""
    settings = app[SETTINGS]
    if settings.metrics_token is None and not is_loopback(settings.host):
        log.warning(
            "metrics_open",
            host=settings.host,
            message=f"/metrics is open to anyone who reaches {settings.host}:{settings.port}; "
            "set ASTRO_METRICS_TOKEN to require a Bearer token",
        )


def setup(app: web.Application) -> None:
    app[READINESS] = Readiness(app[PROBES])
    app.router.add_get("/health", health, allow_head=False)
    app.router.add_get("/ready", ready, allow_head=False)
    app.on_startup.append(warn_when_metrics_are_open)
