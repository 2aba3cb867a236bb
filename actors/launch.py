"""LaunchActor: owns one launch's seats, holds and status; commits concurrent bookings together."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from actors.runtime import Actor, Envelope
from astro.domain.bookings import (
    NewBooking,
    Passenger,
    cancellation_refund_pct,
    check_ages,
    percent_of,
)
from astro.domain.errors import Conflict, DomainError, Forbidden, NotFound
from astro.domain.launches import FINAL, OPEN, REFUND_ALL, Occupancy, Status, check_transition
from astro.origin import SYSTEM, Origin, acting_as
from astro.services.live import LiveEvent, LiveFeed
from astro.store.bookings import Refund

HOLD_SECONDS: Final = 30.0

# -- messages (immutable) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HoldSeats:
    traveler_id: str
    seats: int
    passengers: tuple[Passenger, ...]
    vip: bool
    now: datetime


@dataclass(frozen=True, slots=True)
class SeatsHeld:
    hold_id: str
    price_cents: int
    total_cents: int


@dataclass(frozen=True, slots=True)
class ConfirmHold:
    hold_id: str
    booking_id: str
    traveler_id: str
    seats: int
    passengers: tuple[Passenger, ...]
    charge_ref: str
    now: datetime
    origin: Origin = SYSTEM
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


# -- what the actor needs from outside -----------------------------------------------------------


class Ledger(Protocol):
    async def load(self, launch_id: str) -> dict[str, Any]: ...
    async def commit_bookings(
        self,
        launch_id: str,
        seats_booked: int,
        confirmed_at: datetime | None,
        bookings: list[NewBooking],
        launch: dict[str, Any],
    ) -> None: ...
    async def booking_for_cancel(self, booking_id: str) -> dict[str, Any] | None: ...
    async def commit_cancel(
        self,
        *,
        launch_id: str,
        booking: dict[str, Any],
        refund_pct: int,
        refund_cents: int,
        release_seats: bool,
        seats_booked: int,
        now: datetime,
        launch: dict[str, Any],
    ) -> Refund | None: ...
    async def commit_status(
        self,
        *,
        launch_id: str,
        status: str,
        scheduled_at: datetime,
        reason: str | None,
        now: datetime,
        delayed: bool,
        refund_all: bool,
        launch: dict[str, Any],
    ) -> list[Refund]: ...
    async def travelers_on(self, launch_id: str) -> list[str]: ...


@dataclass(frozen=True)
class LaunchDeps:
    ledger: Ledger
    live: LiveFeed
    pay_refunds: Callable[[list[Refund]], None]
    # A launch became confirmed (all its travelers, None) or took bookings while confirmed (these).
    launch_confirmed: Callable[[str, list[str] | None], None]
    hold_seconds: float = HOLD_SECONDS


@dataclass(slots=True)
class _Hold:
    seats: int
    traveler_id: str
    expires: float


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
    """Booking requests, cancellations and status changes are handled one at a time, in arrival order."""

    def __init__(self, launch_id: str, deps: LaunchDeps) -> None:
        self.launch_id = launch_id
        self.deps = deps
        self.launch: dict[str, Any] = {}
        self.holds: dict[str, _Hold] = {}

    async def on_start(self) -> None:
        self.launch = await self.deps.ledger.load(self.launch_id)

    def can_passivate(self) -> bool:
        return not self.holds

    @property
    def status(self) -> Status:
        return Status(self.launch["status"])

    @property
    def occupancy(self) -> Occupancy:
        return Occupancy(self.launch["capacity"], self.launch["seats_booked"], self.launch["min_passengers"])

    def seats_held(self) -> int:
        now = asyncio.get_running_loop().time()
        for hold_id in [h for h, hold in self.holds.items() if hold.expires <= now]:
            del self.holds[hold_id]
        return sum(h.seats for h in self.holds.values())

    async def receive_batch(self, batch: list[Envelope]) -> None:
        pending = _Batch()
        for envelope in batch:
            message = envelope.message
            try:
                if isinstance(message, HoldSeats):
                    _reply(envelope, self._hold(message))
                elif isinstance(message, ConfirmHold):
                    pending.accepted.append(_Accepted(envelope, self._confirm(message), message.vip))
                elif isinstance(message, ReleaseHold):
                    self.holds.pop(message.hold_id, None)
                    _reply(envelope, None)
                elif isinstance(message, GetLaunch):
                    _reply(envelope, dict(self.launch))
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

    # -- booking ---------------------------------------------------------------------------------

    def _check_bookable(self, now: datetime) -> None:
        if self.status not in OPEN or now >= self.launch["scheduled_at"]:
            raise Conflict(
                f"this launch takes no bookings ({self.status.value})",
                {"status": self.status.value},
                code="launch_not_bookable",
            )

    def _check_free(self, seats: int) -> None:
        available = self.occupancy.seats_available - self.seats_held()
        if seats > available:
            raise Conflict(
                f"only {max(available, 0)} seat(s) left",
                {"seats_available": max(available, 0), "seats_requested": seats},
                code="sold_out",
            )

    def _hold(self, message: HoldSeats) -> SeatsHeld:
        self._check_bookable(message.now)
        if message.now < self.launch["public_from"] and not message.vip:
            raise Forbidden(
                "this launch is open to VIP travelers only until public_from",
                {"public_from": self.launch["public_from"].isoformat()},
                code="vip_only",
            )
        check_ages(list(message.passengers), self.launch["scheduled_at"].date())
        self._check_free(message.seats)
        hold_id = secrets.token_hex(8)
        expires = asyncio.get_running_loop().time() + self.deps.hold_seconds
        self.holds[hold_id] = _Hold(message.seats, message.traveler_id, expires)
        price = self.launch["price_cents"]
        return SeatsHeld(hold_id, price, price * message.seats)

    def _confirm(self, message: ConfirmHold) -> NewBooking:
        hold = self.holds.pop(message.hold_id, None)
        if hold is None:  # the hold expired or the actor restarted: take the seats again if they are free
            self._check_bookable(message.now)
            self._check_free(message.seats)
        self.launch["seats_booked"] += message.seats
        return NewBooking(
            id=message.booking_id,
            launch_id=self.launch_id,
            traveler_id=message.traveler_id,
            seats=message.seats,
            price_cents=self.launch["price_cents"],
            passengers=message.passengers,
            charge_ref=message.charge_ref,
            created_at=message.now,
            origin=message.origin,
        )

    async def _flush(self, batch: _Batch) -> None:
        """Group commit: every booking accepted since the last flush, in one transaction, then the answers."""
        if not batch.accepted:
            return
        now = batch.accepted[-1].booking.created_at
        confirmed_at = None
        if self.status is Status.SCHEDULED and self.launch["seats_booked"] >= self.launch["min_passengers"]:
            confirmed_at = now
        bookings = [a.booking for a in batch.accepted]
        # Each booking's rows carry its own request's origin; the launch's row the first one's.
        with acting_as(bookings[0].origin or SYSTEM):
            await self.deps.ledger.commit_bookings(
                self.launch_id, self.launch["seats_booked"], confirmed_at, bookings, self.launch
            )
        if confirmed_at is not None:
            self.launch.update(status=Status.CONFIRMED.value, confirmed_at=confirmed_at)
        for accepted in batch.accepted:
            _reply(accepted.envelope, booking_view(accepted.booking, self.launch))
        events = self._occupancy_events()
        for b in bookings:
            data = booking_view(b, self.launch)
            events.append(LiveEvent(f"agency:{self.launch['agency_id']}", "booking_confirmed", data))
            events.append(LiveEvent(f"traveler:{b.traveler_id}", "booking_confirmed", data))
        if confirmed_at is not None:
            events += await self._status_events(None)
            self.deps.launch_confirmed(self.launch_id, None)
        elif self.launch.get("confirmed_at") is not None:  # booked on a launch already confirmed
            # Travelers who booked as VIP have nothing to be promoted to.
            among = sorted({a.booking.traveler_id for a in batch.accepted if not a.vip})
            if among:
                self.deps.launch_confirmed(self.launch_id, among)
        self.deps.live.emit(events, dict(self.launch))

    # -- cancellation ----------------------------------------------------------------------------

    async def _cancel(self, message: CancelBooking) -> dict[str, Any]:
        booking = await self.deps.ledger.booking_for_cancel(message.booking_id)
        if (
            booking is None
            or booking["traveler_id"] != message.traveler_id
            or booking["launch_id"] != self.launch_id
        ):
            raise NotFound("no such booking")
        if booking["status"] != "confirmed":
            raise Conflict("this booking is already cancelled", code="already_cancelled")
        if self.status in FINAL:
            raise Conflict(
                f"the launch is {self.status.value}; its bookings cannot be cancelled",
                {"status": self.status.value},
                code="launch_finished",
            )
        delayed = (
            self.launch["last_delayed_at"] is not None
            and self.launch["last_delayed_at"] > booking["created_at"]
        )
        pct = cancellation_refund_pct(
            now=message.now, launch_at=self.launch["scheduled_at"], delayed_since_booking=delayed
        )
        refund = percent_of(booking["total_cents"], pct)
        release = pct > 0  # with no refund the seats count as sold (DESIGN 5)
        seats_booked = self.launch["seats_booked"] - (booking["seats"] if release else 0)
        owed = await self.deps.ledger.commit_cancel(
            launch_id=self.launch_id,
            booking=booking,
            refund_pct=pct,
            refund_cents=refund,
            release_seats=release,
            seats_booked=seats_booked,
            now=message.now,
            launch={**self.launch, "seats_booked": seats_booked},
        )
        self.launch["seats_booked"] = seats_booked
        if owed is not None:
            self.deps.pay_refunds([owed])
        data = {
            "booking_id": booking["id"],
            "launch_id": self.launch_id,
            "traveler_id": booking["traveler_id"],
            "seats": booking["seats"],
            "refund_cents": refund,
            "refund_pct": pct,
            "seats_released": release,
        }
        events = self._occupancy_events() if release else []
        events.append(LiveEvent(f"agency:{self.launch['agency_id']}", "booking_cancelled", data))
        events.append(LiveEvent(f"traveler:{booking['traveler_id']}", "booking_cancelled", data))
        self.deps.live.emit(events, dict(self.launch))
        return {"booking_id": booking["id"], "refund_cents": refund, "refund_pct": pct}

    # -- status ----------------------------------------------------------------------------------

    async def _change_status(self, message: ChangeStatus) -> dict[str, Any]:
        if message.agency_id != self.launch["agency_id"]:
            raise NotFound("no such launch")
        target = message.status
        check_transition(
            self.status,
            target,
            now=message.now,
            scheduled_at=self.launch["scheduled_at"],
            new_scheduled_at=message.scheduled_at,
        )
        delayed = target is Status.DELAYED
        scheduled_at = (
            message.scheduled_at if delayed and message.scheduled_at else self.launch["scheduled_at"]
        )
        travelers = None if target in REFUND_ALL else await self.deps.ledger.travelers_on(self.launch_id)
        refunds = await self.deps.ledger.commit_status(
            launch_id=self.launch_id,
            status=target.value,
            scheduled_at=scheduled_at,
            reason=message.reason,
            now=message.now,
            delayed=delayed,
            refund_all=target in REFUND_ALL,
            launch=self.launch,
        )
        self.launch.update(status=target.value, scheduled_at=scheduled_at, status_reason=message.reason)
        if delayed:
            self.launch["last_delayed_at"] = message.now
        if target is Status.CONFIRMED and self.launch.get("confirmed_at") is None:
            self.launch["confirmed_at"] = message.now
            self.deps.launch_confirmed(self.launch_id, None)
        if target in FINAL:
            self.holds.clear()
        if refunds:
            self.deps.pay_refunds(refunds)
        if travelers is None:
            travelers = sorted({r.traveler_id for r in refunds})
        events = await self._status_events(travelers)
        for r in refunds:  # every active booking was cancelled with a full refund
            data = {
                "booking_id": r.booking_id,
                "launch_id": self.launch_id,
                "traveler_id": r.traveler_id,
                "refund_cents": r.amount_cents,
                "refund_pct": 100,
                "status": "cancelled",
                "cancel_reason": f"launch_{target.value}",
                "cancelled_at": message.now.isoformat(),
            }
            events.append(LiveEvent(f"agency:{self.launch['agency_id']}", "booking_cancelled", data))
            events.append(LiveEvent(f"traveler:{r.traveler_id}", "booking_cancelled", data))
        self.deps.live.emit(events, dict(self.launch))
        return dict(self.launch)

    # -- events ----------------------------------------------------------------------------------

    def _occupancy_events(self) -> list[LiveEvent]:
        data = {"launch_id": self.launch_id, **self.occupancy.as_dict()}
        key = f"occupancy:{self.launch_id}"
        return [
            LiveEvent(f"launch:{self.launch_id}", "occupancy", data, key),
            LiveEvent("launches", "occupancy", data, key),
            LiveEvent(f"agency:{self.launch['agency_id']}", "occupancy", data, key),
        ]

    async def _status_events(self, travelers: list[str] | None) -> list[LiveEvent]:
        if travelers is None:
            travelers = await self.deps.ledger.travelers_on(self.launch_id)
        data = {
            "launch_id": self.launch_id,
            "status": self.launch["status"],
            "scheduled_at": self.launch["scheduled_at"].isoformat(),
            "reason": self.launch.get("status_reason"),
        }
        channels = [f"launch:{self.launch_id}", "launches", f"agency:{self.launch['agency_id']}"]
        channels += [f"traveler:{t}" for t in travelers]
        return [LiveEvent(c, "status", data) for c in channels]


def booking_view(booking: NewBooking, launch: dict[str, Any]) -> dict[str, Any]:
    """A just-committed booking as the traveler sees it."""
    return {
        "id": booking.id,
        "launch_id": booking.launch_id,
        "traveler_id": booking.traveler_id,
        "seats": booking.seats,
        "price_cents": booking.price_cents,
        "total_cents": booking.total_cents,
        "status": "confirmed",
        "created_at": booking.created_at.isoformat(),
        "launch_status": launch["status"],
        "launch_slug": launch["slug"],
        "mission": launch["mission"],
        "scheduled_at": launch["scheduled_at"].isoformat(),
        "passengers": [{"name": p.name, "birth_date": p.birth_date.isoformat()} for p in booking.passengers],
    }
