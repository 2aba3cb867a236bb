"""Password reset by e-mail: a single-use link valid 30 minutes; only its token's hash is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol
from urllib.parse import urlencode

import structlog

from astro.domain.errors import RuleViolation
from astro.domain.ids import new_id
from astro.services.auth import AuthService, check_password

log = structlog.get_logger("astro.auth")

RESET_VALID: Final = timedelta(minutes=30)
RESET_PATH: Final = "/auth/reset"


@dataclass(frozen=True, slots=True)
class ResetState:
    user_id: str
    used: bool
    expired: bool


class ResetStore(Protocol):
    async def create(
        self,
        reset_id: str,
        user_id: str,
        token_hash: str,
        expires_at: datetime,
        to: tuple[str, str, str, str],
        data: dict[str, Any],
    ) -> None:
        """Store the link and queue its e-mail (a notification row) in one transaction."""
        ...

    async def state(self, token_hash: str) -> ResetState | None: ...

    async def spend(self, token_hash: str) -> str | None:
        """Mark an open, unexpired link used (one winner) and the user's other links with it; its user."""
        ...


class PasswordResets:
    def __init__(self, auth: AuthService, store: ResetStore) -> None:
        self._auth = auth
        self._store = store

    async def request(self, email: str, address: str) -> None:
        """Count the request (rate-limited like a login), nothing more: the caller answers 202 at once
        and runs `send` afterwards, so an unknown address answers as fast as a known one."""
        await self._auth.count_attempt(f"reset:{email.lower()}", f"reset:{address}")

    async def send(self, email: str) -> None:
        """Queue the reset e-mail of the account with this login email, if there is one."""
        user = await self._auth.find_user(email)
        if user is None or user.disabled:
            log.info("password_reset_unknown_email")
            return
        token = secrets.token_urlsafe(32)
        await self._store.create(
            new_id("rst"),
            user.id,
            _digest(token),
            datetime.now(UTC) + RESET_VALID,
            (user.id, user.role.value, user.email, user.name),
            {"link_path": f"{RESET_PATH}?{urlencode({'token': token})}"},
        )
        log.info("password_reset_requested", user_id=user.id)

    async def confirm(self, token: str, password: str) -> None:
        """Set the password of the link's account and spend the link; every session of the user ends.
        422 invalid_reset_token for an unknown, used or expired link; a weak password spends nothing."""
        digest = _digest(token)
        state = await self._store.state(digest)
        if state is None or state.used or state.expired:
            raise _invalid(state)
        user = await self._auth.get_user(state.user_id)
        await check_password(password, user.email, user.name)
        if await self._store.spend(digest) is None:  # spent (or expired) since it was read
            raise _invalid(await self._store.state(digest))
        await self._auth.reset_password(user.id, password)


def _invalid(state: ResetState | None) -> RuleViolation:
    if state is None:
        why, text = "unknown", "this reset link is not valid; ask for a new one"
    elif state.used:
        why, text = "used", "this reset link has been used already; ask for a new one"
    else:
        why, text = "expired", "this reset link has expired (it is valid for 30 minutes); ask for a new one"
    # a well-formed token that is not (or no longer) a link: refused (422), not malformed input (400)
    return RuleViolation(text, {"fields": {"token": why}, "reason": why}, code="invalid_reset_token")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
