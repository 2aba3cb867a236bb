"""Live events: what changed, for which channel; published after the change is committed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One live event for one channel; `coalesce` lets a newer event replace an unsent older one."""

    channel: str
    event: str
    data: dict[str, Any]
    coalesce: str | None = None


class LiveFeed(Protocol):
    """Publishes live events and refreshes the cached launch card (when given), in order, without blocking
    the caller."""

    def emit(self, events: list[LiveEvent], card: dict[str, Any] | None) -> None: ...


# The live channels (DESIGN 7): one launch's, the public list's, an agency's and a traveler's.
LAUNCHES = "launches"


def launch_channel(launch_id: str) -> str:
    return f"launch:{launch_id}"


def agency_channel(agency_user_id: str) -> str:
    return f"agency:{agency_user_id}"


def traveler_channel(traveler_user_id: str) -> str:
    return f"traveler:{traveler_user_id}"
