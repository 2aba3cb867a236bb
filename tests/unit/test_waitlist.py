"""The waiting list in the Launch aggregate: joining, offers in queue order, and the seat accounting
sold + held + offered + free = capacity at every step; no I/O, a fixed clock."""

from __future__ import annotations

import contextlib
import random
from datetime import datetime, timedelta

import pytest

from astro.domain.errors import Conflict, DomainError, NotFound, RuleViolation
from astro.domain.events import SeatsOffered, WaitlistClosed
from astro.domain.launch import Launch
from astro.domain.launches import Status
from tests.unit.launch_factory import AGENCY, NOW, adults, make_launch, new_booking, record

OFFER_FOR = timedelta(minutes=15)


def sold_out(capacity: int = 10) -> Launch:
    return make_launch(capacity=capacity, seats_booked=capacity)


def join(launch: Launch, traveler: str, seats: int, *, vip: bool = False, now: datetime = NOW) -> str:
    entry = launch.join_waitlist(
        entry_id=f"wle_{traveler}", traveler_id=traveler, seats=seats, vip=vip, now=now
    )
    return entry.id


def free_seats(launch: Launch, seats: int, now: datetime = NOW) -> None:
    """A booking of `seats` is cancelled a year ahead: its seats come free (refunded)."""
    launch.cancel(record(f"bkg_{seats}_{launch.seats_booked}", "usr_x", seats), "usr_x", now)


def accounted(launch: Launch, now: datetime = NOW) -> None:
    held, offered = launch.seats_held(now), launch.seats_offered(now)
    free = launch.seats_free(now)
    assert free >= 0
    assert launch.seats_booked + held + offered + free == launch.capacity
    # The public count: free seats and seats held by travelers not booking an offer (a hold is brief), never
    # an offered seat, even while its traveler pays for it; the events carry the same count.
    from_offers = sum(e.from_offer for e in launch.waitlist.offers() if e.hold_id in launch.holds)
    assert launch.occupancy.seats_available == free + held - from_offers
    assert launch.facts().occupancy == launch.occupancy


def offered_to(offers: list[SeatsOffered]) -> list[tuple[str, int]]:
    return [(o.traveler_id, o.seats) for o in offers]


def refused(exc: pytest.ExceptionInfo[DomainError], code: str) -> None:
    assert exc.value.code == code, exc.value


# -- joining -----------------------------------------------------------------------------------------


def test_joining_a_launch_with_seats_enough_free_is_refused_seats_available() -> None:
    launch = make_launch(capacity=10, seats_booked=8)
    with pytest.raises(Conflict) as exc:
        join(launch, "usr_b", 2)
    refused(exc, "seats_available")
    assert exc.value.details == {"seats_available": 2, "seats_requested": 2}
    join(launch, "usr_b", 3)  # sold out for a party of 3
    assert launch.waitlist_positions()["wle_usr_b"].position == 1


def test_seats_held_by_others_count_as_taken_when_joining() -> None:
    launch = make_launch(capacity=10, seats_booked=8)
    launch.hold(traveler_id="usr_a", seats=2, passengers=adults(2), vip=False, now=NOW)
    join(launch, "usr_b", 1)
    accounted(launch)


@pytest.mark.parametrize(
    ("seats", "vip", "ok"),
    [(0, False, False), (4, False, True), (5, False, False), (6, True, True), (7, True, False)],
)
def test_a_party_is_1_to_4_seats_and_1_to_6_for_vips(seats: int, vip: bool, ok: bool) -> None:
    launch = sold_out()
    if ok:
        join(launch, "usr_b", seats, vip=vip)
        return
    with pytest.raises(RuleViolation) as exc:
        join(launch, "usr_b", seats, vip=vip)
    refused(exc, "seat_limit")


def test_one_place_per_traveler() -> None:
    launch = sold_out()
    join(launch, "usr_b", 1)
    with pytest.raises(Conflict) as exc:
        launch.join_waitlist(entry_id="wle_again", traveler_id="usr_b", seats=2, vip=False, now=NOW)
    refused(exc, "already_waiting")


