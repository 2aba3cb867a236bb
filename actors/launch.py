"""LaunchActor: sequences one launch's messages, applies them to its Launch aggregate, persists, replies.

Booking requests, cancellations and status changes are handled one at a time, in arrival order, so two
requests can never take the same seat. Bookings accepted together are committed in one transaction
(group commit); a request is answered only after its commit. The rules live in `astro.domain.launch`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from actors.runtime import Actor, Envelope
from astro.domain.bookings import BookingRecord, NewBooking, Passenger, RefundOwed
from astro.domain.clock import Clock
from astro.domain.errors import DomainError, Unavailable
from astro.domain.events import (
    BookingCancelled,
    DomainEvent,
    LaunchFacts,
    OfferExpired,
    WaitingPosition,
    WaitlistClosed,
)
from astro.domain.launch import HOLD_FOR, Launch, SeatsHeld
from astro.domain.launches import Status
from astro.domain.leases import Fence
from astro.domain.payments import PaymentsReleased
from astro.domain.waitlist import Entry, WaitlistChange
from astro.origin import SYSTEM, Origin, acting_as
from astro.services.announcements import live_events
from astro.services.live import LiveFeed
from astro.services.views import launch_card, view_of_booked

# -- messages (immutable) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HoldSeats:
    hold_id: str  # chosen by the asker, so it can release the hold if it stops waiting for the answer
    traveler_id: str
    seats: int
    passengers: tuple[Passenger, ...]
    vip: bool
    now: datetime


@dataclass(frozen=True, slots=True)
class ConfirmHold:
    hold_id: str
    booking: NewBooking
    now: datetime
    vip: bool = False  # the traveler was VIP already when booking: no promotion to look for


@dataclass(frozen=True, slots=True)
class ReleaseHold:
    hold_id: str


@dataclass(frozen=True, slots=True)
class CancelBooking:
    booking_id: str
    traveler_id: str
    now: datetime
    origin: Origin = SYSTEM


@dataclass(frozen=True, slots=True)
class ChangeStatus:
    agency_id: str
    status: Status
    scheduled_at: datetime | None
    reason: str | None
    now: datetime
    origin: Origin = SYSTEM


@dataclass(frozen=True, slots=True)
class GetLaunch:
    pass


@dataclass(frozen=True, slots=True)
class JoinWaitlist:
    entry_id: str
    traveler_id: str
    seats: int
    vip: bool
    now: datetime
    origin: Origin = SYSTEM


@dataclass(frozen=True, slots=True)
class LeaveWaitlist:
    traveler_id: str
    now: datetime
    origin: Origin = SYSTEM


@dataclass(frozen=True, slots=True)
class WaitlistDue:
    """A reminder the actor set itself: an offer's deadline, or a hold's end that may free seats."""


@dataclass(frozen=True, slots=True)
class Joined:
    """The answer to JoinWaitlist: the entry and its place (1 is next)."""

    entry: Entry
    position: int


class CommitFailed(Exception):
    """A write of the launch did not commit: the actor crashes and reloads its state from the database.

    Not a DomainError on purpose: whatever went wrong (a store down included), what the actor holds in
    memory may no longer be what is stored, so it must not go on with it."""


class PaymentReleased(Unavailable):
    """The booking's payment was released before it could commit (it outlived its deadline)."""

    def __init__(self) -> None:
        super().__init__(
            "the booking took too long to complete and its payment is released: nothing will be charged; "
            "try again",
            retry_after=1,
        )


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The answer to CancelBooking."""

    booking_id: str
    refund_cents: int
    refund_pct: int


# -- what the actor needs from outside -----------------------------------------------------------


class LaunchLedger(Protocol):
    """The launch's durable state (PostgreSQL): every write is one transaction, with its notifications."""

    async def load(self, launch_id: str) -> Launch: ...
    async def travelers_on(self, launch_id: str) -> list[str]: ...
    async def active_bookings(self, launch_id: str) -> list[BookingRecord]: ...
    async def booking(self, booking_id: str) -> BookingRecord | None: ...
    # Every write carries the actor's fence: refused (Fenced) when another node owns the launch now.
    async def commit_bookings(
        self,
        fence: Fence,
        launch: Launch,
        previous: Status,
        bookings: list[NewBooking],
        events: list[DomainEvent],
        waitlist: WaitlistChange | None = None,
    ) -> None: ...
    async def commit_cancel(
        self,
        fence: Fence,
        launch: Launch,
        event: BookingCancelled,
        waitlist: WaitlistChange | None = None,
        offers: list[DomainEvent] | None = None,
    ) -> RefundOwed | None: ...
    async def commit_status(
        self,
        fence: Fence,
        launch: Launch,
        previous: Status,
        events: list[DomainEvent],
        waitlist: WaitlistChange | None = None,
    ) -> list[RefundOwed]: ...
    async def commit_waitlist(
        self, fence: Fence, launch: Launch, change: WaitlistChange, events: list[DomainEvent]
    ) -> None: ...


