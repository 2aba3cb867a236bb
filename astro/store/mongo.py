"""MongoDB (SystemDB): the client, the index set-up, users and revoked tokens."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from astro import origin
from astro.domain.errors import Conflict
from astro.domain.users import Role, User
from astro.services.monitor import LogQuery, id_floor, time_of_id
from astro.store.errors import unavailable_as

INDEX_FILE: Final = Path(__file__).resolve().parents[2] / "migrations" / "mongo_indexes.json"

Doc = dict[str, Any]
DUPLICATE_KEY: Final = 11000


def connect(url: str) -> AsyncMongoClient[Doc]:
    """A client that sees datetimes as UTC and fails fast when the server is gone."""
    return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000)


async def ensure_indexes(db: AsyncDatabase[Doc], spec_file: Path = INDEX_FILE) -> None:
    """Create every index of the spec; creating an existing one again changes nothing."""
    spec: dict[str, list[Doc]] = json.loads(spec_file.read_text())  # noqa: ASYNC240 - a small local file
    for collection, indexes in spec.items():
        for index in indexes:
            options = {k: v for k, v in index.items() if k != "keys"}
            await db[collection].create_index([tuple(k) for k in index["keys"]], **options)


def _user(doc: Doc) -> User:
    return User(
        id=doc["_id"],
        email=doc["email"],
        name=doc["name"],
        role=Role(doc["role"]),
        vip=bool(doc.get("vip", False)),
        disabled=bool(doc.get("disabled", False)),
        # An agency is pending until IT verifies it; one stored before verification existed was public.
        verified=bool(doc.get("verified", True)),
        created_at=doc["created_at"],
        password_hash=doc.get("password_hash", ""),
        token_gen=int(doc.get("token_gen", 0)),
    )


@unavailable_as("MongoDB")
class MongoUsers:
    """The `users` collection: credentials, role and flags."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._users = db["users"]
        self._revoked = db["revoked_tokens"]
        self._changes = db["changes"]

    async def _record(self, user_id: str, op: str, fields: Doc | None, origin_doc: Doc) -> None:
        """The change log of SystemDB; the user document itself carries the same origin."""
        await self._changes.insert_one(
            {
                "at": datetime.now(UTC),
                "store": "mongo",
                "entity": "users",
                "entity_id": user_id,
                "op": op,
                "fields": fields,
                "origin": origin_doc,
                "synced": False,
            }
        )

    async def insert(self, user: User) -> None:
        stated = origin.current().as_dict()
        fields = {
            "email": user.email,
            "name": user.name,
            "role": user.role.value,
            "vip": user.vip,
            "disabled": user.disabled,
        }
        if user.role is Role.AGENCY:
            fields["verified"] = user.verified
        try:
            await self._users.insert_one(
                {
                    "_id": user.id,
                    **fields,
                    "password_hash": user.password_hash,
                    "created_at": user.created_at,
                    "updated_at": user.created_at,
                    "origin": stated,
                }
            )
        except DuplicateKeyError as exc:
            raise Conflict("that email is already registered", code="email_taken") from exc
        await self._record(user.id, "insert", fields, stated)

    async def delete(self, user_id: str) -> None:
        if (await self._users.delete_one({"_id": user_id})).deleted_count:
            await self._record(user_id, "delete", None, origin.current().as_dict())

    async def by_email(self, email: str) -> User | None:
        doc = await self._users.find_one({"email": email})
        return _user(doc) if doc else None

    async def by_id(self, user_id: str) -> User | None:
        doc = await self._users.find_one({"_id": user_id})
        return _user(doc) if doc else None

    async def page(self, *, role: Role | None, after: str | None, limit: int) -> list[User]:
        query: Doc = {}
        if role is not None:
            query["role"] = role.value
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self._users.find(query).sort("_id", 1).limit(limit)
        return [_user(doc) async for doc in cursor]

    async def set_flags(self, user_id: str, flags: dict[str, Any]) -> User | None:
        """Change fields of a user (flags, name, email); the change is logged with its origin."""
        stated = origin.current().as_dict()
        try:
            before = await self._users.find_one_and_update(
                {"_id": user_id}, {"$set": {**flags, "updated_at": datetime.now(UTC), "origin": stated}}
            )
        except DuplicateKeyError as exc:
            raise Conflict("that email is already registered", code="email_taken") from exc
        if before is None:
            return None
        changed = {k: v for k, v in flags.items() if before.get(k) != v}
        if changed:
            await self._record(user_id, "update", changed, stated)
        return _user({**before, **flags})

    async def promote_vip(self, user_ids: list[str]) -> int:
        """Set the VIP flag by the rule on these users (the flag's source of truth), unless IT set theirs
        by hand; how many were not VIP before."""
        promoted = 0
        for user_id in user_ids:
            doc = await self._users.find_one(
                {"_id": user_id, "vip": {"$ne": True}, "vip_manual": {"$ne": True}}, {"_id": 1}
            )
            if doc is not None:
                await self.set_flags(user_id, {"vip": True, "vip_manual": False, "vip_set_by": "auto"})
                promoted += 1
        return promoted

    async def count_active(self, role: Role) -> int:
        """How many users of this role are not disabled."""
        return await self._users.count_documents({"role": role.value, "disabled": {"$ne": True}})

    async def next_token_gen(self, user_id: str) -> int | None:
        """Move the user's token generation on (every token issued before is refused); the new one."""
        doc = await self._users.find_one_and_update(
            {"_id": user_id},
            {"$inc": {"token_gen": 1}, "$set": {"updated_at": datetime.now(UTC)}},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else int(doc["token_gen"])

    async def set_password(self, user_id: str, password_hash: str) -> int | None:
        """Store a new password hash and move the token generation on (every token issued before is
        refused) in one update; the new generation, None for an unknown user."""
        doc = await self._users.find_one_and_update(
            {"_id": user_id},
            {
                "$set": {"password_hash": password_hash, "updated_at": datetime.now(UTC)},
                "$inc": {"token_gen": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else int(doc["token_gen"])

    async def claim_revocation(self, jti: str, user_id: str, expires_at: datetime) -> bool:
        """Revoke a token unless it is revoked already: True for the one caller that revoked it."""
        try:
            await self._revoked.insert_one({"_id": jti, "user_id": user_id, "expires_at": expires_at})
        except DuplicateKeyError:
            return False
        return True

    async def demote_vip(self, user_ids: list[str]) -> list[str]:
        """Clear the VIP flag the rule set on these users (never one IT set by hand); those cleared."""
        demoted = []
        for user_id in user_ids:
            doc = await self._users.find_one(
                {"_id": user_id, "vip": True, "vip_manual": {"$ne": True}}, {"_id": 1}
            )
            if doc is not None:
                await self.set_flags(user_id, {"vip": False, "vip_manual": False, "vip_set_by": "auto"})
                demoted.append(user_id)
        return demoted

    async def revoke(self, jti: str, user_id: str, expires_at: datetime) -> None:
        """Remember a revoked token until it would have expired anyway (a TTL index drops it)."""
        await self._revoked.update_one(
            {"_id": jti}, {"$set": {"user_id": user_id, "expires_at": expires_at}}, upsert=True
        )

    async def revoked(self) -> list[tuple[str, datetime]]:
        now = datetime.now(UTC)
        cursor = self._revoked.find({"expires_at": {"$gt": now}})
        return [(d["_id"], d["expires_at"]) async for d in cursor]


@unavailable_as("MongoDB")
class MongoEntryLogs:
    """The `entry_logs` collection: EntryLog documents whose ids sort by time (astro.services.monitor)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._db = db
        self._logs = db["entry_logs"]

    @staticmethod
    def connect(url: str, *, reader: bool = False) -> AsyncMongoClient[Doc]:
        """The shipper's own client gives up within a second, then spools; a reader is more patient:
        a busy server answers its heartbeats late, which must not cancel a long export."""
        if reader:
            return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=3000, connectTimeoutMS=30000)
        return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)

    async def prepare(self) -> None:
        """Create the entry log indexes of the spec (when the logs live in a database of their own)."""
        spec: dict[str, list[Doc]] = json.loads(INDEX_FILE.read_text())
        for index in spec["entry_logs"]:
            options = {k: v for k, v in index.items() if k != "keys"}
            await self._logs.create_index([tuple(k) for k in index["keys"]], **options)

    async def insert(self, docs: list[Doc]) -> None:
        """Insert in order; an entry already stored (a replayed batch) is skipped, not an error."""
        remaining = docs
        while remaining:
            try:
                await self._logs.insert_many(remaining, ordered=True)
                return
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors") or []
                if not errors or errors[0].get("code") != DUPLICATE_KEY:
                    raise
                remaining = remaining[int(errors[0]["index"]) + 1 :]

    async def page(
        self, query: LogQuery, *, before: str | None, limit: int, now: datetime | None = None
    ) -> list[Doc]:
        """Newest first, older than the entry id `before` when given, read in windows of time."""
        now = now or datetime.now(UTC)
        found = _log_filter(query, before=before)
        low, high = _span(query, before, now)
        start = await self._from_oldest(low)
        if start is None or start >= (high or now):
            return []
        low = start
        docs: list[Doc] = []
        width = FIRST_WINDOW
        upper = high
        while len(docs) < limit:
            top = upper or now
            lower = low if top - low <= width else top - width  # never before year 1, however wide
            window = {"$gte": lower, **({"$lt": upper} if upper is not None else {})}
            cursor = self._logs.find({**found, "time": window}).sort("_id", -1).limit(limit - len(docs))
            docs += [doc async for doc in cursor]
            if lower <= low:
                break
            upper, width = lower, width * 4
        return docs

    async def stream(
        self, query: LogQuery, *, batch_size: int = 1000, now: datetime | None = None
    ) -> AsyncIterator[Doc]:
        """Every matching entry, oldest first, window after window of at most ten batches."""
        found = _log_filter(query, before=None)
        low, high = _span(query, None, now)
        start = await self._from_oldest(low)
        if start is None or start >= (high or now or datetime.now(UTC)):
            return
        # Nor past the newest entry there is now: an `until` years ahead is not walked a day at a time
        # (the entries written while the export runs are left to the next one).
        high = await self._to_newest(high)
        most = 10 * batch_size
        lower, width, after = start, FIRST_WINDOW, None
        while True:
            last = high - lower <= width  # (lower + width may pass year 9999)
            upper = high if last else lower + width
            flt = {**found, "time": {"$gte": lower, "$lt": upper}}
            if after is not None:
                flt["_id"] = {**found.get("_id", {}), "$gt": after}
            cursor = self._logs.find(flt).sort("_id", 1).limit(most).batch_size(batch_size)
            seen, newest = 0, None
            try:
                async for doc in cursor:
                    seen, newest = seen + 1, doc
                    yield doc
            finally:
                await cursor.close()
            if newest is not None and seen == most:
                # A dense window: go on inside it from the last entry, in narrower steps.
                made = time_of_id(newest["_id"])
                reached = made - timedelta(microseconds=made.microsecond % 1000)  # stored to the ms
                width = max(min(reached - lower, width / 4), MIN_WINDOW)
                lower, after = reached, newest["_id"]
                continue
            if last:
                return
            lower, after = upper, None
            if seen < batch_size:
                width = min(width * 4, MAX_WINDOW)

    async def _from_oldest(self, low: datetime) -> datetime | None:
        """`low`, or the time of the oldest entry when it is later (entries live 30 days: a span that
        starts in year 1 is read from there, not window by window through two thousand years); None when
        there is no entry at all."""
        oldest = await self._logs.find_one({}, {"_id": 1}, sort=[("_id", 1)])  # ids sort by time
        if oldest is None:
            return None
        return max(low, time_of_id(str(oldest["_id"])) - timedelta(milliseconds=1))

    async def _to_newest(self, high: datetime | None) -> datetime:
        """`high`, or just after the newest entry when that is earlier (or `high` is open)."""
        newest = await self._logs.find_one({}, {"_id": 1}, sort=[("_id", -1)])
        after = time_of_id(str(newest["_id"])) + timedelta(milliseconds=1) if newest else datetime.now(UTC)
        return after if high is None else min(high, after)

    async def count(self, query: LogQuery) -> int:
        return int(await self._logs.count_documents(_log_filter(query, before=None)))


# Every query reads a window of time (indexes end with `time`), so even a server that fetches all
# it matches before sorting (the embedded SecantusDB does) reads little per query; windows widen
# fourfold until the page is full or the span is crossed (an export's up to a day), and an export
# goes on inside a window that holds more than ten batches.
FIRST_WINDOW: Final = timedelta(minutes=1)
MIN_WINDOW: Final = timedelta(seconds=1)
MAX_WINDOW: Final = timedelta(days=1)  # an export's windows; a page's are bounded by its limit
RETENTION: Final = timedelta(days=31)  # the TTL keeps 30 days; without `since`, older is not searched


def _span(query: LogQuery, before: str | None, now: datetime | None) -> tuple[datetime, datetime | None]:
    """The time span to search: [since or the retention horizon, until or the cursor's entry or open)."""
    low = query.since or (now or datetime.now(UTC)) - RETENTION
    highs = [query.until] if query.until is not None else []
    if before is not None:
        # The cursor's entry was made in this microsecond; its stored time is that millisecond.
        highs.append(time_of_id(before) + timedelta(milliseconds=1))
    return low, min(highs) if highs else None


def _log_filter(query: LogQuery, *, before: str | None) -> Doc:
    found: Doc = {}
    for field, values in (("level", query.levels), ("service", query.services)):
        if values:
            found[field] = values[0] if len(values) == 1 else {"$in": list(values)}
    for field, value in (
        ("user_id", query.user_id),
        ("request_id", query.request_id),
        ("entity_ids", query.entity_id),
    ):
        if value is not None:
            found[field] = value
    if query.text:
        found["message"] = {"$regex": re.escape(query.text), "$options": "i"}
    ids: Doc = {}
    if query.since is not None:
        ids["$gte"] = id_floor(query.since)
    upper = [bound for bound in (before, query.until and id_floor(query.until)) if bound]
    if upper:
        ids["$lt"] = min(upper)
    if ids:
        found["_id"] = ids
    return found


@unavailable_as("MongoDB")
class MongoMetrics:
    """The `system_metrics` collection: one document per sample {time, name, value, labels, node}."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._samples = db["system_metrics"]

    async def insert(self, samples: list[Doc]) -> None:
        if samples:
            await self._samples.insert_many(samples, ordered=False)

    async def between(
        self, *, names: tuple[str, ...], since: datetime, until: datetime, limit: int
    ) -> list[Doc]:
        """Samples in [since, until), oldest first, at most `limit`."""
        query: Doc = {"time": {"$gte": since, "$lt": until}}
        if names:
            query["name"] = names[0] if len(names) == 1 else {"$in": list(names)}
        cursor = self._samples.find(query, {"_id": 0}).sort("time", 1).limit(limit)
        return [doc async for doc in cursor]
