"""The Launch aggregate: every booking rule, every status pair, hold expiry on a fixed clock; no I/O."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta

import pytest

from astro.domain.bookings import BookingRecord, Passenger, percent_of
from astro.domain.errors import Conflict, DomainError, Forbidden, NotFound, RuleViolation
from astro.domain.events import (
    BookingCancelled,
    DomainEvent,
    InvoiceDue,
    LaunchScheduled,
    LaunchStatusChanged,
    PassengerFacts,
    SeatsBooked,
)
from astro.domain.launch import HOLD_FOR, Launch, Rocket, schedule
from astro.domain.launches import FINAL, OPEN, Range, Status
from tests.unit.launch_factory import (
    AGENCY,
    LAUNCH_AT,
    LAUNCH_DAY,
    NOW,
    PRICE,
    adults,
    make_launch,
    new_booking,
    record,
)

US = timedelta(microseconds=1)


def hold(
    launch: Launch, seats: int = 1, *, traveler: str = "usr_t1", vip: bool = False, now: datetime = NOW
) -> str:
    """Hold seats for a traveler with adult passengers; the hold's id."""
    return launch.hold(traveler_id=traveler, seats=seats, passengers=adults(seats), vip=vip, now=now).hold_id


def refused(exc: pytest.ExceptionInfo[DomainError], code: str) -> None:
    assert exc.value.code == code, exc.value


# -- hold --------------------------------------------------------------------------------------------


def test_a_hold_sets_seats_aside_until_hold_for_has_passed() -> None:
    launch = make_launch()
    held = launch.hold(traveler_id="usr_t1", seats=3, passengers=adults(3), vip=False, now=NOW)
    assert (held.price_cents, held.total_cents) == (PRICE, 3 * PRICE)
    assert launch.holds[held.hold_id].traveler_id == "usr_t1"
    assert launch.holds[held.hold_id].seats == 3
    assert launch.holds[held.hold_id].expires_at == NOW + HOLD_FOR
    assert launch.seats_free(NOW) == 7
    assert launch.seats_booked == 0  # held, not sold


def test_hold_for_is_the_callers() -> None:
    launch = make_launch()
    held = launch.hold(
        traveler_id="usr_t1", seats=1, passengers=adults(1), vip=False, now=NOW, hold_for=timedelta(minutes=5)
    )
    assert launch.holds[held.hold_id].expires_at == NOW + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("seats", "vip", "ok"),
    [
        (0, False, False),
        (1, False, True),
        (4, False, True),
        (5, False, False),
        (0, True, False),
        (1, True, True),
        (5, True, True),
        (6, True, True),
        (7, True, False),
    ],
)
def test_seat_limit_is_1_to_4_and_1_to_6_for_vips(seats: int, vip: bool, ok: bool) -> None:
    launch = make_launch(public_from=NOW)
    if ok:
        hold(launch, seats, vip=vip)
        assert launch.seats_held(NOW) == seats
        return
    with pytest.raises(RuleViolation) as exc:
        hold(launch, seats, vip=vip)
    refused(exc, "seat_limit")
    assert exc.value.details["max_seats"] == (6 if vip else 4)
    assert launch.holds == {}


@pytest.mark.parametrize("passengers", [1, 3])
def test_one_passenger_per_seat(passengers: int) -> None:
    launch = make_launch()
    with pytest.raises(RuleViolation) as exc:
        launch.hold(traveler_id="usr_t1", seats=2, passengers=adults(passengers), vip=False, now=NOW)
    refused(exc, "seat_limit")
    assert exc.value.details["fields"] == {"passengers": "2 expected"}
    assert launch.holds == {}


@pytest.mark.parametrize("status", sorted(FINAL))
def test_a_finished_launch_takes_no_holds(status: Status) -> None:
    launch = make_launch(status=status)
    with pytest.raises(Conflict) as exc:
        hold(launch)
    refused(exc, "launch_not_bookable")
    assert exc.value.details == {"status": status.value}
    assert launch.holds == {}


@pytest.mark.parametrize("status", sorted(OPEN))
def test_an_open_launch_takes_holds(status: Status) -> None:
    launch = make_launch(status=status)
    hold(launch)
    assert launch.seats_held(NOW) == 1


