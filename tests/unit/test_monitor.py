"""structlog entries become EntryLog documents: message, service, user, request, entity, data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from astro.services.monitor import MAX_TEXT, EntryIds, entry_document, id_floor, plain, service_of, time_of_id

WHEN = "2026-11-24T10:00:00.123456Z"


def test_fields_map_to_the_entry_log() -> None:
    doc = entry_document(
        {
            "event": "booking_confirmed",
            "level": "info",
            "logger": "astro.booking",
            "timestamp": WHEN,
            "user_id": "usr_1",
            "request_id": "abc",
            "booking_id": "bkg_1",
            "launch_id": "lch_1",
            "seats": 2,
        },
        node="n1",
        entry_id="id-1",
    )
    assert doc == {
        "_id": "id-1",
        "time": datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC),
        "level": "info",
        "service": "booking",
        "message": "booking_confirmed",
        "user_id": "usr_1",
        "entity": {"type": "booking", "id": "bkg_1"},
        "entity_ids": ["bkg_1", "lch_1"],
        "request_id": "abc",
        "node": "n1",
        "data": {"launch_id": "lch_1", "seats": 2},
    }


def test_a_launch_alone_is_the_entity() -> None:
    doc = entry_document({"event": "launch_scheduled", "launch_id": "lch_9", "agency_id": "usr_a"}, node="n")
    assert doc["entity"] == {"type": "launch", "id": "lch_9"}
    assert doc["entity_ids"] == ["lch_9", "usr_a"] and doc["data"] == {"agency_id": "usr_a"}


def test_an_actor_key_names_the_entity() -> None:
    doc = entry_document(
        {"event": "actor_started", "actor": "launch:lch_3", "logger": "astro.actors"}, node="n"
    )
    assert doc["entity"] == {"type": "launch", "id": "lch_3"} and doc["entity_ids"] == ["lch_3"]
    assert doc["service"] == "actors" and doc["data"] == {"actor": "launch:lch_3"}


def test_no_entity_no_user_no_request() -> None:
    doc = entry_document({"event": "started", "level": "warning"}, node="n")
    assert (doc["entity"], doc["user_id"], doc["request_id"], doc["entity_ids"]) == (None, None, None, [])
    assert doc["level"] == "warning" and doc["service"] == "astro"


def test_service_names_drop_the_astro_prefix_only() -> None:
    assert [
        service_of(n) for n in ("astro.web", "astro.store.postgres", "aiohttp.server", "astro", None)
    ] == [
        "web",
        "store.postgres",
        "aiohttp.server",
        "astro",
        "astro",
    ]


def test_odd_values_become_storable() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing"

    value = plain({"a.b": {1, 2}, "$x": Thing(), "n": 2**70, "s": "y" * (MAX_TEXT + 5), "t": (1, None)})
    assert value["a_b"] in ([1, 2], [2, 1]) and value["x"] == "thing" and value["n"] == str(2**70)
    assert len(value["s"]) == MAX_TEXT + 1 and value["t"] == [1, None]
    naive = plain(datetime(2026, 1, 1))
    assert naive.tzinfo is UTC


def test_an_exception_is_kept_as_text_in_data() -> None:
    doc = entry_document(
        {"event": "unhandled_error", "level": "error", "exception": "Traceback ..."}, node="n"
    )
    assert doc["data"] == {"exception": "Traceback ..."}


def test_a_missing_or_bad_timestamp_is_now() -> None:
    before = datetime.now(UTC)
    doc = entry_document({"event": "x", "timestamp": "yesterday"}, node="n")
    assert before <= doc["time"] <= datetime.now(UTC)


def test_entry_ids_sort_by_time_then_by_order_made() -> None:
    ids = EntryIds()
    t = datetime(2026, 11, 24, tzinfo=UTC)
    made = [
        ids.next(t),
        ids.next(t),
        ids.next(t + timedelta(microseconds=1)),
        ids.next(t + timedelta(days=400)),
    ]
    assert made == sorted(made) and len(set(made)) == 4
    assert id_floor(t) <= made[0] < id_floor(t + timedelta(microseconds=1)) <= made[2]


def test_the_time_of_an_entry_id_is_exact_to_the_microsecond() -> None:
    t = datetime(2026, 11, 24, 10, 0, 0, 999999, tzinfo=UTC)
    assert time_of_id(EntryIds().next(t)) == t == time_of_id(id_floor(t))
    for bad in ("", "abc", "2026-11-24", "0158302080000000x-1"):
        with pytest.raises(ValueError):
            time_of_id(bad)
