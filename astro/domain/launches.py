"""Rockets and launches: ranges, the status machine, occupancy and slugs."""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from astro.domain.errors import Conflict, RuleViolation


class Range(enum.StrEnum):
    LOW_EARTH = "low_earth"
    MOON = "moon"
    MARS = "mars"


# How people name a destination on its own ("Destination: Moon") and after "to" in a sentence
# ("New launch: Artemis IV to the Moon"); the apps label them alike (web/static/common/format.js).
DESTINATION_LABELS: Final = {Range.LOW_EARTH: "Low Earth orbit", Range.MOON: "Moon", Range.MARS: "Mars"}
DESTINATION_PHRASES: Final = {Range.LOW_EARTH: "Low Earth orbit", Range.MOON: "the Moon", Range.MARS: "Mars"}


def destination_phrase(destination: str) -> str:
    """A destination as it reads after "to": 'moon' -> 'the Moon' (an unknown one as it is)."""
    try:
        return DESTINATION_PHRASES[Range(destination)]
    except ValueError:
        return destination


# A rocket reaches its own range and every nearer destination.
REACH: Final = {Range.LOW_EARTH: 0, Range.MOON: 1, Range.MARS: 2}


class Status(enum.StrEnum):
    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    DELAYED = "delayed"
    ABORTED = "aborted"
    SUCCESSFUL = "successful"
    FAILED = "failed"


FINAL: Final = frozenset({Status.ABORTED, Status.SUCCESSFUL, Status.FAILED})
OPEN: Final = frozenset({Status.SCHEDULED, Status.CONFIRMED, Status.DELAYED})
# DESIGN 5: which status may follow which, by the agency's hand.
TRANSITIONS: Final[dict[Status, frozenset[Status]]] = {
    Status.SCHEDULED: frozenset({Status.CONFIRMED, Status.DELAYED, Status.ABORTED}),
    Status.CONFIRMED: frozenset({Status.DELAYED, Status.ABORTED, Status.SUCCESSFUL, Status.FAILED}),
    Status.DELAYED: frozenset({Status.DELAYED, Status.ABORTED, Status.SUCCESSFUL, Status.FAILED}),
    Status.ABORTED: frozenset(),
    Status.SUCCESSFUL: frozenset(),
    Status.FAILED: frozenset(),
}
REFUND_ALL: Final = frozenset({Status.ABORTED, Status.FAILED})


def check_destination(rocket_range: Range, destination: Range) -> None:
    if REACH[destination] > REACH[rocket_range]:
        raise RuleViolation(
            f"a {rocket_range.value} rocket cannot fly to {destination.value}",
            {"fields": {"destination": "beyond the rocket's range"}},
            code="out_of_range",
        )


def check_transition(
    current: Status,
    target: Status,
    *,
    now: datetime,
    scheduled_at: datetime,
    new_scheduled_at: datetime | None,
) -> None:
    """Raise unless the agency may move a launch from `current` to `target` now."""
    if target not in TRANSITIONS[current]:
        allowed = sorted(s.value for s in TRANSITIONS[current])
        raise Conflict(
            f"a {current.value} launch cannot become {target.value}",
            {"status": current.value, "allowed": allowed},
            code="invalid_transition",
        )
    if target is Status.DELAYED:
        if new_scheduled_at is None:
            raise RuleViolation(
                "a delay needs the new scheduled_at",
                {"fields": {"scheduled_at": "required"}},
                code="date_in_past",
            )
        if new_scheduled_at <= scheduled_at or new_scheduled_at <= now:
            raise RuleViolation(
                "the new scheduled_at must be later than the current one and in the future",
                {"fields": {"scheduled_at": "not later"}, "scheduled_at": scheduled_at.isoformat()},
                code="date_in_past",
            )
    if target in (Status.SUCCESSFUL, Status.FAILED) and now < scheduled_at:
        raise RuleViolation(
            f"a launch cannot be {target.value} before its scheduled time",
            {"scheduled_at": scheduled_at.isoformat()},
            code="too_early",
        )


@dataclass(frozen=True, slots=True)
class Occupancy:
    capacity: int
    seats_booked: int
    min_passengers: int
    # Seats under a waiting-list offer (its traveler's alone, paying for them or not): not available.
    seats_offered: int = 0

    @property
    def seats_available(self) -> int:
        """What anyone may book: capacity less sold and offered seats (held ones, 30 s of intent kept in
        the launch actor's memory, are not counted: they are free again unless paid for)."""
        return self.capacity - self.seats_booked - self.seats_offered

    @property
    def viable(self) -> bool:
        """Enough passengers to fly: a scheduled launch is confirmed when it gets there."""
        return self.seats_booked >= self.min_passengers

    def as_dict(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "seats_booked": self.seats_booked,
            "seats_available": self.seats_available,
            "occupancy_pct": round(100 * self.seats_booked / self.capacity, 1) if self.capacity else 0.0,
            "min_passengers": self.min_passengers,
            "viable": self.viable,
        }


def slugify(rocket_name: str, destination: str, scheduled_at: datetime) -> str:
    """A readable slug: rocket, destination and date, e.g. `falcon-x-moon-2027-03-01`."""
    ascii_name = unicodedata.normalize("NFKD", rocket_name).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "rocket"
    return f"{name[:40]}-{destination.replace('_', '-')}-{scheduled_at.date().isoformat()}"
