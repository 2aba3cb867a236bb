"""Monitoring: structlog entries become EntryLog documents; log queries; what the booking desk reports."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

LEVELS: Final = ("debug", "info", "warning", "error", "critical")
# An entry names at most one entity; the most specific id it mentions wins.
ENTITY_KEYS: Final = (
    "booking_id",
    "invoice_id",
    "payment_id",
    "notification_id",
    "job_id",
    "launch_id",
    "rocket_id",
    "agency_id",
    "traveler_id",
)
_RESERVED: Final = frozenset({"event", "level", "timestamp", "logger", "user_id", "request_id"})
MAX_TEXT: Final = 8192  # characters kept of any one string value; a log entry is not a file store
MAX_DEPTH: Final = 6
ID_TIME_DIGITS: Final = 17  # microseconds since the epoch, zero-padded: ids sort by time
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class BookingObserver(Protocol):
    """Told by the booking desk about every booking it decides: accepted, or refused with the error code."""

    def booking_accepted(self) -> None: ...
    def booking_refused(self, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Filters of the IT log API; every given filter must match."""

    levels: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    user_id: str | None = None
    entity_id: str | None = None
    request_id: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def id_floor(moment: datetime) -> str:
    """The smallest entry id at or after this moment (ids start with the entry's time)."""
    micros = (moment - EPOCH) // timedelta(microseconds=1)
    return f"{max(micros, 0):0{ID_TIME_DIGITS}d}"


def time_of_id(entry_id: str) -> datetime:
    """The time an entry id starts with; ValueError when it is not an entry id."""
    if len(entry_id) < ID_TIME_DIGITS or not entry_id[:ID_TIME_DIGITS].isdigit():
        raise ValueError(f"not an entry id: {entry_id!r}")
    return EPOCH + timedelta(microseconds=int(entry_id[:ID_TIME_DIGITS]))


class EntryIds:
    """Unique ids that sort by time, then by the order entries were made in this process."""

    def __init__(self) -> None:
        self._instance = secrets.token_hex(4)
        self._seq = itertools.count()

    def next(self, moment: datetime) -> str:
        return f"{id_floor(moment)}-{self._instance}-{next(self._seq):010d}"


def service_of(logger: object) -> str:
    """`astro.web` → `web`; other loggers keep their name."""
    name = str(logger) if logger else "astro"
    return name.removeprefix("astro.") if name != "astro" else name


def plain(value: Any, depth: int = 0) -> Any:
    """A value MongoDB and JSON can both hold: long strings cut, unknown objects as text."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if depth >= MAX_DEPTH:
        return plain(repr(value), depth)
    if isinstance(value, Mapping):
        return {_key(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v, depth + 1) for v in value]
    return plain(str(value), depth)


def _key(key: object) -> str:
    # MongoDB field names may not start with "$"; dots would read as paths.
    return str(key).replace(".", "_").lstrip("$") or "_"


def _time_of(event: Mapping[str, Any]) -> datetime:
    stamp = event.get("timestamp")
    if isinstance(stamp, str):
        try:
            moment = datetime.fromisoformat(stamp)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def _entity(event: Mapping[str, Any]) -> tuple[dict[str, str] | None, str | None, list[str]]:
    """The entity an entry is about, the key it came from, and every entity id it mentions."""
    ids: list[str] = []
    for key, value in event.items():
        if key.endswith("_id") and key not in _RESERVED and isinstance(value, str) and value not in ids:
            ids.append(value)
        elif key.endswith("_ids") and isinstance(value, list | tuple):  # an entry about several
            for item in value:
                if isinstance(item, str) and item not in ids:
                    ids.append(item)
    for key in ENTITY_KEYS:
        value = event.get(key)
        if isinstance(value, str) and value:
            return {"type": key.removesuffix("_id"), "id": value}, key, ids
    actor = event.get("actor", event.get("key"))
    if isinstance(actor, str) and ":" in actor:
        kind, _, actor_id = actor.partition(":")
        if actor_id not in ids:
            ids.append(actor_id)
        return {"type": kind, "id": actor_id}, None, ids
    return None, None, ids


def entry_document(event: Mapping[str, Any], *, node: str, entry_id: str | None = None) -> dict[str, Any]:
    """The EntryLog of one structlog entry: event → message, logger → service, ids → entity; rest → data."""
    moment = _time_of(event)
    entity, entity_key, entity_ids = _entity(event)
    user_id = event.get("user_id")
    request_id = event.get("request_id")
    data = {
        _key(k): plain(v, 1)
        for k, v in event.items()
        if k not in _RESERVED and k != entity_key and v is not None
    }
    level = str(event.get("level", "info")).lower()
    return {
        "_id": entry_id or EntryIds().next(moment),
        "time": moment,
        "level": level if level in LEVELS else "info",
        "service": service_of(event.get("logger")),
        "message": plain(str(event.get("event", ""))),
        "user_id": str(user_id) if user_id is not None else None,
        "entity": entity,
        "entity_ids": entity_ids,
        "request_id": str(request_id) if request_id is not None else None,
        "node": node,
        "data": data,
    }


class EntryLogReader(Protocol):
    """The stored entry logs, as IT reads them (the SystemDB `entry_logs`)."""

    async def page(
        self, query: LogQuery, *, before: str | None, limit: int, now: datetime | None = None
    ) -> list[dict[str, Any]]: ...
    def stream(
        self, query: LogQuery, *, batch_size: int = 1000, now: datetime | None = None
    ) -> AsyncIterator[dict[str, Any]]: ...


class MetricSampleReader(Protocol):
    """The stored metric samples (the SystemDB `system_metrics`)."""

    async def between(
        self, *, names: tuple[str, ...], since: datetime, until: datetime, limit: int
    ) -> list[dict[str, Any]]: ...
