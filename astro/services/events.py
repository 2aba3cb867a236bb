"""Live events: what changed, for which channel; published after the change is committed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Event:
    """One live event for one channel; `coalesce` lets a newer event replace an unsent older one."""

    channel: str
    event: str
    data: dict[str, Any]
    coalesce: str | None = None


class Outbox(Protocol):
    """Publishes events and refreshes the cached launch card, in order, without blocking the caller."""

    def emit(self, events: list[Event], launch: dict[str, Any] | None) -> None: ...
