"""LaunchActor on a real ActorSystem with an in-memory ledger: sequencing, group commit, flushes before a
cancel or a status change, crashes and reloads, holds on the test clock, passivation; no sleeps.

The ledger here is a fake of our storage on purpose (issue 11, item 5): it tests the actor's sequencing,
not SQL; the PostgreSQL ledger has its own integration tests. Its commits can be held at a gate, so
messages queue behind one and form the next batch, or made to fail, so the actor crashes."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from actors.launch import (
    CancelBooking,
    Cancelled,
    ChangeStatus,
    ConfirmHold,
    GetLaunch,
    HoldSeats,
    LaunchActor,
    LaunchDeps,
    ReleaseHold,
)
from actors.runtime import ActorCrashed, ActorRef, ActorStopped, ActorSystem
from astro.domain.bookings import BookingRecord, BookingView, NewBooking, RefundOwed
from astro.domain.clock import FixedClock
from astro.domain.errors import Conflict, DomainError, NotFound
from astro.domain.events import BookingCancelled, DomainEvent, LaunchFacts, LaunchStatusChanged
from astro.domain.ids import new_id
from astro.domain.launch import HOLD_FOR, Launch, SeatsHeld
from astro.domain.launches import Status
from astro.domain.leases import Fence
from astro.domain.waitlist import WaitlistChange
from astro.services.live import LiveEvent
from tests.unit.launch_factory import AGENCY, NOW, PRICE, adults, make_launch, record

LAUNCH_ID = "lch_1"
KEY = f"launch:{LAUNCH_ID}"
ASK = 5.0  # an ask that hangs fails the test instead of blocking it
T = TypeVar("T")


async def within(awaitable: Awaitable[T]) -> T:
    async with asyncio.timeout(ASK):
        return await awaitable


async def settle() -> None:
    """Let every task that can run, run: an answer already given reaches its asker within a few turns of
    the loop. Yields only; no time passes."""
    for _ in range(10):
        await asyncio.sleep(0)


# -- the fakes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    """One committed write, with the launch as the actor handed it over."""

    kind: str  # bookings | cancel | status
    seats_booked: int
    status: Status
    bookings: list[str]
    events: list[DomainEvent]


class MemoryLedger:
    """The LaunchLedger port in memory: the stored launch and bookings, and every call in order."""

    def __init__(self, launch: Launch, bookings: list[BookingRecord]) -> None:
        self.stored = copy.deepcopy(launch)
        self.bookings = {b.id: b for b in bookings}
        self.calls: list[str] = []
        self.commits: list[Commit] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.failures = 0  # how many of the next commits fail

    def hold_commits(self) -> asyncio.Event:
        """Commits wait until the returned event is set; `entered` tells when the first one waits."""
        self.gate, self.entered = asyncio.Event(), asyncio.Event()
        return self.gate

    def active(self) -> list[BookingRecord]:
        return sorted((b for b in self.bookings.values() if b.status == "confirmed"), key=lambda b: b.id)

    async def load(self, launch_id: str) -> Launch:
        self.calls.append("load")
        if launch_id != self.stored.id:
            raise NotFound("no such launch")
        return copy.deepcopy(self.stored)

    async def travelers_on(self, launch_id: str) -> list[str]:
        self.calls.append("travelers_on")
        return sorted({b.traveler_id for b in self.active()})

    async def active_bookings(self, launch_id: str) -> list[BookingRecord]:
        self.calls.append("active_bookings")
        return self.active()

    async def booking(self, booking_id: str) -> BookingRecord | None:
        self.calls.append("booking")
        return self.bookings.get(booking_id)

    async def _commit(
        self, kind: str, launch: Launch, bookings: list[str], events: list[DomainEvent]
    ) -> None:
        self.calls.append(f"commit_{kind}")
        commit = Commit(kind, launch.seats_booked, launch.status, bookings, list(events))
        stored = copy.deepcopy(launch)
        stored.holds.clear()  # holds live in memory only
        failing = self.failures > 0
        self.failures -= failing
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if failing:
            raise ConnectionError("the database went away")
        self.commits.append(commit)
        self.stored = stored

    async def commit_bookings(
        self,
        fence: Fence,
        launch: Launch,
        previous: Status,
        bookings: list[NewBooking],
        events: list[DomainEvent],
        waitlist: WaitlistChange | None = None,
    ) -> None:
        await self._commit("bookings", launch, [b.id for b in bookings], events)
        for b in bookings:
            self.bookings[b.id] = BookingRecord(
                b.id,
                b.launch_id,
                b.traveler_id,
                b.seats,
                b.total_cents,
                "confirmed",
                b.created_at,
                b.charge_ref,
            )

    async def commit_cancel(
        self,
        fence: Fence,
        launch: Launch,
        event: BookingCancelled,
        waitlist: WaitlistChange | None = None,
        offers: list[DomainEvent] | None = None,
    ) -> RefundOwed | None:
        await self._commit("cancel", launch, [], [event, *(offers or [])])
        return self._cancelled(event)

    async def commit_status(
        self,
        fence: Fence,
        launch: Launch,
        previous: Status,
        events: list[DomainEvent],
        waitlist: WaitlistChange | None = None,
    ) -> list[RefundOwed]:
        await self._commit("status", launch, [], events)
        owed = [self._cancelled(e) for e in events if isinstance(e, BookingCancelled)]
        return [o for o in owed if o is not None]

    async def commit_waitlist(
        self, fence: Fence, launch: Launch, change: WaitlistChange, events: list[DomainEvent]
    ) -> None:
        await self._commit("waitlist", launch, [], events)

    def _cancelled(self, event: BookingCancelled) -> RefundOwed | None:
        b = self.bookings[event.booking_id]
        self.bookings[b.id] = BookingRecord(
            b.id, b.launch_id, b.traveler_id, b.seats, b.total_cents, "cancelled", b.created_at, b.charge_ref
        )
        if event.refund_cents <= 0:
            return None
        return RefundOwed(f"pay_{b.id}", b.id, b.traveler_id, event.refund_cents, b.charge_ref)


class OneNode:
    """The Ownership port of a single node: every take succeeds, with the next epoch."""

    def __init__(self) -> None:
        self.epoch = 0
        self.given_up: list[Fence] = []

    async def take(self, launch_id: str) -> Fence:
        self.epoch += 1
        return Fence(launch_id, self.epoch)

    async def give_up(self, fence: Fence) -> None:
        self.given_up.append(fence)


@dataclass
class RecordingFeed:
    """The LiveFeed port: what the actor published, in order."""

    emitted: list[tuple[list[LiveEvent], dict[str, Any] | None]] = field(default_factory=list)

    def emit(self, events: list[LiveEvent], card: dict[str, Any] | None) -> None:
        self.emitted.append((events, card))

    def named(self, name: str) -> list[LiveEvent]:
        return [e for events, _ in self.emitted for e in events if e.event == name]


@dataclass
class Harness:
    """One launch actor on a real ActorSystem, with the fakes it was given."""

    system: ActorSystem
    ledger: MemoryLedger
    feed: RecordingFeed
    clock: FixedClock
    refunds: list[RefundOwed] = field(default_factory=list)
    confirmed: list[tuple[str, list[str] | None]] = field(default_factory=list)
    booking_ids: int = 0

    def __post_init__(self) -> None:
        self.deps = LaunchDeps(
            ledger=self.ledger,
            ownership=OneNode(),
            live=self.feed,
            clock=self.clock,
            pay_refunds=self.refunds.extend,
            launch_confirmed=lambda launch_id, among: self.confirmed.append((launch_id, among)),
        )

    def ref(self) -> ActorRef:
        return self.system.ref(KEY, lambda: LaunchActor(LAUNCH_ID, self.deps))

    async def ask(self, message: object) -> Any:
        return await self.ref().ask(message, timeout=ASK)

    def ask_later(self, message: object) -> asyncio.Future[Any]:
        """An ask under way; it reaches the mailbox on its first step (see `queued`)."""
        return asyncio.ensure_future(self.ask(message))

    async def queued(self, count: int) -> None:
        """Until `count` messages wait in the actor's mailbox (the asks started with ask_later)."""
        for _ in range(100):
            if self.system.mailbox_depths().get(KEY, 0) >= count:
                return
            await asyncio.sleep(0)  # a yield to the loop, so each ask takes its first step; no time passes
        raise AssertionError(f"{count} messages never reached the mailbox")

    async def hold(self, traveler: str, seats: int = 1, *, vip: bool = False) -> SeatsHeld:
        held: SeatsHeld = await self.ask(
            HoldSeats(new_id("hld"), traveler, seats, adults(seats), vip, self.clock.now())
        )
        return held

    def confirm(self, held: SeatsHeld, traveler: str, seats: int = 1) -> ConfirmHold:
        self.booking_ids += 1
        now = self.clock.now()
        booking = NewBooking(
            id=f"bkg_{self.booking_ids:02d}",
            launch_id=LAUNCH_ID,
            traveler_id=traveler,
            seats=seats,
            price_cents=held.price_cents,
            passengers=adults(seats),
            charge_ref=f"ch_{self.booking_ids}",
            created_at=now,
        )
        return ConfirmHold(held.hold_id, booking, now)

    async def book(self, traveler: str, seats: int = 1) -> BookingView:
        view: BookingView = await self.ask(self.confirm(await self.hold(traveler, seats), traveler, seats))
        return view

    def change(self, status: Status, **kw: Any) -> ChangeStatus:
        return ChangeStatus(AGENCY, status, kw.get("scheduled_at"), kw.get("reason"), self.clock.now())