def test_no_hold_at_or_after_scheduled_at() -> None:
    launch = make_launch()
    hold(launch, now=LAUNCH_AT - US)
    for now in (LAUNCH_AT, LAUNCH_AT + US):
        with pytest.raises(Conflict) as exc:
            hold(launch, now=now)
        refused(exc, "launch_not_bookable")
    assert len(launch.holds) == 1


def test_before_public_from_only_vips_may_hold() -> None:
    public_from = NOW + timedelta(hours=2)
    launch = make_launch(public_from=public_from)
    with pytest.raises(Forbidden) as exc:
        hold(launch, now=public_from - US)
    refused(exc, "vip_only")
    assert exc.value.details == {"public_from": public_from.isoformat()}
    assert launch.holds == {}
    hold(launch, traveler="usr_vip", vip=True, now=public_from - US)
    hold(launch, traveler="usr_t1", vip=False, now=public_from)
    assert launch.seats_held(public_from) == 2


def birthday(years_before: int, day: date = LAUNCH_DAY) -> date:
    return day.replace(year=day.year - years_before)


@pytest.mark.parametrize(
    ("born", "ok"),
    [
        (birthday(18), True),  # 18 on the very day
        (birthday(18) + timedelta(days=1), False),  # 18 the day after: 17
        (birthday(71) + timedelta(days=1), True),  # 71 the day after: 70
        (birthday(71), False),  # 71 on the very day
    ],
)
def test_passengers_are_18_to_70_on_the_launch_date(born: date, ok: bool) -> None:
    launch = make_launch()
    passengers = (Passenger("Adult", birthday(30)), Passenger("Edge", born))
    if ok:
        launch.hold(traveler_id="usr_t1", seats=2, passengers=passengers, vip=False, now=NOW)
        assert launch.seats_held(NOW) == 2
        return
    with pytest.raises(RuleViolation) as exc:
        launch.hold(traveler_id="usr_t1", seats=2, passengers=passengers, vip=False, now=NOW)
    refused(exc, "passenger_age")
    assert list(exc.value.details["fields"]) == ["passengers.1.birth_date"]
    assert launch.holds == {}


def test_the_age_is_taken_on_the_launch_date_not_today() -> None:
    """17 today, 18 on the launch day: allowed."""
    launch = make_launch()
    born = birthday(18) - timedelta(days=10)
    assert NOW.date() < born.replace(year=born.year + 18) <= LAUNCH_DAY
    launch.hold(traveler_id="usr_t1", seats=1, passengers=(Passenger("Teen", born),), vip=False, now=NOW)


def test_unexpired_holds_count_against_the_seats_left() -> None:
    launch = make_launch(capacity=10, seats_booked=5)
    hold(launch, 4, traveler="usr_t1")
    with pytest.raises(Conflict) as exc:
        hold(launch, 2, traveler="usr_t2")
    refused(exc, "sold_out")
    assert exc.value.details == {"seats_available": 1, "seats_requested": 2}
    hold(launch, 1, traveler="usr_t2")
    assert launch.seats_free(NOW) == 0
    with pytest.raises(Conflict) as exc:
        hold(launch, 1, traveler="usr_t3")
    refused(exc, "sold_out")
    assert exc.value.details == {"seats_available": 0, "seats_requested": 1}


def test_seats_left_are_never_told_as_negative() -> None:
    launch = make_launch(capacity=4, seats_booked=5)  # more sold than seats: never below 0 to a client
    with pytest.raises(Conflict) as exc:
        hold(launch)
    assert exc.value.details["seats_available"] == 0


# -- hold expiry, release, confirm -----------------------------------------------------------------


def test_a_hold_has_expired_at_exactly_expires_at() -> None:
    launch = make_launch()
    hold_id = hold(launch, 2)
    expires_at = launch.holds[hold_id].expires_at
    assert launch.seats_held(expires_at - US) == 2
    assert launch.seats_held(expires_at) == 0
    assert hold_id not in launch.holds  # let go once seen expired


