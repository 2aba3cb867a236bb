"""Reconciliation for finance: the rules by which a payment attempt, its booking and the gateway's payment
disagree, and what to do about each.

Pure: the caller reads our rows and asks the gateway; `problems` compares them. Expected: none. An attempt
still open within its deadline is in flight and not judged (the saga is moving it; DESIGN 8.3)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from astro.domain.payments import FINAL, Attempt, AttemptState, GatewayPayment, GatewayState

S, G = AttemptState, GatewayState
# Past its deadline, recovery (a round every 2 s) has this long to make an attempt final before an open
# one is reported: longer than that means recovery is behind or the gateway is down.
RECOVERY_GRACE: Final = timedelta(seconds=60)
# A refund owed is paid at once by the desk, else by recovery after 30 s; owed longer than this, it is late.
REFUND_GRACE: Final = timedelta(minutes=2)
# What the gateway may say of a payment whose attempt is final in our row, and still agree with it.
AGREES: Final[dict[AttemptState, frozenset[GatewayState | None]]] = {
    S.CAPTURED: frozenset({G.CAPTURED}),
    S.VOIDED: frozenset({G.VOIDED, G.DECLINED, G.PENDING, None}),
    S.DECLINED: frozenset({G.DECLINED, G.VOIDED, G.PENDING, None}),
    S.FAILED: frozenset({G.DECLINED, G.VOIDED, G.PENDING, None}),
}


class Code(enum.StrEnum):
    """Why an attempt is listed."""

    CAPTURED_WITHOUT_BOOKING = "captured_without_booking"
    BOOKING_NOT_PAID = "booking_not_paid"
    BOOKING_MISSING = "booking_missing"
    HOLD_NOT_RELEASED = "hold_not_released"
    STATE_DIFFERS = "state_differs"
    AMOUNT_DIFFERS = "amount_differs"
    METADATA_DIFFERS = "metadata_differs"
    REFUND_DIFFERS = "refund_differs"
    REFUND_UNPAID = "refund_unpaid"
    OPEN_PAST_DEADLINE = "open_past_deadline"
    GATEWAY_UNANSWERED = "gateway_unanswered"


@dataclass(frozen=True, slots=True)
class BookingSide:
    """The stored booking an attempt paid for, with its charge and refund records."""

    id: str
    status: str  # confirmed | cancelled
    total_cents: int
    refund_due_cents: int  # what its cancellation gives back (0 while it is active)
    charge_cents: int | None  # its charge record's amount; None: no charge record
    refunds_paid_cents: int  # refund records the gateway confirmed
    refunds_pending_cents: int  # refund records not paid yet
    oldest_pending_refund_age: timedelta | None = None  # measured by the database's clock


@dataclass(frozen=True, slots=True)
class AttemptSide:
    """Our side of one payment: the attempt's row and the booking it paid for, if one is stored."""

    attempt: Attempt
    booking: BookingSide | None


@dataclass(frozen=True, slots=True)
class GatewayUnanswered:
    """The gateway could not be asked about the payment (down, too slow)."""

    error: str


GatewaySide = GatewayPayment | GatewayUnanswered | None


@dataclass(frozen=True, slots=True)
class Problem:
    code: Code
    what: str  # what disagrees, naming both sides
    action: str  # what finance or an operator does about it


def in_flight(attempt: Attempt, now: datetime) -> bool:
    """An open attempt within its deadline: the saga is still moving it, so it is not judged yet."""
    return attempt.state not in FINAL and now <= attempt.deadline


