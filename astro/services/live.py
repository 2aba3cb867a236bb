"""Live events: what changed, for which channel; published after the change is committed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


# The public list as VIP travelers see it: every event of `launches`, and those of launches still in their
# VIP window (before `public_from`), which the public list must not carry.
LAUNCHES_VIP = "launches:vip"


def launches_channels(public_from: datetime, now: datetime) -> list[str]:
    """The list channels an event of a launch goes to: VIP only before `public_from`, then both."""
    return [LAUNCHES_VIP] if now < public_from else [LAUNCHES, LAUNCHES_VIP]


@dataclass(frozen=True, slots=True)
class SignedOut:
    """A user (every token of theirs) or one token signed out: their live sessions end on every node."""

    user_id: str | None
    jti: str | None
