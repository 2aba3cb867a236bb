"""The audit after a fault: the database, the sandbox gateway's ledger and the client's record must agree.

`Books.read` takes the stored state once everything settled; `audit` returns every disagreement as one
line (an empty list: the books balance), so a failing test names exactly what went wrong.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from tests.faults.platform import PlatformProcess
from tests.faults.storm import Storm

OPEN_STATES: Final = ("created", "authorized", "booked", "voiding")
FINAL_ANSWERS: Final = ("201", "402 payment_declined", "409 sold_out")
RECOVERY_WINDOW: Final = 60.0  # the issue's bound: every attempt final within 60 s of the platform running


@dataclass(frozen=True)
class Books:
    """Everything stored about the storm's launch and its money."""

    attempts: dict[str, asyncpg.Record]  # by attempt id
    bookings: dict[str, asyncpg.Record]  # by booking id
    payments: dict[str, asyncpg.Record]  # the sandbox ledger, by idempotency key (= attempt id)
    refunded_cents: int  # the sandbox's refunds, summed
    keys: dict[str, asyncpg.Record]  # idempotency records, by key
    seats_booked: int
    capacity: int

    @classmethod
    async def read(cls, dsn: str, launch_id: str) -> Books:
        conn = await asyncpg.connect(dsn)
        try:
            attempts = await conn.fetch("SELECT * FROM payment_attempts WHERE launch_id = $1", launch_id)
            bookings = await conn.fetch("SELECT * FROM bookings WHERE launch_id = $1", launch_id)
            payments = await conn.fetch("SELECT * FROM sandbox_payments")
            refunded = await conn.fetchval("SELECT COALESCE(sum(amount_cents), 0) FROM sandbox_refunds")
            keys = await conn.fetch("SELECT * FROM idempotency_keys")
            launch = await conn.fetchrow(
                "SELECT seats_booked, capacity FROM launches WHERE id = $1", launch_id
            )
        finally:
            await conn.close()
        return cls(
            attempts={r["id"]: r for r in attempts},
            bookings={r["id"]: r for r in bookings},
            payments={r["key"]: r for r in payments},
            refunded_cents=int(refunded),
            keys={r["key"]: r for r in keys},
            seats_booked=launch["seats_booked"],
            capacity=launch["capacity"],
        )

    def summary(self) -> dict[str, Any]:
        return {
            "attempts": dict(collections.Counter(r["state"] for r in self.attempts.values())),
            "gateway": dict(collections.Counter(r["state"] for r in self.payments.values())),
            "bookings": len(self.bookings),
            "seats_booked": self.seats_booked,
            "capacity": self.capacity,
            "captured_cents": self.captured_cents,
            "refunded_cents": self.refunded_cents,
        }

    @property
    def captured_cents(self) -> int:
        return sum(r["amount_cents"] for r in self.payments.values() if r["state"] == "captured")


