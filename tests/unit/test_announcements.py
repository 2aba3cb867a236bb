"""The one translation of each domain event: its live payload (channels, name, data, coalescing key) and its
notification rows (event, recipients, data), pinned per event."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest

from astro.domain.events import (
    BookingCancelled,
    DomainEvent,
    InvoiceDue,
    InvoiceIssued,
    LaunchFacts,
    LaunchScheduled,
    LaunchStatusChanged,
    OfferExpired,
    PassengerFacts,
    PaymentReceived,
    SeatsBooked,
    SeatsOffered,
)
from astro.domain.launches import Status
from astro.services.announcements import (
    Notice,
    ToAgency,
    ToTraveler,
    ToVipTravelers,
    live_events,
    money,
    notices,
)
from astro.services.live import LiveEvent
from tests.unit.launch_factory import AGENCY, LAUNCH_AT, NOW, make_launch, record

LAUNCH_ID = "lch_1"
SLUG = "falcon-x-moon-2028-02-05"
# What every launch e-mail says of the launch (make_launch's values, 4 of its 10 seats booked).
LAUNCH_VALUES = {
    "launch_id": LAUNCH_ID,
    "mission": "Artemis Tour",
    "destination": "the Moon",
    "date": "2028-02-05 12:00 UTC",
    "link_path": f"/launches/{SLUG}",
    "price": "$1,000.00",
    "seats_available": 6,
}
OCCUPANCY_4 = {
    "launch_id": LAUNCH_ID,
    "capacity": 10,
    "seats_booked": 4,
    "seats_available": 6,
    "occupancy_pct": 40.0,
    "min_passengers": 3,
    "viable": True,
}
# The payload of booking_cancelled, whatever cancelled the booking.
CANCELLED_KEYS = {
    "booking_id",
    "launch_id",
    "traveler_id",
    "seats",
    "status",
    "cancel_reason",
    "refund_cents",
    "refund_pct",
    "seats_released",
    "cancelled_at",
}


def facts(**overrides: Any) -> LaunchFacts:
    return make_launch(**{"seats_booked": 4, **overrides}).facts()


def occupancy(data: dict[str, Any], launch_id: str = LAUNCH_ID, agency: str = AGENCY) -> list[LiveEvent]:
    key = f"occupancy:{launch_id}"
    return [
        LiveEvent(f"launch:{launch_id}", "occupancy", data, key),
        LiveEvent("launches", "occupancy", data, key),
        LiveEvent("launches:vip", "occupancy", data, key),
        LiveEvent(f"agency:{agency}", "occupancy", data, key),
    ]


def booked(launch: LaunchFacts, booking_id: str = "bkg_1", traveler: str = "usr_t1") -> SeatsBooked:
    return SeatsBooked(
        launch=launch,
        booking_id=booking_id,
        traveler_id=traveler,
        seats=2,
        price_cents=100_000,
        total_cents=200_000,
        passengers=(PassengerFacts("Ann", date(1990, 5, 1)), PassengerFacts("Bob", date(1985, 7, 2))),
        created_at=NOW,
    )


def cancelled(reason: str, *, refund_pct: int, released: bool) -> BookingCancelled:
    total = 200_000
    return BookingCancelled(
        launch=facts(status=Status.ABORTED) if reason == "launch_aborted" else facts(seats_booked=2),
        booking_id="bkg_1",
        traveler_id="usr_t1",
        seats=2,
        total_cents=total,
        refund_cents=total * refund_pct // 100,
        refund_pct=refund_pct,
        seats_released=released,
        reason=reason,
        cancelled_at=NOW,
    )


# -- SeatsBooked -----------------------------------------------------------------------------------


def test_seats_booked_live() -> None:
    event = booked(facts())
    data = {
        "id": "bkg_1",
        "launch_id": LAUNCH_ID,
        "traveler_id": "usr_t1",
        "seats": 2,
        "price_cents": 100_000,
        "total_cents": 200_000,
        "status": "confirmed",
        "created_at": NOW.isoformat(),
        "launch_status": "scheduled",
        "launch_slug": SLUG,
        "mission": "Artemis Tour",
        "scheduled_at": LAUNCH_AT.isoformat(),
        "delayed_since_booking": False,
        "cancel_reason": None,
        "refund_pct": None,
        "refund_cents": None,
        "cancelled_at": None,
        "passengers": [
            {"name": "Ann", "birth_date": "1990-05-01"},
            {"name": "Bob", "birth_date": "1985-07-02"},
        ],
        "refund_pct_if_cancelled_now": 90,  # 400 days ahead
    }
    assert live_events([event], NOW) == [
        *occupancy(OCCUPANCY_4),
        LiveEvent(f"agency:{AGENCY}", "booking_confirmed", data),
        LiveEvent("traveler:usr_t1", "booking_confirmed", data),
    ]


def test_seats_booked_live_tells_what_cancelling_would_refund_at_that_moment() -> None:
    event = booked(facts())
    [*_, to_traveler] = live_events([event], LAUNCH_AT - timedelta(days=100))
    assert to_traveler.data["refund_pct_if_cancelled_now"] == 70


def test_seats_booked_notices() -> None:
    data = {**LAUNCH_VALUES, "booking_id": "bkg_1", "seats": 2, "amount": "$2,000.00"}
    ticket = {**data, "ticket_path": "/traveler#bookings/bkg_1"}
    assert notices([booked(facts())]) == [
        # only the traveler's copy links to the booking, where its e-ticket is
        Notice("booking_confirmed", ToTraveler("usr_t1"), ticket),
        Notice("booking_confirmed", ToAgency(AGENCY), data),
    ]


# -- BookingCancelled ------------------------------------------------------------------------------


def test_booking_cancelled_by_the_traveler_live() -> None:
    event = cancelled("traveler", refund_pct=90, released=True)
    data = {
        "booking_id": "bkg_1",
        "launch_id": LAUNCH_ID,
        "traveler_id": "usr_t1",
        "seats": 2,
        "status": "cancelled",
        "cancel_reason": "traveler",
        "refund_cents": 180_000,
        "refund_pct": 90,
        "seats_released": True,
        "cancelled_at": NOW.isoformat(),
    }
    occupancy_2 = {
        **OCCUPANCY_4,
        "seats_booked": 2,
        "seats_available": 8,
        "occupancy_pct": 20.0,
        "viable": False,
    }
    assert live_events([event], NOW) == [
        *occupancy(occupancy_2),
        LiveEvent(f"agency:{AGENCY}", "booking_cancelled", data),
        LiveEvent("traveler:usr_t1", "booking_cancelled", data),
    ]


def test_booking_cancelled_without_released_seats_tells_no_occupancy() -> None:
    event = cancelled("traveler", refund_pct=0, released=False)
    assert [e.event for e in live_events([event], NOW)] == ["booking_cancelled", "booking_cancelled"]


def test_booking_cancelled_by_an_abort_live_has_the_same_payload() -> None:
    """An abort's booking_cancelled once had no `seats` (AgencyWeb showed "undefined seat(s) cancelled")."""
    event = cancelled("launch_aborted", refund_pct=100, released=False)
    data = {
        "booking_id": "bkg_1",
        "launch_id": LAUNCH_ID,
        "traveler_id": "usr_t1",
        "seats": 2,
        "status": "cancelled",
        "cancel_reason": "launch_aborted",
        "refund_cents": 200_000,
        "refund_pct": 100,
        "seats_released": False,
        "cancelled_at": NOW.isoformat(),
    }
    assert live_events([event], NOW) == [
        LiveEvent(f"agency:{AGENCY}", "booking_cancelled", data),
        LiveEvent("traveler:usr_t1", "booking_cancelled", data),
    ]
    by_traveler = live_events([cancelled("traveler", refund_pct=90, released=True)], NOW)[-1]
    assert set(data) == set(by_traveler.data) == CANCELLED_KEYS