def test_a_finished_launch_takes_nobody_on_its_list() -> None:
    launch = make_launch(capacity=10, seats_booked=10, status=Status.ABORTED)
    with pytest.raises(Conflict) as exc:
        join(launch, "usr_b", 1)
    refused(exc, "launch_not_bookable")


def test_leaving_when_not_on_the_list_is_not_found() -> None:
    with pytest.raises(NotFound):
        sold_out().leave_waitlist("usr_b")


# -- offers ------------------------------------------------------------------------------------------


def test_freed_seats_go_to_the_first_parties_that_fit_and_a_larger_head_keeps_its_place() -> None:
    launch = sold_out()
    for traveler, seats in [("usr_a", 4), ("usr_b", 2), ("usr_c", 1), ("usr_d", 1)]:
        join(launch, traveler, seats)
    free_seats(launch, 3)
    offers = launch.make_offers(NOW, OFFER_FOR)
    assert offered_to(offers) == [("usr_b", 2), ("usr_c", 1)]
    assert all(o.expires_at == NOW + OFFER_FOR for o in offers)
    positions = launch.waitlist_positions()
    assert positions["wle_usr_a"].position == 1  # still first in line
    assert positions["wle_usr_d"].position == 2
    assert positions["wle_usr_b"].position is None and positions["wle_usr_b"].status == "offered"
    assert launch.seats_offered(NOW) == 3 and launch.seats_free(NOW) == 0
    accounted(launch)
    assert launch.make_offers(NOW, OFFER_FOR) == []  # nothing is offered twice


def test_the_offered_seats_are_for_their_traveler_alone() -> None:
    launch = sold_out()
    join(launch, "usr_b", 2)
    join(launch, "usr_c", 2)
    free_seats(launch, 2)
    assert offered_to(launch.make_offers(NOW, OFFER_FOR)) == [("usr_b", 2)]
    for stranger in ("usr_c", "usr_z"):
        with pytest.raises(Conflict) as exc:
            launch.hold(traveler_id=stranger, seats=1, passengers=adults(1), vip=False, now=NOW)
        refused(exc, "sold_out")
    held = launch.hold(traveler_id="usr_b", seats=2, passengers=adults(2), vip=False, now=NOW)
    assert (launch.seats_held(NOW), launch.seats_offered(NOW)) == (2, 0)
    accounted(launch)
    entry = launch.confirm_hold(held.hold_id, new_booking("bkg_b", "usr_b", 2), NOW)
    assert entry is not None and entry.id == "wle_usr_b"
    assert launch.seats_booked == 10 and launch.seats_offered(NOW) == 0
    assert launch.waitlist_positions()["wle_usr_c"].position == 1
    accounted(launch)


def test_a_declined_payment_gives_the_seats_back_to_the_offer() -> None:
    launch = sold_out()
    join(launch, "usr_b", 2)
    free_seats(launch, 2)
    launch.make_offers(NOW, OFFER_FOR)
    held = launch.hold(traveler_id="usr_b", seats=2, passengers=adults(2), vip=False, now=NOW)
    launch.release(held.hold_id)
    assert (launch.seats_held(NOW), launch.seats_offered(NOW), launch.seats_free(NOW)) == (0, 2, 0)
    # An expired hold does the same.
    launch.hold(traveler_id="usr_b", seats=2, passengers=adults(2), vip=False, now=NOW)
    later = NOW + timedelta(minutes=1)
    assert (launch.seats_held(later), launch.seats_offered(later)) == (0, 2)
    accounted(launch, later)


def test_booking_part_of_an_offer_frees_the_rest_for_the_next_party() -> None:
    launch = sold_out()
    join(launch, "usr_b", 3)
    join(launch, "usr_c", 1)
    free_seats(launch, 3)
    assert offered_to(launch.make_offers(NOW, OFFER_FOR)) == [("usr_b", 3)]
    held = launch.hold(traveler_id="usr_b", seats=2, passengers=adults(2), vip=False, now=NOW)
    accounted(launch)
    launch.confirm_hold(held.hold_id, new_booking("bkg_b", "usr_b", 2), NOW)
    assert launch.seats_free(NOW) == 1
    assert offered_to(launch.make_offers(NOW, OFFER_FOR)) == [("usr_c", 1)]
    accounted(launch)


