"""Reconciliation for finance: the payment attempts of a period compared with their bookings and with what
the gateway holds, a page at a time, and the period's totals.

The gateway is asked once per attempt of the page (`PaymentGateway.find` by the attempt's id), a few at a
time; attempts still in flight are counted, not asked about. The rules are astro.domain.reconciliation's."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Protocol

from astro.domain.clock import Clock
from astro.domain.errors import DomainError, InvalidInput, RuleViolation
from astro.domain.payments import AttemptState
from astro.domain.reconciliation import (
    AttemptSide,
    GatewaySide,
    GatewayUnanswered,
    Problem,
    Totals,
    in_flight,
    problems,
)
from astro.services.payments import PaymentGateway

DEFAULT_DAYS: Final = 30
MAX_DAYS: Final = 366
CONCURRENCY: Final = 8  # gateway look-ups at once: a page of 200 is quick without flooding the gateway
GATEWAY_TIMEOUT: Final = 10.0  # seconds for one look-up; longer counts as unanswered


class ReconciliationStore(Protocol):
    """Our side of the payments of a period (astro.store.reconciliation.PgReconciliation)."""

    async def attempts(
        self, start: datetime, end: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[AttemptSide]:
        """Attempts created in [start, end) after the (created_at, id) `after`, in that order, with their
        bookings."""

    async def totals(self, start: datetime, end: datetime) -> tuple[Totals, dict[AttemptState, int]]:
        """The money of the attempts created in [start, end) and their number in each state."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One attempt that disagrees, with what the gateway said and every problem found."""

    side: AttemptSide
    gateway: GatewaySide
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class Report:
    start: date
    end: date  # exclusive
    checked: int  # attempts of this page compared with the gateway
    in_flight: int  # attempts of this page still within their deadline: not judged yet
    mismatches: tuple[Mismatch, ...]
    totals: Totals  # of the whole period
    states: dict[AttemptState, int]  # of the whole period, every state named
    next_cursor: str | None  # where the next page starts; None on the last


def period(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """[start, end): the last DEFAULT_DAYS days (today included) when neither is given, DEFAULT_DAYS from
    the one given otherwise; at most MAX_DAYS long."""
    if start is None and end is None:
        end = today + timedelta(days=1)
    try:
        if start is None:
            assert end is not None
            start = end - timedelta(days=DEFAULT_DAYS)
        if end is None:
            end = start + timedelta(days=DEFAULT_DAYS)
    except OverflowError:  # a day at the very edge of the calendar: 30 days on, there is none
        name, day = ("from", start) if end is None else ("to", end)
        raise InvalidInput(f"{name} is out of range", {"fields": {name: str(day)}}) from None
    if end <= start:
        raise RuleViolation(
            "to must be after from", {"fields": {"to": end.isoformat()}}, code="invalid_range"
        )
    if end - start > timedelta(days=MAX_DAYS):
        raise RuleViolation(
            f"the period can be at most {MAX_DAYS} days long",
            {"fields": {"to": end.isoformat()}},
            code="invalid_range",
        )
    return start, end


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _position(cursor: str | None) -> tuple[datetime, str] | None:
    """The (created_at, id) a cursor of this report stands for."""
    if cursor is None:
        return None
    at, _, attempt_id = cursor.partition(" ")
    try:
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not attempt_id:
            raise ValueError
        when = when.astimezone(UTC)  # a time PostgreSQL can hold, not one of year 0
    except (ValueError, OverflowError):
        raise InvalidInput("cursor is not one this API gave out", {"fields": {"cursor": cursor}}) from None
    return when, attempt_id


class Reconciliation:
    def __init__(
        self,
        store: ReconciliationStore,
        gateway: PaymentGateway,
        clock: Clock,
        *,
        concurrency: int = CONCURRENCY,
        gateway_timeout: float = GATEWAY_TIMEOUT,
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._clock = clock
        self._concurrency = concurrency
        self._timeout = gateway_timeout

    async def report(self, *, start: date | None, end: date | None, cursor: str | None, limit: int) -> Report:
        """A page of at most `limit` attempts of the period, compared with their bookings and the gateway;
        the totals and state counts of the whole period."""
        now = self._clock.now()
        first, last = period(start, end, now.date())
        since, until = _midnight(first), _midnight(last)
        rows = await self._store.attempts(since, until, _position(cursor), limit + 1)
        page = rows[:limit]
        judged = [side for side in page if not in_flight(side.attempt, now)]
        gates = asyncio.Semaphore(self._concurrency)
        answers = await asyncio.gather(*(self._ask(side, gates) for side in judged))
        mismatches = []
        for side, gateway in zip(judged, answers, strict=True):
            found = problems(side, gateway, now)
            if found:
                mismatches.append(Mismatch(side, gateway, found))
        totals, counts = await self._store.totals(since, until)
        last_row = page[-1].attempt if page else None
        return Report(
            start=first,
            end=last,
            checked=len(judged),
            in_flight=len(page) - len(judged),
            mismatches=tuple(mismatches),
            totals=totals,
            states={state: counts.get(state, 0) for state in AttemptState},
            next_cursor=(
                f"{last_row.created_at.isoformat()} {last_row.id}"
                if last_row is not None and len(rows) > limit
                else None
            ),
        )

    async def _ask(self, side: AttemptSide, gates: asyncio.Semaphore) -> GatewaySide:
        """What the gateway holds under the attempt's id; unanswered when it failed or took too long."""
        async with gates:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._gateway.find(side.attempt.id)
            except TimeoutError:
                return GatewayUnanswered(f"no answer within {self._timeout:g} s")
            except DomainError as exc:  # GatewayError, Unavailable
                return GatewayUnanswered(exc.message)
