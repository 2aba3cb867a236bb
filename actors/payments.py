"""Money moves for bookings (DESIGN 8.3): every step a conditional transition of the payment attempt's row.

`Payments` is used by the booking desk on the way (authorize, capture, release), by the recovery worker
after a crash or a timeout (`resolve`: finish an attempt left open past its deadline, asking the gateway
when unsure) and by the gateway's webhook (`gateway_changed`). Whoever moves the row decides; the others
find it moved and go by what it says."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final, Protocol, TypeVar

import structlog

from actors.loop import TaskSet
from astro.domain.clock import Clock
from astro.domain.errors import (
    DomainError,
    GatewayError,
    PaymentDeclined,
    Unavailable,
    UnknownCard,
)
from astro.domain.ids import new_id
from astro.domain.payments import (
    DEADLINE,
    Attempt,
    AttemptState,
    GatewayPayment,
    GatewayState,
    RowBusy,
    resolution,
)
from astro.services.batching import GroupWriter
from astro.services.payments import PaymentGateway

log = structlog.get_logger("astro.payments")
T = TypeVar("T")
S = AttemptState
# A gateway call that takes longer is abandoned (and its outcome asked for later): well inside DEADLINE,
# so an authorization can never still be running when recovery decides about its attempt.
GATEWAY_TIMEOUT: Final = 10.0
ROW_WAIT: Final = 2.0  # seconds a release waits for an attempt's row that a group commit holds


class PaymentAttempts(Protocol):
    """Payment attempts as stored (PostgreSQL)."""

    async def open_many(self, opened: list[tuple[Attempt, tuple[str, str] | None]]) -> list[None]: ...
    async def authorized_many(self, refs: list[tuple[str, str]]) -> list[bool]: ...
    async def captured_many(self, attempt_ids: list[str]) -> list[bool]: ...
    async def move(
        self,
        attempt_id: str,
        source: AttemptState,
        target: AttemptState,
        *,
        gateway_ref: str | None = None,
        error: str | None = None,
        wait: float | None = None,
    ) -> bool: ...
    async def get(self, attempt_id: str) -> Attempt | None: ...
    async def by_booking(self, booking_id: str) -> Attempt | None: ...
    async def claim_due(self, node: str, now: datetime, limit: int, lease: timedelta) -> list[Attempt]: ...


class Payments:
    """The payment saga's steps; each one safe to repeat and to race."""

    def __init__(
        self,
        attempts: PaymentAttempts,
        gateway: PaymentGateway,
        clock: Clock,
        *,
        deadline: timedelta = DEADLINE,
        gateway_timeout: float = GATEWAY_TIMEOUT,
    ) -> None:
        self.attempts = attempts
        self._gateway = gateway
        self._clock = clock
        self._deadline = deadline
        self._timeout = gateway_timeout
        # The per-booking writes of concurrent requests, each done in one statement for all of them.
        self._opening = GroupWriter(attempts.open_many)
        self._authorizing = GroupWriter(attempts.authorized_many)
        self._capturing = GroupWriter(attempts.captured_many)
        self._later = TaskSet()

    def new_attempt(self, *, traveler_id: str, launch_id: str, seats: int, amount_cents: int) -> Attempt:
        """An attempt to pay for a booking whose id is chosen now, before any money moves."""
        now = self._clock.now()
        return Attempt(
            id=new_id("att"),
            booking_id=new_id("bkg"),
            traveler_id=traveler_id,
            launch_id=launch_id,
            seats=seats,
            amount_cents=amount_cents,
            state=S.CREATED,
            gateway_ref=None,
            deadline=now + self._deadline,
            created_at=now,
        )

    async def authorize(self, attempt: Attempt, card_token: str, idempotency: tuple[str, str] | None) -> str:
        """Write the attempt, then hold its amount on the card: the gateway's reference. A decline is
        recorded and raised; a gateway that failed leaves the attempt for recovery, which asks the gateway
        what it holds, and the client is told to retry."""
        await self._opening.submit((attempt, idempotency))
        metadata = {"booking_id": attempt.booking_id, "attempt_id": attempt.id}
        try:
            ref = await self._call(
                self._gateway.authorize(
                    key=attempt.id,
                    amount_cents=attempt.amount_cents,
                    card_token=card_token,
                    metadata=metadata,
                )
            )
        except PaymentDeclined:
            await self.attempts.move(attempt.id, S.CREATED, S.DECLINED, error="declined")
            raise
        except UnknownCard as exc:
            await self.attempts.move(attempt.id, S.CREATED, S.FAILED, error=exc.message)
            raise
        except GatewayError:
            if await self._nothing_held(attempt):
                await self.attempts.move(attempt.id, S.CREATED, S.FAILED, error="gateway error")
                raise GatewayError(
                    "the payment gateway failed; nothing was charged; try again", retry_after=2
                ) from None
            log.warning("payment_authorization_unclear", attempt_id=attempt.id)
            raise GatewayError(
                "the payment gateway did not answer clearly; anything held on your card is released within "
                "a minute; try again",
                retry_after=2,
            ) from None
        if not await self._authorizing.submit((attempt.id, ref)):
            # Recovery decided about it first (the authorization outlived the deadline): release it.
            await self._settle_void(replace(attempt, gateway_ref=ref))
            raise Unavailable("the payment took too long and was released; nothing was charged; try again")
        return ref

    async def capture(self, attempt: Attempt) -> bool:
        """Take the money of a booked attempt; False when the gateway did not confirm it (recovery captures
        it later: the booking stands either way)."""
        try:
            await self._call(self._gateway.capture(attempt.gateway_ref or "", key=attempt.id))
        except (GatewayError, DomainError) as exc:
            log.warning("payment_capture_deferred", attempt_id=attempt.id, error=str(exc))
            return False
        await self._capturing.submit(attempt.id)
        return True

    def capture_soon(self, attempt: Attempt) -> None:
        """capture(), off the caller's path: a booked attempt's booking stands whatever the capture does
        (recovery captures what this does not), so its request need not wait for the gateway."""
        self._later.spawn(self.capture(attempt))

    async def settled(self) -> None:
        """Wait for the captures started by capture_soon (shutdown, tests)."""
        await self._later.wait()

    async def release(self, attempt: Attempt, *, patient: bool = True) -> None:
        """No booking for this authorized attempt: release the hold on the card. Only if the attempt is
        still authorized -- a booked one is never released. Not `patient`: when a group commit holds the
        attempt's row (it is being booked right now) do not wait for it; recovery settles it later."""
        try:
            moved = await self.attempts.move(
                attempt.id, S.AUTHORIZED, S.VOIDING, wait=None if patient else ROW_WAIT
            )
        except RowBusy:
            return
        if moved:
            try:
                await self._settle_void(attempt)
            except (GatewayError, Unavailable) as exc:  # recovery voids it
                log.warning("payment_release_deferred", attempt_id=attempt.id, error=str(exc))

    async def refund(self, charge_ref: str, booking_id: str, amount_cents: int, *, key: str) -> str:
        """Give back part of a booking's payment; a payment still only booked is captured first (a refund
        follows the capture it gives back). GatewayError when unsure: refunds owed are paid again later."""
        attempt = await self.attempts.by_booking(booking_id)
        if attempt is not None and attempt.state is S.BOOKED and not await self.capture(attempt):
            raise GatewayError("the payment to refund is not captured yet", retry_after=5)
        return await self._call(self._gateway.refund(charge_ref, amount_cents, key=key))

    async def resolve(self, attempt: Attempt) -> AttemptState:
        """Finish an attempt left open past its deadline; its state afterwards (still open when the
        gateway could not be reached: the next round tries again)."""
        try:
            if attempt.state is S.BOOKED:
                return S.CAPTURED if await self.capture(attempt) else S.BOOKED
            if attempt.state is S.AUTHORIZED:
                if not await self.attempts.move(attempt.id, S.AUTHORIZED, S.VOIDING):
                    return await self._current(attempt)  # the group commit booked it meanwhile
                return await self._settle_void(attempt)
            if attempt.state is S.VOIDING:
                return await self._settle_void(attempt)
            if attempt.state is S.CREATED:
                return await self._resolve_created(attempt)
        except (GatewayError, Unavailable) as exc:
            log.warning("payment_recovery_deferred", attempt_id=attempt.id, error=str(exc))
        return attempt.state

    async def gateway_changed(self, payment: GatewayPayment) -> None:
        """The gateway says a payment changed (a webhook, after re-reading it): an authorization it
        released before any booking cannot be booked any more; a capture it reports is recorded."""
        attempt = await self.attempts.get(payment.key)
        if attempt is None:
            return
        if payment.state is GatewayState.VOIDED:
            for source in (S.AUTHORIZED, S.CREATED):  # released there: no booking can take it now
                if await self.attempts.move(attempt.id, source, S.VOIDING, error="released by the gateway"):
                    break
            await self.attempts.move(attempt.id, S.VOIDING, S.VOIDED)
        elif payment.state is GatewayState.CAPTURED:
            await self.attempts.move(attempt.id, S.BOOKED, S.CAPTURED)
        if attempt.state is S.BOOKED and payment.state is GatewayState.VOIDED:
            log.error(
                "booked_payment_released_by_gateway", attempt_id=attempt.id, booking_id=attempt.booking_id
            )

    async def _resolve_created(self, attempt: Attempt) -> AttemptState:
        """Nobody recorded what the gateway answered: ask it, and go where the domain says."""
        found = await self._call(self._gateway.find(attempt.id))
        if (
            found is not None and found.state is GatewayState.CAPTURED
        ):  # cannot happen: capture follows booking
            log.error("captured_without_booking", attempt_id=attempt.id, ref=found.ref)
            return attempt.state
        if resolution(attempt.state, found) is S.FAILED:
            if found is not None and found.state is GatewayState.PENDING:
                await self._call(self._gateway.void(found.ref, key=attempt.id))  # leave no payment open
            await self.attempts.move(attempt.id, S.CREATED, S.FAILED, error="never authorized")
            return S.FAILED
        ref = found.ref if found is not None else None
        if not await self.attempts.move(attempt.id, S.CREATED, S.VOIDING, gateway_ref=ref):
            return await self._current(attempt)
        return await self._settle_void(replace(attempt, gateway_ref=ref))

    async def _settle_void(self, attempt: Attempt) -> AttemptState:
        """Release the hold of a voiding attempt at the gateway, then record it voided."""
        ref = attempt.gateway_ref
        if ref is None:
            found = await self._call(self._gateway.find(attempt.id))
            ref = found.ref if found is not None else None
        if ref is not None:
            await self._call(self._gateway.void(ref, key=attempt.id))
        await self.attempts.move(attempt.id, S.VOIDING, S.VOIDED)
        return S.VOIDED

    async def _nothing_held(self, attempt: Attempt) -> bool:
        """After a failed authorization: does the gateway say it holds nothing under the attempt's key?"""
        try:
            found = await self._call(self._gateway.find(attempt.id))
        except (GatewayError, DomainError):
            return False
        return found is None or found.state in (GatewayState.DECLINED, GatewayState.VOIDED)

    async def _current(self, attempt: Attempt) -> AttemptState:
        now = await self.attempts.get(attempt.id)
        return now.state if now is not None else attempt.state

    async def _call(self, call: Awaitable[T]) -> T:
        """A gateway call bounded in time; running out of it is a GatewayError (ask `find` later)."""
        try:
            async with asyncio.timeout(self._timeout):
                return await call
        except TimeoutError:
            raise GatewayError("the payment gateway did not answer in time", retry_after=2) from None
