"""Domain errors: plain exceptions with a stable `code`; the web layer maps them to HTTP."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every refusal the platform explains to a client."""

    code = "error"

    def __init__(
        self, message: str, details: dict[str, Any] | None = None, *, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    """400: malformed JSON, wrong types, unknown or missing fields; details name the fields."""

    code = "invalid_input"


class UnsupportedMediaType(DomainError):
    """415: a body in a format the endpoint does not take (JSON endpoints take application/json only)."""

    code = "unsupported_media_type"


class Unauthenticated(DomainError):
    """401: no valid credentials."""

    code = "unauthenticated"


class Forbidden(DomainError):
    """403: authenticated, but not allowed."""

    code = "forbidden"


class NotFound(DomainError):
    """404: no such object visible to the caller."""

    code = "not_found"


class Conflict(DomainError):
    """409: conflicts with the current state (email_taken, sold_out, invalid_transition, ...)."""

    code = "conflict"


class RuleViolation(DomainError):
    """422: a business rule refuses the request (seat_limit, passenger_age, ...)."""

    code = "rule_violation"


class UnknownCard(RuleViolation):
    """422: a well-formed card token that the payment gateway does not know (nothing was held)."""

    code = "unknown_card"


class PaymentDeclined(DomainError):
    """402: the payment gateway declined the charge."""

    code = "payment_declined"


class TooManyAttempts(DomainError):
    """429: slow down; `retry_after` says for how many seconds."""

    code = "too_many_attempts"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, {"retry_after": retry_after})
        self.retry_after = retry_after


class Unavailable(DomainError):
    """503: a part the request needs is down; retry after `retry_after` seconds."""

    code = "unavailable"

    def __init__(self, message: str, retry_after: int = 5, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after


class GatewayError(Unavailable):
    """The payment gateway failed (not a decline): the client may retry."""

    code = "payment_gateway_error"
