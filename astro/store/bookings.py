"""Bookings in PostgreSQL: the launch actor's writes (group commit, cancel, status) and the read models."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Final

import asyncpg

from astro import origin
from astro.domain.bookings import BookingRecord, NewBooking, RefundOwed
from astro.domain.events import BookingCancelled, DomainEvent, InvoiceDue
from astro.domain.ids import new_id
from astro.domain.launch import Launch
from astro.domain.launches import REFUND_ALL, Status
from astro.domain.leases import LEASE, Fence, Fenced
from astro.domain.payments import PaymentsReleased
from astro.domain.waitlist import Waitlist, WaitlistChange
from astro.services.announcements import Notice, ToAgency, ToTraveler, notices
from astro.store.booking_reads import PgBookingReads
from astro.store.errors import unavailable_as
from astro.store.invoices import issue_invoice
from astro.store.launches import fetch_launch
from astro.store.leases import FENCED
from astro.store.notices import AGENCIES, TRAVELERS, write_notices
from astro.store.postgres import write_tx
from astro.store.waitlist import apply_change, load_entries

Row = dict[str, Any]
# The tables whose inserts commit_bookings writes to the change log itself (migration 006).
RECORDED: Final = ("bookings", "passengers", "traveler_payments")
# SQLSTATE of astro_require in COMMIT_BOOKINGS: an attempt of the batch is no longer authorized.
RELEASED: Final = "AB001"
# The fence, first in every write of a launch: refused (AB002) unless the actor's epoch is the current one.
FENCE_CHECK: Final = "SELECT astro_fence($1, $2)"
# A group commit in one statement, its batch given as one JSON document ($1): bookings, passengers and
# charges with a change row each (the booking's origin), the launch's seat count (added to the stored one,
# so the CHECK guards it) and status (compare-and-set on the one the actor read; its trigger records that
# change), and the e-mails to each traveler and the agency, addressed from their rows. The fence refuses the
# whole statement when the actor's epoch is stale.
COMMIT_BOOKINGS: Final = f"""
WITH doc AS (SELECT $1::jsonb AS d),
x AS (
    SELECT * FROM jsonb_to_recordset((SELECT d -> 'bookings' FROM doc)) AS x(
        id text, traveler_id text, seats integer, price_cents bigint, total_cents bigint,
        created_at timestamptz, origin jsonb, payment_id text, charge_ref text, passengers jsonb,
        attempt_id text)),
fence AS (SELECT astro_fence((SELECT d ->> 'launch_id' FROM doc), (SELECT (d ->> 'epoch')::bigint FROM doc))
    AS ok),
a AS (
    UPDATE payment_attempts SET state = 'booked', updated_at = now()
    WHERE id IN (SELECT attempt_id FROM x) AND state = 'authorized'
    RETURNING id),
guard AS (
    SELECT astro_require((SELECT count(*) FROM a) = (SELECT count(*) FROM x), 'attempts_not_authorized')
        AS ok),
b AS (
    INSERT INTO bookings (id, launch_id, traveler_id, seats, price_cents, total_cents, created_at)
    SELECT x.id, (SELECT d ->> 'launch_id' FROM doc), x.traveler_id, x.seats, x.price_cents, x.total_cents,
           x.created_at
    FROM x
    RETURNING *),
bc AS (
    INSERT INTO changes (entity, entity_id, op, fields, origin)
    SELECT 'bookings', b.id, 'insert', to_jsonb(b), x.origin FROM b JOIN x ON x.id = b.id),
p AS (
    INSERT INTO passengers (booking_id, position, name, birth_date)
    SELECT x.id, (e.n - 1)::integer, e.p ->> 'name', (e.p ->> 'birth_date')::date
    FROM x, jsonb_array_elements(x.passengers) WITH ORDINALITY AS e(p, n)
    RETURNING *),
pc AS (
    INSERT INTO changes (entity, entity_id, op, fields, origin)
    SELECT 'passengers', p.booking_id, 'insert', to_jsonb(p), x.origin FROM p JOIN x ON x.id = p.booking_id),
t AS (
    INSERT INTO traveler_payments (id, booking_id, kind, amount_cents, status, gateway_ref)
    SELECT x.payment_id, x.id, 'charge', x.total_cents, 'done', x.charge_ref FROM x
    RETURNING *),
