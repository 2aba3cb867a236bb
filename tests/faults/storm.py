"""The load of a fault test: a storm of one-seat bookings, each with its own Idempotency-Key, and the record
a careful client keeps -- every request's key and every answer it got (or that it got none).

`Storm.run` fires the storm and calls the fault after exactly N answers; `Storm.settle` retries every key
without a definitive answer, with that key, until each has one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from tests.conftest import agency_body, future, traveler_body
from tests.faults.platform import PlatformProcess

# The storm of the fault tests: one-seat bookings, each with its own Idempotency-Key, by travelers in turn.
STORM: Final = 600
TRAVELERS: Final = 30
CONCURRENCY: Final = 100  # requests in flight at once
PRICE_CENTS: Final = 100_000
RETRY_PAUSE: Final = 0.5  # seconds between the client's rounds of retries
SLACK: Final = 15.0  # how long past the recovery window the client goes on retrying, to see what is stuck
REQUEST_TIMEOUT: Final = 30.0  # longer than the platform's own limits (ask 10 s, gateway 10 s)
PASSENGER: Final = {"name": "Storm Passenger", "birth_date": "1990-05-17"}


@dataclass(frozen=True, slots=True)
class Traveler:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True, slots=True)
class Answer:
    """One try of a request: the HTTP answer, or `status` None when none came (connection lost or
    refused, time out)."""

    phase: str  # "storm" or "retry"
    sent: float  # monotonic time the request was sent
    at: float  # monotonic time the answer came
    status: int | None
    code: str | None = None  # error.code of an error answer
    booking_id: str | None = None
    total_cents: int | None = None
    retry_after: str | None = None  # the Retry-After header, if any
    detail: str = ""
    base: str = ""  # the node the request was sent to
    node: str | None = None  # the X-Astro-Node header of the answer: the node that answered

    @property
    def definitive(self) -> bool:
        """An answer the client can act on for good: anything but no answer, a 5xx, or 'in progress'."""
        if self.status is None or self.status >= 500:
            return False
        return not (self.status == 409 and self.code == "idempotency_in_progress")

    def label(self) -> str:
        if self.status is None:
            return "no answer"
        return f"{self.status} {self.code}" if self.code else str(self.status)


@dataclass
class Order:
    """One booking request: its key, its traveler, every answer in order."""

    key: str
    traveler: Traveler
    answers: list[Answer] = field(default_factory=list)

    @property
    def last(self) -> Answer | None:
        return self.answers[-1] if self.answers else None

    @property
    def settled(self) -> bool:
        return self.last is not None and self.last.definitive


class Storm:
    """`size` one-seat bookings on one launch by `travelers` in turn, at most `concurrency` at a time.

    `base` is one platform's URL, or several nodes' URLs: the n-th request (and each retry of it) goes to
    the n-th in turn of `bases` as they stand when it is sent, so a test may take a node out of `bases`."""

    def __init__(
        self,
        base: str | Sequence[str],
        launch_id: str,
        travelers: list[Traveler],
        size: int,
        concurrency: int,
        *,
        card_token: str = "tok_ok",  # the sandbox's; in Stripe mode a PaymentMethod id (pm_card_visa)
    ) -> None:
        self.bases = [base] if isinstance(base, str) else list(base)
        self.launch_id = launch_id
        self.concurrency = concurrency
        self.travelers = travelers
        self._run = uuid.uuid4().hex[:8]
        self.orders = [
            Order(f"storm-{self._run}-{i:04d}", travelers[i % len(travelers)]) for i in range(size)
        ]
        self.card_token = card_token
        self.sent_in_storm = 0
        self.answered_in_storm = 0
        self.answered_at_fault: int | None = None
        self.in_flight_at_fault: int | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._over = False

    @property
    def base(self) -> str:
        return self.bases[0]

    def base_of(self, order: Order) -> str:
        """Where `order` is sent now: its turn among the current `bases`."""
        return self.bases[int(order.key.rsplit("-", 1)[1]) % len(self.bases)]

    def add_order(self) -> Order:
        """One more request of the storm (sent by the test itself), recorded and audited like the others."""
        index = len(self.orders)
        order = Order(f"storm-{self._run}-{index:04d}", self.travelers[index % len(self.travelers)])
        self.orders.append(order)
        return order

    async def send(
        self, session: aiohttp.ClientSession, order: Order, phase: str, base: str | None = None
    ) -> Answer:
        """One try of `order` with its key (to its node, or to `base`); the answer is recorded."""
        base = base or self.base_of(order)
        body = {
            "launch_id": self.launch_id,
            "seats": 1,
            "passengers": [PASSENGER],
            "card_token": self.card_token,
        }
        headers = {**order.traveler.headers, "Idempotency-Key": order.key}
        sent = time.monotonic()
        try:
            async with session.post(
                base + "/api/booking/bookings",
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            ) as resp:
                raw = await resp.read()
                answer = _answer(phase, sent, resp.status, raw, resp.headers)
                answer = dataclasses.replace(answer, base=base)
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            answer = Answer(phase, sent, time.monotonic(), None, detail=detail, base=base)
        order.answers.append(answer)
        return answer

    async def run(
        self,
        session: aiohttp.ClientSession,
        *,
        fault_after: int | None = None,
        fault: Callable[[], Awaitable[None]] | None = None,
        stop_at_fault: bool = False,
    ) -> None:
        """Fire the storm; once exactly `fault_after` answers have come, `fault()` runs (before any further
        answer is counted). `stop_at_fault`: no request is begun after that (the client sees the platform
        gone); else the storm goes on to its end while the fault lasts. No `fault`: the storm only."""
        queue = collections.deque(self.orders)
        faulted = asyncio.Event()
        in_flight = 0

        async def worker() -> None:
            nonlocal in_flight
            while queue and not (stop_at_fault and faulted.is_set()):
                order = queue.popleft()
                self.sent_in_storm += 1
                in_flight += 1
                answer = await self.send(session, order, "storm")
                in_flight -= 1
                if answer.status is None:
                    continue
                self.answered_in_storm += 1
                self._wake_waiters()
                if fault is not None and self.answered_in_storm == fault_after:
                    faulted.set()
                    self.answered_at_fault, self.in_flight_at_fault = self.answered_in_storm, in_flight
                    await fault()  # a kill -9 inside it is synchronous: no later answer is counted first

        workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*workers, return_exceptions=True)
            self._over = True
            self._wake_waiters()
        assert fault is None or faulted.is_set(), (
            f"the storm ended after {self.answered_in_storm} answers, before the fault"
        )

    async def answered(self, count: int) -> None:
        """Until the storm has had `count` answers (or is over: no more will come)."""
        if self._over or self.answered_in_storm >= count:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((count, waiter))
        await waiter

    def _wake_waiters(self) -> None:
        for count, waiter in self._waiters:
            if (self._over or self.answered_in_storm >= count) and not waiter.done():
                waiter.set_result(None)

    async def settle(self, session: aiohttp.ClientSession, *, until: float, pause: float) -> None:
        """Retry, with its own key, every request without a definitive answer, in rounds `pause` seconds
        apart (the platform's answer is the only signal) until each has one or `until` (monotonic) passes."""
        gate = asyncio.Semaphore(self.concurrency)

        async def retry(order: Order) -> None:
            async with gate:
                await self.send(session, order, "retry")

        while pending := [o for o in self.orders if not o.settled]:
            if time.monotonic() > until:
                return
            await asyncio.gather(*(retry(o) for o in pending))
            if any(not o.settled for o in pending):
                await asyncio.sleep(pause)

    # -- the record, summed up ---------------------------------------------------------------------

    def counts(self, phase: str | None = None) -> dict[str, int]:
        """How many answers of each kind (in one phase, or all)."""
        found = collections.Counter(
            a.label() for o in self.orders for a in o.answers if phase is None or a.phase == phase
        )
        return dict(sorted(found.items()))

    def finals(self) -> dict[str, int]:
        """Each request's last answer, counted by kind."""
        return dict(
            sorted(
                collections.Counter(o.last.label() if o.last else "never sent" for o in self.orders).items()
            )
        )

    def settled_at(self) -> float:
        """When the last request got its definitive answer (monotonic)."""
        return max(o.last.at for o in self.orders if o.last is not None)

    def retried(self) -> list[Order]:
        return [o for o in self.orders if any(a.phase == "retry" for a in o.answers)]


async def until_set(event: asyncio.Event, task: asyncio.Task[None]) -> None:
    """Wait for `event`; should `task` end first (it failed, or ended without setting it), its outcome."""
    waiter = asyncio.create_task(event.wait())
    try:
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if not event.is_set():
        await task  # its exception, if any
        raise AssertionError("the storm ended before the fault happened")


def _answer(phase: str, sent: float, status: int, raw: bytes, headers: Mapping[str, str]) -> Answer:
    """An HTTP answer as the record keeps it: the booking's id and total, or the error's code."""
    seen = functools.partial(
        Answer,
        phase,
        sent,
        time.monotonic(),
        status,
        retry_after=headers.get("Retry-After"),
        node=headers.get("X-Astro-Node"),
    )
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return seen(detail=raw[:300].decode(errors="replace"))
    if not isinstance(data, dict):
        return seen(detail=str(data)[:300])
    if "booking" in data:
        return seen(booking_id=data["booking"]["id"], total_cents=data["booking"]["total_cents"])
    error = data.get("error") or {}
    return seen(code=error.get("code"), detail=str(error.get("message", ""))[:300])


# -- the world a storm runs in ------------------------------------------------------------------------


async def _post(session: aiohttp.ClientSession, url: str, body: Any, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.post(url, json=body, headers=headers) as resp:
        data = await resp.json()
        assert resp.status == 201, (url, resp.status, data)
        return data


async def open_launch(
    session: aiohttp.ClientSession,
    platform: PlatformProcess,
    *,
    capacity: int,
    travelers: int,
    price_cents: int,
) -> tuple[str, list[Traveler]]:
    """A new agency's launch of a rocket with `capacity` seats, and `travelers` registered travelers."""
    launch_id, _, registered = await open_agency_launch(
        session, platform, capacity=capacity, travelers=travelers, price_cents=price_cents
    )
    return launch_id, registered


async def verified_agency(session: aiohttp.ClientSession, platform: PlatformProcess) -> str:
    """A self-registered agency that an IT employee (made by `run.py create-user`) verified through
    PATCH /api/system/users/{id}, as SystemWeb's users view does; the agency's token."""
    base = platform.base
    agency = await _post(session, base + "/api/system/auth/register", agency_body())
    n = uuid.uuid4().hex[:12]
    email, password = f"it-{n}@astro.example", f"it-{n}-Verifies-Agencies"
    await platform.create_user("it", email, f"IT {n}", password)
    async with session.post(
        base + "/api/system/auth/login", json={"email": email, "password": password}
    ) as resp:
        it = await resp.json()
        assert resp.status == 200, (resp.status, it)
    async with session.patch(
        f"{base}/api/system/users/{agency['user']['id']}",
        json={"verified": True},
        headers={"Authorization": f"Bearer {it['token']}"},
    ) as resp:
        assert resp.status == 200, (resp.status, await resp.text())
    return str(agency["token"])


async def open_agency_launch(
    session: aiohttp.ClientSession,
    platform: PlatformProcess,
    *,
    capacity: int,
    travelers: int,
    price_cents: int,
) -> tuple[str, str, list[Traveler]]:
    """`open_launch`, with the agency's token too (to read or change the launch)."""
    base = platform.base
    token = await verified_agency(session, platform)
    rocket = await _post(
        session,
        base + "/api/agency/rockets",
        {"name": "Storm Carrier", "capacity": capacity, "range": "mars"},
        token,
    )
    launch = await _post(
        session,
        base + "/api/agency/launches",
        {
            "rocket_id": rocket["rocket"]["id"],
            "mission": "Fault storm",
            "destination": "moon",
            "scheduled_at": future(60),
            "price_cents": price_cents,
            "min_passengers": 10,
        },
        token,
    )
    registered = await asyncio.gather(
        *(_post(session, base + "/api/system/auth/register", traveler_body()) for _ in range(travelers))
    )
    return launch["launch"]["id"], token, [Traveler(r["user"]["id"], r["token"]) for r in registered]
