"""structlog set-up: one JSON object per line, with the request id bound from context, and log sinks.

Every entry also goes to the registered sinks (the log shipper, which stores it as an EntryLog), at
INFO and above even when ASTRO_LOG_LEVEL prints less: the stored activity log is not the console.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, Protocol, TextIO

import structlog

# Entries below this level are neither printed nor stored, unless ASTRO_LOG_LEVEL asks for them.
STORE_LEVEL = logging.INFO


class Sink(Protocol):
    """Receives a copy of every entry; must return at once and never raise."""

    def offer(self, entry: dict[str, Any]) -> None: ...


_sinks: tuple[Sink, ...] = ()


def add_sink(sink: Sink) -> None:
    global _sinks
    _sinks = (*_sinks, sink)


def remove_sink(sink: Sink) -> None:
    global _sinks
    _sinks = tuple(s for s in _sinks if s is not sink)


class Lazy:
    """A context value computed when an entry is made (e.g. the user, known only once authenticated)."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[], object]) -> None:
        self._fn = fn

    def __call__(self) -> object:
        return self._fn()


class _NamedPrintLogger(structlog.PrintLogger):
    """A PrintLogger that remembers the name it was asked for (`get_logger("astro.web")`)."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedPrintLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedPrintLogger:
        name = args[0] if args and isinstance(args[0], str) else "astro"
        return _NamedPrintLogger(self._file, name)


def _add_logger_name(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", None)
    if name is not None:
        event_dict.setdefault("logger", name)
    return event_dict


def _resolve_lazy(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    for key in [k for k, v in event_dict.items() if isinstance(v, Lazy)]:
        value = event_dict[key]()
        if value is None:
            del event_dict[key]
        else:
            event_dict[key] = value
    return event_dict


def _ship(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    sinks = _sinks
    if sinks:
        entry = {k: v for k, v in event_dict.items() if k != "_record" and k != "_from_structlog"}
        for sink in sinks:
            sink.offer(entry)
    return event_dict


def _print_from(level: int) -> structlog.types.Processor:
    """Drop what is below the console's level (it may still have been stored)."""

    def keep(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        if logging.getLevelName(str(event_dict.get("level", "info")).upper()) < level:
            raise structlog.DropEvent
        return event_dict

    return keep


def _shared() -> list[structlog.types.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_logger_name,
        _resolve_lazy,
    ]


def processors(level: str = "INFO") -> list[structlog.types.Processor]:
    """The chain of every structlog entry: context, level, time, name; the sinks; stdout from `level`."""
    return [
        *_shared(),
        structlog.processors.format_exc_info,
        _ship,
        _print_from(logging.getLevelName(level)),
        structlog.processors.JSONRenderer(),
    ]


def named_logger(file: TextIO, name: str) -> structlog.PrintLogger:
    """The logger `get_logger(name)` wraps: prints to `file` and knows its name."""
    return _NamedPrintLogger(file, name)


def configure(level: str = "INFO") -> None:
    """Route structlog and the standard library through one JSON renderer on stdout, and the sinks."""
    numeric = logging.getLevelName(level)
    structlog.configure(
        processors=processors(level),
        wrapper_class=structlog.make_filtering_bound_logger(min(numeric, STORE_LEVEL)),
        logger_factory=_NamedPrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[*_shared(), structlog.processors.format_exc_info, _ship],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    # aiohttp's own access log is replaced by ours.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # aiosmtpd narrates every connection at INFO; the mailbox itself is the record.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # stripe narrates every request and response at INFO (bodies at DEBUG); the gateway logs what matters.
    logging.getLogger("stripe").setLevel(logging.WARNING)