MakeHarness = Callable[..., Harness]


@pytest.fixture
async def make_harness() -> AsyncIterator[MakeHarness]:
    """A harness factory: make_launch's overrides (no automatic confirmation unless min_passengers is
    given) and the bookings already stored."""
    made: list[Harness] = []

    def make(bookings: list[BookingRecord] | None = None, **launch: Any) -> Harness:
        launch.setdefault("min_passengers", 10)
        ledger = MemoryLedger(make_launch(**launch), bookings or [])
        harness = Harness(ActorSystem(), ledger, RecordingFeed(), FixedClock(NOW))
        made.append(harness)
        return harness

    yield make
    for harness in made:
        if harness.ledger.gate is not None:
            harness.ledger.gate.set()  # a test that failed mid-way must not leave the actor blocked
        await harness.system.stop(timeout=ASK)


# -- booking, one by one and in batches -------------------------------------------------------------


async def test_hold_then_confirm_commits_once_and_answers_after_the_commit(make_harness: MakeHarness) -> None:
    h = make_harness()
    held = await h.hold("usr_a", 2)
    assert (held.price_cents, held.total_cents) == (PRICE, 2 * PRICE)
    gate = h.ledger.hold_commits()
    answer = h.ask_later(h.confirm(held, "usr_a", 2))
    await within(h.ledger.entered.wait())
    await settle()
    assert not answer.done()  # the commit is under way: no answer yet
    assert h.feed.emitted == []  # and nothing published
    gate.set()
    view: BookingView = await answer
    assert (view.id, view.traveler_id, view.seats, view.total_cents) == ("bkg_01", "usr_a", 2, 2 * PRICE)
    assert (view.status, view.launch_status) == ("confirmed", Status.SCHEDULED)
    assert h.ledger.calls == ["load", "commit_bookings"]
    assert h.ledger.commits[0].bookings == ["bkg_01"]
    assert h.ledger.commits[0].seats_booked == h.ledger.stored.seats_booked == 2
    [(events, card)] = h.feed.emitted
    assert [e.event for e in events] == ["occupancy"] * 4 + ["booking_confirmed"] * 2
    assert card is not None and card["seats_booked"] == 2
    facts: LaunchFacts = await h.ask(GetLaunch())
    assert facts.seats_booked == 2


