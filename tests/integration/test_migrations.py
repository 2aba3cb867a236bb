"""Migrations apply once, in order, under an advisory lock; MongoDB indexes are idempotent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from astro.store import mongo, postgres
from tests.conftest import Stores, _with_path


@pytest.fixture
async def scratch_dsn(stores: Stores) -> Any:
    conn = await asyncpg.connect(stores.pg_dsn)
    try:
        await conn.execute("DROP DATABASE IF EXISTS astro_scratch WITH (FORCE)")
        await conn.execute("CREATE DATABASE astro_scratch")
    finally:
        await conn.close()
    yield _with_path(stores.pg_dsn, "/astro_scratch")
    conn = await asyncpg.connect(stores.pg_dsn)
    try:
        await conn.execute("DROP DATABASE IF EXISTS astro_scratch WITH (FORCE)")
    finally:
        await conn.close()


def write_migrations(directory: Path, count: int) -> None:
    for i in range(1, count + 1):
        (directory / f"{i:03d}_step_{i}.sql").write_text(f"CREATE TABLE step_{i} (id int);")


async def test_two_nodes_migrating_together_apply_each_file_once(scratch_dsn: str, tmp_path: Path) -> None:
    write_migrations(tmp_path, 5)
    pools = [await postgres.create_pool(scratch_dsn, min_size=1, max_size=1) for _ in range(4)]
    try:
        results = await asyncio.gather(*(postgres.migrate(p, tmp_path) for p in pools))
        assert sorted(n for r in results for n in r) == [f"{i:03d}_step_{i}" for i in range(1, 6)]
        rows = await pools[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [1, 2, 3, 4, 5]
        write_migrations(tmp_path, 6)
        assert await postgres.migrate(pools[0], tmp_path) == ["006_step_6"]
        assert await postgres.migrate(pools[1], tmp_path) == []
    finally:
        for p in pools:
            await p.close()


async def test_a_failing_migration_leaves_nothing_and_stops(scratch_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    pool = await postgres.create_pool(scratch_dsn, min_size=1, max_size=1)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await postgres.migrate(pool, tmp_path)
        tables = {
            r["tablename"]
            for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert "good" in tables and "half" not in tables
        assert await pool.fetchval("SELECT max(version) FROM schema_migrations") == 1
    finally:
        await pool.close()


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1-first.sql").write_text("SELECT 1")
    with pytest.raises(RuntimeError, match="NNN_lower_snake"):
        postgres.migration_files(tmp_path)


async def test_mongo_indexes_are_idempotent_and_enforce_unique_email(settings: Any) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    try:
        db = client[settings.mongo_db]
        await mongo.ensure_indexes(db)
        await mongo.ensure_indexes(db)
        names = {i["name"] async for i in await db["users"].list_indexes()}
        assert {"email_unique", "role_id"} <= names
        await db["users"].insert_one({"_id": "a", "email": "same@x.io"})
        with pytest.raises(DuplicateKeyError):
            await db["users"].insert_one({"_id": "b", "email": "same@x.io"})
    finally:
        await client.close()
