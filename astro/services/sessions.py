"""Browser sessions: a refresh token per session (`<session id>.<secret>`, kept by the browser in an HttpOnly
cookie), of which only a hash is stored; each use rotates it, one winner per token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from astro.domain.errors import Unauthenticated
from astro.domain.ids import new_id
from astro.domain.users import User
from astro.services.tokens import TokenIssuer

SESSION_TTL: Final = 30 * 86400  # a browser session unused this long ends (ASTRO_SESSION_TTL)
SESSION_ENDED: Final = "your session has ended; log in again"


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """An access token a session issued: its id and expiry (to revoke it when the session ends)."""

    jti: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSession:
    id: str
    user_id: str
    token_gen: int
    access: list[AccessGrant]


class SessionStore(Protocol):
    """Browser sessions: each keeps only the hash of its current refresh token."""

    async def open(
        self,
        session_id: str,
        user_id: str,
        token_gen: int,
        secret_hash: str,
        expires_at: datetime,
        first: AccessGrant,
    ) -> None: ...

    async def rotate(
        self, session_id: str, secret_hash: str, new_hash: str, expires_at: datetime, grant: AccessGrant
    ) -> StoredSession | None:
        """The new refresh token's hash in place of `secret_hash`, if that is still the current one of a
        session that has not expired (a conditional update: one winner); None otherwise."""
        ...

    async def get(self, session_id: str) -> StoredSession | None: ...
    async def end(self, session_id: str) -> StoredSession | None: ...
    async def end_all(self, user_id: str) -> list[StoredSession]: ...


@dataclass(frozen=True, slots=True)
class Issued:
    """An access token and its expiry (Unix seconds), with the session's new refresh token."""

    token: str
    expires_at: int
    refresh_token: str


class BrowserSessions:
    """Open, look up, rotate and end sessions; revoking what an ended session issued is the caller's."""

    def __init__(self, store: SessionStore, tokens: TokenIssuer, ttl: int = SESSION_TTL) -> None:
        self._store = store
        self._tokens = tokens
        self.ttl = ttl

    async def open(self, user: User) -> Issued:
        session_id, secret = new_id("ses"), secrets.token_urlsafe(32)
        token, expires, grant = self._issue(user, user.token_gen)
        await self._store.open(session_id, user.id, user.token_gen, digest(secret), self._expiry(), grant)
        return Issued(token, expires, f"{session_id}.{secret}")

    async def find(self, refresh_token: str) -> StoredSession:
        """The session of a refresh token (not checked against its current one yet); 401 when none."""
        found = await self._store.get(split(refresh_token)[0])
        if found is None:
            raise Unauthenticated(SESSION_ENDED, code="token_revoked")
        return found

    async def rotate(self, found: StoredSession, refresh_token: str, user: User) -> Issued | None:
        """A new access token and refresh token for the session's current refresh token; None when the
        one presented is not the current one (spent already) or the session expired meanwhile."""
        secret = split(refresh_token)[1]
        new_secret = secrets.token_urlsafe(32)
        token, expires, grant = self._issue(user, found.token_gen)
        rotated = await self._store.rotate(
            found.id, digest(secret), digest(new_secret), self._expiry(), grant
        )
        return None if rotated is None else Issued(token, expires, f"{found.id}.{new_secret}")

    async def get(self, refresh_token: str) -> StoredSession | None:
        """The session of a refresh token, None for a malformed or unknown one."""
        try:
            session_id = split(refresh_token)[0]
        except Unauthenticated:
            return None
        return await self._store.get(session_id)

    async def end(self, session_id: str) -> StoredSession | None:
        return await self._store.end(session_id)

    async def end_all(self, user_id: str) -> list[StoredSession]:
        return await self._store.end_all(user_id)

    def _issue(self, user: User, token_gen: int) -> tuple[str, int, AccessGrant]:
        jti = secrets.token_urlsafe(16)
        token, expires = self._tokens.issue(user.id, user.role, token_gen=token_gen, jti=jti)
        return token, expires, AccessGrant(jti, datetime.fromtimestamp(expires, UTC))

    def _expiry(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.ttl)


def digest(secret: str) -> str:
    """What is stored of a secret token: its SHA-256 (the token is random; no salt or stretching needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split(refresh_token: str) -> tuple[str, str]:
    """`<session id>.<secret>` -> its parts; a malformed one is an invalid token."""
    session_id, dot, secret = refresh_token.partition(".")
    if not dot or not session_id.startswith("ses_") or len(session_id) > 64 or not 20 <= len(secret) <= 128:
        raise Unauthenticated(SESSION_ENDED, code="invalid_token")
    return session_id, secret
