"""The sandbox payment gateway (DESIGN 8.6), with a durable ledger in PostgreSQL so recovery can ask it.

Card tokens: `tok_ok` is authorized, `tok_declined` is declined, `tok_slow` is authorized after 2 s,
`tok_error` fails with a gateway error (nothing held). Every call is idempotent by its key, as a real
gateway's is: the ledger's unique keys make a repeated call return what the first one did."""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Mapping
from typing import Final

import asyncpg

from astro.domain.errors import GatewayError, PaymentDeclined, UnknownCard
from astro.domain.payments import GatewayPayment, GatewayState
from astro.services.batching import GroupWriter
from astro.store.errors import unavailable_as

SLOW_SECONDS: Final = 2.0
SANDBOX_TOKENS: Final = ("tok_ok", "tok_declined", "tok_slow", "tok_error")
COLUMNS: Final = "ref, key, state, amount_cents, refunded_cents, booking_id"


def _payment(row: asyncpg.Record) -> GatewayPayment:
    return GatewayPayment(
        row["ref"],
        row["key"],
        GatewayState(row["state"]),
        row["amount_cents"],
        row["refunded_cents"],
        row["booking_id"],
    )


@unavailable_as("PostgreSQL")
class SandboxGateway:
    """Implements astro.services.payments.PaymentGateway; its ledger is the tables sandbox_*.

    Authorizations and captures that arrive together are written in one statement each (as a real
    gateway serves many merchants at once, the sandbox's ledger costs the platform no transaction per
    booking of its own); each call still answers only for its own payment."""

    def __init__(self, pool: asyncpg.Pool, slow_seconds: float = SLOW_SECONDS) -> None:
        self._pool = pool
        self.slow_seconds = slow_seconds
        self.charging: set[str] = set()  # keys of authorizations under way (tests wait on it)
        self._authorizing = GroupWriter(self._record_many)
        self._moving = {
            target: GroupWriter(functools.partial(self._move_many, target))
            for target in (GatewayState.CAPTURED, GatewayState.VOIDED)
        }

    async def authorize(
        self, *, key: str, amount_cents: int, card_token: str, metadata: Mapping[str, str]
    ) -> str:
        if card_token not in SANDBOX_TOKENS:
            raise UnknownCard(
                "unknown card token; the sandbox takes tok_ok, tok_declined, tok_slow or tok_error",
                {"fields": {"card_token": "unknown"}},
            )
        if card_token == "tok_error":
            raise GatewayError("the payment gateway failed; nothing was charged; try again", retry_after=2)
        if card_token == "tok_slow":
            self.charging.add(key)
            try:
                await asyncio.sleep(self.slow_seconds)
            finally:
                self.charging.discard(key)
        state = GatewayState.DECLINED if card_token == "tok_declined" else GatewayState.AUTHORIZED
        payment = await self._authorizing.submit((key, amount_cents, state, metadata.get("booking_id")))
        if payment.state is GatewayState.DECLINED:
            raise PaymentDeclined("the card was declined; nothing was charged", {"reference": key})
        return payment.ref

    async def _record_many(
        self, asked: list[tuple[str, int, GatewayState, str | None]]
    ) -> list[GatewayPayment]:
        """Each key's payment, made unless it exists (a repeated call gets the first one's)."""
        first = {key: (key, amount, state, booking) for key, amount, state, booking in reversed(asked)}
        rows = list(first.values())  # a key twice in one batch is made once
        async with self._pool.acquire() as conn:
            made = await conn.fetch(
                f"""INSERT INTO sandbox_payments (ref, key, amount_cents, state, booking_id)
                    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])
                    ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING {COLUMNS}""",
                ["pi_" + secrets.token_hex(12) for _ in rows],
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2].value for r in rows],
                [r[3] for r in rows],
            )
        by_key = {row["key"]: _payment(row) for row in made}
        return [by_key[key] for key, *_ in asked]

    async def capture(self, ref: str, *, key: str) -> None:
        await self._move(ref, GatewayState.CAPTURED, done=(GatewayState.CAPTURED,))

    async def void(self, ref: str, *, key: str) -> None:
        await self._move(ref, GatewayState.VOIDED, done=(GatewayState.VOIDED, GatewayState.DECLINED))

    async def refund(self, ref: str, amount_cents: int, *, key: str) -> str:
        async with self._pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval("SELECT ref FROM sandbox_refunds WHERE key = $1", key)
            if done is not None:
                return str(done)
            moved = await conn.fetchval(
                """UPDATE sandbox_payments SET refunded_cents = refunded_cents + $2, updated_at = now()
                   WHERE ref = $1 AND state = 'captured' AND refunded_cents + $2 <= amount_cents
                   RETURNING ref""",
                ref,
                amount_cents,
            )
            if moved is None:
                raise GatewayError(f"the gateway cannot refund {amount_cents} cents of {ref}")
            refund_ref = "re_" + secrets.token_hex(12)
            await conn.execute(
                "INSERT INTO sandbox_refunds (ref, key, payment_ref, amount_cents) VALUES ($1, $2, $3, $4)",
                refund_ref,
                key,
                ref,
                amount_cents,
            )
            return refund_ref

    async def find(self, key: str) -> GatewayPayment | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {COLUMNS} FROM sandbox_payments WHERE key = $1", key)
        return _payment(row) if row is not None else None

    async def ledger(self) -> list[GatewayPayment]:
        """Every payment the sandbox holds, oldest first (tests, reconciliation)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT {COLUMNS} FROM sandbox_payments ORDER BY created_at, ref")
        return [_payment(r) for r in rows]

    async def _move(self, ref: str, target: GatewayState, *, done: tuple[GatewayState, ...]) -> None:
        """An authorized payment moved to `target`; one already in a `done` state stays as it is (the call
        was repeated); anything else is a GatewayError. Moves to one target that arrive together are
        one statement."""
        state = await self._moving[target].submit(ref)
        if state is None or GatewayState(state) not in (target, *done):
            raise GatewayError(f"the gateway cannot move {ref} ({state or 'unknown'}) to {target.value}")

    async def _move_many(self, target: GatewayState, refs: list[str]) -> list[str | None]:
        """Each authorized payment moved to `target`; the state each is in after (None: no such payment)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """WITH x AS (SELECT DISTINCT unnest($1::text[]) AS ref),
                   moved AS (
                       UPDATE sandbox_payments p SET state = $2, updated_at = now()
                       FROM x WHERE p.ref = x.ref AND p.state = 'authorized' RETURNING p.ref, p.state)
                   SELECT x.ref, coalesce(m.state, p.state) AS state
                   FROM x LEFT JOIN moved m ON m.ref = x.ref LEFT JOIN sandbox_payments p ON p.ref = x.ref""",
                refs,
                target.value,
            )
        states = {row["ref"]: row["state"] for row in rows}
        return [states.get(ref) for ref in refs]
