"""The launch status machine, destinations, occupancy and slugs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from astro.domain.errors import Conflict, RuleViolation
from astro.domain.launches import (
    TRANSITIONS,
    Occupancy,
    Range,
    Status,
    check_destination,
    check_transition,
    slugify,
)

NOW = datetime(2027, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(days=10)
ALLOWED = {
    (Status.SCHEDULED, Status.CONFIRMED),
    (Status.SCHEDULED, Status.DELAYED),
    (Status.SCHEDULED, Status.ABORTED),
    (Status.CONFIRMED, Status.DELAYED),
    (Status.CONFIRMED, Status.ABORTED),
    (Status.CONFIRMED, Status.SUCCESSFUL),
    (Status.CONFIRMED, Status.FAILED),
    (Status.DELAYED, Status.DELAYED),
    (Status.DELAYED, Status.ABORTED),
    (Status.DELAYED, Status.SUCCESSFUL),
    (Status.DELAYED, Status.FAILED),
}


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("target", list(Status))
def test_every_pair_of_the_status_table(current: Status, target: Status) -> None:
    after_launch = LATER + timedelta(days=1)
    now = after_launch if target in (Status.SUCCESSFUL, Status.FAILED) else NOW
    new_time = LATER + timedelta(days=30) if target is Status.DELAYED else None
    if (current, target) in ALLOWED:
        check_transition(current, target, now=now, scheduled_at=LATER, new_scheduled_at=new_time)
    else:
        with pytest.raises(Conflict) as caught:
            check_transition(current, target, now=now, scheduled_at=LATER, new_scheduled_at=new_time)
        assert caught.value.code == "invalid_transition"


def test_the_table_has_exactly_the_designed_moves() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


@pytest.mark.parametrize("target", [Status.SUCCESSFUL, Status.FAILED])
def test_finishing_before_scheduled_at_is_too_early(target: Status) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_transition(Status.CONFIRMED, target, now=NOW, scheduled_at=LATER, new_scheduled_at=None)
    assert caught.value.code == "too_early"


@pytest.mark.parametrize("new_time", [None, LATER, LATER - timedelta(days=1), NOW - timedelta(days=1)])
def test_a_delay_needs_a_later_date(new_time: datetime | None) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_transition(
            Status.SCHEDULED, Status.DELAYED, now=NOW, scheduled_at=LATER, new_scheduled_at=new_time
        )
    assert caught.value.code == "date_in_past"


@pytest.mark.parametrize(
    ("rocket", "destination", "ok"),
    [
        (Range.LOW_EARTH, Range.LOW_EARTH, True),
        (Range.LOW_EARTH, Range.MOON, False),
        (Range.MOON, Range.MOON, True),
        (Range.MOON, Range.MARS, False),
        (Range.MARS, Range.LOW_EARTH, True),
        (Range.MARS, Range.MARS, True),
    ],
)
def test_rockets_reach_their_range_and_nearer(rocket: Range, destination: Range, ok: bool) -> None:
    if ok:
        check_destination(rocket, destination)
    else:
        with pytest.raises(RuleViolation):
            check_destination(rocket, destination)


def test_occupancy_figures() -> None:
    assert Occupancy(120, 30, 40).as_dict() == {
        "capacity": 120,
        "seats_booked": 30,
        "seats_available": 90,
        "occupancy_pct": 25.0,
        "min_passengers": 40,
        "viable": False,
    }
    assert Occupancy(3, 2, 2).as_dict()["viable"] is True


def test_slug_is_readable() -> None:
    assert slugify("Falcon Heavy Ü2", "low_earth", LATER) == "falcon-heavy-u2-low-earth-2027-01-11"