def test_an_expired_hold_frees_its_seats_for_another_traveler() -> None:
    launch = make_launch(capacity=2)
    hold(launch, 2, traveler="usr_t1")
    with pytest.raises(Conflict):
        hold(launch, 1, traveler="usr_t2", now=NOW + HOLD_FOR - US)
    hold(launch, 2, traveler="usr_t2", now=NOW + HOLD_FOR)
    assert [h.traveler_id for h in launch.holds.values()] == ["usr_t2"]


def test_release_frees_the_held_seats_and_ignores_unknown_holds() -> None:
    launch = make_launch(capacity=2)
    hold_id = hold(launch, 2)
    launch.release(hold_id)
    launch.release(hold_id)
    launch.release("hld_unknown")
    assert launch.holds == {}
    assert launch.seats_free(NOW) == 2


def test_confirming_a_hold_sells_its_seats() -> None:
    launch = make_launch(capacity=4)
    hold_id = hold(launch, 4)  # the launch is now full of this hold
    launch.confirm_hold(hold_id, new_booking("bkg_1", "usr_t1", 4), NOW + timedelta(seconds=5))
    assert launch.seats_booked == 4
    assert launch.holds == {}
    assert launch.seats_free(NOW) == 0


def test_confirming_without_its_hold_takes_the_seats_if_free() -> None:
    """The hold expired (and was let go), or the actor reloaded: the seats are taken afresh."""
    launch = make_launch(capacity=3)
    launch.confirm_hold("hld_gone", new_booking("bkg_1", "usr_t1", 2), NOW)
    assert launch.seats_booked == 2


def test_confirming_without_its_hold_rechecks_the_seats_left() -> None:
    launch = make_launch(capacity=2)
    first = hold(launch, 2, traveler="usr_t1")
    later = NOW + HOLD_FOR
    hold(launch, 2, traveler="usr_t2", now=later)  # the first hold had expired: the seats went to t2
    with pytest.raises(Conflict) as exc:
        launch.confirm_hold(first, new_booking("bkg_1", "usr_t1", 2), later)
    refused(exc, "sold_out")
    assert exc.value.details == {"seats_available": 0, "seats_requested": 2}
    assert launch.seats_booked == 0


@pytest.mark.parametrize("status", sorted(FINAL))
def test_confirming_without_its_hold_rechecks_the_status(status: Status) -> None:
    launch = make_launch(status=status)
    with pytest.raises(Conflict) as exc:
        launch.confirm_hold("hld_gone", new_booking("bkg_1", "usr_t1", 1), NOW)
    refused(exc, "launch_not_bookable")
    assert launch.seats_booked == 0


def test_confirming_without_its_hold_rechecks_scheduled_at() -> None:
    launch = make_launch()
    with pytest.raises(Conflict) as exc:
        launch.confirm_hold("hld_gone", new_booking("bkg_1", "usr_t1", 1), LAUNCH_AT)
    refused(exc, "launch_not_bookable")
    assert launch.seats_booked == 0


def test_confirming_an_expired_hold_rechecks_like_no_hold() -> None:
    launch = make_launch(scheduled_at=NOW + timedelta(seconds=60))
    hold_id = hold(launch, 1, now=NOW + timedelta(seconds=45))  # expires 75 s in, after the launch time
    late = NOW + timedelta(seconds=45) + HOLD_FOR
    with pytest.raises(Conflict) as exc:
        launch.confirm_hold(hold_id, new_booking("bkg_1", "usr_t1", 1), late)
    refused(exc, "launch_not_bookable")
    assert launch.seats_booked == 0


# -- sold, reaching the minimum --------------------------------------------------------------------


def test_sold_tells_each_booking_with_the_launch_as_it_stands_after_the_batch() -> None:
    launch = make_launch(seats_booked=1)
    a, b = new_booking("bkg_a", "usr_a", 2), new_booking("bkg_b", "usr_b", 3, created_at=NOW + US)
    for booking in (a, b):
        launch.confirm_hold(hold(launch, booking.seats, traveler=booking.traveler_id), booking, NOW)
    events = launch.sold([a, b])
    assert launch.seats_booked == 6
    assert [type(e) for e in events] == [SeatsBooked, SeatsBooked]
    assert [e.launch.seats_booked for e in events] == [6, 6]
    assert events[0].launch == launch.facts()
    assert events[1] == SeatsBooked(
        launch=launch.facts(),
        booking_id="bkg_b",
        traveler_id="usr_b",
        seats=3,
        price_cents=PRICE,
        total_cents=3 * PRICE,
        passengers=tuple(PassengerFacts(p.name, p.birth_date) for p in b.passengers),
        created_at=NOW + US,
    )