def test_booking_cancelled_by_the_traveler_notices() -> None:
    event = cancelled("traveler", refund_pct=70, released=True)
    data = {
        **LAUNCH_VALUES,
        "seats_available": 8,
        "booking_id": "bkg_1",
        "seats": 2,
        "refund": "$1,400.00",
        "refund_pct": 70,
    }
    assert notices([event]) == [
        Notice("booking_cancelled", ToTraveler("usr_t1"), data),
        Notice("booking_cancelled", ToAgency(AGENCY), data),
    ]


@pytest.mark.parametrize("reason", ["launch_aborted", "launch_failed"])
def test_booking_cancelled_by_the_launch_has_no_mail_of_its_own(reason: str) -> None:
    """The launch_aborted / launch_failed e-mail tells each traveler of the refund."""
    assert notices([cancelled(reason, refund_pct=100, released=False)]) == []


# -- LaunchStatusChanged ---------------------------------------------------------------------------


def test_launch_status_changed_live_goes_to_the_launch_the_list_the_agency_and_each_traveler() -> None:
    launch = facts(status=Status.ABORTED, status_reason="weather")
    event = LaunchStatusChanged(launch, Status.CONFIRMED, ("usr_a", "usr_b"), {"usr_a": 300, "usr_b": 150})
    data = {
        "launch_id": LAUNCH_ID,
        "status": "aborted",
        "scheduled_at": LAUNCH_AT.isoformat(),
        "reason": "weather",
    }
    channels = [f"launch:{LAUNCH_ID}", "launches", "launches:vip", f"agency:{AGENCY}"]
    channels += ["traveler:usr_a", "traveler:usr_b"]
    assert live_events([event], NOW) == [LiveEvent(c, "status", data) for c in channels]