async def open_attempts(dsn: str) -> dict[str, str]:
    """The payment attempts not final, with their states, by id."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, state FROM payment_attempts WHERE state = ANY($1::text[])", list(OPEN_STATES)
        )
    finally:
        await conn.close()
    return {r["id"]: r["state"] for r in rows}


async def wait_final(dsn: str, ids: set[str], *, until: float, pause: float = 0.25) -> float | None:
    """The monotonic time at which none of the attempts `ids` is open any more (polled: the database is
    the only witness), or None when some still are at `until`."""
    while True:
        if not ids & set(await open_attempts(dsn)):
            return time.monotonic()
        if time.monotonic() > until:
            return None
        await asyncio.sleep(pause)


def audit(
    books: Books, storm: Storm, *, recovered_at: float, finals: tuple[str, ...] = FINAL_ANSWERS
) -> list[str]:
    """Every disagreement between the stored books, the gateway's ledger and the client's record;
    `finals` are the definitive answers a key may end with."""
    problems: list[str] = []
    bad = problems.append

    # 1. every attempt final; the gateway holds nothing undecided
    for attempt in books.attempts.values():
        if attempt["state"] in OPEN_STATES:
            bad(f"attempt {attempt['id']} not final: {attempt['state']} ({attempt['error']})")
    for payment in books.payments.values():
        if payment["state"] == "authorized":
            bad(f"gateway payment {payment['ref']} (key {payment['key']}) still authorized: money held")

    # 2. every captured payment pays for a stored booking carrying its attempt's booking id
    for key, payment in books.payments.items():
        if payment["state"] != "captured":
            continue
        attempt = books.attempts.get(key)
        booking = books.bookings.get(attempt["booking_id"]) if attempt is not None else None
        if attempt is None or booking is None:
            bad(f"captured {payment['amount_cents']} cents ({payment['ref']}, key {key}) without a booking")
            continue
        if payment["booking_id"] != attempt["booking_id"]:
            bad(f"captured {payment['ref']} names {payment['booking_id']}, its attempt {booking['id']}")
        if attempt["state"] != "captured":
            bad(f"captured {payment['ref']} but its attempt {key} is {attempt['state']}")
        if payment["amount_cents"] != booking["total_cents"]:
            bad(f"captured {payment['amount_cents']} for booking {booking['id']} of {booking['total_cents']}")

    # 3. every booking was paid for: its attempt captured at the gateway
    by_booking = {a["booking_id"]: a for a in books.attempts.values()}
    for booking in books.bookings.values():
        attempt = by_booking.get(booking["id"])
        payment = books.payments.get(attempt["id"]) if attempt is not None else None
        if (
            attempt is None
            or attempt["state"] != "captured"
            or payment is None
            or payment["state"] != "captured"
        ):
            state = "no attempt" if attempt is None else attempt["state"]
            gateway = "nothing" if payment is None else payment["state"]
            bad(f"booking {booking['id']} ({booking['status']}): attempt {state}, gateway {gateway}")

    # 4. the money balances to the cent, and the seats to the seat
    booked_cents = sum(b["total_cents"] for b in books.bookings.values() if b["status"] == "confirmed")
    if books.captured_cents - books.refunded_cents != booked_cents:
        bad(
            f"captured {books.captured_cents} - refunded {books.refunded_cents} != "
            f"booked {booked_cents} cents"
        )
    # (a booking cancelled by its launch's abort keeps its seats: nobody else may take them)
    seats = sum(
        b["seats"] for b in books.bookings.values() if b["status"] == "confirmed" or not b["seats_released"]
    )
    if not books.seats_booked == seats <= books.capacity:
        bad(f"seats_booked {books.seats_booked}, bookings' seats {seats}, capacity {books.capacity}")

    problems += _keys_per_attempt(books)
    problems += _client_record(books, storm, recovered_at, finals)
    return problems


def _client_record(books: Books, storm: Storm, recovered_at: float, finals: tuple[str, ...]) -> list[str]:
    """The client's side: one booking per key at most, every booking learned by its client, every key
    answered for good, no 5xx but 503, no 'in progress' once the recovery window is over."""
    problems: list[str] = []
    bad = problems.append
    key_of_booking: dict[str, str] = {}
    for order in storm.orders:
        last = order.last
        if last is None or not last.definitive:
            bad(f"key {order.key}: no definitive answer ({last.label() if last else 'never sent'})")
        elif last.label() not in finals:
            bad(f"key {order.key}: final answer {last.label()} {last.detail}")
        booked = {a.booking_id for a in order.answers if a.booking_id is not None}
        if len(booked) > 1:
            bad(f"key {order.key} was answered with {len(booked)} bookings: {sorted(booked)}")
        for booking_id in booked:
            if booking_id in key_of_booking:
                bad(f"booking {booking_id} answered to keys {key_of_booking[booking_id]} and {order.key}")
            key_of_booking[booking_id] = order.key
            stored = books.bookings.get(booking_id)
            if stored is None:
                bad(f"key {order.key} was answered booking {booking_id}, which is not stored")
            elif stored["traveler_id"] != order.traveler.id:
                bad(f"booking {booking_id} of key {order.key} belongs to another traveler")
            elif any(a.total_cents != stored["total_cents"] for a in order.answers if a.booking_id):
                bad(f"booking {booking_id} of key {order.key} was answered with another total")
        for answer in order.answers:
            if answer.status is not None and answer.status >= 500 and answer.status != 503:
                bad(f"key {order.key}: {answer.label()} in the {answer.phase} ({answer.detail})")
            if answer.status == 503 and not answer.retry_after:
                bad(f"key {order.key}: 503 without Retry-After in the {answer.phase} ({answer.detail})")
        # judged by when it was asked: a request sent inside the window may be answered just after it
        late = [
            a.sent - recovered_at
            for a in order.answers
            if a.code == "idempotency_in_progress" and a.sent > recovered_at + RECOVERY_WINDOW
        ]
        if late:
            bad(
                f"key {order.key}: {len(late)} x 409 in progress, asked {late[0]:.1f} s and later after the "
                "platform ran again"
            )
        _check_key_record(books, order.key, last, bad)
    for booking_id in books.bookings.keys() - key_of_booking.keys():
        bad(f"booking {booking_id} was never answered to any client (committed, not learnable)")
    return problems


def _check_key_record(books: Books, key: str, last: Any, bad: Any) -> None:
    """The stored idempotency record of `key` is done, with the answer the client got last, and tied to
    the attempt that paid for the booking it answered."""
    record = books.keys.get(key)
    if record is None:
        bad(f"key {key}: no idempotency record")
        return
    if record["status"] != "done":
        bad(f"key {key}: idempotency record {record['status']} (attempt {record['attempt_id']})")
        return
    body = json.loads(bytes(record["response_body"])) if record["response_body"] else {}
    if body.get("error", {}).get("code") == "idempotency_in_progress":
        bad(f"key {key}: stored '409 in progress' as its answer for good (replayed to every retry for 24 h)")
    if last is not None and last.status is not None and record["response_code"] != last.status:
        bad(f"key {key}: stored answer {record['response_code']}, the client's last {last.status}")
    if last is not None and last.booking_id is not None:
        if body.get("booking", {}).get("id") != last.booking_id:
            bad(f"key {key}: stored answer {body} differs from the answered booking {last.booking_id}")
        attempt = books.attempts.get(record["attempt_id"] or "")
        if attempt is None or attempt["booking_id"] != last.booking_id:
            bad(f"key {key}: tied to attempt {record['attempt_id']}, not to the one of {last.booking_id}")


def _keys_per_attempt(books: Books) -> list[str]:
    """An attempt is tied to one key at most."""
    tied = collections.Counter(r["attempt_id"] for r in books.keys.values() if r["attempt_id"] is not None)
    return [f"attempt {attempt_id} is tied to {n} keys" for attempt_id, n in tied.items() if n > 1]


def explain(problems: list[str], platform: PlatformProcess, report: dict[str, Any]) -> str:
    """The audit's findings, the numbers, the platform's 500s and its warnings and errors."""
    errors = platform.errors()
    lines = platform.lines('"level": "error"', '"level": "warning"', "Traceback")
    return "\n".join(
        [
            f"{len(problems)} problem(s):",
            *problems[:60],
            f"report: {json.dumps(report)}",
            f"unhandled errors ({len(errors)}), logs in {platform.log_dir}:",
            *errors[:10],
            f"warnings and errors logged ({len(lines)}; the last 60):",
            *lines[-60:],
        ]
    )