@pytest.mark.parametrize(
    ("status", "seats_booked", "reached"),
    [
        (Status.SCHEDULED, 2, False),
        (Status.SCHEDULED, 3, True),
        (Status.SCHEDULED, 4, True),
        (Status.CONFIRMED, 3, False),  # confirmed already
        (Status.DELAYED, 3, False),  # only a scheduled launch confirms itself
    ],
)
def test_reached_minimum(status: Status, seats_booked: int, reached: bool) -> None:
    launch = make_launch(status=status, seats_booked=seats_booked, min_passengers=3)
    assert launch.reached_minimum() is reached


def test_confirm_at_minimum_confirms_and_tells_every_traveler() -> None:
    launch = make_launch(seats_booked=3, min_passengers=3)
    at = NOW + timedelta(minutes=1)
    event = launch.confirm_at_minimum(at, ("usr_a", "usr_b"))
    assert (launch.status, launch.confirmed_at, launch.updated_at) == (Status.CONFIRMED, at, at)
    assert event == LaunchStatusChanged(
        launch.facts(), Status.SCHEDULED, ("usr_a", "usr_b"), {}, automatic=True
    )
    assert event.status is Status.CONFIRMED
    # The bookings of that batch are told with the launch confirmed.
    assert all(e.launch.status is Status.CONFIRMED for e in launch.sold([new_booking("bkg_1", "usr_a", 3)]))


# -- cancel ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "booking",
    [
        None,
        record("bkg_1", "usr_other", 2),  # another traveler's booking
        record("bkg_1", "usr_t1", 2, launch_id="lch_other"),  # a booking on another launch
    ],
)
def test_cancel_finds_only_the_travelers_own_booking_on_this_launch(booking: BookingRecord | None) -> None:
    launch = make_launch(seats_booked=2)
    with pytest.raises(NotFound):
        launch.cancel(booking, "usr_t1", NOW)
    assert launch.seats_booked == 2


def test_a_cancelled_booking_cannot_be_cancelled_again() -> None:
    launch = make_launch(seats_booked=2)
    with pytest.raises(Conflict) as exc:
        launch.cancel(record("bkg_1", "usr_t1", 2, status="cancelled"), "usr_t1", NOW)
    refused(exc, "already_cancelled")
    assert launch.seats_booked == 2


@pytest.mark.parametrize("status", sorted(FINAL))
def test_a_finished_launchs_bookings_cannot_be_cancelled(status: Status) -> None:
    launch = make_launch(status=status, seats_booked=2)
    with pytest.raises(Conflict) as exc:
        launch.cancel(record("bkg_1", "usr_t1", 2), "usr_t1", NOW)
    refused(exc, "launch_finished")
    assert exc.value.details == {"status": status.value}
    assert launch.seats_booked == 2


@pytest.mark.parametrize(
    ("before_launch", "pct"),
    [
        (timedelta(days=365), 90),
        (timedelta(days=365) - US, 70),
        (timedelta(days=90), 70),
        (timedelta(days=90) - US, 0),
        (timedelta(hours=1), 0),
    ],
)
def test_the_refund_tier_is_set_by_the_time_left(before_launch: timedelta, pct: int) -> None:
    launch = make_launch(seats_booked=5)
    total = 3 * 33_333  # rounding shows: 90 % of 99 999 is 89 999.1
    booking = record("bkg_1", "usr_t1", 3, price_cents=33_333)
    now = LAUNCH_AT - before_launch
    event = launch.cancel(booking, "usr_t1", now)
    assert (event.refund_pct, event.refund_cents) == (pct, percent_of(total, pct))
    assert event.seats_released is (pct > 0)
    # DESIGN 5: with no refund the seats count as sold.
    assert launch.seats_booked == (2 if pct else 5)
    assert event.launch.seats_booked == launch.seats_booked
    assert event == BookingCancelled(
        launch=launch.facts(),
        booking_id="bkg_1",
        traveler_id="usr_t1",
        seats=3,
        total_cents=total,
        refund_cents=percent_of(total, pct),
        refund_pct=pct,
        seats_released=pct > 0,
        reason="traveler",
        cancelled_at=now,
    )
    assert event.by_traveler


