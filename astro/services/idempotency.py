"""Idempotency-Key records: the port through which a keyed POST's first answer is kept and replayed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from astro.domain.errors import Conflict

RETRY_AFTER: Final = 5  # seconds a client waits before asking again about a key in progress


class InProgress(Conflict):
    """409 idempotency_in_progress: the first request with this key has not answered yet."""

    code = "idempotency_in_progress"

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still in progress; retry shortly")
        self.retry_after = RETRY_AFTER


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The first answer to a keyed request: replayed as it was to every retry with the same body."""

    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class InFlight:
    """The first request with this key has not answered (yet, or ever: it may have died); what it
    started, a payment attempt, says what came of it."""

    attempt_id: str | None


class IdempotencyStore(Protocol):
    """Records kept 24 hours (DESIGN 6), by caller and key."""

    async def begin(self, user_id: str, key: str, request_hash: str) -> StoredResponse | InFlight | None:
        """Claim the key (None: go ahead), the first answer, or InFlight; refuse another body. A key whose
        request died before starting anything (no attempt, no sign of life for a minute) is taken over."""
        ...

    async def restart(self, user_id: str, key: str, attempt_id: str) -> bool:
        """Take over a key whose request's attempt ended without its booking: the retry runs afresh
        (False: someone else took it over first)."""
        ...

    async def sweep(self) -> int:
        """Forget records older than 24 hours; how many."""
        ...

    async def finish(self, user_id: str, key: str, status: int, body: bytes) -> None:
        """Keep the answer given."""
        ...

    async def abandon(self, user_id: str, key: str) -> None:
        """Forget the key so the client can retry (the request failed on our side before it started any
        payment: a key tied to an attempt stays, the attempt decides)."""
        ...
