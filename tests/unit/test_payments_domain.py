"""The payment attempt's state machine (DESIGN 8.3): every move allowed or refused, and where recovery
takes an attempt left open, given what the gateway says of it."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from astro.domain.launch import HOLD_FOR
from astro.domain.payments import (
    DEADLINE,
    FINAL,
    MOVES,
    OPEN,
    AttemptState,
    GatewayPayment,
    GatewayState,
    may_move,
    resolution,
)

S, G = AttemptState, GatewayState

# The saga as DESIGN 8.3 tells it, written out independently of MOVES: anything else is refused.
ALLOWED = {
    (S.CREATED, S.AUTHORIZED),  # the gateway held the amount
    (S.CREATED, S.DECLINED),  # the card was refused
    (S.CREATED, S.FAILED),  # nothing was ever held
    (S.CREATED, S.VOIDING),  # recovery found a hold nobody recorded
    (S.AUTHORIZED, S.BOOKED),  # the group commit, in the booking's transaction
    (S.AUTHORIZED, S.VOIDING),  # a refusal, a timeout or recovery releases it
    (S.BOOKED, S.CAPTURED),
    (S.VOIDING, S.VOIDED),
}


@pytest.mark.parametrize(
    ("source", "target"), list(itertools.product(S, S)), ids=lambda s: s.value if isinstance(s, S) else s
)
def test_every_pair_of_states_is_allowed_or_refused_as_the_saga_says(source: S, target: S) -> None:
    assert may_move(source, target) is ((source, target) in ALLOWED)


def test_moves_names_every_state_and_only_the_allowed_pairs() -> None:
    assert set(MOVES) == set(S)
    assert {(a, b) for a, targets in MOVES.items() for b in targets} == ALLOWED


def test_final_states_never_move_and_open_ones_always_can() -> None:
    assert {S.CAPTURED, S.VOIDED, S.DECLINED, S.FAILED} == FINAL
    assert set(S) - FINAL == OPEN and not OPEN & FINAL
    assert all(not MOVES[s] for s in FINAL)
    assert all(MOVES[s] for s in OPEN)


def test_every_open_state_reaches_a_final_state() -> None:
    """No attempt can be stuck: from each open state some sequence of moves ends in a final one."""
    for start in OPEN:
        assert _reachable(start) & FINAL, start


def test_a_booked_attempt_can_only_be_captured() -> None:
    """A booking and a void can never both win: once booked, nothing but the capture follows."""
    assert MOVES[S.BOOKED] == {S.CAPTURED}
    assert not any(may_move(S.BOOKED, t) for t in (S.VOIDING, S.VOIDED, S.FAILED, S.AUTHORIZED))
    assert not any(may_move(s, S.BOOKED) for s in S if s is not S.AUTHORIZED)


def test_the_deadline_outlasts_a_hold_and_a_slow_authorization() -> None:
    """Recovery never decides about an attempt whose hold could still be confirmed."""
    assert HOLD_FOR + timedelta(seconds=2) < DEADLINE


def _paid(state: G) -> GatewayPayment:
    return GatewayPayment("pi_1", "att_1", state, 10_000, 0)


NEVER_BOOKED = (S.CREATED, S.AUTHORIZED, S.VOIDING)


@pytest.mark.parametrize("gateway", [None, *G], ids=lambda g: g.value if g else "nothing")
def test_a_booked_attempt_is_captured_whatever_the_gateway_says(gateway: G | None) -> None:
    assert resolution(S.BOOKED, _paid(gateway) if gateway else None) is S.CAPTURED


@pytest.mark.parametrize("state", NEVER_BOOKED, ids=lambda s: s.value)
@pytest.mark.parametrize("gateway", [G.AUTHORIZED, G.VOIDED], ids=lambda g: g.value)
def test_an_attempt_never_booked_with_something_held_is_voided(state: S, gateway: G) -> None:
    assert resolution(state, _paid(gateway)) is S.VOIDED


@pytest.mark.parametrize("gateway", [None, G.PENDING, G.DECLINED], ids=lambda g: g.value if g else "nothing")
def test_an_attempt_never_authorized_with_nothing_held_fails(gateway: G | None) -> None:
    assert resolution(S.CREATED, _paid(gateway) if gateway else None) is S.FAILED


@pytest.mark.parametrize("gateway", [None, G.PENDING, G.DECLINED], ids=lambda g: g.value if g else "nothing")
def test_a_void_already_decided_ends_voided_even_with_nothing_held(gateway: G | None) -> None:
    assert resolution(S.VOIDING, _paid(gateway) if gateway else None) is S.VOIDED


def _reachable(state: S) -> set[S]:
    seen, frontier = {state}, [state]
    while frontier:
        for nxt in MOVES[frontier.pop()] - seen:
            seen.add(nxt)
            frontier.append(nxt)
    return seen


@pytest.mark.parametrize("state", sorted(OPEN), ids=lambda s: s.value)
@pytest.mark.parametrize("gateway", [None, *G], ids=lambda g: g.value if g else "nothing")
def test_resolution_is_a_final_state_reachable_from_where_the_attempt_stands(
    request: pytest.FixtureRequest, state: S, gateway: G | None
) -> None:
    """Recovery ends every open attempt in a final state, by moves the state machine allows."""
    end = resolution(state, _paid(gateway) if gateway else None)
    assert end in FINAL
    assert end in _reachable(state)
