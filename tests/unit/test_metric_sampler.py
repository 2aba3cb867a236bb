"""The metric sampler's figures: one sample per figure, and a rate for each counter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from actors.metric_sampler import Figure, MetricSampler, rate_name
from astro.domain.clock import FixedClock


class NoStore:
    async def insert(self, samples: list[dict[str, Any]]) -> None:
        raise AssertionError("sample() does not store")


def test_rate_names() -> None:
    assert rate_name("http_requests_total") == "http_requests_per_second"


def test_counters_get_a_rate_from_the_second_sample_on_and_a_reset_counts_from_zero() -> None:
    figures: list[list[Figure]] = [
        [("http_requests_total", 10, {}), ("actors_active", 3, {})],
        [("http_requests_total", 40, {}), ("actors_active", 4, {})],
        [("http_requests_total", 5, {}), ("actors_active", 4, {})],
    ]
    clock = iter([100.0, 110.0, 120.0])
    sampler = MetricSampler(
        lambda: figures.pop(0),
        NoStore(),
        node="n1",
        interval=10,
        clock=FixedClock(datetime(2026, 1, 1, tzinfo=UTC)),
        monotonic=lambda: next(clock),
    )
    first = sampler.sample()
    assert [(s["name"], s["value"]) for s in first] == [("http_requests_total", 10.0), ("actors_active", 3.0)]
    assert first[0] == {
        "time": datetime(2026, 1, 1, tzinfo=UTC),
        "name": "http_requests_total",
        "value": 10.0,
        "labels": {},
        "node": "n1",
    }
    second = {s["name"]: s["value"] for s in sampler.sample()}
    assert second == {"http_requests_total": 40.0, "http_requests_per_second": 3.0, "actors_active": 4.0}
    third = {s["name"]: s["value"] for s in sampler.sample()}
    assert third["http_requests_per_second"] == 0.5
