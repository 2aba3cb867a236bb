"""Routing between nodes (DESIGN 8.5): a launch's requests are handled by the node that owns it.

`routed(launch_of)` wraps a handler that changes a launch (book, cancel, status change). When another node
holds the launch's lease, the request is forwarded to it over internal HTTP (a keep-alive pool), signed with
the cluster key, and its answer returned as it is: a client may talk to any node and never sees which one
owns what. Otherwise the handler runs here, and its launch actor takes the lease; when it finds the lease
taken meanwhile (OwnedElsewhere), the request is forwarded then.

A forwarded request is never forwarded again: the node it reaches handles it or answers 503 (the launch
is moving; retry). The signature covers the method, the path, the body and a timestamp; a request with a
missing, wrong or stale one is treated as any client's (routed again), so the header grants nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Final

import aiohttp
import structlog
from aiohttp import web

from astro.domain.errors import Unavailable
from astro.domain.leases import Lease, OwnedElsewhere
from web.keys import DESK, FORWARDER

log = structlog.get_logger("astro.cluster")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LaunchOf = Callable[[web.Request], Awaitable[str | None]]

BY: Final = "X-Astro-Forwarded-By"
AT: Final = "X-Astro-Forwarded-At"
SIGNATURE: Final = "X-Astro-Forward-Signature"
_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SKEW: Final = 60.0  # seconds a signature stays valid (clocks of the nodes may differ a little)
# What a forwarded request takes along, and what its answer brings back.
REQUEST_HEADERS: Final = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id", "Accept")
RESPONSE_HEADERS: Final = ("Content-Type", "Retry-After", "Idempotent-Replayed", "WWW-Authenticate")


class Forwarder:
    """Sends a request on to the node that owns its launch; one keep-alive pool for all of them."""

    def __init__(self, node: str, key: bytes, session: aiohttp.ClientSession, timeout: float) -> None:
        self.node = node
        self._key = key
        self._session = session
        # A node that is gone refuses the connection at once; one that is paused accepts it and stays
        # silent: the total bounds that (the client gets a 503 to retry, by then on the new owner).
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=2)

    def sign(self, at: str, by: str, method: str, path: str, body: bytes) -> str:
        message = f"{at}\n{by}\n{method}\n{path}\n".encode() + body
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    async def is_forwarded(self, request: web.Request) -> bool:
        """Did another node of this platform send this request on (a valid, recent signature)?"""
        signature, at, by = request.headers.get(SIGNATURE), request.headers.get(AT), request.headers.get(BY)
        if not (signature and at and by):
            return False
        try:
            sent = float(at)
        except ValueError:
            return False
        if abs(time.time() - sent) > MAX_SKEW:
            return False
        expected = self.sign(at, by, request.method, request.path_qs, await request.read())
        return hmac.compare_digest(expected, signature)

    async def forward(self, request: web.Request, lease: Lease) -> web.Response:
        """The owner's answer to this request; 503 when the owner cannot be reached."""
        body = await request.read()
        at = f"{time.time():.3f}"
        headers = {name: request.headers[name] for name in REQUEST_HEADERS if name in request.headers}
        headers[BY], headers[AT] = self.node, at
        headers[SIGNATURE] = self.sign(at, self.node, request.method, request.path_qs, body)
        try:
            async with self._session.request(
                request.method, lease.url + request.path_qs, data=body, headers=headers, timeout=self._timeout
            ) as answer:
                payload = await answer.read()
                kept = {name: answer.headers[name] for name in RESPONSE_HEADERS if name in answer.headers}
                return web.Response(body=payload, status=answer.status, headers=kept)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("forward_failed", launch_id=lease.launch_id, node=lease.node, error=repr(exc))
            # The owner may be gone: its lease expires within a lease's length, then any node takes over.
            raise Unavailable(
                f"the node serving this launch ({lease.node}) does not answer; try again shortly",
                retry_after=max(1, math.ceil(self._timeout.total or 1)),
            ) from None


def routed(launch_of: LaunchOf) -> Callable[[Handler], Handler]:
    """Handle the request on the node that owns its launch (see the module's docstring)."""

    def wrap(handler: Handler) -> Handler:
        async def route(request: web.Request) -> web.StreamResponse:
            forwarder = request.app[FORWARDER]
            if await forwarder.is_forwarded(request):
                return await handler(request)  # never forwarded twice: here, or 503 (OwnedElsewhere)
            launch_id = await launch_of(request)
            if launch_id is not None:
                lease = await request.app[DESK].elsewhere(launch_id)
                if lease is not None:
                    return await forwarder.forward(request, lease)
            try:
                return await handler(request)
            except OwnedElsewhere as moved:  # taken by another node between the look and the start
                return await forwarder.forward(request, moved.lease)

        route.__name__ = handler.__name__
        route.__doc__ = handler.__doc__
        route.__dict__.update(handler.__dict__)
        return route

    return wrap


def _id(value: object) -> str | None:
    """An id as this platform gives them out, else None: the handler then refuses the request itself."""
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


async def launch_in_body(request: web.Request) -> str | None:
    """The launch a booking request names."""
    try:
        data = json.loads(await request.read())
    except ValueError:
        return None
    return _id(data.get("launch_id")) if isinstance(data, dict) else None


async def launch_in_path(request: web.Request) -> str | None:
    return _id(request.match_info.get("id"))


async def launch_of_booking(request: web.Request) -> str | None:
    booking_id = _id(request.match_info.get("id"))
    return None if booking_id is None else await request.app[DESK].launch_of_booking(booking_id)
