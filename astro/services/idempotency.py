"""Idempotency-Key records: the port through which a keyed POST's first answer is kept and replayed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The first answer to a keyed request: replayed as it was to every retry with the same body."""

    status: int
    body: bytes


class IdempotencyStore(Protocol):
    """Records kept 24 hours (DESIGN 6), by caller and key."""

    async def begin(self, user_id: str, key: str, request_hash: str) -> StoredResponse | None:
        """Claim the key (None: go ahead) or the first answer; refuse another body or a race."""
        ...

    async def finish(self, user_id: str, key: str, status: int, body: bytes) -> None:
        """Keep the answer given."""
        ...

    async def abandon(self, user_id: str, key: str) -> None:
        """Forget the key so the client can retry (the first attempt failed on our side)."""
        ...
