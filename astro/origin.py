"""Where a change comes from: service, user, request, node and path (api, actor, sync or system)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

Via = Literal["api", "actor", "sync", "system"]


@dataclass(frozen=True, slots=True)
class Origin:
    service: str
    via: Via
    node: str = ""
    user_id: str | None = None
    request_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        # By hand, not dataclasses.asdict (which deep-copies): it runs for every booking committed.
        return {
            "service": self.service,
            "via": self.via,
            "node": self.node,
            "user_id": self.user_id,
            "request_id": self.request_id,
        }

    def through(self, via: Via) -> Origin:
        """The same request, carried on by an actor or a worker."""
        return replace(self, via=via)


SYSTEM = Origin(service="system", via="system")
_current: contextvars.ContextVar[Origin] = contextvars.ContextVar("astro_origin", default=SYSTEM)


def current() -> Origin:
    return _current.get()


def set_current(origin: Origin) -> None:
    """Set the origin for the rest of this task (a request handler, an actor handling a message)."""
    _current.set(origin)


@contextmanager
def acting_as(origin: Origin) -> Iterator[None]:
    token = _current.set(origin)
    try:
        yield
    finally:
        _current.reset(token)