def test_a_delay_since_the_booking_refunds_in_full() -> None:
    booked_at = NOW - timedelta(days=3)
    launch = make_launch(seats_booked=2, last_delayed_at=booked_at + US)
    event = launch.cancel(
        record("bkg_1", "usr_t1", 2, created_at=booked_at), "usr_t1", LAUNCH_AT - timedelta(days=1)
    )
    assert (event.refund_pct, event.refund_cents, event.seats_released) == (100, 2 * PRICE, True)
    assert launch.seats_booked == 0


def test_a_delay_before_the_booking_does_not() -> None:
    booked_at = NOW - timedelta(days=3)
    launch = make_launch(seats_booked=2, last_delayed_at=booked_at - US)
    event = launch.cancel(
        record("bkg_1", "usr_t1", 2, created_at=booked_at), "usr_t1", LAUNCH_AT - timedelta(days=1)
    )
    assert (event.refund_pct, event.refund_cents, event.seats_released) == (0, 0, False)
    assert launch.seats_booked == 2


# -- change_status ---------------------------------------------------------------------------------

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
ACTIVE = [
    record("bkg_1", "usr_b", 2),
    record("bkg_2", "usr_a", 1, price_cents=50_000),
    record("bkg_3", "usr_b", 1),
]
AFTER_LAUNCH = LAUNCH_AT + timedelta(hours=1)
NEW_TIME = LAUNCH_AT + timedelta(days=30)


