"""The platform's node processes as IT sees them (`nodes`, `launch_leases`; driver errors: Unavailable)."""

from __future__ import annotations

from typing import Any

import asyncpg

from astro.store.errors import unavailable_as

Row = dict[str, Any]


@unavailable_as("PostgreSQL")
class PgNodes:
    """Each node that ever ran, with whether it is alive and how many launches its current run owns."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def nodes(self, alive_within: float) -> list[Row]:
        """Every node by name; alive = not stopped and a heartbeat within `alive_within` seconds (by the
        database's clock, the one the heartbeats and the leases are written with)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT n.name, n.url, n.pid, n.started_at, n.heartbeat_at, n.stopped_at,
                          n.stopped_at IS NULL AND n.heartbeat_at > now() - make_interval(secs => $1)
                              AS alive,
                          (SELECT count(*) FROM launch_leases l
                            WHERE l.holder = n.holder AND l.expires_at > now()) AS launches_owned
                   FROM nodes n ORDER BY n.name""",
                float(alive_within),
            )
        return [dict(r.items()) for r in rows]