async def test_confirms_queued_together_are_one_commit(make_harness: MakeHarness) -> None:
    h = make_harness()
    seats = {"usr_a": 1, "usr_b": 2, "usr_c": 1, "usr_d": 3}
    holds = {t: await h.hold(t, n) for t, n in seats.items()}
    gate = h.ledger.hold_commits()
    first = h.ask_later(h.confirm(holds["usr_a"], "usr_a", 1))
    await within(h.ledger.entered.wait())  # the actor is committing the first booking
    rest = [h.ask_later(h.confirm(holds[t], t, seats[t])) for t in ("usr_b", "usr_c", "usr_d")]
    await h.queued(3)
    await settle()
    assert not any(a.done() for a in (first, *rest))
    gate.set()
    views: list[BookingView] = await within(asyncio.gather(first, *rest))
    assert [v.seats for v in views] == [1, 2, 1, 3]
    assert h.ledger.calls == ["load", "commit_bookings", "commit_bookings"]  # group commit
    assert [c.bookings for c in h.ledger.commits] == [["bkg_01"], ["bkg_02", "bkg_03", "bkg_04"]]
    assert [c.seats_booked for c in h.ledger.commits] == [1, 7]
    assert h.ledger.stored.seats_booked == 7
    # One publication per commit; the batch's seat count once, the newest.
    assert len(h.feed.emitted) == 2
    batch, _ = h.feed.emitted[1]
    assert [e.data["seats_booked"] for e in batch if e.event == "occupancy"] == [7, 7, 7, 7]
    assert len([e for e in batch if e.event == "booking_confirmed"]) == 6