class Ownership(Protocol):
    """The launch's lease for this node (actors/leases.py): taken before loading, given up on stop."""

    async def take(self, launch_id: str) -> Fence: ...
    async def give_up(self, fence: Fence) -> None: ...


@dataclass(frozen=True)
class LaunchDeps:
    ledger: LaunchLedger
    ownership: Ownership
    live: LiveFeed
    clock: Clock
    pay_refunds: Callable[[list[RefundOwed]], None]
    # A launch became confirmed (all its travelers, None) or took bookings while confirmed (these).
    launch_confirmed: Callable[[str, list[str] | None], None]
    # Bookings of these travelers were cancelled (refunded): their VIP flag is re-evaluated.
    bookings_ended: Callable[[list[str]], None] = lambda _travelers: None
    hold_for: timedelta = HOLD_FOR
    # How long a waiting-list offer holds its seats (ASTRO_WAITLIST_OFFER_SECONDS).
    offer_for: timedelta = timedelta(seconds=900)
    # Deliver a message to this launch's actor if it runs on this node (its reminders to itself).
    remind: Callable[[str, object], None] = lambda _launch_id, _message: None


@dataclass(slots=True)
class _Accepted:
    envelope: Envelope
    booking: NewBooking
    vip: bool
    entry: Entry | None = None  # the waiting-list offer the booking uses


@dataclass(slots=True)
class _Batch:
    accepted: list[_Accepted] = field(default_factory=list)


def _reply(envelope: Envelope, value: Any) -> None:
    if envelope.reply is not None and not envelope.reply.done():
        envelope.reply.set_result(value)


def _refuse(envelope: Envelope, error: DomainError) -> None:
    if envelope.reply is not None and not envelope.reply.done():
        envelope.reply.set_exception(error)