def test_launch_status_changed_notices_tell_each_traveler_their_refund() -> None:
    launch = facts(status=Status.ABORTED, status_reason="weather")
    event = LaunchStatusChanged(
        launch, Status.CONFIRMED, ("usr_a", "usr_b"), {"usr_a": 300_000, "usr_b": 150}
    )
    data = {**LAUNCH_VALUES, "reason": "weather"}
    assert notices([event]) == [
        Notice("launch_aborted", ToAgency(AGENCY), data),
        Notice("launch_aborted", ToTraveler("usr_a"), {**data, "refund": "$3,000.00"}),
        Notice("launch_aborted", ToTraveler("usr_b"), {**data, "refund": "$1.50"}),
    ]


def test_a_delay_tells_the_new_date_and_no_refund() -> None:
    later = LAUNCH_AT + timedelta(days=31)
    event = LaunchStatusChanged(
        facts(status=Status.DELAYED, scheduled_at=later), Status.SCHEDULED, ("usr_a",)
    )
    data = {**LAUNCH_VALUES, "date": "2028-03-07 12:00 UTC", "reason": ""}
    assert notices([event]) == [
        Notice("launch_delayed", ToAgency(AGENCY), data),
        Notice("launch_delayed", ToTraveler("usr_a"), {**data, "refund": "$0.00"}),
    ]
    assert {e.data["scheduled_at"] for e in live_events([event], NOW)} == {later.isoformat()}


def test_automatic_confirmation_is_told_like_any_status_change() -> None:
    launch = facts(status=Status.CONFIRMED, seats_booked=3)
    event = LaunchStatusChanged(launch, Status.SCHEDULED, ("usr_a", "usr_b"), automatic=True)
    data = {**LAUNCH_VALUES, "seats_available": 7, "reason": ""}
    assert notices([event]) == [
        Notice("launch_confirmed", ToAgency(AGENCY), data),
        Notice("launch_confirmed", ToTraveler("usr_a"), {**data, "refund": "$0.00"}),
        Notice("launch_confirmed", ToTraveler("usr_b"), {**data, "refund": "$0.00"}),
    ]
    live = {
        "launch_id": LAUNCH_ID,
        "status": "confirmed",
        "scheduled_at": LAUNCH_AT.isoformat(),
        "reason": None,
    }
    channels = [f"launch:{LAUNCH_ID}", "launches", "launches:vip", f"agency:{AGENCY}"]
    channels += ["traveler:usr_a", "traveler:usr_b"]
    assert live_events([event], NOW) == [LiveEvent(c, "status", live) for c in channels]