def moved(launch: Launch, target: Status, *, now: datetime | None = None, **kw: object) -> list[DomainEvent]:
    """The agency moves the launch: now after the launch for successful/failed, a later time for a delay."""
    if now is None:
        now = AFTER_LAUNCH if target in (Status.SUCCESSFUL, Status.FAILED) else NOW
    args: dict[str, object] = {
        "agency_id": AGENCY,
        "target": target,
        "now": now,
        "scheduled_at": NEW_TIME if target is Status.DELAYED else None,
        "reason": "weather",
        "active": ACTIVE,
    }
    args.update(kw)
    return launch.change_status(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("target", list(Status))
def test_every_status_pair(current: Status, target: Status) -> None:
    launch = make_launch(status=current, seats_booked=4)
    if current in OPEN:
        hold(launch, 1)
    before = copy.deepcopy(launch)
    if (current, target) not in ALLOWED:
        with pytest.raises(Conflict) as exc:
            moved(launch, target)
        refused(exc, "invalid_transition")
        assert exc.value.details["status"] == current.value
        assert launch == before  # nothing changed, the hold included
        return
    now = AFTER_LAUNCH if target in (Status.SUCCESSFUL, Status.FAILED) else NOW
    events = moved(launch, target)
    assert (launch.status, launch.status_reason, launch.updated_at) == (target, "weather", now)
    first = events[0]
    assert isinstance(first, LaunchStatusChanged)
    assert first.previous is current
    assert first.status is target
    assert first.launch == launch.facts()
    assert first.travelers == ("usr_a", "usr_b")  # each traveler with an active booking, once
    assert not first.automatic


def test_a_delay_moves_the_launch_later_and_remembers_when() -> None:
    launch = make_launch(status=Status.CONFIRMED, confirmed_at=NOW - timedelta(days=1))
    events = moved(launch, Status.DELAYED, scheduled_at=NEW_TIME)
    assert (launch.scheduled_at, launch.last_delayed_at) == (NEW_TIME, NOW)
    assert launch.confirmed_at == NOW - timedelta(days=1)  # it was confirmed, and stays so
    first = events[0]
    assert isinstance(first, LaunchStatusChanged) and first.launch.scheduled_at == NEW_TIME
    assert [type(e) for e in events] == [LaunchStatusChanged]


@pytest.mark.parametrize(
    ("scheduled_at", "detail"),
    [
        (None, "required"),
        (LAUNCH_AT, "not later"),
        (LAUNCH_AT - timedelta(days=1), "not later"),
    ],
)
def test_a_delay_needs_a_later_scheduled_at(scheduled_at: datetime | None, detail: str) -> None:
    launch = make_launch()
    before = copy.deepcopy(launch)
    with pytest.raises(RuleViolation) as exc:
        moved(launch, Status.DELAYED, scheduled_at=scheduled_at)
    refused(exc, "date_in_past")
    assert exc.value.details["fields"] == {"scheduled_at": detail}
    assert launch == before


def test_a_delay_must_land_in_the_future() -> None:
    """A launch past its time, not flown yet: its new time is later than the old one but still past."""
    launch = make_launch(status=Status.CONFIRMED)
    now = LAUNCH_AT + timedelta(days=2)
    with pytest.raises(RuleViolation) as exc:
        moved(launch, Status.DELAYED, now=now, scheduled_at=LAUNCH_AT + timedelta(days=1))
    refused(exc, "date_in_past")
    assert launch.status is Status.CONFIRMED


@pytest.mark.parametrize("target", [Status.SUCCESSFUL, Status.FAILED])
def test_a_launch_does_not_end_before_its_time(target: Status) -> None:
    launch = make_launch(status=Status.CONFIRMED)
    before = copy.deepcopy(launch)
    with pytest.raises(RuleViolation) as exc:
        moved(launch, target, now=LAUNCH_AT - US)
    refused(exc, "too_early")
    assert launch == before
    moved(launch, target, now=LAUNCH_AT)
    assert launch.status is target


@pytest.mark.parametrize("target", [Status.ABORTED, Status.FAILED])
def test_abort_and_failure_refund_every_active_booking_in_full(target: Status) -> None:
    launch = make_launch(status=Status.CONFIRMED, seats_booked=4)
    events = moved(launch, target)
    now = AFTER_LAUNCH if target is Status.FAILED else NOW
    cancelled = [e for e in events if isinstance(e, BookingCancelled)]
    assert cancelled == [
        BookingCancelled(
            launch=launch.facts(),
            booking_id=b.id,
            traveler_id=b.traveler_id,
            seats=b.seats,
            total_cents=b.total_cents,
            refund_cents=b.total_cents,
            refund_pct=100,
            seats_released=False,
            reason=f"launch_{target.value}",
            cancelled_at=now,
        )
        for b in ACTIVE
    ]
    status = events[0]
    assert isinstance(status, LaunchStatusChanged)
    assert dict(status.refunds) == {"usr_a": 50_000, "usr_b": 3 * PRICE}  # summed per traveler
    assert launch.seats_booked == 4  # the event says no seat was released: the count agrees


@pytest.mark.parametrize("target", [Status.DELAYED, Status.SUCCESSFUL])
def test_other_moves_refund_nothing(target: Status) -> None:
    launch = make_launch(status=Status.CONFIRMED)
    events = moved(launch, target)
    assert not any(isinstance(e, BookingCancelled) for e in events)
    status = events[0]
    assert isinstance(status, LaunchStatusChanged) and dict(status.refunds) == {}


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        (Status.SUCCESSFUL, "commission"),
        (Status.ABORTED, "abort_fee"),
        (Status.FAILED, None),
        (Status.DELAYED, None),
    ],
)
def test_an_ended_launch_is_invoiced_when_successful_or_aborted(target: Status, kind: str | None) -> None:
    launch = make_launch(status=Status.CONFIRMED)
    events = moved(launch, target)
    now = NOW if target in (Status.ABORTED, Status.DELAYED) else AFTER_LAUNCH
    due = [e for e in events if isinstance(e, InvoiceDue)]
    assert due == ([] if kind is None else [InvoiceDue(launch.id, AGENCY, kind, now)])
    if due:
        assert events[-1] == due[0]


def test_confirming_by_hand_sets_confirmed_at() -> None:
    launch = make_launch()
    moved(launch, Status.CONFIRMED)
    assert launch.confirmed_at == NOW


