"""MongoDB (SystemDB): the client, the index set-up, users and revoked tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from astro.domain.errors import Conflict
from astro.domain.users import Role, User

INDEX_FILE: Final = Path(__file__).resolve().parents[2] / "migrations" / "mongo_indexes.json"

Doc = dict[str, Any]


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
        created_at=doc["created_at"],
        password_hash=doc.get("password_hash", ""),
    )


class MongoUsers:
    """The `users` collection: credentials, role and flags."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._users = db["users"]
        self._revoked = db["revoked_tokens"]

    async def insert(self, user: User) -> None:
        try:
            await self._users.insert_one(
                {
                    "_id": user.id,
                    "email": user.email,
                    "name": user.name,
                    "role": user.role.value,
                    "vip": user.vip,
                    "disabled": user.disabled,
                    "password_hash": user.password_hash,
                    "created_at": user.created_at,
                    "updated_at": user.created_at,
                }
            )
        except DuplicateKeyError as exc:
            raise Conflict("that email is already registered", code="email_taken") from exc

    async def delete(self, user_id: str) -> None:
        await self._users.delete_one({"_id": user_id})

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

    async def set_flags(self, user_id: str, flags: dict[str, bool]) -> User | None:
        doc = await self._users.find_one_and_update(
            {"_id": user_id},
            {"$set": {**flags, "updated_at": datetime.now(UTC)}},
            return_document=True,
        )
        return _user(doc) if doc else None

    async def is_vip(self, user_id: str) -> bool:
        doc = await self._users.find_one({"_id": user_id}, {"vip": 1})
        return bool(doc and doc.get("vip"))

    async def promote_vip(self, user_ids: list[str]) -> int:
        """Set the VIP flag on these users; how many were not VIP before."""
        if not user_ids:
            return 0
        result = await self._users.update_many(
            {"_id": {"$in": user_ids}, "vip": {"$ne": True}},
            {"$set": {"vip": True, "updated_at": datetime.now(UTC)}},
        )
        return int(result.modified_count)

    async def disabled_ids(self) -> list[str]:
        return [d["_id"] async for d in self._users.find({"disabled": True}, {"_id": 1})]

    async def revoke(self, jti: str, user_id: str, expires_at: datetime) -> None:
        """Remember a revoked token until it would have expired anyway (a TTL index drops it)."""
        await self._revoked.update_one(
            {"_id": jti}, {"$set": {"user_id": user_id, "expires_at": expires_at}}, upsert=True
        )

    async def revoked(self) -> list[tuple[str, datetime]]:
        now = datetime.now(UTC)
        cursor = self._revoked.find({"expires_at": {"$gt": now}})
        return [(d["_id"], d["expires_at"]) async for d in cursor]
