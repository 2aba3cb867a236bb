"""Authentication and user administration: register, login, logout, tokens, employees, flags."""

from __future__ import annotations

import asyncio
import hmac
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from astro.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RuleViolation,
    TooManyAttempts,
    Unauthenticated,
    Unavailable,
)
from astro.domain.ids import new_id
from astro.domain.passwords import weakness
from astro.domain.users import EMPLOYEES, SELF_REGISTERED, Principal, Role, User
from astro.services.sessions import SESSION_ENDED, SESSION_TTL, BrowserSessions, SessionStore
from astro.services.tokens import TokenIssuer

log = structlog.get_logger("astro.auth")

LOGIN_WINDOW: Final = 60
LOGIN_MAX_FAILURES: Final = 5  # per email and window
LOGIN_ADDRESS_LIMIT: Final = 20  # per client address and window (ASTRO_LOGIN_IP_LIMIT)
LAST_IT: Final = "this is the last active IT account; it cannot be disabled"
# Users whose cached flags could not be dropped (Redis down), dropped before the next authentication here;
# past this many the cache's TTL alone bounds how long their copies stay wrong.
UNFORGOTTEN_MAX: Final = 10_000


class UserStore(Protocol):
    async def insert(self, user: User) -> None: ...
    async def delete(self, user_id: str) -> None: ...
    async def by_email(self, email: str) -> User | None: ...
    async def by_id(self, user_id: str) -> User | None: ...
    async def page(self, *, role: Role | None, after: str | None, limit: int) -> list[User]: ...
    async def set_flags(self, user_id: str, flags: dict[str, Any]) -> User | None: ...
    async def promote_vip(self, user_ids: list[str]) -> int: ...
    async def demote_vip(self, user_ids: list[str]) -> list[str]: ...
    async def revoke(self, jti: str, user_id: str, expires_at: datetime) -> None: ...
    async def claim_revocation(self, jti: str, user_id: str, expires_at: datetime) -> bool: ...
    async def revoked(self) -> list[tuple[str, datetime]]: ...
    async def count_active(self, role: Role) -> int: ...
    async def next_token_gen(self, user_id: str) -> int | None: ...
    async def set_password(self, user_id: str, password_hash: str) -> int | None: ...


class ProfileTx(Protocol):
    async def add(self, user_id: str, role: Role, email: str, name: str, profile: dict[str, Any]) -> None: ...


class ProfileStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[ProfileTx]: ...
    async def get(self, user_id: str, role: Role) -> dict[str, Any] | None: ...
    async def update(self, user_id: str, role: Role, profile: dict[str, Any]) -> dict[str, Any]: ...
    async def set_vip(self, user_ids: list[str], vip: bool, by: str = ...) -> None: ...


@dataclass(frozen=True, slots=True)
class UserFlags:
    """What authentication needs of a user besides the token: kept in MongoDB, cached in Redis."""

    vip: bool
    disabled: bool
    token_gen: int = 0  # tokens of an older generation are refused ("log out everywhere")


class TokenCache(Protocol):
    """The hot-path cache: revoked tokens (complete while warm) and each user's flags (a copy that expires;
    a missing copy is unknown, never "not VIP")."""

    async def revoke(self, jti: str, ttl_seconds: int) -> None: ...
    async def state(self, jti: str, user_id: str) -> tuple[bool, UserFlags | None, bool]:
        """(token revoked, the user's cached flags or None when unknown, revocations warm), one round trip."""
        ...

    async def lease(self, user_id: str) -> str | None:
        """Reserve the right to fill a user's flags; None when another reader holds it."""
        ...

    async def fill(self, user_id: str, lease: str, flags: UserFlags) -> None:
        """Cache the flags read under `lease`, unless a write dropped the lease meanwhile."""
        ...

    async def forget(self, user_ids: list[str]) -> None:
        """Drop the cached flags (and any lease) of these users: the next read goes to MongoDB."""
        ...

    async def is_warm(self) -> bool: ...
    async def mark_warm(self) -> None: ...
    async def login_attempt(
        self, email: str, address: str, *, window: int, email_limit: int, address_limit: int
    ) -> tuple[str | None, int]:
        """Count an attempt before its password is checked: (None, 0) to go ahead, else which limit
        refused it ("email" or "address") and the seconds until its window ends."""
        ...

    async def login_succeeded(self, email: str, address: str) -> None: ...


