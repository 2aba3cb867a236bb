"""The booking desk: hold seats with the launch actor, charge outside it, then confirm or release."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final, Protocol

import structlog

from actors.launch import (
    CancelBooking,
    Cancelled,
    ChangeStatus,
    ConfirmHold,
    GetLaunch,
    HoldSeats,
    Joined,
    JoinWaitlist,
    LaunchActor,
    LaunchDeps,
    LaunchLedger,
    LeaveWaitlist,
    ReleaseHold,
    WaitlistDue,
)
from actors.leases import LeaseKeeper
from actors.loop import TaskSet
from actors.payments import Payments
from actors.runtime import ActorError, ActorRef, ActorStopped, ActorSystem
from astro import origin
from astro.domain.bookings import BookingView, NewBooking, Passenger, RefundOwed
from astro.domain.clock import Clock
from astro.domain.errors import DomainError, NotFound, PaymentDeclined, Unavailable
from astro.domain.events import LaunchFacts
from astro.domain.ids import new_id
from astro.domain.launch import HOLD_FOR, SeatsHeld
from astro.domain.launches import Status
from astro.domain.leases import Lease, OwnedElsewhere
from astro.domain.payments import AttemptState
from astro.services.live import LiveFeed
from astro.services.monitor import BookingObserver
from astro.services.payments import GatewayError

log = structlog.get_logger("astro.booking")
ASK_TIMEOUT: Final = 10.0


def _key(launch_id: str) -> str:
    return f"launch:{launch_id}"


class VipDirectory(Protocol):
    async def promote_vip(self, user_ids: list[str]) -> int: ...
    async def demote_vip(self, user_ids: list[str]) -> list[str]: ...


class BookingLedger(LaunchLedger, Protocol):
    """What the desk reads and settles besides the launch actor's own writes."""

    async def booking_exists(self, booking_id: str) -> bool: ...
    async def traveler_booking(self, traveler_id: str, booking_id: str) -> BookingView: ...
    async def finish_refund(self, payment_id: str, gateway_ref: str | None, error: str | None) -> None: ...
    async def pending_refunds(self, older_than: timedelta) -> list[RefundOwed]: ...
    async def vip_candidates(self, launch_id: str, among: list[str] | None = None) -> list[str]: ...
    async def vip_lost(self, traveler_ids: list[str]) -> list[str]: ...


class BookingNotMade(Unavailable):
    """A booking's attempt ended without it: whatever was held on the card was released."""

    def __init__(self) -> None:
        super().__init__(
            "the booking could not be completed; anything held on your card was released; try again",
            retry_after=1,
        )


class StillDeciding(Unavailable):
    """A booking's attempt is not final yet: its outcome is known within a minute."""

    def __init__(self) -> None:
        super().__init__(
            "the booking is still being completed; retry with the same Idempotency-Key to learn its outcome "
            "(final within a minute)",
            retry_after=5,
        )


