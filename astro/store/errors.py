"""A store that cannot be reached becomes the domain's `Unavailable` here, inside astro/store.

Every adapter class carries `@unavailable_as("PostgreSQL")` (or "MongoDB", "Redis"): each public method
that talks to its store -- a coroutine, an async generator, an `@asynccontextmanager` -- is wrapped so
that an error saying the store is unreachable (connection refused or lost, a timeout, the server
starting or shutting down) leaves the adapter as `Unavailable` naming the store: the web layer answers
503 with Retry-After and never sees, nor imports, a driver's exception. Every other error passes
unchanged: constraint errors the adapter translates itself (`translated()`), and bugs, which stay 500s.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, TypeVar

import asyncpg
import redis.exceptions
from pymongo.errors import ConnectionFailure

from astro.domain.errors import Unavailable

RETRY_AFTER: Final = 5  # seconds a client waits before trying again
# Driver errors that mean "the store is not there (now)", whatever the request was.
UNREACHABLE: Final[tuple[type[Exception], ...]] = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08: the connection failed or was lost
    asyncpg.CannotConnectNowError,  # the server is starting up
    asyncpg.AdminShutdownError,  # ... or shutting down
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InternalClientError,  # the protocol broke mid-statement (seen when the server restarts)
    redis.exceptions.ConnectionError,  # also: no free connection in the pool in time
    redis.exceptions.TimeoutError,
    ConnectionFailure,  # pymongo: no server selected in time, network errors, not primary
    OSError,  # refused, reset, unreachable; TimeoutError is an OSError too
)
_CLOSED: Final = ("closed", "closing")
_MARK: Final = "__unavailable_as__"

C = TypeVar("C", bound=type)


def is_unreachable(exc: BaseException) -> bool:
    """Does this error say the store cannot be reached (rather than that the request was wrong)?"""
    if isinstance(exc, UNREACHABLE):
        return True
    # asyncpg reports a closed connection or pool as an InterfaceError, as it does a misuse (a bug,
    # which must stay a 500) and a value it cannot encode (DataError): only the first is an outage.
    return (
        isinstance(exc, asyncpg.InterfaceError)
        and not isinstance(exc, asyncpg.DataError)
        and any(word in str(exc) for word in _CLOSED)
    )


def unavailable(store: str, exc: BaseException) -> Unavailable:
    """The domain error for `store` being unreachable; the driver's error stays as its cause."""
    return Unavailable(
        f"{store} is unreachable; retry shortly", RETRY_AFTER, {"store": store, "error": type(exc).__name__}
    )


def unavailable_as(store: str) -> Callable[[C], C]:
    """Class decorator: the adapter's public async methods raise Unavailable(store) when it is down.

    Inherited methods are wrapped too, so `unavailable_as("X")(type("Y", (Adapter,), {}))` wraps a
    class without touching it. Static and class methods and properties are left alone (they build
    clients, they do not call the store)."""

    def decorate(cls: C) -> C:
        if cls.__dict__.get(_MARK):
            return cls
        for name in dir(cls):
            if name.startswith("_"):
                continue
            attr = inspect.getattr_static(cls, name)
            if isinstance(attr, staticmethod | classmethod | property) or not callable(attr):
                continue
            wrapped = _wrap(store, attr)
            if wrapped is not None:
                setattr(cls, name, wrapped)
        setattr(cls, _MARK, store)
        return cls

    return decorate


def _wrap(store: str, fn: Callable[..., Any]) -> Callable[..., Any] | None:
    if inspect.iscoroutinefunction(fn):
        return _coroutine(store, fn)
    if inspect.isasyncgenfunction(fn):
        return _generator(store, fn)
    if inspect.isasyncgenfunction(getattr(fn, "__wrapped__", None)):  # an @asynccontextmanager
        return _context(store, fn)
    return None


def _coroutine(store: str, fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            if is_unreachable(exc):
                raise unavailable(store, exc) from exc
            raise

    return call


def _generator(store: str, fn: Callable[..., AsyncGenerator[Any, None]]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def iterate(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        inner = fn(*args, **kwargs)
        try:
            async for item in inner:
                yield item
        except Exception as exc:
            if is_unreachable(exc):
                raise unavailable(store, exc) from exc
            raise
        finally:
            await inner.aclose()  # at once, not when collected: it may hold a server cursor

    return iterate


def _context(store: str, fn: Callable[..., AbstractAsyncContextManager[Any]]) -> Callable[..., Any]:
    @functools.wraps(fn)
    @asynccontextmanager
    async def enter(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        try:
            async with fn(*args, **kwargs) as value:
                yield value
        except Exception as exc:
            if is_unreachable(exc):
                raise unavailable(store, exc) from exc
            raise

    return enter