class LiveSessions(Protocol):
    """The live (WebSocket) sessions of every node (the Broadcaster's fan-out)."""

    async def sign_out(self, *, user_id: str | None = None, jti: str | None = None) -> None:
        """Close the sessions of this user (every token) or of this token, on every node; never raises
        for a store that cannot be reached (a session checks its token again at each subscribe)."""
        ...


@dataclass(frozen=True, slots=True)
class Session:
    """A user with a freshly issued token."""

    user: User
    token: str
    expires_at: int
    profile: dict[str, Any] | None = None
    # The browser session's new refresh token (`<session id>.<secret>`), for its HttpOnly cookie; None
    # when the token was refreshed with itself (API clients).
    refresh_token: str | None = None


class AuthService:
    def __init__(
        self,
        users: UserStore,
        profiles: ProfileStore,
        cache: TokenCache,
        tokens: TokenIssuer,
        hasher: PasswordHasher,
        live: LiveSessions | None = None,
        *,
        sessions: SessionStore | None = None,
        login_address_limit: int = LOGIN_ADDRESS_LIMIT,
        session_ttl: int = SESSION_TTL,
    ) -> None:
        self._users = users
        self._sessions = BrowserSessions(sessions, tokens, session_ttl) if sessions is not None else None
        self.session_ttl = session_ttl
        self._live = live
        self._profiles = profiles
        self._cache = cache
        self._tokens = tokens
        self._hasher = hasher
        self._login_address_limit = login_address_limit
        self._warming = asyncio.Lock()
        self._unforgotten: set[str] = set()
        # Verifying against this keeps an unknown email as slow as a wrong password.
        self._dummy_hash = hasher.hash("not-a-real-password")

    async def warm_cache(self) -> None:
        """Rebuild the revocations in Redis from MongoDB when Redis lost them. (Users' flags need no
        rebuilding: a flag missing from the cache is read from MongoDB when it is next needed.)"""
        async with self._warming:
            if await self._cache.is_warm():
                return
            now = time.time()
            for jti, expires_at in await self._users.revoked():
                await self._cache.revoke(jti, int(expires_at.timestamp() - now) + 1)
            await self._cache.mark_warm()
            log.info("auth_cache_rebuilt")

    async def register(
        self, *, email: str, password: str, name: str, role: Role, profile: dict[str, Any]
    ) -> Session:
        """Credentials in MongoDB and the profile row in PostgreSQL: both written, or neither."""
        if role not in SELF_REGISTERED:
            raise Forbidden("only travelers and agencies register themselves")
        if await self._users.by_email(email) is not None:
            raise Conflict("that email is already registered", code="email_taken")
        await check_password(password, email, name)
        user = await self._new_user(email, password, name, role)
        inserted = False
        try:
            async with self._profiles.transaction() as tx:
                await tx.add(user.id, role, email, name, profile)
                await self._users.insert(user)  # a duplicate email here rolls the profile back
                inserted = True
        except BaseException:
            if inserted:  # the profile commit failed after the user was written: take the user back
                await self._users.delete(user.id)
            raise
        log.info("user_registered", user_id=user.id, role=role.value)
        return await self._open_session(user, profile)

    async def create_employee(self, *, email: str, password: str, name: str, role: Role) -> User:
        if role not in EMPLOYEES:
            raise Forbidden("employees are finance or it")
        await check_password(password, email, name)
        user = await self._new_user(email, password, name, role)
        await self._users.insert(user)
        log.info("employee_created", user_id=user.id, role=role.value)
        return user

    async def login(self, email: str, password: str, address: str = "unknown") -> Session:
        """A session for the right password. Each attempt is counted before the password is checked, per
        email and per client address, in one atomic step: a burst gets at most the limit through to argon2
        (each check costs ~64 MiB and ~0.1 s), and the rest are refused at once, the right password too."""
        refused, retry_after = await self._cache.login_attempt(
            email,
            address,
            window=LOGIN_WINDOW,
            email_limit=LOGIN_MAX_FAILURES,
            address_limit=self._login_address_limit,
        )
        if refused == "address":
            log.info("login_refused", reason="address", address=address)
            raise TooManyAttempts("too many failed logins from this address; wait and try again", retry_after)
        if refused is not None:
            log.info("login_refused", reason="email", email=email)
            raise TooManyAttempts("too many failed logins for this email; wait and try again", retry_after)
        user = await self._users.by_email(email)
        if not await self._verify(user.password_hash if user else self._dummy_hash, password) or user is None:
            log.info("login_failed", email=email)
            raise Unauthenticated("email or password is wrong", code="invalid_credentials")
        if user.disabled:
            raise Unauthenticated("this account is disabled; contact support", code="user_disabled")
        await self._cache.login_succeeded(email, address)
        log.info("login", user_id=user.id)
        return await self._open_session(user, await self._profile(user))

    async def authenticate(self, token: str) -> Principal:
        """The caller behind a token: signature, expiry, revocation and the user's state all checked.

        One Redis round trip when the cache is warm: the token's revocation and the user's flags together.
        Redis down is Unavailable (503), never a skipped check."""
        principal = self._tokens.verify(token)
        if self._unforgotten:  # a persistent Redis may have kept the copies a write could not drop
            await self._forget(list(self._unforgotten))
        revoked, flags, warm = await self._cache.state(principal.jti, principal.user_id)
        if not warm:  # Redis lost its keys: rebuild the revocations before trusting the answer
            await self.warm_cache()
            revoked, flags, warm = await self._cache.state(principal.jti, principal.user_id)
        if revoked:
            raise Unauthenticated("token revoked; log in again", code="token_revoked")
        if flags is None:
            flags = await self._read_flags(principal.user_id)
        if principal.token_gen < flags.token_gen:  # the user logged out everywhere after this was issued
            raise Unauthenticated("token revoked; log in again", code="token_revoked")
        if flags.disabled:
            raise Unauthenticated("this account is disabled; contact support", code="user_disabled")
        return replace(principal, vip=flags.vip)

    async def _read_flags(self, user_id: str) -> UserFlags:
        """A user's flags from MongoDB, cached for the next request unless a write raced this read."""
        # The lease is taken before reading: a write that lands meanwhile drops it (forget), so the value
        # read before that write is never cached after it.
        lease = await self._cache.lease(user_id)
        user = await self._users.by_id(user_id)
        flags = UserFlags(user.vip, user.disabled, user.token_gen) if user else UserFlags(False, False)
        if lease is not None:
            try:
                await self._cache.fill(user_id, lease, flags)
            except Unavailable:  # the answer is right; the next request reads MongoDB again
                log.warning("user_flags_not_cached", user_id=user_id)
        return flags

    async def promote_vip(self, user_ids: list[str]) -> int:
        """Make these travelers VIP where the flag is kept (SystemDB, then OperationsDB's mirror), then drop
        their cached flags. The flag is never written into Redis: a cache write that fails cannot leave
        anyone half VIP; a copy that could not be dropped is dropped before this node next authenticates
        anyone, and expires within the cache's TTL anyway."""
        promoted = await self._users.promote_vip(user_ids)
        await self._profiles.set_vip(user_ids, True)  # by the rule: a flag IT set by hand is left alone
        try:
            await self._forget(user_ids)
        except Unavailable:  # stored where it counts; the copies are dropped when Redis answers again
            log.warning("user_flags_not_forgotten", users=len(user_ids))
        return promoted

    async def demote_vip(self, user_ids: list[str]) -> list[str]:
        """Take the VIP flag the rule gave from these travelers (they no longer qualify), in the same order
        as promote_vip: SystemDB, OperationsDB's mirror, then the cached copies. A flag IT set by hand
        stays. Those demoted."""
        demoted = await self._users.demote_vip(user_ids)
        await self._profiles.set_vip(user_ids, False)
        try:
            await self._forget(user_ids)
        except Unavailable:
            log.warning("user_flags_not_forgotten", users=len(user_ids))
        return demoted

    async def _forget(self, user_ids: list[str]) -> None:
        """Drop these users' cached flags; when Redis does not answer, remember to (and raise)."""
        try:
            await self._cache.forget(user_ids)
        except Unavailable:
            if len(self._unforgotten) + len(user_ids) <= UNFORGOTTEN_MAX:
                self._unforgotten.update(user_ids)
            raise
        self._unforgotten.difference_update(user_ids)

    async def logout(self, principal: Principal) -> None:
        """Revoke the token, then close the live sessions it opened, on every node."""
        await self._revoke(principal)
        await self.close_live_sessions(jti=principal.jti)
        log.info("logout", user_id=principal.user_id)

    async def close_live_sessions(self, *, user_id: str | None = None, jti: str | None = None) -> None:
        """Close (4401) the WebSocket sessions of this user (every token: disable, log out everywhere) or
        of this one token (logout), on every node. Call it after the revocation is stored."""
        if self._live is not None:
            await self._live.sign_out(user_id=user_id, jti=jti)

    async def _revoke(self, principal: Principal) -> None:
        ttl = principal.expires_at - int(time.time()) + 1
        await self._users.revoke(
            principal.jti, principal.user_id, datetime.fromtimestamp(principal.expires_at, UTC)
        )
        await self._cache.revoke(principal.jti, ttl)

    async def refresh(self, principal: Principal) -> Session:
        """A new token for one that is revoked by it: single use. Whoever revokes the token in MongoDB
        first (an insert of its id) gets the new one; a parallel refresh of the same token is refused.
        (Its sockets stay: the client sends them the new token; a subscribe on the old one is refused.)"""
        user = await self.get_user(principal.user_id)
        expires_at = datetime.fromtimestamp(principal.expires_at, UTC)
        if not await self._users.claim_revocation(principal.jti, principal.user_id, expires_at):
            raise Unauthenticated("token revoked; log in again", code="token_revoked")
        await self._cache.revoke(principal.jti, principal.expires_at - int(time.time()) + 1)
        log.info("token_refreshed", user_id=principal.user_id)
        return self._session(user, await self._profile(user))

    async def logout_all(self, principal: Principal) -> None:
        """Revoke every token of the caller, on every node: the user's token generation moves on (kept in
        MongoDB), and tokens of an older one are refused once the cached flags are dropped; every browser
        session of the user ends."""
        if await self._users.next_token_gen(principal.user_id) is None:
            raise NotFound("no such user")
        await self._end_everywhere(principal.user_id)
        log.info("logout_all", user_id=principal.user_id)

    async def _end_everywhere(self, user_id: str) -> None:
        """After the user's token generation moved on: drop the cached flags (so older tokens are refused
        at once), end every browser session, close every live socket of the user."""
        await self._forget([user_id])
        if self._sessions is not None:
            await self._sessions.end_all(user_id)
        await self.close_live_sessions(user_id=user_id)

    # -- browser sessions (the refresh token in an HttpOnly cookie) --------------------------------------

    async def _open_session(self, user: User, profile: dict[str, Any] | None) -> Session:
        """An access token and a new browser session whose refresh token goes in the cookie."""
        if self._sessions is None:
            return self._session(user, profile)
        issued = await self._sessions.open(user)
        return Session(user, issued.token, issued.expires_at, profile, refresh_token=issued.refresh_token)

    async def refresh_session(self, refresh_token: str) -> Session:
        """A new access token and a new refresh token for the browser session's current refresh token;
        the old one is spent (single use: of two refreshes with one token, one wins). A refresh token
        used again after its rotation means it was copied: the whole session ends."""
        if self._sessions is None:
            raise Unauthenticated(SESSION_ENDED, code="token_revoked")
        found = await self._sessions.find(refresh_token)
        user = await self._users.by_id(found.user_id)
        if user is None or found.token_gen < user.token_gen:  # logged out everywhere, password changed
            await self._sessions.end(found.id)
            raise Unauthenticated(SESSION_ENDED, code="token_revoked")
        if user.disabled:
            raise Unauthenticated("this account is disabled; contact support", code="user_disabled")
        issued = await self._sessions.rotate(found, refresh_token, user)
        if issued is None:
            # Spent already (or it expired just now): a copy of the cookie in other hands, or a replay.
            await self._end_session(found.id)
            log.warning("refresh_token_reused", user_id=user.id, session_id=found.id)
            raise Unauthenticated(SESSION_ENDED, code="token_revoked")
        log.info("session_refreshed", user_id=user.id)
        return Session(
            user,
            issued.token,
            issued.expires_at,
            await self._profile(user),
            refresh_token=issued.refresh_token,
        )

    async def end_session(self, refresh_token: str, *, user_id: str | None = None) -> None:
        """Log a browser session out (its refresh token and the access tokens it issued are revoked); with
        `user_id`, only when the session is that user's. An unknown or malformed token ends nothing."""
        if self._sessions is None:
            return
        found = await self._sessions.get(refresh_token)
        if found is not None and (user_id is None or found.user_id == user_id):
            await self._end_session(found.id)

    async def _end_session(self, session_id: str) -> None:
        """End a session and revoke the access tokens it issued that have not expired (their sockets too)."""
        assert self._sessions is not None
        ended = await self._sessions.end(session_id)
        if ended is None:
            return
        now = datetime.now(UTC)
        for grant in ended.access:
            if grant.expires_at > now:
                await self._users.revoke(grant.jti, ended.user_id, grant.expires_at)
                await self._cache.revoke(grant.jti, int((grant.expires_at - now).total_seconds()) + 1)
                await self.close_live_sessions(jti=grant.jti)
        log.info("session_ended", user_id=ended.user_id)

    # -- passwords ---------------------------------------------------------------------------------------

    async def change_password(
        self, principal: Principal, current: str, new: str, address: str = "unknown"
    ) -> Session:
        """Replace the caller's password after checking the current one (counted like a login attempt);
        every other token and session of the user is revoked, and the caller gets a new session."""
        user = await self.get_user(principal.user_id)
        await self.count_attempt(user.email, address, "too many wrong passwords; wait and try again")
        if not await self._verify(user.password_hash, current):
            raise RuleViolation(
                "the current password is wrong",
                {"fields": {"current_password": "is wrong"}},
                code="wrong_password",
            )
        await self._cache.login_succeeded(user.email, address)
        if hmac.compare_digest(current.encode(), new.encode()):  # well-formed, refused: 422
            raise RuleViolation(
                "the new password is the same as the current one",
                {"fields": {"new_password": "is the same as the current one"}},
                code="same_password",
            )
        await check_password(new, user.email, user.name, field="new_password")
        gen = await self._store_password(user.id, new)
        log.info("password_changed", user_id=user.id)
        return await self._open_session(replace(user, token_gen=gen), await self._profile(user))

    async def reset_password(self, user_id: str, new: str) -> None:
        """Set a password without the current one (a reset link was followed; its strength was checked
        with check_password before the link was spent): every token and session of the user is revoked."""
        await self._store_password(user_id, new)
        log.info("password_reset", user_id=user_id)

    async def _store_password(self, user_id: str, password: str) -> int:
        """Hash and store the password; the user's tokens and sessions are revoked. The new generation."""
        gen = await self._users.set_password(user_id, await self._hash(password))
        if gen is None:
            raise NotFound("no such user")
        await self._end_everywhere(user_id)
        return gen

    async def count_attempt(
        self, key: str, address: str, refusal: str = "too many requests; wait and try again"
    ) -> None:
        """Count one attempt of something rate-limited like a login (a password change or a reset request,
        keyed by the account's email): 429 `refusal` beyond the limits."""
        refused, retry_after = await self._cache.login_attempt(
            key,
            address,
            window=LOGIN_WINDOW,
            email_limit=LOGIN_MAX_FAILURES,
            address_limit=self._login_address_limit,
        )
        if refused is not None:
            raise TooManyAttempts(refusal, retry_after)

    async def me(self, principal: Principal) -> tuple[User, dict[str, Any] | None]:
        user = await self.get_user(principal.user_id)
        return user, await self._profile(user)

    async def validate(self, token: str) -> tuple[User, int] | None:
        try:
            principal = await self.authenticate(token)
            user = await self.get_user(principal.user_id)
        except (Unauthenticated, NotFound):
            return None
        return user, principal.expires_at

    async def profile(self, principal: Principal) -> dict[str, Any]:
        """The caller's own profile (travelers and agencies have one)."""
        profile = await self._profiles.get(principal.user_id, principal.role)
        if profile is None:
            raise NotFound("no profile")
        return profile

    async def update_profile(self, principal: Principal, fields: dict[str, Any]) -> dict[str, Any]:
        """Replace the caller's profile, and their name when `fields` has one."""
        return await self._profiles.update(principal.user_id, principal.role, fields)

    async def get_user(self, user_id: str) -> User:
        user = await self._users.by_id(user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def find_user(self, email: str) -> User | None:
        return await self._users.by_email(email)

    async def list_users(self, *, role: Role | None, after: str | None, limit: int) -> list[User]:
        return await self._users.page(role=role, after=after, limit=limit)

    async def set_flags(
        self,
        user_id: str,
        *,
        vip: bool | None,
        disabled: bool | None,
        name: str | None = None,
        verified: bool | None = None,
        by: Principal | None = None,
    ) -> User:
        """IT's changes to a user (by IT `by`): IT cannot disable itself, nor the last active IT; a VIP flag
        set by hand is kept with who set it, and the automatic rule then never changes it."""
        if disabled and by is not None and by.user_id == user_id:
            raise Conflict("you cannot disable yourself; ask another IT account", code="cannot_disable_self")
        target = await self.get_user(user_id) if disabled else None
        guard = target is not None and target.role is Role.IT and not target.disabled
        if guard and await self._users.count_active(Role.IT) <= 1:
            raise Conflict(LAST_IT, code="last_it_account")
        setter = by.user_id if by is not None else "it"
        flags: dict[str, Any] = {
            k: v for k, v in (("vip", vip), ("disabled", disabled), ("name", name)) if v is not None
        }
        if vip is not None:
            flags |= {"vip_manual": True, "vip_set_by": setter}
        if verified:
            known = await self._users.by_id(user_id)
            if known is None:
                raise NotFound("no such user")
            if known.role is not Role.AGENCY:
                raise RuleViolation(  # a well-formed request about the wrong kind of user: 422
                    "only agencies are verified",
                    {"fields": {"verified": "the user is not an agency"}},
                    code="not_an_agency",
                )
            flags["verified"] = True
        user = await self._users.set_flags(user_id, flags)
        if user is None:
            raise NotFound("no such user")
        if guard and await self._users.count_active(Role.IT) < 1:
            # Two IT accounts disabling each other at once both passed the check above: the stored state
            # decides afterwards and this change is taken back (both may be refused; no IT left, never).
            await self._users.set_flags(user_id, {"disabled": False})
            await self._forget([user_id])
            raise Conflict(LAST_IT, code="last_it_account")
        if vip is not None and user.role is Role.TRAVELER:
            await self._profiles.set_vip([user_id], vip, setter)
        if vip is not None or disabled is not None:
            # Stored first, then the cached copy dropped: Redis down answers 503 (a retry is harmless) and
            # the copy is dropped before this node's next authentication, or expires within the TTL.
            await self._forget([user_id])
        if disabled:
            await self.close_live_sessions(user_id=user_id)
        log.info("user_flags_changed", user_id=user_id, **flags)
        return user

    async def _new_user(self, email: str, password: str, name: str, role: Role) -> User:
        return User(
            verified=role is not Role.AGENCY,  # IT verifies a self-registered agency
            id=new_id("usr"),
            email=email,
            name=name,
            role=role,
            vip=False,
            disabled=False,
            created_at=datetime.now(UTC),
            password_hash=await self._hash(password),
        )

    def _session(self, user: User, profile: dict[str, Any] | None) -> Session:
        token, expires = self._tokens.issue(user.id, user.role, token_gen=user.token_gen)
        return Session(user=user, token=token, expires_at=expires, profile=profile)

    async def _profile(self, user: User) -> dict[str, Any] | None:
        if user.role not in SELF_REGISTERED:
            return None
        return await self._profiles.get(user.id, user.role)

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return bool(self._hasher.verify(password_hash, password))
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)


async def check_password(password: str, *inputs: str, field: str = "password") -> None:
    """Refuse a weak password (422 weak_password naming the field, with why); `inputs` are the account's own
    words. A rule, not a shape: the schema states the length (10..256), the strength is judged here."""
    why = await asyncio.to_thread(weakness, password, inputs)
    if why is not None:
        raise RuleViolation(
            f"the password is too weak: {why}", {"fields": {field: why}}, code="weak_password"
        )