async def test_a_cancel_between_bookings_commits_the_earlier_bookings_first(
    make_harness: MakeHarness,
) -> None:
    old = record("bkg_old", "usr_z", 2)  # a year and more ahead: cancelling refunds 90 %
    h = make_harness([old], seats_booked=2)
    a, b, c = [await h.hold(t) for t in ("usr_a", "usr_b", "usr_c")]
    gate = h.ledger.hold_commits()
    first = h.ask_later(h.confirm(a, "usr_a"))
    await within(h.ledger.entered.wait())
    later = [
        h.ask_later(h.confirm(b, "usr_b")),
        h.ask_later(CancelBooking("bkg_old", "usr_z", h.clock.now())),
        h.ask_later(h.confirm(c, "usr_c")),
    ]
    await h.queued(3)
    gate.set()
    _, _, cancelled, _ = await within(asyncio.gather(first, *later))
    assert cancelled == Cancelled("bkg_old", 180_000, 90)
    assert h.ledger.calls == [
        "load",
        "commit_bookings",  # usr_a
        "commit_bookings",  # usr_b: accepted before the cancel, so committed before it
        "booking",
        "commit_cancel",
        "commit_bookings",  # usr_c
    ]
    assert [(c.kind, c.bookings, c.seats_booked) for c in h.ledger.commits] == [
        ("bookings", ["bkg_01"], 3),
        ("bookings", ["bkg_02"], 4),
        ("cancel", [], 2),
        ("bookings", ["bkg_03"], 3),
    ]
    assert h.refunds == [RefundOwed("pay_bkg_old", "bkg_old", "usr_z", 180_000, "ch_bkg_old")]


async def test_a_status_change_between_bookings_commits_the_earlier_bookings_first(
    make_harness: MakeHarness,
) -> None:
    h = make_harness()
    a, b, c = [await h.hold(t) for t in ("usr_a", "usr_b", "usr_c")]
    gate = h.ledger.hold_commits()
    first = h.ask_later(h.confirm(a, "usr_a"))
    await within(h.ledger.entered.wait())
    later_time = make_launch().scheduled_at + timedelta(days=30)
    later = [
        h.ask_later(h.confirm(b, "usr_b")),
        h.ask_later(h.change(Status.DELAYED, scheduled_at=later_time, reason="weather")),
        h.ask_later(h.confirm(c, "usr_c")),  # a delay keeps the holds
    ]
    await h.queued(3)
    gate.set()
    _, _, delayed, view_c = await within(asyncio.gather(first, *later))
    assert isinstance(delayed, LaunchFacts) and delayed.status is Status.DELAYED
    assert view_c.launch_status is Status.DELAYED
    assert h.ledger.calls == [
        "load",
        "commit_bookings",
        "commit_bookings",
        "active_bookings",
        "commit_status",
        "commit_bookings",
    ]
    status = h.ledger.commits[2]
    assert (status.kind, status.seats_booked, status.status) == ("status", 2, Status.DELAYED)
    [changed] = status.events
    assert isinstance(changed, LaunchStatusChanged)
    assert changed.travelers == ("usr_a", "usr_b")  # both committed before the change


async def test_a_refused_status_change_between_bookings_commits_nothing_of_its_own(
    make_harness: MakeHarness,
) -> None:
    h = make_harness()
    a, b = await h.hold("usr_a"), await h.hold("usr_b")
    gate = h.ledger.hold_commits()
    first = h.ask_later(h.confirm(a, "usr_a"))
    await within(h.ledger.entered.wait())
    refused = h.ask_later(h.change(Status.SUCCESSFUL))  # a scheduled launch cannot be successful
    last = h.ask_later(h.confirm(b, "usr_b"))
    await h.queued(2)
    gate.set()
    await within(asyncio.gather(first, last))
    with pytest.raises(Conflict) as exc:
        await refused
    assert exc.value.code == "invalid_transition"
    assert h.ledger.calls == ["load", "commit_bookings", "active_bookings", "commit_bookings"]
    assert h.ledger.stored.status is Status.SCHEDULED and h.ledger.stored.seats_booked == 2


