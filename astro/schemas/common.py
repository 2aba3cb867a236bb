"""Building blocks shared by every API's models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

# What a body's JSON Schema (OpenAPI) states is exactly what is checked, on the text as sent: the lengths,
# and the patterns. Surrounding whitespace is dropped only after the checks, so "  x" is "x", and "   " is
# refused by the pattern (it needs a character that is not whitespace), never by a length the schema does
# not show. The patterns spell whitespace out: `\s` differs between Python's re (\x1c-\x1f, \x85) and the
# ECMA-262 regexes of JSON Schema (\ufeff); WS is both, so a pattern means the same to every validator.
WS: Final = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
Email = Annotated[
    str,
    StringConstraints(
        to_lower=True, max_length=254, pattern=f"^[^@{WS}\\x00]+@[^@{WS}\\x00]+\\.[^@{WS}\\x00]+$"
    ),
]
NOT_BLANK: Final = f"^[^\\x00]*[^{WS}\\x00][^\\x00]*$"  # no NUL, and something besides whitespace
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK), AfterValidator(str.strip)
]
Text = Annotated[
    str, StringConstraints(min_length=1, max_length=500, pattern=NOT_BLANK), AfterValidator(str.strip)
]
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


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# JSON Schema (2020-12) counts 295.0 as an integer, so an integer field takes it, as 295; 295.5 is refused,
# and so are "295" and true (Request is strict). Last in an int's Annotated: Annotated[int, Field(..), WHOLE].
WHOLE: Final = BeforeValidator(_whole)
UtcTime = Annotated[AwareDatetime, AfterValidator(in_utc)]


class Request(BaseModel):
    """A request body: strict types, unknown fields refused, no NUL characters in text."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, regex_engine="python-re")

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
