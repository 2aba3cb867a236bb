"""The reconciliation rules: when an attempt, its booking and the gateway's payment disagree, and why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from astro.domain.errors import InvalidInput, RuleViolation
from astro.domain.payments import Attempt, AttemptState, GatewayPayment, GatewayState
from astro.domain.reconciliation import (
    RECOVERY_GRACE,
    REFUND_GRACE,
    AttemptSide,
    BookingSide,
    Code,
    GatewaySide,
    GatewayUnanswered,
    Totals,
    in_flight,
    problems,
)
from astro.services.reconciliation import DEFAULT_DAYS, MAX_DAYS, period

S, G = AttemptState, GatewayState
CREATED = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
DEADLINE = CREATED + timedelta(seconds=45)
LATER = DEADLINE + timedelta(minutes=5)  # every attempt is judged by then
AMOUNT = 250_000


def attempt(state: AttemptState = S.CAPTURED, amount: int = AMOUNT) -> Attempt:
    return Attempt(
        id="att_1",
        booking_id="bkg_1",
        traveler_id="trv_1",
        launch_id="lch_1",
        seats=2,
        amount_cents=amount,
        state=state,
        gateway_ref="pi_1",
        deadline=DEADLINE,
        created_at=CREATED,
    )


def booking(**changes: object) -> BookingSide:
    base = BookingSide(
        id="bkg_1",
        status="confirmed",
        total_cents=AMOUNT,
        refund_due_cents=0,
        charge_cents=AMOUNT,
        refunds_paid_cents=0,
        refunds_pending_cents=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def paid(state: GatewayState = G.CAPTURED, **changes: object) -> GatewayPayment:
    base = GatewayPayment("pi_1", "att_1", state, AMOUNT, 0, "bkg_1")
    return replace(base, **changes)  # type: ignore[arg-type]


def codes(
    state: AttemptState,
    stored: BookingSide | None,
    gateway: GatewaySide,
    now: datetime = LATER,
    amount: int = AMOUNT,
) -> list[Code]:
    return [p.code for p in problems(AttemptSide(attempt(state, amount), stored), gateway, now)]


# -- agreeing ---------------------------------------------------------------------------------------


def test_a_captured_booking_the_gateway_captured_agrees() -> None:
    assert codes(S.CAPTURED, booking(), paid()) == []


@pytest.mark.parametrize(
    ("state", "gateway"),
    [
        (S.VOIDED, paid(G.VOIDED)),
        (S.VOIDED, None),  # released before the gateway held anything
        (S.DECLINED, paid(G.DECLINED)),
        (S.FAILED, None),
        (S.FAILED, paid(G.PENDING)),
    ],
)
def test_an_attempt_without_booking_agrees_when_the_gateway_holds_nothing(
    state: AttemptState, gateway: GatewayPayment | None
) -> None:
    assert codes(state, None, gateway) == []


def test_a_cancelled_booking_with_its_refund_paid_agrees() -> None:
    stored = booking(status="cancelled", refund_due_cents=225_000, refunds_paid_cents=225_000)
    assert codes(S.CAPTURED, stored, paid(refunded_cents=225_000)) == []


def test_an_attempt_within_its_deadline_is_in_flight_and_not_judged() -> None:
    now = DEADLINE - timedelta(seconds=1)
    assert in_flight(attempt(S.AUTHORIZED), now)
    # Captured at the gateway and no booking read yet: the group commit may be committing it right now.
    assert codes(S.AUTHORIZED, None, paid(), now=now) == []
    assert not in_flight(attempt(S.CAPTURED), now)  # a final attempt is judged at once


# -- disagreeing ------------------------------------------------------------------------------------


def test_a_payment_captured_without_a_stored_booking() -> None:
    [problem] = problems(AttemptSide(attempt(S.VOIDED), None), paid(), LATER)
    assert problem.code is Code.CAPTURED_WITHOUT_BOOKING
    assert "250000 cents" in problem.what and "voided" in problem.what
    assert problem.action.startswith("Refund 250000 cents of pi_1")


def test_a_payment_captured_without_booking_but_refunded_in_full_is_settled() -> None:
    assert codes(S.VOIDED, None, paid(refunded_cents=AMOUNT)) == []


def test_a_stored_booking_whose_payment_is_only_authorized_past_the_deadline() -> None:
    [problem] = problems(
        AttemptSide(attempt(S.BOOKED), booking()), paid(G.AUTHORIZED), DEADLINE + RECOVERY_GRACE
    )
    assert problem.code is Code.BOOKING_NOT_PAID
    assert problem.action.startswith("Capture pi_1")


def test_a_stored_booking_whose_payment_the_gateway_released() -> None:
    [problem] = problems(AttemptSide(attempt(S.CAPTURED), booking()), paid(G.VOIDED), LATER)
    assert problem.code is Code.BOOKING_NOT_PAID
    assert "says voided" in problem.what and "Nothing was taken" in problem.action


def test_a_stored_booking_with_no_payment_at_the_gateway() -> None:
    assert codes(S.CAPTURED, booking(), None) == [Code.BOOKING_NOT_PAID]


def test_our_captured_against_the_gateways_authorized_is_not_paid_even_before_the_deadline() -> None:
    now = DEADLINE - timedelta(seconds=10)
    assert codes(S.CAPTURED, booking(), paid(G.AUTHORIZED), now=now) == [Code.BOOKING_NOT_PAID]


@pytest.mark.parametrize("state", [S.VOIDED, S.DECLINED, S.FAILED])
def test_a_final_attempt_without_booking_whose_hold_the_gateway_still_has(state: AttemptState) -> None:
    [problem] = problems(AttemptSide(attempt(state), None), paid(G.AUTHORIZED), LATER)
    assert problem.code is Code.HOLD_NOT_RELEASED
    assert f"says {state.value}" in problem.what and problem.action.startswith("Void")


def test_our_voided_against_a_captured_payment_and_a_stored_booking_differs() -> None:
    [problem] = problems(AttemptSide(attempt(S.VOIDED), booking()), paid(), LATER)
    assert problem.code is Code.STATE_DIFFERS
    assert "voided" in problem.what and "captured" in problem.what and "bkg_1 is stored" in problem.what


def test_a_captured_attempt_whose_booking_is_gone() -> None:
    assert codes(S.CAPTURED, None, paid()) == [Code.CAPTURED_WITHOUT_BOOKING, Code.BOOKING_MISSING]


def test_amounts_that_differ_are_named_side_by_side() -> None:
    [problem] = problems(AttemptSide(attempt(), booking()), paid(amount_cents=AMOUNT + 1), LATER)
    assert problem.code is Code.AMOUNT_DIFFERS
    assert problem.what == "the attempt is for 250000 cents but the gateway's payment is 250001"
    stored = booking(total_cents=AMOUNT - 1, charge_cents=None)
    [problem] = problems(AttemptSide(attempt(), stored), paid(), LATER)
    assert "the booking's total is 249999" in problem.what and "no charge record" in problem.what


def test_a_payment_made_for_another_booking() -> None:
    assert codes(S.CAPTURED, booking(), paid(booking_id="bkg_2")) == [Code.METADATA_DIFFERS]


def test_a_refund_our_records_paid_and_the_gateway_never_made() -> None:
    stored = booking(status="cancelled", refund_due_cents=225_000, refunds_paid_cents=225_000)
    [problem] = problems(AttemptSide(attempt(), stored), paid(refunded_cents=0), LATER)
    assert problem.code is Code.REFUND_DIFFERS
    assert problem.what == "the gateway refunded 0 cents, our records say 225000 paid"


def test_a_cancellation_whose_refund_was_never_recorded() -> None:
    stored = booking(status="cancelled", refund_due_cents=225_000)
    [problem] = problems(AttemptSide(attempt(), stored), paid(), LATER)
    assert problem.code is Code.REFUND_DIFFERS
    assert problem.what == "the booking gives back 225000 cents, our refund records say 0"


def test_a_refund_under_way_agrees_until_it_is_owed_too_long() -> None:
    owed = booking(status="cancelled", refund_due_cents=225_000, refunds_pending_cents=225_000)
    gateway_made_it = paid(refunded_cents=225_000)  # the gateway refunded, our record is not written yet
    young = replace(owed, oldest_pending_refund_age=REFUND_GRACE - timedelta(seconds=1))
    assert codes(S.CAPTURED, young, gateway_made_it) == []
    assert codes(S.CAPTURED, young, paid()) == []
    old = replace(owed, oldest_pending_refund_age=REFUND_GRACE + timedelta(seconds=1))
    assert codes(S.CAPTURED, old, paid()) == [Code.REFUND_UNPAID]


def test_an_open_attempt_is_reported_a_minute_past_its_deadline() -> None:
    hold = paid(G.AUTHORIZED)
    assert codes(S.AUTHORIZED, None, hold, now=DEADLINE + RECOVERY_GRACE) == []  # recovery's minute
    late = DEADLINE + RECOVERY_GRACE + timedelta(seconds=1)
    [problem] = problems(AttemptSide(attempt(S.AUTHORIZED), None), hold, late)
    assert problem.code is Code.OPEN_PAST_DEADLINE
    assert problem.what == "the attempt is still authorized, 61 s past its deadline"


def test_a_gateway_that_did_not_answer_is_said_and_nothing_else_compared() -> None:
    unanswered = GatewayUnanswered("no answer within 10 s")
    [problem] = problems(AttemptSide(attempt(), booking(total_cents=1)), unanswered, LATER)
    assert problem.code is Code.GATEWAY_UNANSWERED and "no answer within 10 s" in problem.what
    late = DEADLINE + RECOVERY_GRACE * 2
    assert codes(S.BOOKED, booking(), unanswered, now=late) == [
        Code.OPEN_PAST_DEADLINE,
        Code.GATEWAY_UNANSWERED,
    ]


# -- totals and the period --------------------------------------------------------------------------


def test_the_difference_is_zero_when_every_booking_is_captured_and_every_refund_paid() -> None:
    assert Totals(1_000_000, 225_000, 1_000_000, 225_000).difference_cents == 0
    assert Totals(1_000_000, 0, 1_000_000, 225_000).difference_cents == 225_000  # a refund still owed
    assert Totals(750_000, 0, 1_000_000, 0).difference_cents == -250_000  # a booking never captured


def test_the_period_defaults_to_the_last_30_days_today_included() -> None:
    today = date(2027, 3, 10)
    assert period(None, None, today) == (date(2027, 2, 9), date(2027, 3, 11))
    assert period(date(2027, 1, 1), None, today) == (
        date(2027, 1, 1),
        date(2027, 1, 1) + timedelta(DEFAULT_DAYS),
    )
    assert period(None, date(2027, 1, 31), today) == (date(2027, 1, 1), date(2027, 1, 31))


def test_a_period_that_ends_before_it_starts_or_is_too_long_names_to() -> None:
    with pytest.raises(RuleViolation) as caught:
        period(date(2027, 1, 2), date(2027, 1, 2), date(2027, 3, 10))
    assert caught.value.details == {"fields": {"to": "2027-01-02"}} and caught.value.code == "invalid_range"
    start = date(2026, 1, 1)
    assert period(start, start + timedelta(MAX_DAYS), date(2027, 3, 10))[1] == start + timedelta(MAX_DAYS)
    with pytest.raises(RuleViolation) as caught:
        period(start, start + timedelta(MAX_DAYS + 1), date(2027, 3, 10))
    assert "366 days" in caught.value.message and set(caught.value.details["fields"]) == {"to"}


@pytest.mark.parametrize(("start", "end", "field"), [(date.max, None, "from"), (None, date.min, "to")])
def test_a_day_at_the_edge_of_the_calendar_names_its_field(
    start: date | None, end: date | None, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        period(start, end, date(2027, 3, 10))
    assert set(caught.value.details["fields"]) == {field}