# -- crashes ---------------------------------------------------------------------------------------


async def test_a_failed_commit_crashes_the_actor_which_reloads_the_stored_seats(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(seats_booked=2)
    a, b, c = [await h.hold(t) for t in ("usr_a", "usr_b", "usr_c")]
    gate = h.ledger.hold_commits()
    first = h.ask_later(h.confirm(a, "usr_a"))
    await within(h.ledger.entered.wait())
    h.ledger.failures = 1  # the next commit, the batch queued behind this one, fails
    batch = [h.ask_later(h.confirm(b, "usr_b")), h.ask_later(h.confirm(c, "usr_c", 1))]
    await h.queued(2)
    gate.set()
    assert (await first).seats == 1
    for answer in batch:
        with pytest.raises(ActorCrashed):
            await answer
    assert h.ledger.calls == ["load", "commit_bookings", "commit_bookings", "load"]  # crashed, reloaded
    facts: LaunchFacts = await h.ask(GetLaunch())
    assert facts.seats_booked == h.ledger.stored.seats_booked == 3  # not the 5 it held before the crash
    assert len(h.feed.emitted) == 1  # nothing published for the batch that did not commit
    # The reloaded actor holds no holds: b's confirm re-checks and takes a free seat afresh.
    assert (await h.ask(h.confirm(b, "usr_b"))).seats == 1
    assert h.ledger.stored.seats_booked == 4


async def test_a_failed_cancel_crashes_the_actor_which_reloads_the_stored_seats(
    make_harness: MakeHarness,
) -> None:
    h = make_harness([record("bkg_old", "usr_z", 2)], seats_booked=2)
    h.ledger.failures = 1
    with pytest.raises(ActorCrashed):
        await h.ask(CancelBooking("bkg_old", "usr_z", h.clock.now()))
    facts: LaunchFacts = await h.ask(GetLaunch())
    assert facts.seats_booked == 2  # the released seats were in memory only
    assert h.refunds == [] and h.feed.emitted == []
    assert await h.ask(CancelBooking("bkg_old", "usr_z", h.clock.now())) == Cancelled("bkg_old", 180_000, 90)
    assert h.ledger.stored.seats_booked == 0


async def test_a_refused_cancel_commits_nothing(make_harness: MakeHarness) -> None:
    h = make_harness([record("bkg_old", "usr_z", 2)], seats_booked=2)
    with pytest.raises(NotFound):
        await h.ask(CancelBooking("bkg_old", "usr_other", h.clock.now()))
    assert h.ledger.calls == ["load", "booking"]
    assert (await h.book("usr_a")).seats == 1  # the actor goes on


# -- status, holds and the clock -------------------------------------------------------------------


async def test_a_hold_on_an_aborted_launch_cannot_be_confirmed(make_harness: MakeHarness) -> None:
    h = make_harness([record("bkg_old", "usr_z", 2)], seats_booked=2)
    held = await h.hold("usr_a", 2)
    aborted: LaunchFacts = await h.ask(h.change(Status.ABORTED, reason="engine"))
    assert aborted.status is Status.ABORTED
    with pytest.raises(Conflict) as exc:
        await h.ask(h.confirm(held, "usr_a", 2))
    assert exc.value.code == "launch_not_bookable"
    assert [c.kind for c in h.ledger.commits] == ["status"]
    assert h.refunds == [RefundOwed("pay_bkg_old", "bkg_old", "usr_z", 2 * PRICE, "ch_bkg_old")]
    cancelled = h.feed.named("booking_cancelled")
    assert {e.data["cancel_reason"] for e in cancelled} == {"launch_aborted"}
    assert {e.data["seats"] for e in cancelled} == {2}


async def test_an_expired_hold_lets_another_traveler_take_the_seats(make_harness: MakeHarness) -> None:
    h = make_harness(capacity=2)
    first = await h.hold("usr_a", 2)
    with pytest.raises(Conflict) as exc:
        await h.hold("usr_b", 1)
    assert exc.value.code == "sold_out"
    h.clock.advance(HOLD_FOR)  # the first hold expires
    second = await h.hold("usr_b", 2)
    with pytest.raises(Conflict) as exc:  # without its hold, the first confirm re-checks: no seat left
        await h.ask(h.confirm(first, "usr_a", 2))
    assert exc.value.code == "sold_out"
    assert (await h.ask(h.confirm(second, "usr_b", 2))).traveler_id == "usr_b"
    assert [c.bookings for c in h.ledger.commits] == [["bkg_02"]]
    assert h.ledger.stored.seats_booked == 2


async def test_a_released_hold_frees_its_seats(make_harness: MakeHarness) -> None:
    h = make_harness(capacity=2)
    held = await h.hold("usr_a", 2)
    assert await h.ask(ReleaseHold(held.hold_id)) is None
    assert (await h.hold("usr_b", 2)).total_cents == 2 * PRICE


async def test_reaching_the_minimum_in_a_batch_confirms_the_launch_once(make_harness: MakeHarness) -> None:
    h = make_harness([record("bkg_old", "usr_z", 1)], seats_booked=1, min_passengers=3)
    a, b, c = [await h.hold(t) for t in ("usr_a", "usr_b", "usr_c")]
    gate = h.ledger.hold_commits()
    first = h.ask_later(h.confirm(a, "usr_a"))  # 2 of 3: not yet
    await within(h.ledger.entered.wait())
    batch = [h.ask_later(h.confirm(b, "usr_b")), h.ask_later(h.confirm(c, "usr_c"))]  # 4 of 3
    await h.queued(2)
    gate.set()
    view_a, view_b, view_c = await within(asyncio.gather(first, *batch))
    assert view_a.launch_status is Status.SCHEDULED
    assert view_b.launch_status is view_c.launch_status is Status.CONFIRMED
    assert h.ledger.calls.count("travelers_on") == 1
    commit = h.ledger.commits[1]
    assert (commit.seats_booked, commit.status) == (4, Status.CONFIRMED)
    changes = [e for e in commit.events if isinstance(e, LaunchStatusChanged)]
    assert len(changes) == 1 and changes[0].automatic
    assert changes[0].travelers == ("usr_a", "usr_b", "usr_c", "usr_z")
    assert h.ledger.stored.confirmed_at == NOW
    status_channels = [e.channel for e in h.feed.named("status")]
    assert status_channels[:4] == [KEY, "launches", "launches:vip", f"agency:{AGENCY}"]
    assert len([e for e in h.feed.named("status") if e.channel == "launches"]) == 1
    assert h.confirmed == [(LAUNCH_ID, None)]
    # Booking on the launch now confirmed: no second confirmation; the new traveler may become VIP.
    await h.book("usr_d")
    assert h.ledger.calls.count("travelers_on") == 1
    assert len([e for e in h.feed.named("status") if e.channel == "launches"]) == 1
    assert h.confirmed == [(LAUNCH_ID, None), (LAUNCH_ID, ["usr_d"])]


async def test_get_launch_answers_the_launch_as_it_stands(make_harness: MakeHarness) -> None:
    h = make_harness(seats_booked=3)
    facts: LaunchFacts = await h.ask(GetLaunch())
    assert facts == make_launch(seats_booked=3, min_passengers=10).facts()


async def test_an_unknown_launch_refuses_the_ask(make_harness: MakeHarness) -> None:
    h = make_harness(id="lch_other")
    with pytest.raises(ActorStopped) as exc:
        await h.ask(GetLaunch())
    assert isinstance(exc.value.__cause__, DomainError) and exc.value.__cause__.code == "not_found"


# -- passivation -----------------------------------------------------------------------------------


async def test_no_passivation_while_a_hold_is_live(make_harness: MakeHarness) -> None:
    h = make_harness()
    await h.hold("usr_a", 2)
    assert h.system.passivate_idle(0) == 0
    assert h.system.get(KEY) is not None
    h.clock.advance(HOLD_FOR - timedelta(microseconds=1))
    assert h.system.passivate_idle(0) == 0
    h.clock.advance(timedelta(microseconds=1))  # the hold has expired
    assert h.system.passivate_idle(0) == 1
    assert h.system.get(KEY) is None
    facts: LaunchFacts = await h.ask(GetLaunch())  # a new incarnation, loaded afresh
    assert facts.seats_booked == 0
    assert h.ledger.calls == ["load", "load"]
