"""The launch actor's waiting list on the in-memory ledger: offers commit with the release that frees the
seats, the offered seats are their traveler's, an open offer keeps the actor, and its deadline reminder
expires it and passes the seats on."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from actors.launch import CancelBooking, Joined, JoinWaitlist, LeaveWaitlist
from astro.domain.errors import Conflict
from astro.domain.events import OfferExpired, SeatsOffered
from tests.unit import test_launch_actor
from tests.unit.launch_factory import record
from tests.unit.test_launch_actor import KEY, Harness, MakeHarness

make_harness = test_launch_actor.make_harness  # the harness fixture of the actor's own tests


async def join(h: Harness, traveler: str, seats: int) -> Joined:
    joined: Joined = await h.ask(JoinWaitlist(f"wle_{traveler}", traveler, seats, False, h.clock.now()))
    return joined


def sold_out(make: MakeHarness) -> Harness:
    return make([record("bkg_old", "usr_z", 2)], capacity=2, seats_booked=2)


async def test_the_seats_a_cancellation_frees_are_offered_in_its_own_commit(
    make_harness: MakeHarness,
) -> None:
    h = sold_out(make_harness)
    assert (await join(h, "usr_b", 2)).position == 1
    assert (await join(h, "usr_c", 2)).position == 2
    await h.ask(CancelBooking("bkg_old", "usr_z", h.clock.now()))
    assert h.ledger.calls[-1] == "commit_cancel"  # no second transaction for the offer
    offers = [e for e in h.ledger.commits[-1].events if isinstance(e, SeatsOffered)]
    assert [(o.traveler_id, o.seats) for o in offers] == [("usr_b", 2)]
    [offer] = h.feed.named("waitlist_offer")
    assert offer.channel == "traveler:usr_b" and offer.data["seats"] == 2
    moved = {e.channel: e.data["position"] for e in h.feed.named("waitlist_position")}
    assert moved == {"traveler:usr_b": None, "traveler:usr_c": 1}
    with pytest.raises(Conflict) as exc:
        await h.hold("usr_c", 1)
    assert exc.value.code == "sold_out"
    view = await h.book("usr_b", 2)
    assert view.seats == 2
    assert h.ledger.stored.waitlist.of("usr_b") is None  # the offer used, off the list


async def test_an_open_offer_keeps_its_actor_from_passivating(make_harness: MakeHarness) -> None:
    h = sold_out(make_harness)
    await join(h, "usr_b", 2)
    await h.ask(CancelBooking("bkg_old", "usr_z", h.clock.now()))
    assert h.system.passivate_idle(0) == 0
    await h.ask(LeaveWaitlist("usr_b", h.clock.now()))
    assert h.system.passivate_idle(0) == 1


async def test_the_deadline_reminder_expires_the_offer_and_passes_the_seats_on(
    make_harness: MakeHarness,
) -> None:
    h = sold_out(make_harness)
    expired = asyncio.Event()
    emit = h.feed.emit

    def watching(events: list, card: dict | None) -> None:  # type: ignore[type-arg]
        emit(events, card)
        if any(e.event == "waitlist_expired" for e in events):
            expired.set()

    h.feed.emit = watching  # type: ignore[method-assign]
    h.deps = dataclasses.replace(
        h.deps,
        offer_for=timedelta(seconds=0.05),
        remind=lambda _launch_id, message: h.system.get(KEY).tell(message),  # type: ignore[union-attr]
    )
    await join(h, "usr_b", 2)
    await join(h, "usr_c", 2)
    await h.ask(CancelBooking("bkg_old", "usr_z", h.clock.now()))
    assert not expired.is_set()
    h.clock.advance(timedelta(seconds=1))  # past the deadline, before the reminder (0.06 s away) fires
    async with asyncio.timeout(5):
        await expired.wait()
    events = [e for c in h.ledger.commits for e in c.events]
    assert [(type(e), e.traveler_id) for e in events if isinstance(e, SeatsOffered | OfferExpired)] == [
        (SeatsOffered, "usr_b"),
        (OfferExpired, "usr_b"),
        (SeatsOffered, "usr_c"),
    ]
