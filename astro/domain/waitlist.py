"""A launch's waiting list: entries in joining order, the offers made to them, and the change to store.

The Launch aggregate (astro.domain.launch) owns it and counts offered seats beside sold and held ones;
this module holds the list's own rules: who is offered freed seats, and where each entry stands."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from astro.domain.errors import Conflict, NotFound
from astro.domain.events import SeatsOffered, WaitingPosition

WAITING: Final = "waiting"
OFFERED: Final = "offered"
# Every status an entry can have; waiting and offered ones are on the list, the others are history.
STATUSES: Final = ("waiting", "offered", "booked", "expired", "left", "closed")


class AlreadyWaiting(Conflict):
    """The traveler is on this launch's waiting list already (one entry per traveler and launch)."""

    code = "already_waiting"

    def __init__(self, entry_id: str) -> None:
        super().__init__("you are on this launch's waiting list already", {"entry_id": entry_id})


class SeatsAvailable(Conflict):
    """Seats enough for the party are free: book them instead of joining the waiting list."""

    code = "seats_available"

    def __init__(self, free: int, seats: int) -> None:
        super().__init__(
            f"{free} seat{'' if free == 1 else 's'} free: book them instead of joining the waiting list",
            {"seats_available": free, "seats_requested": seats},
        )


class NotWaiting(NotFound):
    """The traveler has no entry on this launch's waiting list."""

    def __init__(self) -> None:
        super().__init__("you are not on this launch's waiting list")


@dataclass(slots=True)
class Entry:
    """One traveler's place on the list: waiting, or offered seats until `offer_expires_at`."""

    id: str
    traveler_id: str
    seats: int
    joined_at: datetime
    offer_expires_at: datetime | None = None
    # While the traveler books the offered seats: the hold, and how many of its seats are the offer's.
    hold_id: str | None = None
    from_offer: int = 0

    @property
    def offered(self) -> bool:
        return self.offer_expires_at is not None

    @property
    def status(self) -> str:
        return OFFERED if self.offered else WAITING


@dataclass(frozen=True, slots=True)
class WaitlistChange:
    """What one step of the launch actor changed on the list, written in the step's transaction."""

    joined: Entry | None = None
    left: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()
    offers: tuple[SeatsOffered, ...] = ()
    booked: tuple[tuple[str, str], ...] = ()  # (entry id, booking id): offers used by these bookings
    closed: bool = False

    def __bool__(self) -> bool:
        return bool(self.joined or self.left or self.expired or self.offers or self.booked or self.closed)

    def merged(self, other: WaitlistChange) -> WaitlistChange:
        return WaitlistChange(
            joined=self.joined or other.joined,
            left=self.left + other.left,
            expired=self.expired + other.expired,
            offers=self.offers + other.offers,
            booked=self.booked + other.booked,
            closed=self.closed or other.closed,
        )


@dataclass(slots=True)
class Waitlist:
    """The entries on the list (waiting or offered), in joining order."""

    entries: list[Entry] = field(default_factory=list)

    def of(self, traveler_id: str) -> Entry | None:
        return next((e for e in self.entries if e.traveler_id == traveler_id), None)

    def get(self, entry_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def remove(self, entry: Entry) -> None:
        self.entries.remove(entry)

    def restore(self, entry: Entry) -> None:
        """Put back an entry taken off by a step that did not commit, in its joining order."""
        self.entries.append(entry)
        self.entries.sort(key=lambda e: (e.joined_at, e.id))

    def waiting(self) -> list[Entry]:
        return [e for e in self.entries if not e.offered]

    def offers(self) -> list[Entry]:
        return [e for e in self.entries if e.offered]

    def fitting(self, free: int) -> list[Entry]:
        """The waiting entries the free seats go to: the first ones whose party fits, in joining order. A
        party too large for what is left keeps its place; smaller ones behind it may take those seats."""
        chosen = []
        for entry in self.waiting():
            if entry.seats <= free:
                chosen.append(entry)
                free -= entry.seats
            if free == 0:
                break
        return chosen

    def positions(self) -> dict[str, WaitingPosition]:
        """Each entry's place: waiting ones numbered from 1 in joining order, offered ones unnumbered."""
        out: dict[str, WaitingPosition] = {}
        position = 0
        for e in self.entries:
            if not e.offered:
                position += 1
            out[e.id] = WaitingPosition(e.id, e.traveler_id, e.status, None if e.offered else position)
        return out

    def close(self) -> list[Entry]:
        """The launch ended: every entry leaves the list; the ones it held are returned."""
        closed, self.entries = self.entries, []
        return closed
