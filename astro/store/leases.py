"""Launch leases and the node registry in PostgreSQL (migration 008).

Lease times are the database's clock (`now()`), never a node's: the nodes' clocks may disagree, the one
database decides when a lease has expired."""

from __future__ import annotations

from typing import Final

import asyncpg

from astro.domain.errors import NotFound
from astro.domain.leases import Fence, Lease, OwnedElsewhere, Owner
from astro.store.errors import unavailable_as

# SQLSTATE of astro_fence: the write carried an epoch that is no longer the launch's.
FENCED: Final = "AB002"
LEASE_COLUMNS: Final = "launch_id, epoch, node, holder, url"


def _lease(row: asyncpg.Record) -> Lease:
    return Lease(row["launch_id"], row["epoch"], row["node"], row["holder"], row["url"])


@unavailable_as("PostgreSQL")
class PgLeases:
    """The Leases port (actors/leases.py)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def acquire(self, launch_id: str, owner: Owner, seconds: float) -> Fence:
        """Take the launch's lease if it is free (expired) or this node's -- held by this run, or by an
        earlier run of the same node, which is gone (a node's name is unique) -- with the next epoch;
        OwnedElsewhere when another node holds it, NotFound when there is no such launch.

        A take waits for a write of the previous owner under way (its fence holds the lease row FOR SHARE),
        so what the new owner loads after it includes that write."""
        async with self._pool.acquire() as conn:
            try:
                epoch = await conn.fetchval(
                    """INSERT INTO launch_leases AS l (launch_id, epoch, node, holder, url, expires_at)
                       VALUES ($1, 1, $2, $3, $4, now() + make_interval(secs => $5))
                       ON CONFLICT (launch_id) DO UPDATE SET
                           epoch = l.epoch + 1, node = excluded.node, holder = excluded.holder,
                           url = excluded.url, acquired_at = now(), expires_at = excluded.expires_at
                       WHERE l.expires_at <= now() OR l.node = excluded.node
                       RETURNING epoch""",
                    launch_id,
                    owner.node,
                    owner.holder,
                    owner.url,
                    seconds,
                )
            except asyncpg.ForeignKeyViolationError:
                raise NotFound("no such launch") from None
            if epoch is not None:
                return Fence(launch_id, epoch)
            row = await conn.fetchrow(
                f"SELECT {LEASE_COLUMNS} FROM launch_leases WHERE launch_id = $1", launch_id
            )
        raise OwnedElsewhere(_lease(row))

    async def renew(self, owner: Owner, fences: list[Fence], seconds: float) -> set[str]:
        """Extend these leases of this holder; the launches whose lease is still theirs under the fence's
        epoch (a lease that expired is renewed too while nobody took it: its epoch still fences)."""
        if not fences:
            return set()
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """UPDATE launch_leases l SET expires_at = now() + make_interval(secs => $4)
                   FROM unnest($2::text[], $3::bigint[]) AS f(launch_id, epoch)
                   WHERE l.launch_id = f.launch_id AND l.epoch = f.epoch AND l.holder = $1
                   RETURNING l.launch_id""",
                owner.holder,
                [f.launch_id for f in fences],
                [f.epoch for f in fences],
                seconds,
            )
        return {r["launch_id"] for r in rows}

    async def release(self, owner: Owner, fence: Fence) -> None:
        """Give the lease up (passivation, shutdown): it expires now; the next take bumps the epoch."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE launch_leases SET expires_at = least(expires_at, now())
                   WHERE launch_id = $1 AND epoch = $2 AND holder = $3""",
                fence.launch_id,
                fence.epoch,
                owner.holder,
            )

    async def owner(self, launch_id: str) -> Lease | None:
        """The launch's unexpired lease, if any."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {LEASE_COLUMNS} FROM launch_leases WHERE launch_id = $1 AND expires_at > now()",
                launch_id,
            )
        return None if row is None else _lease(row)

    # -- the node registry -----------------------------------------------------------------------

    async def register(self, owner: Owner, pid: int) -> None:
        """This node is (re)started: its row names this run, its URL and pid."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO nodes (name, holder, url, pid) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, url = excluded.url,
                       pid = excluded.pid, started_at = now(), heartbeat_at = now(), stopped_at = NULL""",
                owner.node,
                owner.holder,
                owner.url,
                pid,
            )

    async def heartbeat(self, owner: Owner) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE nodes SET heartbeat_at = now() WHERE name = $1 AND holder = $2",
                owner.node,
                owner.holder,
            )

    async def stopped(self, owner: Owner) -> None:
        """A clean stop: every lease of this run given up, the node marked stopped."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """UPDATE launch_leases SET expires_at = now()
                   WHERE holder = $1 AND expires_at > now()""",
                owner.holder,
            )
            await conn.execute(
                "UPDATE nodes SET stopped_at = now() WHERE name = $1 AND holder = $2",
                owner.node,
                owner.holder,
            )