class LaunchActor(Actor):
    """One launch: its messages in arrival order, bookings of one mailbox batch committed together."""

    # A node holds one per launch it has served lately (100,000 idle ones are common): no __dict__.
    __slots__ = ("_gone", "_timer", "_timer_at", "deps", "fence", "launch", "launch_id")

    def __init__(self, launch_id: str, deps: LaunchDeps) -> None:
        self.launch_id = launch_id
        self.deps = deps
        self.launch: Launch | None = None
        self.fence: Fence | None = None
        # The one reminder set (the nearest offer deadline or hold end the waiting list depends on).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: datetime | None = None
        # Waiting-list entries that left the list in this batch, with the status they left with.
        self._gone: dict[str, str] = {}

    async def on_start(self) -> None:
        # The lease first: taking it waits for a write of a previous owner under way, so the load sees it.
        self.fence = await self.deps.ownership.take(self.launch_id)
        self.launch = await self.deps.ledger.load(self.launch_id)
        if self.launch.waitlist.entries:
            # Offers stored with deadlines (a restart, a takeover): the past ones expire and the seats
            # free since (holds die with a node) are offered, in the first batch; the rest are re-armed.
            self._remind_at(self.deps.clock.now())

    async def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.fence is not None:
            await self.deps.ownership.give_up(self.fence)

    @property
    def fenced(self) -> Fence:
        assert self.fence is not None, "the lease is taken in on_start"
        return self.fence

    @property
    def state(self) -> Launch:
        assert self.launch is not None, "the launch is loaded in on_start"
        return self.launch

    def can_passivate(self) -> bool:
        # An offer's deadline is this actor's to keep: it stays while any offer is open.
        return self.state.seats_held(self.deps.clock.now()) == 0 and not self.state.waitlist.offers()

    async def receive_batch(self, batch: list[Envelope]) -> None:
        launch = self.state
        pending = _Batch()
        before = launch.waitlist_positions()
        demand = self._demand()
        self._gone = {}
        for envelope in batch:
            message = envelope.message
            try:
                if (
                    isinstance(message, HoldSeats | ChangeStatus | JoinWaitlist)
                    and not launch.agency_verified
                ):
                    await self._recheck_agency()
                if isinstance(message, HoldSeats):
                    _reply(envelope, self._hold(message))
                elif isinstance(message, ConfirmHold):
                    entry = launch.confirm_hold(message.hold_id, message.booking, message.now)
                    pending.accepted.append(_Accepted(envelope, message.booking, message.vip, entry))
                elif isinstance(message, ReleaseHold):
                    launch.release(message.hold_id)
                    _reply(envelope, None)
                elif isinstance(message, GetLaunch):
                    _reply(envelope, launch.facts())
                elif isinstance(message, WaitlistDue):
                    self._timer = self._timer_at = None  # it fired: settled after this batch, re-armed
                elif isinstance(message, CancelBooking | ChangeStatus | JoinWaitlist | LeaveWaitlist):
                    await self._flush(pending)  # earlier bookings commit before this changes anything
                    pending = _Batch()
                    with acting_as(message.origin):
                        if isinstance(message, CancelBooking):
                            _reply(envelope, await self._cancel(message))
                        elif isinstance(message, ChangeStatus):
                            _reply(envelope, await self._change_status(message))
                        elif isinstance(message, JoinWaitlist):
                            _reply(envelope, await self._join(message))
                        else:
                            _reply(envelope, await self._leave(message))
                else:
                    raise TypeError(f"LaunchActor cannot handle {type(message).__name__}")
            except DomainError as exc:
                _refuse(envelope, exc)
        await self._flush(pending)
        await self._settle_waitlist(before, demand)

    async def _recheck_agency(self) -> None:
        """IT may have verified the launch's agency since it was loaded: that made it public from a new
        moment (its VIP window starting then). Read again, only while it is not verified."""
        fresh = await self.deps.ledger.load(self.launch_id)
        self.state.agency_verified, self.state.public_from = fresh.agency_verified, fresh.public_from

    def _hold(self, message: HoldSeats) -> SeatsHeld:
        return self.state.hold(
            traveler_id=message.traveler_id,
            seats=message.seats,
            passengers=message.passengers,
            vip=message.vip,
            now=message.now,
            hold_for=self.deps.hold_for,
            hold_id=message.hold_id,
        )

    async def _flush(self, batch: _Batch) -> None:
        """Group commit: every booking accepted since the last flush, in one transaction, then the answers.

        A booking whose payment attempt the recovery worker released first (it outlived its deadline)
        cannot commit: the transaction writes nothing, that booking is withdrawn and refused, and the
        others are committed without it."""
        while batch.accepted:
            try:
                await self._commit(batch)
                return
            except PaymentsReleased as released:
                kept = []
                for accepted in batch.accepted:
                    if accepted.booking.attempt_id in released.attempt_ids:
                        self.state.withdraw(accepted.booking, accepted.entry)
                        _refuse(accepted.envelope, PaymentReleased())
                    else:
                        kept.append(accepted)
                batch.accepted = kept

    async def _commit(self, batch: _Batch) -> None:
        launch = self.state
        bookings = [a.booking for a in batch.accepted]
        confirmed = launch.reached_minimum()
        before = (launch.status, launch.confirmed_at, launch.updated_at)
        previous = launch.status
        try:
            status: list[DomainEvent] = []
            if confirmed:  # rare: once in a launch's life
                earlier = await self.deps.ledger.travelers_on(launch.id)
                travelers = tuple(sorted({*earlier, *(b.traveler_id for b in bookings)}))
                status.append(launch.confirm_at_minimum(bookings[-1].created_at, travelers))
            sold = launch.sold(bookings)
            events: list[DomainEvent] = [*sold, *status]
            # Each booking's rows carry its own request's origin; the launch's row the first one's.
            used = tuple((a.entry.id, a.booking.id) for a in batch.accepted if a.entry is not None)
            with acting_as(bookings[0].origin or SYSTEM):
                await self.deps.ledger.commit_bookings(
                    self.fenced, launch, previous, bookings, events, WaitlistChange(booked=used)
                )
        except PaymentsReleased:
            launch.status, launch.confirmed_at, launch.updated_at = before  # nothing was written
            raise
        except Exception as exc:
            raise CommitFailed(f"the bookings of launch {launch.id} did not commit") from exc
        for accepted, event in zip(batch.accepted, sold, strict=True):
            if accepted.entry is not None:
                self._gone[accepted.entry.id] = "booked"
            _reply(accepted.envelope, view_of_booked(event))
        self._publish(events)
        if confirmed:
            self.deps.launch_confirmed(launch.id, None)
        elif launch.confirmed_at is not None:  # booked on a launch already confirmed
            # Travelers who booked as VIP have nothing to be promoted to.
            among = sorted({a.booking.traveler_id for a in batch.accepted if not a.vip})
            if among:
                self.deps.launch_confirmed(launch.id, among)

    async def _cancel(self, message: CancelBooking) -> Cancelled:
        launch = self.state
        booking = await self.deps.ledger.booking(message.booking_id)
        event = launch.cancel(booking, message.traveler_id, message.now)
        # The seats it frees are offered to the waiting list in the same transaction.
        offers = launch.make_offers(message.now, self.deps.offer_for) if event.seats_released else []
        try:
            owed = await self.deps.ledger.commit_cancel(
                self.fenced, launch, event, WaitlistChange(offers=tuple(offers)), list(offers)
            )
        except Exception as exc:
            raise CommitFailed(f"the cancellation of {event.booking_id} did not commit") from exc
        if owed is not None:
            self.deps.pay_refunds([owed])
        self.deps.bookings_ended([event.traveler_id])
        self._publish([event, *offers])
        return Cancelled(event.booking_id, event.refund_cents, event.refund_pct)

    async def _change_status(self, message: ChangeStatus) -> LaunchFacts:
        launch = self.state
        active = await self.deps.ledger.active_bookings(launch.id)
        previous = launch.status
        on_list = [e.id for e in launch.waitlist.entries]
        events = launch.change_status(
            agency_id=message.agency_id,
            target=message.status,
            now=message.now,
            scheduled_at=message.scheduled_at,
            reason=message.reason,
            active=active,
        )
        closed = WaitlistChange(closed=any(isinstance(e, WaitlistClosed) for e in events))
        for e in events:
            if isinstance(e, WaitlistClosed):
                self._gone.update({entry_id: "closed" for entry_id in on_list})
        try:
            refunds = await self.deps.ledger.commit_status(self.fenced, launch, previous, events, closed)
        except Exception as exc:
            raise CommitFailed(f"the status change of launch {launch.id} did not commit") from exc
        if refunds:
            self.deps.pay_refunds(refunds)
        ended = sorted({e.traveler_id for e in events if isinstance(e, BookingCancelled)})
        if ended:
            self.deps.bookings_ended(ended)
        if message.status is Status.CONFIRMED:
            self.deps.launch_confirmed(launch.id, None)
        self._publish(events)
        return launch.facts()

    # -- the waiting list ------------------------------------------------------------------------

    async def _join(self, message: JoinWaitlist) -> Joined:
        launch = self.state
        entry = launch.join_waitlist(
            entry_id=message.entry_id,
            traveler_id=message.traveler_id,
            seats=message.seats,
            vip=message.vip,
            now=message.now,
        )
        try:
            await self.deps.ledger.commit_waitlist(self.fenced, launch, WaitlistChange(joined=entry), [])
        except Exception as exc:
            raise CommitFailed(f"the waiting-list entry {entry.id} did not commit") from exc
        position = launch.waitlist_positions()[entry.id].position
        assert position is not None, "a new entry waits"
        return Joined(entry, position)

    async def _leave(self, message: LeaveWaitlist) -> Entry:
        """The traveler leaves; an offer they held goes to the next entries in the same transaction."""
        launch = self.state
        entry = launch.leave_waitlist(message.traveler_id)
        offers = launch.make_offers(message.now, self.deps.offer_for) if entry.offered else []
        change = WaitlistChange(left=(entry.id,), offers=tuple(offers))
        try:
            await self.deps.ledger.commit_waitlist(self.fenced, launch, change, list(offers))
        except Exception as exc:
            raise CommitFailed(f"leaving the waiting list ({entry.id}) did not commit") from exc
        self._gone[entry.id] = "left"
        self._publish(list(offers))
        return entry

    def _demand(self) -> tuple[int, int, int]:
        if not self.state.waitlist.entries:  # the usual case: no list, nothing to count
            return 0, 0, 0
        waiting = self.state.waitlist.waiting()
        return len(waiting), sum(e.seats for e in waiting), self.state.seats_offered(self.deps.clock.now())

    async def _settle_waitlist(
        self, before: dict[str, WaitingPosition], demand: tuple[int, int, int]
    ) -> None:
        """After every batch: offers past their deadline expire, and seats free now (a hold let go or
        expired, an offer expired or only partly booked) are offered to the entries that fit -- in one
        transaction under the fence; then the positions that moved are told, and the reminder re-armed."""
        launch = self.state
        if not (before or launch.waitlist.entries):
            return
        now = self.deps.clock.now()
        expired: list[OfferExpired] = []
        for entry_id in launch.offers_due(now):
            gone = launch.expire_offer(entry_id, now)
            if gone is not None:
                expired.append(gone)
        offers = launch.make_offers(now, self.deps.offer_for)
        if expired or offers:
            change = WaitlistChange(expired=tuple(e.entry_id for e in expired), offers=tuple(offers))
            events: list[DomainEvent] = [*expired, *offers]
            try:
                await self.deps.ledger.commit_waitlist(self.fenced, launch, change, events)
            except Exception as exc:
                raise CommitFailed(f"the waiting list of launch {launch.id} did not commit") from exc
            self._gone.update({e.entry_id: "expired" for e in expired})
            self._publish(events)
        moved = launch.waitlist_moved(before, now, self._gone)
        if moved.moved or self._demand() != demand:
            self._publish([moved])
        self._gone = {}
        self._arm(now)

    def _arm(self, now: datetime) -> None:
        """Set the one reminder at the nearest moment the waiting list depends on: an offer's deadline, or
        the end of a hold (while entries wait, or while it books an offer)."""
        launch = self.state
        launch.seats_held(now)
        moments = [e.offer_expires_at for e in launch.waitlist.offers() if e.offer_expires_at is not None]
        waiting = bool(launch.waitlist.waiting())
        moments += [h.expires_at for h in launch.holds.values() if waiting or h.entry_id]
        if not moments:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._timer_at = None
            return
        self._remind_at(min(moments))

    def _remind_at(self, at: datetime) -> None:
        if self._timer is not None and self._timer_at == at:
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max((at - self.deps.clock.now()).total_seconds(), 0.0) + 0.01  # after the moment, not on it
        self._timer_at = at
        self._timer = asyncio.get_running_loop().call_later(
            delay, self.deps.remind, self.launch_id, WaitlistDue()
        )

    def _publish(self, events: list[DomainEvent]) -> None:
        self.deps.live.emit(live_events(events, self.deps.clock.now()), launch_card(self.state))