def problems(side: AttemptSide, gateway: GatewaySide, now: datetime) -> tuple[Problem, ...]:
    """Every way our attempt, its booking and the gateway's payment disagree (none when they agree)."""
    attempt, booking = side.attempt, side.booking
    if in_flight(attempt, now):
        return ()
    found: list[Problem] = []
    if attempt.state not in FINAL and now > attempt.deadline + RECOVERY_GRACE:
        found.append(_open_past_deadline(attempt, now))
    if isinstance(gateway, GatewayUnanswered):
        found.append(
            Problem(
                Code.GATEWAY_UNANSWERED,
                f"the gateway did not say what it holds for this payment ({gateway.error})",
                "Nothing could be compared: read the report again once the gateway answers.",
            )
        )
        return tuple(found)
    found += _states(attempt, booking, gateway)
    amounts = _amounts(attempt, booking, gateway)
    if amounts:
        found.append(amounts)
    if gateway is not None and gateway.booking_id is not None and gateway.booking_id != attempt.booking_id:
        found.append(
            Problem(
                Code.METADATA_DIFFERS,
                f"the gateway's payment {gateway.ref} names booking {gateway.booking_id}, our attempt "
                f"{attempt.booking_id}",
                "The payment was made for another booking than ours says: find which booking it paid "
                "for before capturing or refunding anything.",
            )
        )
    if booking is not None:
        found += _refunds(booking, gateway)
    return tuple(found)


def _said(gateway: GatewayPayment | None) -> str:
    if gateway is None:
        return "the gateway has no payment under its key"
    return f"the gateway says {gateway.state.value}"


def _open_past_deadline(attempt: Attempt, now: datetime) -> Problem:
    late = int((now - attempt.deadline).total_seconds())
    return Problem(
        Code.OPEN_PAST_DEADLINE,
        f"the attempt is still {attempt.state.value}, {late} s past its deadline",
        "Recovery is behind or the gateway is down: check /ready, the logs for payment_recovery_deferred "
        "and the gateway; recovery finishes it once the gateway answers.",
    )


def _states(attempt: Attempt, booking: BookingSide | None, gateway: GatewayPayment | None) -> list[Problem]:
    """Who holds the money against whether a booking stands."""
    state = gateway.state if gateway else None
    found: list[Problem] = []
    if state is G.CAPTURED and booking is None and gateway is not None:
        kept = gateway.amount_cents - gateway.refunded_cents
        if kept > 0:
            found.append(
                Problem(
                    Code.CAPTURED_WITHOUT_BOOKING,
                    f"the gateway captured {kept} cents (payment {gateway.ref}) and no booking is stored; "
                    f"our attempt says {attempt.state.value}",
                    f"Refund {kept} cents of {gateway.ref} to the traveler at the gateway: they were "
                    "charged for nothing.",
                )
            )
    if booking is None and attempt.state in (S.BOOKED, S.CAPTURED):
        found.append(
            Problem(
                Code.BOOKING_MISSING,
                f"our attempt says {attempt.state.value} but its booking {attempt.booking_id} is not stored",
                "The booking row was lost or deleted: restore it from the change log, or refund the "
                "traveler at the gateway.",
            )
        )
    # Judged at all, the attempt is final or past its deadline: its booking should be captured by now.
    if booking is not None and state is not G.CAPTURED:
        found.append(_booking_not_paid(attempt, booking, gateway))
    released = attempt.final and attempt.state is not S.CAPTURED and booking is None
    if released and gateway is not None and gateway.state is G.AUTHORIZED:
        found.append(
            Problem(
                Code.HOLD_NOT_RELEASED,
                f"our attempt says {attempt.state.value} but the gateway still holds the amount "
                f"(payment {gateway.ref}, authorized)",
                "Void the authorization at the gateway: the traveler's card still carries the hold.",
            )
        )
    # Captured without a booking and then refunded in full (as CAPTURED_WITHOUT_BOOKING asks): settled.
    returned = gateway is not None and state is G.CAPTURED and gateway.refunded_cents >= gateway.amount_cents
    if returned and booking is None and attempt.state is not S.CAPTURED:
        return found
    if not found and attempt.final and state not in AGREES[attempt.state]:
        found.append(
            Problem(
                Code.STATE_DIFFERS,
                f"our attempt says {attempt.state.value}, {_said(gateway)}"
                + (f", and booking {booking.id} is stored" if booking else ", and no booking is stored"),
                "Correct the side that is wrong: the gateway's dashboard tells what really happened to "
                "the money; then fix the attempt's row, or capture, void or refund at the gateway.",
            )
        )
    return found


