"""Payment attempts (DESIGN 8.3): the durable record of money about to move, and its state machine.

An attempt is written before the card is touched. Every move of it is a conditional transition of its
row (`... WHERE state = <from>`): whoever wins the row decides, and a recovery worker finishes what a
crash or a timeout left. Nothing here is decided by a clock in memory or by who gave up first."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final


class AttemptState(enum.StrEnum):
    CREATED = "created"  # written; the gateway may or may not have authorized it yet
    AUTHORIZED = "authorized"  # the amount is held on the card; no booking yet
    BOOKED = "booked"  # the booking committed in the transaction that moved it here; not captured yet
    CAPTURED = "captured"  # the money is taken, for a stored booking
    VOIDING = "voiding"  # decided: no booking; the authorization is being released
    VOIDED = "voided"  # released: nothing was taken
    DECLINED = "declined"  # the gateway refused the card: nothing was held
    FAILED = "failed"  # nothing was ever authorized (the gateway failed, or the attempt was abandoned)


FINAL: Final = frozenset(
    {AttemptState.CAPTURED, AttemptState.VOIDED, AttemptState.DECLINED, AttemptState.FAILED}
)
OPEN: Final = frozenset(set(AttemptState) - FINAL)
# Which state may follow which; the store applies each as `UPDATE ... WHERE state = <from>`.
MOVES: Final[dict[AttemptState, frozenset[AttemptState]]] = {
    AttemptState.CREATED: frozenset(
        {AttemptState.AUTHORIZED, AttemptState.DECLINED, AttemptState.FAILED, AttemptState.VOIDING}
    ),
    AttemptState.AUTHORIZED: frozenset({AttemptState.BOOKED, AttemptState.VOIDING}),
    AttemptState.BOOKED: frozenset({AttemptState.CAPTURED}),
    AttemptState.VOIDING: frozenset({AttemptState.VOIDED}),
    AttemptState.CAPTURED: frozenset(),
    AttemptState.VOIDED: frozenset(),
    AttemptState.DECLINED: frozenset(),
    AttemptState.FAILED: frozenset(),
}
# How long an attempt may stay open before the recovery worker finishes it: longer than a hold (30 s),
# an authorization (the sandbox's slow card takes 2 s) and a group commit under load take together.
DEADLINE: Final = timedelta(seconds=45)


def may_move(current: AttemptState, target: AttemptState) -> bool:
    return target in MOVES[current]


class GatewayState(enum.StrEnum):
    """A payment as the gateway tells it."""

    PENDING = "pending"  # created there, never confirmed: nothing held
    AUTHORIZED = "authorized"  # held, capturable
    CAPTURED = "captured"
    VOIDED = "voided"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class GatewayPayment:
    """What the gateway knows of one payment."""

    ref: str
    key: str  # the idempotency key it was authorized under (an attempt's or an invoice payment's id)
    state: GatewayState
    amount_cents: int
    refunded_cents: int
    booking_id: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """A payment attempt as stored."""

    id: str
    booking_id: str
    traveler_id: str
    launch_id: str
    seats: int
    amount_cents: int
    state: AttemptState
    gateway_ref: str | None
    deadline: datetime
    created_at: datetime
    error: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL


def resolution(state: AttemptState, gateway: GatewayPayment | None) -> AttemptState:
    """Where the recovery worker takes an attempt left open past its deadline, knowing what the gateway
    says of it: a booked attempt is captured; one never booked is released (voided) when something is
    held, failed when nothing ever was. It never guesses: `gateway` is the gateway's own answer."""
    if state is AttemptState.BOOKED:
        return AttemptState.CAPTURED
    if state is AttemptState.CREATED and (
        gateway is None or gateway.state in (GatewayState.PENDING, GatewayState.DECLINED)
    ):
        return AttemptState.FAILED  # nothing was ever held (a pending payment is released all the same)
    return AttemptState.VOIDED  # authorized, being voided, or held at the gateway: released


class PaymentsReleased(Exception):
    """A group commit found some of its attempts no longer authorized (recovery released them first):
    nothing was written; these bookings must be left out and the others committed without them."""

    def __init__(self, attempt_ids: frozenset[str]) -> None:
        super().__init__(f"{len(attempt_ids)} payment attempt(s) no longer authorized")
        self.attempt_ids = attempt_ids


class RowBusy(Exception):
    """An attempt's row is held by another transaction (a group commit) longer than the caller waits."""
