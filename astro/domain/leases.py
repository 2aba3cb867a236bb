"""Ownership of a launch among several nodes (DESIGN 8.5): a lease with a fencing epoch.

A node owns a launch while its lease on it is unexpired; it takes only a lease that is free (expired) or
its own, and every take increments the launch's epoch. Every write of the launch's actor carries the epoch
it took (its `Fence`); the database refuses a write whose epoch is no longer the current one, so an owner
that lost its lease (paused, partitioned, slow) can never commit over its successor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from astro.domain.errors import Unavailable

LEASE: Final = 5.0  # seconds a lease lasts unless renewed (ASTRO_LEASE_SECONDS)


@dataclass(frozen=True, slots=True)
class Owner:
    """One run of a node: its name, this process's own id (a restarted node is a new holder), and the URL
    other nodes forward its launches' requests to."""

    node: str
    holder: str
    url: str


@dataclass(frozen=True, slots=True)
class Fence:
    """The epoch under which a launch's actor writes: its lease's, taken when the actor started."""

    launch_id: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Lease:
    """The owner of a launch as stored: who holds it, under which epoch, and where it is reached."""

    launch_id: str
    epoch: int
    node: str
    holder: str
    url: str


class OwnedElsewhere(Unavailable):
    """Another node holds the launch's lease: its requests go there (`lease.url`). A client sees it only
    when forwarding failed: a 503 to retry."""

    def __init__(self, lease: Lease) -> None:
        super().__init__("the launch is being moved between nodes; try again", retry_after=1)
        self.lease = lease


class Fenced(Unavailable):
    """A write carried an epoch that is no longer the launch's: another node took it over. Nothing was
    written; the actor stops and the request may be retried (it goes to the new owner)."""

    def __init__(self, launch_id: str) -> None:
        super().__init__(
            f"launch {launch_id} moved to another node while this request was handled; nothing was "
            "changed; try again",
            retry_after=1,
        )
        self.launch_id = launch_id
