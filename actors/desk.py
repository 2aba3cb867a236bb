"""The booking desk: hold seats with the launch actor, charge outside it, then confirm or release."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import structlog

from actors.launch import (
    CancelBooking,
    Cancelled,
    ChangeStatus,
    ConfirmHold,
    GetLaunch,
    HoldSeats,
    LaunchActor,
    LaunchDeps,
    LaunchLedger,
    ReleaseHold,
)
from actors.loop import TaskSet
from actors.runtime import ActorError, ActorRef, ActorStopped, ActorSystem
from astro import origin
from astro.domain.bookings import BookingView, NewBooking, Passenger, RefundOwed
from astro.domain.clock import Clock
from astro.domain.errors import DomainError, NotFound, PaymentDeclined, Unavailable
from astro.domain.events import LaunchFacts
from astro.domain.ids import new_id
from astro.domain.launch import HOLD_FOR, SeatsHeld
from astro.domain.launches import Status
from astro.services.live import LiveFeed
from astro.services.monitor import BookingObserver
from astro.services.payments import GatewayError, PaymentGateway

log = structlog.get_logger("astro.booking")
ASK_TIMEOUT: Final = 10.0


class VipDirectory(Protocol):
    async def promote_vip(self, user_ids: list[str]) -> int: ...


class BookingLedger(LaunchLedger, Protocol):
    """What the desk reads and settles besides the launch actor's own writes."""

    async def booking_exists(self, booking_id: str) -> bool: ...
    async def traveler_booking(self, traveler_id: str, booking_id: str) -> BookingView: ...
    async def finish_refund(self, payment_id: str, gateway_ref: str | None, error: str | None) -> None: ...
    async def pending_refunds(self) -> list[RefundOwed]: ...
    async def vip_candidates(self, launch_id: str, among: list[str] | None = None) -> list[str]: ...


