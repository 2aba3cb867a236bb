"""The WebSocket's message types, error codes and limits: every `type` and `code` /ws speaks (DESIGN 7)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from astro.domain.errors import DomainError, Forbidden, NotFound, Unauthenticated, Unavailable

# Message types, client -> server
TYPE_AUTH: Final = "auth"
TYPE_SUBSCRIBE: Final = "subscribe"
TYPE_UNSUBSCRIBE: Final = "unsubscribe"
TYPE_PING: Final = "ping"
# Message types, server -> client
TYPE_SUBSCRIBED: Final = "subscribed"
TYPE_EVENT: Final = "event"
TYPE_ERROR: Final = "error"
TYPE_PONG: Final = "pong"

# Error codes: every `error` frame carries one of these
ERR_INVALID_MESSAGE: Final = "invalid_message"
ERR_UNAUTHENTICATED: Final = "unauthenticated"
ERR_FORBIDDEN: Final = "forbidden"
ERR_NOT_FOUND: Final = "not_found"
ERR_UNKNOWN_CHANNEL: Final = "unknown_channel"
ERR_TOO_MANY_SUBSCRIPTIONS: Final = "too_many_subscriptions"
ERR_UNAVAILABLE: Final = "unavailable"
ERR_INTERNAL: Final = "internal"

# Close codes of the server's own (besides 1000, 1001, 1011 and 1013, said where they are used)
CLOSE_SIGNED_OUT: Final = 4401  # the token was revoked (logout) or its user disabled
CLOSE_POLICY: Final = 1008  # too many subscriptions refused: the client is probing
# Why authentication fails when the session must end (an expired token only loses the private channels)
SIGNED_OUT_CODES: Final = frozenset({"token_revoked", "user_disabled"})

# The code of an error frame for a domain error (any other carries its own `code`)
DOMAIN_CODES: Final[tuple[tuple[type[DomainError], str], ...]] = (
    (Unauthenticated, ERR_UNAUTHENTICATED),
    (Forbidden, ERR_FORBIDDEN),
    (NotFound, ERR_NOT_FOUND),
    (Unavailable, ERR_UNAVAILABLE),
)


@dataclass(frozen=True, slots=True)
class WsLimits:
    """Per-connection limits; tests shrink them through app[WS_LIMITS] before the app starts."""

    queue_size: int = 256  # frames waiting to be sent; a reader this far behind is dropped (1013)
    idle_timeout: float | None = 300.0  # seconds without a client frame before the server closes
    heartbeat: float = 20.0  # seconds between server pings
    max_subscriptions: int = 100
    max_message: int = 64 * 1024