# -- LaunchScheduled -------------------------------------------------------------------------------


def test_launch_scheduled_in_its_vip_window_goes_to_the_vip_list_and_the_agency_only() -> None:
    launch = make_launch(destination="low_earth", public_from=NOW + timedelta(hours=6)).facts()
    card = {
        "id": LAUNCH_ID,
        "slug": SLUG,
        "mission": "Artemis Tour",
        "destination": "low_earth",
        "scheduled_at": LAUNCH_AT.isoformat(),
        "price_cents": 100_000,
        "status": "scheduled",
        "status_reason": None,
        "public_from": (NOW + timedelta(hours=6)).isoformat(),
        "rocket": {"id": "rkt_1", "name": "Falcon X"},
        "agency": {"id": AGENCY, "name": "Orbital Co"},
        "capacity": 10,
        "seats_booked": 0,
        "seats_available": 10,
        "occupancy_pct": 0.0,
        "min_passengers": 3,
        "viable": False,
    }
    event = LaunchScheduled(launch)
    assert live_events([event], NOW) == [
        LiveEvent("launches:vip", "launch_added", card),
        LiveEvent(f"agency:{AGENCY}", "launch_added", card),
    ]
    after_window = live_events([event], NOW + timedelta(hours=6))
    assert [e.channel for e in after_window] == ["launches", "launches:vip", f"agency:{AGENCY}"]


def test_seats_of_a_launch_in_its_vip_window_reach_only_the_vip_list() -> None:
    launch = facts(public_from=NOW + timedelta(hours=1))
    channels = [e.channel for e in live_events([booked(launch)], NOW) if e.event == "occupancy"]
    assert channels == [f"launch:{LAUNCH_ID}", "launches:vip", f"agency:{AGENCY}"]


def test_launch_scheduled_notices_go_to_the_agency_and_every_vip() -> None:
    event = LaunchScheduled(make_launch(destination="low_earth").facts())
    data = {**LAUNCH_VALUES, "destination": "Low Earth orbit", "seats_available": 10}
    assert notices([event]) == [
        Notice("launch_scheduled", ToAgency(AGENCY), data),
        Notice("launch_scheduled", ToVipTravelers(), data),
    ]


# -- invoices --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "shown"), [("commission", "commission"), ("abort_fee", "abort fee")])
def test_invoice_issued_notices_the_agency(kind: str, shown: str) -> None:
    event = InvoiceIssued(
        invoice_id="inv_1",
        number="INV-2027-000042",
        agency_id=AGENCY,
        launch_id=LAUNCH_ID,
        mission="Artemis Tour",
        kind=kind,
        amount_cents=1_234_567,
        due_at=NOW + timedelta(days=30),
    )
    data = {
        "invoice_id": "inv_1",
        "invoice_number": "INV-2027-000042",
        "mission": "Artemis Tour",
        "launch_id": LAUNCH_ID,
        "kind": shown,
        "amount": "$12,345.67",
        "due_date": "2027-01-31",
        "invoice_path": "/agency#invoices/inv_1",
    }
    assert notices([event]) == [Notice("invoice_issued", ToAgency(AGENCY), data)]
    assert live_events([event], NOW) == []


def test_payment_received_notices_the_agency() -> None:
    event = PaymentReceived("inv_1", "INV-2027-000042", AGENCY, amount_cents=100_005, balance_cents=0)
    data = {
        "invoice_id": "inv_1",
        "invoice_number": "INV-2027-000042",
        "amount": "$1,000.05",
        "balance": "$0.00",
    }
    assert notices([event]) == [Notice("payment_received", ToAgency(AGENCY), data)]
    assert live_events([event], NOW) == []


def test_invoice_due_is_told_through_the_invoice_it_issues() -> None:
    event = InvoiceDue(LAUNCH_ID, AGENCY, "commission", NOW)
    assert notices([event]) == []
    assert live_events([event], NOW) == []


@pytest.mark.parametrize(("cents", "shown"), [(0, "$0.00"), (5, "$0.05"), (123_457, "$1,234.57")])
def test_money_in_mails(cents: int, shown: str) -> None:
    assert money(cents) == shown


