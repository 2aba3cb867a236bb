"""The structlog chain: logger names, the caller bound lazily, every entry to the sinks, stdout by level."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import structlog

from astro import logs


class ListSink:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def offer(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)


def logger(out: io.StringIO, name: str = "astro.web", level: str = "INFO") -> Any:
    return structlog.wrap_logger(
        logs.named_logger(out, name),
        processors=logs.processors(level),
        wrapper_class=structlog.make_filtering_bound_logger(
            min(logging.getLevelName(level), logs.STORE_LEVEL)
        ),
    )


def test_an_entry_goes_to_stdout_and_to_every_sink_with_its_logger_name() -> None:
    out, sink = io.StringIO(), ListSink()
    logs.add_sink(sink)
    try:
        logger(out).info("request", status=201)
    finally:
        logs.remove_sink(sink)
    printed = json.loads(out.getvalue())
    assert printed["event"] == "request" and printed["logger"] == "astro.web" and printed["level"] == "info"
    [entry] = sink.entries
    assert entry["event"] == "request" and entry["logger"] == "astro.web" and entry["status"] == 201
    assert "timestamp" in entry


def test_info_is_stored_even_when_stdout_shows_only_warnings() -> None:
    out, sink = io.StringIO(), ListSink()
    logs.add_sink(sink)
    try:
        log = logger(out, level="WARNING")
        log.info("login", user_id="usr_1")
        log.debug("noise")
        log.warning("slow")
    finally:
        logs.remove_sink(sink)
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["slow"]
    assert [e["event"] for e in sink.entries] == ["login", "slow"]


def test_context_values_are_merged_and_lazy_ones_resolved_when_the_entry_is_made() -> None:
    out, sink = io.StringIO(), ListSink()
    caller: dict[str, str | None] = {"id": None}
    logs.add_sink(sink)
    structlog.contextvars.bind_contextvars(request_id="abc", user_id=logs.Lazy(lambda: caller["id"]))
    try:
        log = logger(out)
        log.info("before_auth")
        caller["id"] = "usr_7"
        log.info("after_auth")
        log.info("explicit", user_id="usr_other")
    finally:
        structlog.contextvars.unbind_contextvars("request_id", "user_id")
        logs.remove_sink(sink)
    assert [(e["event"], e["request_id"], e.get("user_id")) for e in sink.entries] == [
        ("before_auth", "abc", None),
        ("after_auth", "abc", "usr_7"),
        ("explicit", "abc", "usr_other"),
    ]


def test_a_removed_sink_gets_nothing() -> None:
    sink = ListSink()
    logs.add_sink(sink)
    logs.remove_sink(sink)
    logger(io.StringIO()).info("x")
    assert sink.entries == []
