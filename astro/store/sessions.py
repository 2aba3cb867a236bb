"""MongoDB (SystemDB) `sessions`: browser sessions, each with the hash of its current refresh token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from astro.services.sessions import AccessGrant, StoredSession
from astro.store.errors import unavailable_as

Doc = dict[str, Any]
# The access tokens a session remembers having issued (to revoke them when it ends); older ones have
# long expired (a session refreshes at most once per access token lifetime per tab).
ACCESS_KEPT: Final = 50


def _stored(doc: Doc) -> StoredSession:
    return StoredSession(
        id=doc["_id"],
        user_id=doc["user_id"],
        token_gen=int(doc.get("token_gen", 0)),
        access=[AccessGrant(a["jti"], a["expires_at"]) for a in doc.get("access", [])],
    )


@unavailable_as("MongoDB")
class MongoSessions:
    """Open, rotate (a conditional update: one winner per refresh token) and end sessions; a TTL index
    drops a session its expiry passed."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._sessions = db["sessions"]

    async def open(
        self,
        session_id: str,
        user_id: str,
        token_gen: int,
        secret_hash: str,
        expires_at: datetime,
        first: AccessGrant,
    ) -> None:
        now = datetime.now(UTC)
        await self._sessions.insert_one(
            {
                "_id": session_id,
                "user_id": user_id,
                "token_gen": token_gen,
                "secret_hash": secret_hash,
                "created_at": now,
                "refreshed_at": now,
                "expires_at": expires_at,
                "access": [{"jti": first.jti, "expires_at": first.expires_at}],
            }
        )

    async def rotate(
        self, session_id: str, secret_hash: str, new_hash: str, expires_at: datetime, grant: AccessGrant
    ) -> StoredSession | None:
        """Replace the refresh token when `secret_hash` is the current one and the session has not
        expired; None otherwise (another refresh used it first, or it ended)."""
        now = datetime.now(UTC)
        doc = await self._sessions.find_one_and_update(
            {"_id": session_id, "secret_hash": secret_hash, "expires_at": {"$gt": now}},
            {
                "$set": {"secret_hash": new_hash, "expires_at": expires_at, "refreshed_at": now},
                "$push": {
                    "access": {
                        "$each": [{"jti": grant.jti, "expires_at": grant.expires_at}],
                        "$slice": -ACCESS_KEPT,
                    }
                },
            },
            return_document=ReturnDocument.AFTER,
        )
        return _stored(doc) if doc else None

    async def get(self, session_id: str) -> StoredSession | None:
        doc = await self._sessions.find_one({"_id": session_id, "expires_at": {"$gt": datetime.now(UTC)}})
        return _stored(doc) if doc else None

    async def end(self, session_id: str) -> StoredSession | None:
        """Delete the session; what it was (None when there was none)."""
        doc = await self._sessions.find_one_and_delete({"_id": session_id})
        return _stored(doc) if doc else None

    async def end_all(self, user_id: str) -> list[StoredSession]:
        """Delete every session of the user; what they were."""
        ended = [_stored(d) async for d in self._sessions.find({"user_id": user_id})]
        await self._sessions.delete_many({"user_id": user_id})
        return ended
