"""SystemAPI monitoring models: entry logs and stored metric samples."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from astro.schemas.common import Response


class EntityRef(Response):
    type: str = Field(description="what the entry is about: launch, booking, invoice, ...")
    id: str


class EntryOut(Response):
    id: str = Field(description="sorts by time; pass the last one as cursor")
    time: datetime
    level: str = Field(description="debug, info, warning, error or critical")
    service: str = Field(description="the part that logged it: web, booking, auth, actors, monitor, ...")
    message: str
    user_id: str | None = None
    entity: EntityRef | None = None
    request_id: str | None = None
    node: str
    data: dict[str, Any] = Field(default_factory=dict)


class EntryPage(Response):
    items: list[EntryOut]
    next_cursor: str | None


class MetricPoint(Response):
    time: datetime
    value: float
    node: str
    labels: dict[str, str] = Field(default_factory=dict)


class MetricSeries(Response):
    series: dict[str, list[MetricPoint]] = Field(description="samples per metric name, oldest first")
    since: datetime
    until: datetime
    truncated: bool = Field(description="true when the range held more samples than one answer carries")
