"""Booking rules and the refund policy, with time given explicitly (an injectable clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from astro.domain.bookings import (
    Passenger,
    age_on,
    cancellation_refund_pct,
    check_ages,
    check_seats,
    percent_of,
)
from astro.domain.clock import FixedClock
from astro.domain.errors import RuleViolation

LAUNCH = datetime(2028, 6, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before", "pct"),
    [
        (timedelta(days=400), 90),
        (timedelta(days=365), 90),
        (timedelta(days=365) - timedelta(seconds=1), 70),
        (timedelta(days=90), 70),
        (timedelta(days=90) - timedelta(seconds=1), 0),
        (timedelta(days=1), 0),
        (timedelta(0), 0),
    ],
)
def test_refund_tiers(before: timedelta, pct: int) -> None:
    clock = FixedClock(LAUNCH - before)
    assert cancellation_refund_pct(now=clock.now(), launch_at=LAUNCH, delayed_since_booking=False) == pct


def test_a_delay_since_booking_refunds_everything() -> None:
    assert (
        cancellation_refund_pct(now=LAUNCH - timedelta(days=1), launch_at=LAUNCH, delayed_since_booking=True)
        == 100
    )


def test_clock_moves_only_when_told() -> None:
    clock = FixedClock(LAUNCH - timedelta(days=366))
    assert cancellation_refund_pct(now=clock.now(), launch_at=LAUNCH, delayed_since_booking=False) == 90
    clock.advance(timedelta(days=2))
    assert cancellation_refund_pct(now=clock.now(), launch_at=LAUNCH, delayed_since_booking=False) == 70


@pytest.mark.parametrize(
    ("total", "pct", "cents"),
    [(100_001, 90, 90_001), (100_005, 70, 70_004), (15, 70, 11), (5, 90, 5), (999, 0, 0), (999, 100, 999)],
)
def test_refunds_round_half_up(total: int, pct: int, cents: int) -> None:
    assert percent_of(total, pct) == cents


@pytest.mark.parametrize(
    ("seats", "vip", "ok"),
    [
        (0, False, False),
        (1, False, True),
        (4, False, True),
        (5, False, False),
        (5, True, True),
        (6, True, True),
        (7, True, False),
    ],
)
def test_seat_limits(seats: int, vip: bool, ok: bool) -> None:
    if ok:
        check_seats(seats, seats, vip)
    else:
        with pytest.raises(RuleViolation) as caught:
            check_seats(seats, seats, vip)
        assert caught.value.code == "seat_limit"


def test_one_passenger_per_seat() -> None:
    with pytest.raises(RuleViolation, match="one passenger per seat"):
        check_seats(2, 3, False)


@pytest.mark.parametrize(
    ("born", "ok"),
    [
        (date(2010, 6, 15), True),
        (date(2010, 6, 16), False),
        (date(1957, 6, 16), True),
        (date(1957, 6, 15), False),
        (date(1980, 1, 1), True),
    ],
)
def test_passengers_are_18_to_70_on_the_launch_date(born: date, ok: bool) -> None:
    group = [Passenger("A", date(1990, 1, 1)), Passenger("B", born)]
    if ok:
        check_ages(group, LAUNCH.date())
    else:
        with pytest.raises(RuleViolation) as caught:
            check_ages(group, LAUNCH.date())
        assert caught.value.code == "passenger_age" and list(caught.value.details["fields"]) == [
            "passengers.1.birth_date"
        ]


def test_age_counts_birthdays() -> None:
    assert age_on(date(2000, 2, 29), date(2018, 2, 28)) == 17
    assert age_on(date(2000, 2, 29), date(2018, 3, 1)) == 18