# -- batches ---------------------------------------------------------------------------------------


def test_a_batch_tells_each_launchs_occupancy_once_the_newest_first() -> None:
    other = make_launch(id="lch_2", agency_id="usr_agency2", seats_booked=1).facts()
    batch: list[DomainEvent] = [
        booked(facts(seats_booked=2), "bkg_1", "usr_a"),
        booked(other, "bkg_2", "usr_b"),
        booked(facts(seats_booked=4), "bkg_3", "usr_c"),
        cancelled("traveler", refund_pct=0, released=False),  # no seat released: no occupancy of its own
    ]
    out = live_events(batch, NOW)
    other_occupancy = {**OCCUPANCY_4, "launch_id": "lch_2", "seats_booked": 1, "seats_available": 9}
    other_occupancy.update(occupancy_pct=10.0, viable=False)
    assert out[:8] == [*occupancy(OCCUPANCY_4), *occupancy(other_occupancy, "lch_2", "usr_agency2")]
    assert [e.event for e in out[8:]] == ["booking_confirmed"] * 6 + ["booking_cancelled"] * 2
    assert [e.data["id"] for e in out[8:14:2]] == ["bkg_1", "bkg_2", "bkg_3"]


def test_notices_keep_the_order_of_the_events() -> None:
    batch: list[DomainEvent] = [
        booked(facts(), "bkg_1", "usr_a"),
        LaunchStatusChanged(facts(status=Status.CONFIRMED), Status.SCHEDULED, ("usr_a",), automatic=True),
    ]
    assert [(n.event, n.to) for n in notices(batch)] == [
        ("booking_confirmed", ToTraveler("usr_a")),
        ("booking_confirmed", ToAgency(AGENCY)),
        ("launch_confirmed", ToAgency(AGENCY)),
        ("launch_confirmed", ToTraveler("usr_a")),
    ]


def test_a_cancellation_and_a_status_change_from_the_aggregate_match_the_pinned_shapes() -> None:
    """The events the Launch raises translate to the shapes pinned above (no hand-made event drifts)."""
    launch = make_launch(status=Status.CONFIRMED, seats_booked=3)
    events = launch.change_status(
        agency_id=AGENCY,
        target=Status.ABORTED,
        now=NOW,
        scheduled_at=None,
        reason=None,
        active=[record("bkg_1", "usr_a", 3)],
    )
    out = live_events(events, NOW)
    abort = [e for e in out if e.event == "booking_cancelled"]
    assert [e.channel for e in abort] == [f"agency:{AGENCY}", "traveler:usr_a"]
    assert set(abort[0].data) == CANCELLED_KEYS and abort[0].data["seats"] == 3
    assert [e.channel for e in out if e.event == "status"][-1] == "traveler:usr_a"


def test_offers_made_or_ended_send_the_seat_count_without_the_offered_seats() -> None:
    """An offer takes its seats from the public count, an expired one (nobody next) gives them back: each
    sends the occupancy, the newest of the step's events, first."""
    launch = make_launch(capacity=10, seats_booked=8)
    offered = dataclasses.replace(launch.facts(), seats_offered=2)
    cancelled = BookingCancelled(
        launch=launch.facts(),
        booking_id="bkg_1",
        traveler_id="usr_a",
        seats=2,
        total_cents=1,
        refund_cents=1,
        refund_pct=100,
        seats_released=True,
        reason="traveler",
        cancelled_at=NOW,
    )
    events: list[DomainEvent] = [
        cancelled,
        SeatsOffered(offered, "wle_b", "usr_b", 2, NOW + timedelta(minutes=15)),
    ]
    out = live_events(events, NOW)
    occupancy = [e for e in out if e.event == "occupancy"]
    assert occupancy and {e.data["seats_available"] for e in occupancy} == {0}
    expired = live_events([OfferExpired(launch.facts(), "wle_b", "usr_b", 2)], NOW)
    assert {e.data["seats_available"] for e in expired if e.event == "occupancy"} == {2}