class LaunchDesk:
    """Every change to a launch goes through its actor; payments happen here, outside it."""

    def __init__(
        self,
        *,
        system: ActorSystem,
        ledger: BookingLedger,
        live: LiveFeed,
        payments: Payments,
        leases: LeaseKeeper,
        users: VipDirectory,
        observer: BookingObserver,
        clock: Clock,
        hold_for: timedelta = HOLD_FOR,
        offer_for: timedelta = timedelta(seconds=900),
        ask_timeout: float = ASK_TIMEOUT,
    ) -> None:
        self._ask_timeout = ask_timeout
        self._system = system
        self._ledger = ledger
        self._payments = payments
        self._leases = leases
        self._users = users
        self._observer = observer
        self._clock = clock
        self._background = TaskSet()
        # VIP promotions, one at a time per launch: the travelers still to look at (None: all of them)
        # of each launch whose promotion is running or queued.
        self._vip_queue: dict[str, set[str] | None] = {}
        self._vip_running: set[str] = set()
        self._deps = LaunchDeps(
            ledger=ledger,
            ownership=leases,
            live=live,
            clock=clock,
            pay_refunds=self.pay_refunds,
            launch_confirmed=self._promote_later,
            bookings_ended=self._reevaluate_later,
            hold_for=hold_for,
            offer_for=offer_for,
            remind=self._remind,
        )

        leases.watch(self._running, self._moved)

    def ref(self, launch_id: str) -> ActorRef:
        # A partial rather than a closure: the runtime keeps the factory of every actor (for restarts).
        return self._system.ref(_key(launch_id), partial(LaunchActor, launch_id, self._deps))

    # -- ownership (DESIGN 8.5) ------------------------------------------------------------------

    async def elsewhere(self, launch_id: str) -> Lease | None:
        """Another node's lease on the launch, when one owns it now (its requests go there)."""
        if self._system.get(_key(launch_id)) is not None:
            return None  # its actor runs here: this node holds the lease (or is about to learn otherwise)
        return await self._leases.elsewhere(launch_id)

    async def launch_of_booking(self, booking_id: str) -> str | None:
        booking = await self._ledger.booking(booking_id)
        return None if booking is None else booking.launch_id

    def _remind(self, launch_id: str, message: object) -> None:
        """A launch actor's reminder to itself, delivered only while it runs here (a new one re-arms)."""
        ref = self._system.get(_key(launch_id))
        if ref is None:
            return
        try:
            ref.tell(message)
        except ActorError as exc:  # stopping, or its mailbox full: it re-arms when it next starts or settles
            log.warning("waitlist_reminder_lost", launch_id=launch_id, error=str(exc))

    def _running(self, launch_id: str) -> bool:
        return self._system.get(_key(launch_id)) is not None

    async def _moved(self, launch_id: str) -> None:
        """The launch's lease was lost to another node: its actor stops here."""
        await self._system.stop_actor(_key(launch_id))

    async def _ask(self, launch_id: str, message: object) -> Any:
        """The actor's answer; its refusal as it is; the runtime's failures (a crash, no answer in time,
        a restart) as 503 -- the outcome is then whatever the database says, never a guess."""
        try:
            return await self.ref(launch_id).ask(message, timeout=self._ask_timeout)
        except ActorStopped as exc:
            # The launch could not be loaded (it does not exist, another node owns it): said as it is.
            if isinstance(exc.__cause__, DomainError):
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
        idempotency: tuple[str, str] | None = None,
    ) -> BookingView:
        """Hold, write the payment attempt, authorize, commit the booking with the attempt, capture.

        A refusal at any step releases what was taken (the hold, the authorization); a step whose outcome
        is unclear (a crash, no answer in time) is decided by the attempt's row, never by this call."""
        try:
            booking = await self._book(
                traveler_id, launch_id, seats, passengers, card_token, vip, idempotency
            )
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
        idempotency: tuple[str, str] | None,
    ) -> BookingView:
        group, hold_id = tuple(passengers), new_id("hld")
        try:
            held: SeatsHeld = await self._ask(
                launch_id, HoldSeats(hold_id, traveler_id, seats, group, vip, self._clock.now())
            )
        except OwnedElsewhere:  # nothing was held: the launch lives on another node
            raise
        except Unavailable:  # the requester gives up: a hold granted late must not keep the seats
            self.ref(launch_id).tell(ReleaseHold(hold_id))
            raise
        attempt = self._payments.new_attempt(
            traveler_id=traveler_id, launch_id=launch_id, seats=seats, amount_cents=held.total_cents
        )
        try:
            ref = await self._payments.authorize(attempt, card_token, idempotency)
        except BaseException:
            self.ref(launch_id).tell(ReleaseHold(hold_id))
            raise
        attempt = replace(attempt, state=AttemptState.AUTHORIZED, gateway_ref=ref)
        now = self._clock.now()
        booking = NewBooking(
            id=attempt.booking_id,
            launch_id=launch_id,
            traveler_id=traveler_id,
            seats=seats,
            price_cents=held.price_cents,
            passengers=group,
            charge_ref=ref,
            created_at=now,
            origin=origin.current().through("actor"),
            attempt_id=attempt.id,
        )
        try:
            view: BookingView = await self.ref(launch_id).ask(
                ConfirmHold(hold_id, booking, now, vip), timeout=self._ask_timeout
            )
        except DomainError:
            await self._payments.release(attempt)
            raise
        except ActorError:
            # The actor crashed or did not answer in time; the confirmation may even commit later. Not this
            # timeout but the attempt's row decides: releasing it is a conditional move, so either it
            # wins (the booking can then never commit) or the group commit booked it first.
            await self._payments.release(attempt, patient=False)
            return await self.outcome(attempt.id, traveler_id)
        self._payments.capture_soon(replace(attempt, state=AttemptState.BOOKED))
        log.info("booking_confirmed", booking_id=booking.id, launch_id=launch_id, seats=seats)
        return view

    async def outcome(self, attempt_id: str, traveler_id: str) -> BookingView:
        """What came of a booking's payment attempt: the booking when it committed; else the refusal it
        got, or 503 while it is still being decided (the answer is final within a minute)."""
        attempt = await self._payments.attempts.get(attempt_id)
        if attempt is None or attempt.traveler_id != traveler_id:
            raise NotFound("no such payment attempt")
        if attempt.state is AttemptState.BOOKED:
            await self._payments.capture(attempt)
        if attempt.state in (AttemptState.BOOKED, AttemptState.CAPTURED):
            return await self._ledger.traveler_booking(traveler_id, attempt.booking_id)
        if attempt.state is AttemptState.DECLINED:
            raise PaymentDeclined("the card was declined; nothing was charged")
        if attempt.state in (AttemptState.VOIDED, AttemptState.FAILED):
            raise BookingNotMade()
        raise StillDeciding()

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

    # -- the waiting list ------------------------------------------------------------------------

    async def join_waitlist(self, *, traveler_id: str, launch_id: str, seats: int, vip: bool) -> Joined:
        message = JoinWaitlist(
            new_id("wle"), traveler_id, seats, vip, self._clock.now(), origin.current().through("actor")
        )
        joined: Joined = await self._ask(launch_id, message)
        log.info("waitlist_joined", launch_id=launch_id, entry_id=joined.entry.id, seats=seats)
        return joined

    async def leave_waitlist(self, *, traveler_id: str, launch_id: str) -> None:
        message = LeaveWaitlist(traveler_id, self._clock.now(), origin.current().through("actor"))
        await self._ask(launch_id, message)
        log.info("waitlist_left", launch_id=launch_id, traveler_id=traveler_id)

    async def wake_waitlists(self, launch_ids: list[str]) -> int:
        """Start the actors of launches whose offers are past their deadline and whose owner is gone (a
        restart, a node lost): each expires them and passes the seats on as it starts. The recovery
        worker's part; a launch another node owns is left to it."""
        woken = 0
        for launch_id in launch_ids:
            try:
                if await self.elsewhere(launch_id) is not None:
                    continue
                self.ref(launch_id).tell(WaitlistDue())
                woken += 1
            except (ActorError, DomainError) as exc:
                log.warning("waitlist_wake_failed", launch_id=launch_id, error=str(exc))
        return woken

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
                ref = await self._payments.refund(
                    refund.charge_ref, refund.booking_id, refund.amount_cents, key=refund.payment_id
                )
            except GatewayError as exc:
                log.warning("refund_failed", payment_id=refund.payment_id, error=str(exc))
                await self._ledger.finish_refund(refund.payment_id, None, str(exc))
                continue
            await self._ledger.finish_refund(refund.payment_id, ref, None)
            log.info("refund_paid", payment_id=refund.payment_id, amount_cents=refund.amount_cents)

    async def pay_pending_refunds(self, older_than: timedelta) -> int:
        """Pay the refunds still owed that were committed more than `older_than` ago (a crash, the gateway
        down): the recovery worker's part; each refund's id is its idempotency key at the gateway."""
        pending = await self._ledger.pending_refunds(older_than)
        await self._pay(pending)
        return len(pending)

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
        """Promote after this commit, folded into the launch's promotion under way: under load every
        group commit on a confirmed launch asks, and each would look up the same travelers again while
        the first is still at it (their PostgreSQL flag is set last)."""
        if launch_id in self._vip_queue:
            queued = self._vip_queue[launch_id]
            self._vip_queue[launch_id] = None if queued is None or among is None else queued | set(among)
        else:
            self._vip_queue[launch_id] = None if among is None else set(among)
        if launch_id not in self._vip_running:
            self._vip_running.add(launch_id)
            self._background.spawn(self._promote_queued(launch_id))

    async def _promote_queued(self, launch_id: str) -> None:
        try:
            while launch_id in self._vip_queue:
                among = self._vip_queue.pop(launch_id)
                await self._launch_confirmed(launch_id, sorted(among) if among is not None else None)
        finally:
            self._vip_running.discard(launch_id)

    async def _bookings_ended(self, traveler_ids: list[str]) -> None:
        """Take VIP from the travelers whose bookings were cancelled (and refunded) when they no longer
        hold active bookings on two confirmed launches; a flag IT set by hand stays."""
        try:
            lost = await self._ledger.vip_lost(traveler_ids)
            demoted = await self._users.demote_vip(lost) if lost else []
        except Exception as exc:  # the flag stays until the traveler's next cancellation re-evaluates it
            error = f"{type(exc).__name__}: {exc}"
            log.warning("vip_reevaluation_failed", travelers=len(traveler_ids), error=error)
            return
        if demoted:
            log.info("vip_demoted", travelers=len(demoted))

    def _reevaluate_later(self, traveler_ids: list[str]) -> None:
        self._background.spawn(self._bookings_ended(traveler_ids))

    async def wait_background(self) -> None:
        """Wait for captures, refunds and promotions under way (shutdown, tests)."""
        await self._payments.settled()
        await self._background.wait()