@pytest.mark.parametrize("target", sorted(FINAL))
def test_holds_are_let_go_when_the_launch_ends(target: Status) -> None:
    launch = make_launch(status=Status.CONFIRMED)
    hold(launch, 2)
    moved(launch, target)
    assert launch.holds == {}


def test_holds_survive_a_delay() -> None:
    launch = make_launch()
    hold_id = hold(launch, 2)
    moved(launch, Status.DELAYED)
    assert list(launch.holds) == [hold_id]


def test_another_agency_finds_no_launch() -> None:
    launch = make_launch()
    before = copy.deepcopy(launch)
    with pytest.raises(NotFound):
        moved(launch, Status.ABORTED, agency_id="usr_other_agency")
    assert launch == before


def test_a_launch_without_bookings_tells_nobody_but_its_agency() -> None:
    launch = make_launch()
    events = moved(launch, Status.ABORTED, active=[])
    assert len(events) == 2  # the status change and the abort fee
    status = events[0]
    assert isinstance(status, LaunchStatusChanged)
    assert (status.travelers, dict(status.refunds)) == ((), {})


# -- schedule --------------------------------------------------------------------------------------

ROCKET = Rocket("rkt_1", AGENCY, "Orbital Co", "Falcon X", 8, Range.MOON)
WINDOW = timedelta(hours=6)


def scheduled(**kw: object) -> tuple[Launch, LaunchScheduled]:
    args: dict[str, object] = {
        "launch_id": "lch_new",
        "rocket": ROCKET,
        "mission": "Artemis Tour",
        "destination": Range.MOON,
        "scheduled_at": LAUNCH_AT,
        "price_cents": PRICE,
        "min_passengers": 3,
        "now": NOW,
        "vip_window": WINDOW,
    }
    args.update(kw)
    return schedule(**args)  # type: ignore[arg-type]


def test_schedule_makes_a_scheduled_launch_seen_by_vips_first() -> None:
    launch, event = scheduled()
    assert launch.status is Status.SCHEDULED
    assert (launch.capacity, launch.seats_booked, launch.min_passengers) == (8, 0, 3)
    assert (launch.agency_id, launch.agency_name, launch.rocket_name) == (AGENCY, "Orbital Co", "Falcon X")
    assert (launch.destination, launch.scheduled_at, launch.price_cents) == ("moon", LAUNCH_AT, PRICE)
    assert launch.public_from == NOW + WINDOW
    assert (launch.created_at, launch.updated_at) == (NOW, NOW)
    assert (launch.confirmed_at, launch.last_delayed_at, launch.holds) == (None, None, {})
    assert launch.slug == "falcon-x-moon-2028-02-05"
    assert event == scheduled()[1]
    assert event.launch == launch.facts()


def test_schedule_keeps_a_given_slug() -> None:
    launch, _ = scheduled(slug="falcon-x-moon-2028-02-05-ab12")
    assert launch.slug == "falcon-x-moon-2028-02-05-ab12"


@pytest.mark.parametrize("at", [NOW, NOW - timedelta(days=1)])
def test_schedule_refuses_a_date_not_in_the_future(at: datetime) -> None:
    with pytest.raises(RuleViolation) as exc:
        scheduled(scheduled_at=at)
    refused(exc, "date_in_past")
    scheduled(scheduled_at=NOW + US)


def test_schedule_refuses_a_destination_beyond_the_rockets_range() -> None:
    with pytest.raises(RuleViolation) as exc:
        scheduled(destination=Range.MARS)
    refused(exc, "out_of_range")
    launch, _ = scheduled(destination=Range.LOW_EARTH)
    assert launch.destination == "low_earth"


@pytest.mark.parametrize(("minimum", "ok"), [(0, False), (1, True), (8, True), (9, False)])
def test_min_passengers_is_1_to_the_rockets_capacity(minimum: int, ok: bool) -> None:
    if ok:
        assert scheduled(min_passengers=minimum)[0].min_passengers == minimum
        return
    with pytest.raises(RuleViolation) as exc:
        scheduled(min_passengers=minimum)
    refused(exc, "over_capacity")
    assert exc.value.details == {"fields": {"min_passengers": "1..8"}}
