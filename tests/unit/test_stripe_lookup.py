"""The Stripe gateway's find helpers: one listing for a burst of finds, the payment that matters most."""

from __future__ import annotations

import asyncio

import pytest

from astro.domain.payments import GatewayPayment, GatewayState
from astro.store.stripe_lookup import Coalesced, best_of


def payment(ref: str, state: GatewayState) -> GatewayPayment:
    return GatewayPayment(ref, "att_1", state, 1000, 0, "bkg_1")


def test_the_payment_taking_or_holding_money_is_the_one_told() -> None:
    voided, held, taken = (
        payment("pi_v", GatewayState.VOIDED),
        payment("pi_a", GatewayState.AUTHORIZED),
        payment("pi_c", GatewayState.CAPTURED),
    )
    assert best_of([voided, held]) == held
    assert best_of([held, taken, voided]) == taken
    assert (
        best_of([payment("pi_d", GatewayState.DECLINED), payment("pi_p", GatewayState.PENDING)]).ref == "pi_p"
    )  # type: ignore[union-attr]
    assert best_of([]) is None


class Listing:
    """A listing that runs until released, counting its runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def __call__(self) -> int:
        self.runs += 1
        run = self.runs
        self.started.set()
        await self.release.wait()
        return run


async def test_callers_at_once_share_one_run() -> None:
    listing = Listing()
    shared = Coalesced(listing)
    calls = [asyncio.ensure_future(shared()) for _ in range(20)]
    await listing.started.wait()
    listing.release.set()
    assert await asyncio.gather(*calls) == [1] * 20 and listing.runs == 1


async def test_a_caller_during_a_run_gets_the_next_run_shared_with_later_callers() -> None:
    listing = Listing()
    shared = Coalesced(listing)
    early = asyncio.ensure_future(shared())
    await listing.started.wait()  # run 1 is under way: it may have passed what a new caller looks for
    late = [asyncio.ensure_future(shared()) for _ in range(5)]
    await asyncio.sleep(0)
    assert listing.runs == 1
    listing.release.set()
    assert await early == 1 and await asyncio.gather(*late) == [2] * 5 and listing.runs == 2


async def test_a_failed_run_fails_its_callers_and_the_next_call_runs_again() -> None:
    runs = 0

    async def failing() -> int:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ConnectionError("down")
        return runs

    shared = Coalesced(failing)
    results = await asyncio.gather(shared(), shared(), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert await shared() == 2


async def test_a_cancelled_caller_leaves_the_run_to_the_others() -> None:
    listing = Listing()
    shared = Coalesced(listing)
    leaving, staying = asyncio.ensure_future(shared()), asyncio.ensure_future(shared())
    await listing.started.wait()
    leaving.cancel()
    listing.release.set()
    assert await staying == 1
    with pytest.raises(asyncio.CancelledError):
        await leaving