def _booking_not_paid(attempt: Attempt, booking: BookingSide, gateway: GatewayPayment | None) -> Problem:
    what = f"booking {booking.id} is stored ({booking.status}) but {_said(gateway)}; "
    what += f"our attempt says {attempt.state.value}"
    if gateway is not None and gateway.state is G.AUTHORIZED:
        action = (
            f"Capture {gateway.ref} at the gateway (recovery captures booked attempts by itself; "
            "if it does not, the gateway refuses: see the logs for payment_capture_deferred)."
        )
    else:
        action = (
            "Nothing was taken for this booking and nothing can be captured any more: ask the traveler "
            "to pay again, or cancel the booking."
        )
    return Problem(Code.BOOKING_NOT_PAID, what, action)


def _amounts(attempt: Attempt, booking: BookingSide | None, gateway: GatewayPayment | None) -> Problem | None:
    """The attempt's amount against the gateway's, the booking's total and its charge record."""
    wrong: list[str] = []
    if gateway is not None and gateway.amount_cents != attempt.amount_cents:
        wrong.append(f"the gateway's payment is {gateway.amount_cents}")
    if booking is not None:
        if booking.total_cents != attempt.amount_cents:
            wrong.append(f"the booking's total is {booking.total_cents}")
        if booking.charge_cents is None:
            wrong.append("the booking has no charge record")
        elif booking.charge_cents != attempt.amount_cents:
            wrong.append(f"its charge record is {booking.charge_cents}")
    if not wrong:
        return None
    return Problem(
        Code.AMOUNT_DIFFERS,
        f"the attempt is for {attempt.amount_cents} cents but " + ", ".join(wrong),
        "Compare with the gateway's dashboard: refund what was taken too much, or correct the record "
        "that is wrong.",
    )


def _refunds(booking: BookingSide, gateway: GatewayPayment | None) -> list[Problem]:
    """What the booking gives back against our refund records and what the gateway refunded."""
    found: list[Problem] = []
    recorded = booking.refunds_paid_cents + booking.refunds_pending_cents
    wrong: list[str] = []
    if booking.refund_due_cents != recorded:
        wrong.append(
            f"the booking gives back {booking.refund_due_cents} cents, our refund records say {recorded}"
        )
    if gateway is not None:
        refunded, paid = gateway.refunded_cents, booking.refunds_paid_cents
        # A refund the gateway made and our record does not show yet is one under way.
        under_way = booking.refunds_pending_cents > 0 and refunded == paid + booking.refunds_pending_cents
        if refunded != paid and not under_way:
            wrong.append(f"the gateway refunded {refunded} cents, our records say {paid} paid")
    if wrong:
        found.append(
            Problem(
                Code.REFUND_DIFFERS,
                "; ".join(wrong),
                "Compare with the gateway's refunds: pay the part still owed at the gateway, or correct "
                "the refund record.",
            )
        )
    age = booking.oldest_pending_refund_age
    if booking.refunds_pending_cents > 0 and age is not None and age > REFUND_GRACE:
        found.append(
            Problem(
                Code.REFUND_UNPAID,
                f"{booking.refunds_pending_cents} cents owed back for {int(age.total_seconds())} s "
                "and not paid yet",
                "Recovery pays refunds owed every few seconds: check the gateway and the logs for "
                "refund_failed.",
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class Totals:
    """Money of the attempts of a period, in cents, from our records."""

    captured_cents: int  # attempts captured
    refunded_cents: int  # refunds paid back on their bookings
    booked_cents: int  # the totals of their stored bookings
    refunds_due_cents: int  # what the cancellations of those bookings give back

    @property
    def difference_cents(self) -> int:
        """What was kept (captured - refunded) against what the bookings say should be kept; 0 when every
        booking is captured and every refund paid."""
        return (self.captured_cents - self.refunded_cents) - (self.booked_cents - self.refunds_due_cents)