def test_an_offer_past_its_deadline_expires_and_its_seats_pass_on() -> None:
    launch = sold_out()
    join(launch, "usr_b", 2)
    join(launch, "usr_c", 2)
    free_seats(launch, 2)
    launch.make_offers(NOW, OFFER_FOR)
    assert launch.expire_offer("wle_usr_b", NOW + OFFER_FOR - timedelta(seconds=1)) is None
    later = NOW + OFFER_FOR
    assert launch.offers_due(later) == ["wle_usr_b"]
    expired = launch.expire_offer("wle_usr_b", later)
    assert expired is not None and (expired.traveler_id, expired.seats) == ("usr_b", 2)
    assert offered_to(launch.make_offers(later, OFFER_FOR)) == [("usr_c", 2)]
    accounted(launch, later)


def test_an_offer_being_paid_for_expires_only_after_its_hold() -> None:
    launch = sold_out()
    join(launch, "usr_b", 2)
    free_seats(launch, 2)
    launch.make_offers(NOW, OFFER_FOR)
    at = NOW + OFFER_FOR - timedelta(seconds=5)
    launch.hold(traveler_id="usr_b", seats=2, passengers=adults(2), vip=False, now=at)
    assert launch.expire_offer("wle_usr_b", NOW + OFFER_FOR) is None
    assert launch.expire_offer("wle_usr_b", at + timedelta(minutes=1)) is not None


def test_leaving_with_an_offer_frees_its_seats() -> None:
    launch = sold_out()
    join(launch, "usr_b", 2)
    join(launch, "usr_c", 2)
    free_seats(launch, 2)
    launch.make_offers(NOW, OFFER_FOR)
    launch.leave_waitlist("usr_b")
    assert offered_to(launch.make_offers(NOW, OFFER_FOR)) == [("usr_c", 2)]


def test_no_offer_is_made_once_the_launch_takes_no_bookings() -> None:
    launch = sold_out()
    join(launch, "usr_b", 1)
    free_seats(launch, 1)
    assert launch.make_offers(launch.scheduled_at, OFFER_FOR) == []


def test_an_offer_ends_with_the_launch_at_the_latest() -> None:
    launch = sold_out()
    join(launch, "usr_b", 1)
    free_seats(launch, 1)
    soon = launch.scheduled_at - timedelta(minutes=5)
    (offer,) = launch.make_offers(soon, OFFER_FOR)
    assert offer.expires_at == launch.scheduled_at


# -- closing -----------------------------------------------------------------------------------------


def test_aborting_closes_the_list_and_tells_everyone_on_it() -> None:
    launch = sold_out()
    join(launch, "usr_b", 2)
    join(launch, "usr_c", 1)
    free_seats(launch, 2)
    launch.make_offers(NOW, OFFER_FOR)
    events = launch.change_status(
        agency_id=AGENCY, target=Status.ABORTED, now=NOW, scheduled_at=None, reason="weather", active=[]
    )
    (closed,) = [e for e in events if isinstance(e, WaitlistClosed)]
    assert closed.travelers == ("usr_b", "usr_c")
    assert launch.waitlist.entries == [] and launch.seats_offered(NOW) == 0