tc AS (
    INSERT INTO changes (entity, entity_id, op, fields, origin)
    SELECT 'traveler_payments', t.id, 'insert', to_jsonb(t), x.origin FROM t JOIN x ON x.id = t.booking_id),
l AS (
    UPDATE launches SET seats_booked = seats_booked + (SELECT sum(seats) FROM x),
        status = (SELECT d ->> 'status' FROM doc),
        confirmed_at = (SELECT (d ->> 'confirmed_at')::timestamptz FROM doc), updated_at = now()
    WHERE id = (SELECT d ->> 'launch_id' FROM doc) AND status = (SELECT d ->> 'previous_status' FROM doc)
    RETURNING id),
m AS (
    SELECT * FROM jsonb_to_recordset((SELECT d -> 'mails' FROM doc))
        AS m(id text, event text, recipient_id text, role text, data text)),
r AS (
    {TRAVELERS} WHERE id IN (SELECT recipient_id FROM m WHERE role = 'traveler')
    UNION ALL
    {AGENCIES} WHERE id IN (SELECT recipient_id FROM m WHERE role = 'agency')),
n AS (
    INSERT INTO notifications (id, event, recipient_id, recipient_role, recipient_email, data)
    SELECT m.id, m.event, m.recipient_id, m.role, r.email, m.data::jsonb || jsonb_build_object('name', r.name)
    FROM m JOIN r ON r.id = m.recipient_id
    ORDER BY m.id)
