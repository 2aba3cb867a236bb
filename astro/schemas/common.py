"""Building blocks shared by every API's models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    ),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
# At least 10 characters here; the strength (zxcvbn score >= 3) is checked by the auth service.
Password = Annotated[str, StringConstraints(min_length=10, max_length=256)]


def in_utc(value: datetime) -> datetime:
    """An aware time in UTC (a naive one is taken as UTC); ValueError when its offset moves it past year 1
    or 9999, which neither Python nor PostgreSQL nor BSON can hold. Every time a client sends passes here."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range: in UTC it falls before year 1 or after year 9999") from None


def parse_time(raw: str) -> datetime:
    """An ISO 8601 time (naive: UTC) in UTC; ValueError when it is not one or leaves the calendar."""
    return in_utc(datetime.fromisoformat(raw))


UtcTime = Annotated[AwareDatetime, AfterValidator(in_utc)]


class Request(BaseModel):
    """A request body: strict types, unknown fields refused, no NUL characters in text."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold U+0000; refuse it here, naming the field, not deep in the database.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class Response(BaseModel):
    """A response body."""

    model_config = ConfigDict(frozen=True)


class ErrorDetail(Response):
    code: str = Field(description="stable snake_case code, e.g. invalid_input, sold_out")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(Response):
    error: ErrorDetail