def test_a_storm_of_joins_cancellations_and_expiries_keeps_every_seat_accounted() -> None:
    """Every freed seat offered once, in joining order to the parties that fit, nothing both offered and
    sold; sold + held + offered + free = capacity after every step."""
    rng = random.Random(16)
    launch = make_launch(capacity=30, seats_booked=30)
    now = NOW
    offered_ever: list[str] = []
    for step in range(1000):
        now += timedelta(seconds=20)
        action = rng.random()
        if action < 0.35:
            with contextlib.suppress(Conflict):  # seats_available: this party books instead
                join(launch, f"usr_{step}", rng.randint(1, 4), now=now)
        elif action < 0.55 and launch.seats_booked > 0:
            free_seats(launch, min(launch.seats_booked, rng.randint(1, 4)), now)
        elif action < 0.7 and launch.seats_free(now) > 0:  # a traveler not on the list books free seats
            seats = min(4, launch.seats_free(now))
            held = launch.hold(
                traveler_id="usr_walkin", seats=seats, passengers=adults(seats), vip=False, now=now
            )
            launch.confirm_hold(held.hold_id, new_booking(f"bkg_{step}", "usr_walkin", seats), now)
        elif action < 0.9 and launch.waitlist.offers():
            entry = rng.choice(launch.waitlist.offers())
            held = launch.hold(
                traveler_id=entry.traveler_id,
                seats=entry.seats,
                passengers=adults(entry.seats),
                vip=False,
                now=now,
            )
            launch.confirm_hold(held.hold_id, new_booking(f"bkg_{step}", entry.traveler_id, entry.seats), now)
        for entry_id in launch.offers_due(now):
            launch.expire_offer(entry_id, now)
        offers = launch.make_offers(now, OFFER_FOR)
        still_waiting = launch.waitlist.waiting()
        for offer in offers:
            assert offer.entry_id not in offered_ever  # never offered twice
            offered_ever.append(offer.entry_id)
        # No waiting party that fits is left behind while seats are free.
        assert all(e.seats > launch.seats_free(now) for e in still_waiting)
        accounted(launch, now)
    assert len(offered_ever) > 20


def test_joining_order_is_the_order_the_joins_were_taken_in_whatever_their_clocks_say() -> None:
    launch = sold_out()
    join(launch, "usr_b", 1, now=NOW)
    join(launch, "usr_c", 1, now=NOW - timedelta(seconds=1))  # asked earlier, arrived later
    b, c = launch.waitlist.entries
    assert (b.traveler_id, c.traveler_id) == ("usr_b", "usr_c") and c.joined_at > b.joined_at


def test_offered_seats_are_not_available_to_the_public_count_until_the_list_lets_them_go() -> None:
    launch = sold_out()
    join(launch, "usr_b", 2)
    join(launch, "usr_c", 2)
    free_seats(launch, 2)
    assert launch.occupancy.seats_available == 2  # freed, not offered yet: in the same step it is
    [offer] = launch.make_offers(NOW, OFFER_FOR)
    assert offer.launch.occupancy.seats_available == 0 and offer.launch.seats_offered == 2
    assert launch.occupancy.seats_available == 0
    held = launch.hold(traveler_id="usr_b", seats=2, passengers=adults(2), vip=False, now=NOW)
    assert launch.occupancy.seats_available == 0  # B paying: still nobody else's
    launch.release(held.hold_id)
    later = NOW + OFFER_FOR
    gone = launch.expire_offer("wle_usr_b", later)
    assert gone is not None and gone.launch.occupancy.seats_available == 2  # free for a moment...
    [offer] = launch.make_offers(later, OFFER_FOR)  # ...and offered on in the same step
    assert offer.traveler_id == "usr_c" and offer.launch.occupancy.seats_available == 0
    gone = launch.expire_offer("wle_usr_c", later + OFFER_FOR)
    assert gone is not None and launch.make_offers(later + OFFER_FOR, OFFER_FOR) == []
    assert launch.occupancy.seats_available == 2 and gone.launch.occupancy.seats_available == 2
    accounted(launch, later + OFFER_FOR)


def test_a_launch_read_without_its_list_counts_the_offers_its_row_read() -> None:
    launch = make_launch(capacity=10, seats_booked=7)
    launch.seats_offered_read = 3  # a catalogue read: the offers counted in SQL, the list not loaded
    assert launch.occupancy.seats_available == 0
    assert launch.occupancy.as_dict()["seats_available"] == 0
    assert launch.facts().occupancy.seats_available == 0
