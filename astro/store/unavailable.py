"""Driver errors that mean "a store is down" become the domain's Unavailable here, never above astro/store."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Final, ParamSpec, TypeVar

import asyncpg
from pymongo.errors import ConnectionFailure

from astro.domain.errors import Unavailable

P = ParamSpec("P")
T = TypeVar("T")

# Unreachable, refused, reset, timed out, shutting down: the request may succeed later (503, not 500).
# OSError covers ConnectionError and TimeoutError; ConnectionFailure covers pymongo's timeouts.
DOWN_ERRORS: Final = (
    OSError,
    ConnectionFailure,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
)
MESSAGE: Final = "a database is unreachable; retry shortly"


def unavailable(exc: BaseException) -> Unavailable:
    """The domain's Unavailable for a driver error; the driver's error stays its cause."""
    error = Unavailable(MESSAGE, details={"error": type(exc).__name__})
    error.__cause__ = exc
    return error


@contextlib.contextmanager
def translating() -> Iterator[None]:
    """Raise Unavailable instead of a driver error that means the store is down."""
    try:
        yield
    except DOWN_ERRORS as exc:
        raise unavailable(exc) from exc


def translated(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """An adapter method whose driver errors that mean "down" come out as Unavailable."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except DOWN_ERRORS as exc:
            raise unavailable(exc) from exc

    return call