SELECT (SELECT ok FROM fence) AND (SELECT ok FROM guard), (SELECT count(*) FROM l)
"""
RECORD_COLUMNS: Final = """b.id, b.launch_id, b.traveler_id, b.seats, b.total_cents, b.status, b.created_at,
    COALESCE((SELECT p.gateway_ref FROM traveler_payments p WHERE p.booking_id = b.id AND p.kind = 'charge'),
             '') AS charge_ref"""


def _record(row: asyncpg.Record) -> BookingRecord:
    return BookingRecord(
        row["id"],
        row["launch_id"],
        row["traveler_id"],
        row["seats"],
        row["total_cents"],
        row["status"],
        row["created_at"],
        row["charge_ref"],
    )


def _share_strings(launch: Launch) -> None:
    """A loaded launch stays in its actor's memory while the actor lives (100,000 of them on a node are
    common): what many launches have in common -- their agency's and rocket's ids and names, the
    destination -- is one string object for all of them rather than a copy per launch."""
    launch.agency_id, launch.agency_name = sys.intern(launch.agency_id), sys.intern(launch.agency_name)
    launch.rocket_id, launch.rocket_name = sys.intern(launch.rocket_id), sys.intern(launch.rocket_name)
    launch.destination = sys.intern(launch.destination)


def _single_recipient(notice: Notice) -> tuple[str, str] | None:
    """(recipient id, role) of a notice addressed to one traveler or agency."""
    if isinstance(notice.to, ToTraveler):
        return notice.to.traveler_id, "traveler"
    if isinstance(notice.to, ToAgency):
        return notice.to.agency_id, "agency"
    return None


@unavailable_as("PostgreSQL")
class PgLedger(PgBookingReads):
    """The LaunchLedger and BookingLedger ports in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, *, stall_limit: float = LEASE) -> None:
        self._pool = pool
        # A launch's write holds its lease row FOR SHARE: an owner paused mid-transaction must not keep a
        # takeover waiting past a lease's length, so the server ends such a session after it.
        self._stall_limit = stall_limit

    # -- the launch actor's reads and writes -----------------------------------------------------

    async def load(self, launch_id: str) -> Launch:
        """The launch with its waiting list (entries waiting and offered, in joining order)."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            launch = await fetch_launch(conn, launch_id)
            launch.waitlist = Waitlist(await load_entries(conn, launch_id))
            launch.seats_offered_read = 0  # the loaded list's offers are counted instead
        _share_strings(launch)
        return launch

    async def travelers_on(self, launch_id: str) -> list[str]:
        """Travelers with an active booking on the launch."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT DISTINCT traveler_id FROM bookings WHERE launch_id = $1 AND status = 'confirmed'",
                launch_id,
            )
        return [r["traveler_id"] for r in rows]

    async def active_bookings(self, launch_id: str) -> list[BookingRecord]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {RECORD_COLUMNS} FROM bookings b
                    WHERE b.launch_id = $1 AND b.status = 'confirmed' ORDER BY b.id""",
                launch_id,
            )
        return [_record(r) for r in rows]

    async def booking(self, booking_id: str) -> BookingRecord | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {RECORD_COLUMNS} FROM bookings b WHERE b.id = $1", booking_id)
        return _record(row) if row is not None else None

    async def commit_bookings(
        self,
        fence: Fence,
        launch: Launch,
        previous: Status,
        bookings: list[NewBooking],
        events: list[DomainEvent],
        waitlist: WaitlistChange | None = None,
    ) -> None:
        """One transaction: a batch's bookings, their passengers, charges and notifications, the launch's
        seat count and status.

        All of it in one statement, whatever the batch's size (BEGIN, the origin, the statement, COMMIT:
        four round trips); each row's change is recorded by the same statement, with the origin of the
        request that made its booking, and the launch's row change by its trigger. Notices to one
        traveler or agency ride in the statement; any other (the launch confirmed) follow it."""
        fallback = origin.current()
        mails: list[dict[str, Any]] = []
        others: list[Notice] = []
        encoded: dict[int, str] = {}  # a booking's two e-mails share their data: encoded once
        for notice in notices(events):
            single = _single_recipient(notice)
            if single is None:
                others.append(notice)
                continue
            data = encoded.get(id(notice.data))
            if data is None:
                data = encoded[id(notice.data)] = json.dumps(notice.data, default=str)
            recipient_id, role = single
            mails.append(
                {
                    "id": new_id("ntf"),
                    "event": notice.event,
                    "recipient_id": recipient_id,
                    "role": role,
                    "data": data,
                }
            )
        doc = {
            "launch_id": launch.id,
            "epoch": fence.epoch,
            "previous_status": previous.value,
            "status": launch.status.value,
            "confirmed_at": launch.confirmed_at.isoformat() if launch.confirmed_at else None,
            "bookings": [
                {
                    "id": b.id,
                    "traveler_id": b.traveler_id,
                    "seats": b.seats,
                    "price_cents": b.price_cents,
                    "total_cents": b.total_cents,
                    "created_at": b.created_at.isoformat(),
                    "origin": (b.origin or fallback).as_dict(),
                    "payment_id": new_id("pay"),
                    "charge_ref": b.charge_ref,
                    "attempt_id": b.attempt_id,
                    "passengers": [
                        {"name": p.name, "birth_date": p.birth_date.isoformat()} for p in b.passengers
                    ],
                }
                for b in bookings
            ],
            "mails": mails,
        }
        try:
            async with write_tx(self._pool, recorded=RECORDED, stall_limit=self._stall_limit) as conn:
                _, updated = await conn.fetchrow(COMMIT_BOOKINGS, doc)
                if updated != 1:
                    raise StatusMoved(launch.id, previous)
                if waitlist:  # the offers these bookings used leave the list with them
                    await apply_change(conn, launch.id, waitlist)
                await write_notices(conn, others)
        except asyncpg.PostgresError as exc:
            state = getattr(exc, "sqlstate", None)
            if state == FENCED:
                raise Fenced(launch.id) from None
            if state != RELEASED:
                raise
            raise PaymentsReleased(await self._released([b.attempt_id for b in bookings])) from None

    async def _released(self, attempt_ids: list[str]) -> frozenset[str]:
        """Which of these attempts are no longer authorized."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id FROM payment_attempts WHERE id = ANY($1::text[]) AND state <> 'authorized'",
                attempt_ids,
            )
        return frozenset(r["id"] for r in rows)

    async def commit_cancel(
        self,
        fence: Fence,
        launch: Launch,
        event: BookingCancelled,
        waitlist: WaitlistChange | None = None,
        offers: list[DomainEvent] | None = None,
    ) -> RefundOwed | None:
        """The booking cancelled, its seats given back to the launch, the e-mails and the refund owed, in one
        transaction under the actor's fence -- with the offers of the freed seats to the waiting list."""
        async with _fenced(self._pool, fence, self._stall_limit) as conn:
            if waitlist:
                await apply_change(conn, launch.id, waitlist)
                await write_notices(conn, notices(offers or []))
            owed = await _cancel(conn, event)
            await conn.execute(
                "UPDATE launches SET seats_booked = seats_booked - $2, updated_at = now() WHERE id = $1",
                launch.id,
                event.seats if event.seats_released else 0,
            )
            await write_notices(conn, notices([event]))
            return owed

    async def commit_status(
        self,
        fence: Fence,
        launch: Launch,
        previous: Status,
        events: list[DomainEvent],
        waitlist: WaitlistChange | None = None,
    ) -> list[RefundOwed]:
        """The new status (compare-and-set on `previous`) and its e-mails; the bookings an aborted or failed
        launch cancels with their refunds owed; the invoice of a launch that ended -- in one transaction
        under the actor's fence."""
        async with _fenced(self._pool, fence, self._stall_limit) as conn:
            updated = await conn.fetchval(
                """WITH l AS (
                       UPDATE launches SET status = $2, scheduled_at = $3, status_reason = $4,
                           last_delayed_at = $5, confirmed_at = $6, updated_at = now()
                       WHERE id = $1 AND status = $7 RETURNING 1)
                   SELECT count(*) FROM l""",
                launch.id,
                launch.status.value,
                launch.scheduled_at,
                launch.status_reason,
                launch.last_delayed_at,
                launch.confirmed_at,
                previous.value,
            )
            if updated != 1:
                raise StatusMoved(launch.id, previous)
            refunds: list[RefundOwed] = []
            for event in events:
                if isinstance(event, BookingCancelled):
                    owed = await _cancel(conn, event)
                    if owed is not None:
                        refunds.append(owed)
                elif isinstance(event, InvoiceDue):
                    await issue_invoice(conn, event)
            if waitlist:  # an ended launch closes its list
                await apply_change(conn, launch.id, waitlist)
            await write_notices(conn, notices(events))
            return refunds

    async def commit_waitlist(
        self, fence: Fence, launch: Launch, change: WaitlistChange, events: list[DomainEvent]
    ) -> None:
        """A move of the launch's waiting list (a traveler joins or leaves, offers expire, freed seats are
        offered) and its e-mails, in one transaction under the actor's fence."""
        async with _fenced(self._pool, fence, self._stall_limit) as conn:
            await apply_change(conn, launch.id, change)
            await write_notices(conn, notices(events))

    # -- the desk's reads and settling -----------------------------------------------------------

    async def booking_exists(self, booking_id: str) -> bool:
        async with self._pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT 1 FROM bookings WHERE id = $1", booking_id))

    async def finish_refund(self, payment_id: str, gateway_ref: str | None, error: str | None) -> None:
        async with write_tx(self._pool) as conn:
            await conn.execute(
                """UPDATE traveler_payments SET status = $2, gateway_ref = $3, error = $4, updated_at = now()
                   WHERE id = $1""",
                payment_id,
                "done" if gateway_ref else "pending",
                gateway_ref,
                error,
            )

    async def pending_refunds(self, older_than: timedelta) -> list[RefundOwed]:
        """Refunds owed and not paid yet, committed more than `older_than` ago, oldest first (100 at most)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT r.id, r.booking_id, b.traveler_id, r.amount_cents, c.gateway_ref AS charge_ref
                   FROM traveler_payments r JOIN bookings b ON b.id = r.booking_id
                   JOIN traveler_payments c ON c.booking_id = r.booking_id AND c.kind = 'charge'
                   WHERE r.kind = 'refund' AND r.status = 'pending' AND r.created_at < now() - $1::interval
                   ORDER BY r.created_at LIMIT 100""",
                older_than,
            )
        return [
            RefundOwed(r["id"], r["booking_id"], r["traveler_id"], r["amount_cents"], r["charge_ref"])
            for r in rows
        ]

    async def vip_candidates(self, launch_id: str, among: list[str] | None = None) -> list[str]:
        """Travelers on this launch (or just `among` them), not VIP yet nor set by hand, with active
        bookings on at least two launches that were confirmed. (`travelers.vip` is set last when promoting,
        so a promotion that stopped half-way is found again.)"""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT t.id AS traveler_id FROM travelers t
                   WHERE NOT t.vip AND {BY_RULE}
                     AND t.id IN (
                         SELECT traveler_id FROM bookings WHERE launch_id = $1 AND status = 'confirmed')
                     AND ($2::text[] IS NULL OR t.id = ANY($2::text[]))
                     AND {QUALIFIES.format(statuses="$3")} = 2
                   ORDER BY t.id""",
                launch_id,
                among,
                sorted(REFUND_ALL),
            )
        return [r["traveler_id"] for r in rows]

    async def vip_lost(self, traveler_ids: list[str]) -> list[str]:
        """Of these travelers, the VIPs by the rule (not set by hand) who no longer hold active bookings on
        two confirmed launches: a booking was cancelled or refunded, or a launch aborted or failed."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT t.id AS traveler_id FROM travelers t
                   WHERE t.vip AND {BY_RULE} AND t.id = ANY($1::text[])
                     AND {QUALIFIES.format(statuses="$2")} < 2
                   ORDER BY t.id""",
                traveler_ids,
                sorted(REFUND_ALL),
            )
        return [r["traveler_id"] for r in rows]


# The VIP rule (finding 5 of issue 14): a traveler's flag set by the rule, not by IT's hand ...
BY_RULE: Final = "(t.vip_set_by IS NULL OR t.vip_set_by = 'auto')"
# ... and how many (up to 2) launches the traveler holds a qualifying booking on: the booking confirmed
# and never refunded, the launch confirmed and not aborted or failed. The launch statuses are the last
# parameter ($3 in vip_candidates, $2 in vip_lost), filled in as `statuses`.
QUALIFIES: Final = """(SELECT count(*) FROM (
                             SELECT DISTINCT b.launch_id FROM bookings b JOIN launches l ON l.id = b.launch_id
                             WHERE b.traveler_id = t.id AND b.status = 'confirmed'
                               AND l.confirmed_at IS NOT NULL AND l.status <> ALL({statuses}::text[])
                               AND NOT EXISTS (SELECT 1 FROM traveler_payments p
                                               WHERE p.booking_id = b.id AND p.kind = 'refund')
                             LIMIT 2) two)"""


class StatusMoved(Exception):
    """The launch's stored status is not the one its actor changed from: the write is refused (a second
    line behind the fence; the actor crashes and reloads)."""

    def __init__(self, launch_id: str, previous: Status) -> None:
        super().__init__(f"launch {launch_id}: the stored status is no longer {previous.value}")


class BookingMoved(Exception):
    """The booking to cancel is no longer active in the database: the write is refused."""

    def __init__(self, booking_id: str) -> None:
        super().__init__(f"booking {booking_id} is no longer confirmed in the database")


@contextlib.asynccontextmanager
async def _fenced(pool: asyncpg.Pool, fence: Fence, stall_limit: float) -> AsyncIterator[asyncpg.Connection]:
    """A write transaction of the launch, refused as Fenced when its epoch is not the current one."""
    try:
        async with write_tx(pool, stall_limit=stall_limit) as conn:
            await conn.fetchval(FENCE_CHECK, fence.launch_id, fence.epoch)
            yield conn
    except asyncpg.PostgresError as exc:
        if getattr(exc, "sqlstate", None) == FENCED:
            raise Fenced(fence.launch_id) from None
        raise


async def _cancel(conn: asyncpg.Connection, event: BookingCancelled) -> RefundOwed | None:
    """The booking cancelled as the event says, with a pending refund row when it refunds something."""
    charge_ref = await conn.fetchval(
        """UPDATE bookings b SET status = 'cancelled', cancel_reason = $2, refund_pct = $3,
               refund_cents = $4, seats_released = $5, cancelled_at = $6
           WHERE b.id = $1 AND b.status = 'confirmed'
           RETURNING COALESCE((SELECT gateway_ref FROM traveler_payments p
                               WHERE p.booking_id = b.id AND p.kind = 'charge'), '')""",
        event.booking_id,
        event.reason,
        event.refund_pct,
        event.refund_cents,
        event.seats_released,
        event.cancelled_at,
    )
    if charge_ref is None:
        raise BookingMoved(event.booking_id)
    if event.refund_cents <= 0:
        return None
    payment_id = new_id("pay")
    await conn.execute(
        """INSERT INTO traveler_payments (id, booking_id, kind, amount_cents, status)
           VALUES ($1, $2, 'refund', $3, 'pending')""",
        payment_id,
        event.booking_id,
        event.refund_cents,
    )
    return RefundOwed(payment_id, event.booking_id, event.traveler_id, event.refund_cents, charge_ref or "")
