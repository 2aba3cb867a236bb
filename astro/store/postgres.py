"""PostgreSQL (OperationsDB): the pool, migrations under an advisory lock, error translation."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import asyncpg
import structlog

from astro import origin
from astro.domain.errors import Conflict

log = structlog.get_logger("astro.store.postgres")

MIGRATIONS_DIR: Final = Path(__file__).resolve().parents[2] / "migrations"
# Any fixed 64-bit number: every node takes this lock before it migrates.
MIGRATION_LOCK_ID: Final = 0x4153_5452_4F5F_4D47
_FILE = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")

# Unique constraints whose violation is a client conflict, and the code it answers.
UNIQUE_CONFLICTS: Final = {
    "travelers_email_key": ("email_taken", "that email is already registered"),
    "agencies_email_key": ("email_taken", "that email is already registered"),
    "agencies_tax_id_key": ("tax_id_taken", "an agency with that tax id is already registered"),
}


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pool connection that goes back to the pool without a reset round trip.

    asyncpg resets a released connection with `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`: one more round trip per use, and a tenth of the platform's CPU under booking load. We set
    no session state (write_tx's settings are transaction-local), hold no cursor or LISTEN on a pool
    connection, and release the migration lock ourselves; asyncpg still rolls back a transaction left
    open before the connection is reused."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A connection pool; every connection answers in UTC."""
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings={"timezone": "UTC"},
        init=_init_connection,
        connection_class=PooledConnection,
    )


async def _init_connection(conn: asyncpg.Connection) -> None:
    """json and jsonb arrive as Python values, not strings."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=_dumps, decoder=json.loads, schema="pg_catalog")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, str, Path]]:
    """The numbered SQL files, in order."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise RuntimeError(f"migration file {path.name} must be named NNN_lower_snake.sql")
        found.append((int(match.group(1)), path.stem, path))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError("two migration files share a number")
    return found


async def migrate(pool: asyncpg.Pool, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet applied, each once and in its own transaction; return their names."""
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, name, path in migration_files(directory):
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                    )
                log.info("migration_applied", migration=name)
                applied_now.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied_now


@asynccontextmanager
async def write_tx(
    pool: asyncpg.Pool, recorded: Sequence[str] = (), *, stall_limit: float | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction that states its origin first, so the change log records who changed what.

    `recorded` names tables whose inserts the caller writes to the change log itself (with origins
    of their own, e.g. the bookings of one group commit); the trigger skips those. `stall_limit`: the
    server ends the session when the client leaves the transaction idle this many seconds (a process
    paused or cut off mid-transaction), so the locks it holds do not outlive it."""
    stall = None if stall_limit is None else str(max(1, round(stall_limit * 1000)))
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('astro.origin', $1, true), set_config('astro.recorded', $2, true), "
            "set_config('idle_in_transaction_session_timeout', "
            "COALESCE($3::text, current_setting('idle_in_transaction_session_timeout')), true)",
            json.dumps(origin.current().as_dict()),
            ",".join(recorded),
            stall,
        )
        yield conn


def translate_unique(exc: asyncpg.UniqueViolationError) -> Exception:
    """A unique violation as the domain conflict it means, or the original error."""
    name = getattr(exc, "constraint_name", None) or ""
    if name in UNIQUE_CONFLICTS:
        code, message = UNIQUE_CONFLICTS[name]
        return Conflict(message, code=code)
    return exc  # type: ignore[no-any-return]


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Turn asyncpg's constraint errors into domain errors inside the adapter."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise translate_unique(exc) from exc


def record_to_dict(record: Any) -> dict[str, Any]:
    return dict(record.items()) if record is not None else {}
