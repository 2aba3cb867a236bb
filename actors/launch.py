"""LaunchActor: sequences one launch's messages, applies them to its Launch aggregate, persists, replies.

Booking requests, cancellations and status changes are handled one at a time, in arrival order, so two
requests can never take the same seat. Bookings accepted together are committed in one transaction
(group commit); a request is answered only after its commit. The rules live in `astro.domain.launch`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from actors.runtime import Actor, Envelope
from astro.domain.bookings import BookingRecord, NewBooking, Passenger, RefundOwed
from astro.domain.clock import Clock
from astro.domain.errors import DomainError, Unavailable
from astro.domain.events import BookingCancelled, DomainEvent, LaunchFacts
from astro.domain.launch import HOLD_FOR, Launch, SeatsHeld
from astro.domain.launches import Status
from astro.domain.leases import Fence
from astro.domain.payments import PaymentsReleased
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
    ) -> None: ...
    async def commit_cancel(
        self, fence: Fence, launch: Launch, event: BookingCancelled
    ) -> RefundOwed | None: ...
    async def commit_status(
        self, fence: Fence, launch: Launch, previous: Status, events: list[DomainEvent]
    ) -> list[RefundOwed]: ...


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


@dataclass(slots=True)
class _Accepted:
    envelope: Envelope
    booking: NewBooking
    vip: bool


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

    def __init__(self, launch_id: str, deps: LaunchDeps) -> None:
        self.launch_id = launch_id
        self.deps = deps
        self.launch: Launch | None = None
        self.fence: Fence | None = None

    async def on_start(self) -> None:
        # The lease first: taking it waits for a write of a previous owner under way, so the load sees it.
        self.fence = await self.deps.ownership.take(self.launch_id)
        self.launch = await self.deps.ledger.load(self.launch_id)

    async def on_stop(self) -> None:
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
        return self.state.seats_held(self.deps.clock.now()) == 0

    async def receive_batch(self, batch: list[Envelope]) -> None:
        launch = self.state
        pending = _Batch()
        for envelope in batch:
            message = envelope.message
            try:
                if isinstance(message, HoldSeats | ChangeStatus) and not launch.agency_verified:
                    await self._recheck_agency()
                if isinstance(message, HoldSeats):
                    _reply(envelope, self._hold(message))
                elif isinstance(message, ConfirmHold):
                    launch.confirm_hold(message.hold_id, message.booking, message.now)
                    pending.accepted.append(_Accepted(envelope, message.booking, message.vip))
                elif isinstance(message, ReleaseHold):
                    launch.release(message.hold_id)
                    _reply(envelope, None)
                elif isinstance(message, GetLaunch):
                    _reply(envelope, launch.facts())
                elif isinstance(message, CancelBooking | ChangeStatus):
                    await self._flush(pending)  # earlier bookings commit before this changes anything
                    pending = _Batch()
                    with acting_as(message.origin):
                        if isinstance(message, CancelBooking):
                            _reply(envelope, await self._cancel(message))
                        else:
                            _reply(envelope, await self._change_status(message))
                else:
                    raise TypeError(f"LaunchActor cannot handle {type(message).__name__}")
            except DomainError as exc:
                _refuse(envelope, exc)
        await self._flush(pending)

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
                        self.state.withdraw(accepted.booking)
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
            with acting_as(bookings[0].origin or SYSTEM):
                await self.deps.ledger.commit_bookings(self.fenced, launch, previous, bookings, events)
        except PaymentsReleased:
            launch.status, launch.confirmed_at, launch.updated_at = before  # nothing was written
            raise
        except Exception as exc:
            raise CommitFailed(f"the bookings of launch {launch.id} did not commit") from exc
        for accepted, event in zip(batch.accepted, sold, strict=True):
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
        try:
            owed = await self.deps.ledger.commit_cancel(self.fenced, launch, event)
        except Exception as exc:
            raise CommitFailed(f"the cancellation of {event.booking_id} did not commit") from exc
        if owed is not None:
            self.deps.pay_refunds([owed])
        self.deps.bookings_ended([event.traveler_id])
        self._publish([event])
        return Cancelled(event.booking_id, event.refund_cents, event.refund_pct)

    async def _change_status(self, message: ChangeStatus) -> LaunchFacts:
        launch = self.state
        active = await self.deps.ledger.active_bookings(launch.id)
        previous = launch.status
        events = launch.change_status(
            agency_id=message.agency_id,
            target=message.status,
            now=message.now,
            scheduled_at=message.scheduled_at,
            reason=message.reason,
            active=active,
        )
        try:
            refunds = await self.deps.ledger.commit_status(self.fenced, launch, previous, events)
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

    def _publish(self, events: list[DomainEvent]) -> None:
        self.deps.live.emit(live_events(events, self.deps.clock.now()), launch_card(self.state))