class LaunchDesk:
    """Every change to a launch goes through its actor; payments happen here, outside it."""

    def __init__(
        self,
        *,
        system: ActorSystem,
        ledger: BookingLedger,
        live: LiveFeed,
        gateway: PaymentGateway,
        users: VipDirectory,
        observer: BookingObserver,
        clock: Clock,
        hold_for: timedelta = HOLD_FOR,
    ) -> None:
        self._system = system
        self._ledger = ledger
        self._gateway = gateway
        self._users = users
        self._observer = observer
        self._clock = clock
        self._background = TaskSet()
        self._deps = LaunchDeps(
            ledger=ledger,
            live=live,
            clock=clock,
            pay_refunds=self.pay_refunds,
            launch_confirmed=self._promote_later,
            hold_for=hold_for,
        )

    def ref(self, launch_id: str) -> ActorRef:
        return self._system.ref(f"launch:{launch_id}", lambda: LaunchActor(launch_id, self._deps))

    async def _ask(self, launch_id: str, message: object) -> Any:
        """The actor's answer; its refusal as it is; the runtime's failures (a crash, no answer in time,
        a restart) as 503 -- the outcome is then whatever the database says, never a guess."""
        try:
            return await self.ref(launch_id).ask(message, timeout=ASK_TIMEOUT)
        except ActorStopped as exc:
            if isinstance(
                exc.__cause__, DomainError
            ):  # the launch could not be loaded, e.g. it does not exist
                raise exc.__cause__ from None
            raise Unavailable("the launch is restarting; try again", retry_after=1) from exc
        except ActorError as exc:
            raise Unavailable("the launch did not answer in time; try again", retry_after=2) from exc

    async def launch(self, launch_id: str) -> LaunchFacts:
        """The launch as its actor holds it (it is started if it is not running)."""
        facts: LaunchFacts = await self._ask(launch_id, GetLaunch())
        return facts

    async def book(
        self,
        *,
        traveler_id: str,
        launch_id: str,
        seats: int,
        passengers: list[Passenger],
        card_token: str,
        vip: bool,
    ) -> BookingView:
        """Hold, charge, confirm: a declined charge leaves no booking and no held seat."""
        try:
            booking = await self._book(traveler_id, launch_id, seats, passengers, card_token, vip)
        except DomainError as exc:
            self._observer.booking_refused(exc.code)
            raise
        self._observer.booking_accepted()
        return booking

    async def _book(
        self,
        traveler_id: str,
        launch_id: str,
        seats: int,
        passengers: list[Passenger],
        card_token: str,
        vip: bool,
    ) -> BookingView:
        group = tuple(passengers)
        held: SeatsHeld = await self._ask(
            launch_id, HoldSeats(traveler_id, seats, group, vip, self._clock.now())
        )
        booking_id = new_id("bkg")
        try:
            charge_ref = await self._gateway.charge(held.total_cents, card_token, booking_id)
        except BaseException:
            self.ref(launch_id).tell(ReleaseHold(held.hold_id))
            raise
        now = self._clock.now()
        booking = NewBooking(
            id=booking_id,
            launch_id=launch_id,
            traveler_id=traveler_id,
            seats=seats,
            price_cents=held.price_cents,
            passengers=group,
            charge_ref=charge_ref,
            created_at=now,
            origin=origin.current().through("actor"),
        )
        try:
            view: BookingView = await self.ref(launch_id).ask(
                ConfirmHold(held.hold_id, booking, now, vip), timeout=ASK_TIMEOUT
            )
        except DomainError:
            await self._refund_charge(charge_ref, held.total_cents, booking_id)
            raise
        except ActorError as exc:
            # The actor crashed or did not answer: the booking exists only if its transaction committed.
            if await self._ledger.booking_exists(booking_id):
                return await self._ledger.traveler_booking(traveler_id, booking_id)
            await self._refund_charge(charge_ref, held.total_cents, booking_id)
            raise Unavailable("the booking could not be completed and was not charged; try again") from exc
        log.info("booking_confirmed", booking_id=booking_id, launch_id=launch_id, seats=seats)
        return view

    async def cancel(self, *, traveler_id: str, booking_id: str) -> Cancelled:
        booking = await self._ledger.booking(booking_id)
        if booking is None or booking.traveler_id != traveler_id:
            raise NotFound("no such booking")
        result: Cancelled = await self._ask(
            booking.launch_id,
            CancelBooking(booking_id, traveler_id, self._clock.now(), origin.current().through("actor")),
        )
        log.info("booking_cancelled", booking_id=booking_id, refund_cents=result.refund_cents)
        return result

    async def change_status(
        self,
        *,
        agency_id: str,
        launch_id: str,
        status: Status,
        scheduled_at: datetime | None,
        reason: str | None,
    ) -> LaunchFacts:
        launch: LaunchFacts = await self._ask(
            launch_id,
            ChangeStatus(
                agency_id, status, scheduled_at, reason, self._clock.now(), origin.current().through("actor")
            ),
        )
        log.info("launch_status_changed", launch_id=launch_id, status=status.value)
        return launch

    # -- refunds and VIP promotion, in the background --------------------------------------------

    def pay_refunds(self, refunds: list[RefundOwed]) -> None:
        self._background.spawn(self._pay(refunds))

    async def _pay(self, refunds: list[RefundOwed]) -> None:
        for refund in refunds:
            try:
                ref = await self._gateway.refund(refund.charge_ref, refund.amount_cents, refund.payment_id)
            except GatewayError as exc:
                log.warning("refund_failed", payment_id=refund.payment_id, error=str(exc))
                await self._ledger.finish_refund(refund.payment_id, None, str(exc))
                continue
            await self._ledger.finish_refund(refund.payment_id, ref, None)
            log.info("refund_paid", payment_id=refund.payment_id, amount_cents=refund.amount_cents)

    async def retry_pending_refunds(self) -> int:
        pending = await self._ledger.pending_refunds()
        if pending:
            self.pay_refunds(pending)
        return len(pending)

    async def _refund_charge(self, charge_ref: str, amount_cents: int, booking_id: str) -> None:
        try:
            await self._gateway.refund(charge_ref, amount_cents, booking_id)
        except (GatewayError, PaymentDeclined):
            log.error("charge_refund_failed", booking_id=booking_id, charge_ref=charge_ref)

    async def _launch_confirmed(self, launch_id: str, among: list[str] | None) -> None:
        """Promote to VIP the travelers now holding bookings on two confirmed launches."""
        try:
            candidates = await self._ledger.vip_candidates(launch_id, among)
            if not candidates:  # the usual case under load: every traveler booking is VIP already, or new
                return
            promoted = await self._users.promote_vip(candidates)
        except Exception as exc:  # PostgreSQL gets the flag last: the next confirmation finds them again
            log.warning("vip_promotion_failed", launch_id=launch_id, error=f"{type(exc).__name__}: {exc}")
            return
        if promoted:
            log.info("vip_promoted", launch_id=launch_id, travelers=promoted)

    def _promote_later(self, launch_id: str, among: list[str] | None) -> None:
        self._background.spawn(self._launch_confirmed(launch_id, among))

    async def wait_background(self) -> None:
        """Wait for refunds and promotions under way (shutdown, tests)."""
        await self._background.wait()
