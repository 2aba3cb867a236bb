"""The WebSocket session: auth, channels and who may have them, subscribe with snapshot or resume (DESIGN 7).

It speaks messages and knows no socket: frames go out through its transport (transport.py)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import structlog

from actors.broadcast import Broadcaster
from actors.loop import TaskSet
from astro.domain.errors import DomainError, Unauthenticated, Unavailable
from astro.domain.users import Principal, Role
from astro.services.live import LAUNCHES, LAUNCHES_VIP, agency_channel, launch_channel, traveler_channel
from web.ws.const import (
    CLOSE_POLICY,
    CLOSE_SIGNED_OUT,
    DOMAIN_CODES,
    ERR_FORBIDDEN,
    ERR_INTERNAL,
    ERR_INVALID_MESSAGE,
    ERR_TOO_MANY_SUBSCRIPTIONS,
    ERR_UNAUTHENTICATED,
    ERR_UNAVAILABLE,
    ERR_UNKNOWN_CHANNEL,
    SIGNED_OUT_CODES,
    TYPE_AUTH,
    TYPE_ERROR,
    TYPE_EVENT,
    TYPE_PING,
    TYPE_PONG,
    TYPE_SUBSCRIBE,
    TYPE_SUBSCRIBED,
    TYPE_UNSUBSCRIBE,
    WsLimits,
)

log = structlog.get_logger("astro.ws")

_LAUNCH_ID: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
UNAVAILABLE: Final = "live data is unavailable; retry shortly"

Authenticate = Callable[[str], Awaitable[Principal]]


class Outgoing(Protocol):
    """What the session needs of its transport."""

    @property
    def closing(self) -> bool:
        """The socket is closing: nothing more is sent."""
        ...

    def send(self, frame: bytes, key: tuple[str, str] | None = None) -> None:
        """Send a text frame's payload, in order; a queued one with the same key gives way to it."""
        ...

    def overflow(self) -> None:
        """The reader fell too far behind: close with 1013."""
        ...

    def end(self, code: int, reason: str) -> None:
        """Close the socket with this code (what was sent before it still goes out first)."""
        ...


class Refused(Exception):
    """A client request refused with an error frame; the connection stays open."""

    def __init__(self, code: str, message: str, channel: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.channel = code, message, channel


@dataclass(eq=False, slots=True)
class _Sub:
    name: str  # as the client says it
    key: str  # the Broadcaster's channel
    floor: int | None = None  # events up to here are in the snapshot; None: `subscribed` not sent yet
    held: list[tuple[int, bytes, str | None]] = field(default_factory=list)


class SignedOut(Exception):
    """The session's token was revoked or its user disabled: the socket is closing."""


def _frame(message: dict[str, Any]) -> bytes:
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate the client sent, echoed back: escaped, it is valid JSON
        return json.dumps(message, separators=(",", ":")).encode()


def _is_vip(principal: Principal) -> bool:
    return principal.role is Role.TRAVELER and principal.vip


class Session:
    """One client's conversation: who it is, what it watches; a Broadcaster listener."""

    # Thousands per node, most of them idle watchers: no __dict__, and what only some need made on use.
    __slots__ = (
        "_authenticate",
        "_broadcaster",
        "_keys",
        "_limits",
        "_lock",
        "_out",
        "_refused",
        "_subs",
        "_tasks",
        "_token",
        "principal",
    )

    def __init__(
        self, out: Outgoing, broadcaster: Broadcaster, authenticate: Authenticate, limits: WsLimits
    ) -> None:
        self._out = out
        self._broadcaster = broadcaster
        self._authenticate = authenticate
        self._limits = limits
        self.principal: Principal | None = None
        self._token: str | None = None  # the token `principal` came from, checked again on every subscribe
        self._refused = 0  # subscriptions refused for the client's own reasons (they count toward the cap)
        self._subs: dict[str, _Sub] = {}  # by client channel name
        self._keys: dict[str, _Sub] = {}  # by Broadcaster channel
        self._lock = asyncio.Lock()
        self._tasks: TaskSet | None = None  # resubscriptions under way; made for the first

    @property
    def subscriptions(self) -> int:
        return len(self._subs)

    def stop(self) -> None:
        """The socket is closing: leave every channel."""
        for sub in list(self._subs.values()):
            self._drop(sub)

    async def close(self) -> None:
        """End the session's own tasks (resubscriptions under way)."""
        if self._tasks is not None:
            await self._tasks.cancel()

    # Client frames

    def signed_out(self, user_id: str | None, jti: str | None) -> bool:
        """The user (every token) or the token was signed out: when it is this session's, close the socket
        with 4401. Whether it was."""
        principal = self.principal
        if principal is None or not (principal.user_id == user_id or principal.jti == jti):
            return False
        self._end_signed_out("signed out")
        return True

    async def handle(self, data: str | bytes) -> None:
        """One client frame: a JSON object with a known `type`; a refusal is an error frame. Never raises:
        whatever goes wrong answers an error frame and the socket stays."""
        try:
            await self._handle(data)
        except Exception:
            log.exception("ws_frame_failed")
            self._error(ERR_INTERNAL, "something went wrong on our side")

    async def _handle(self, data: str | bytes) -> None:
        if not isinstance(data, str):
            self._error(ERR_INVALID_MESSAGE, "send JSON text frames")
            return
        try:
            msg = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: thousands of nested arrays or objects
            self._error(ERR_INVALID_MESSAGE, "frames must be JSON objects (nested at most a few levels)")
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            known = ", ".join(_HANDLERS)
            self._error(ERR_INVALID_MESSAGE, f'a frame needs a "type": one of {known}')
            return
        try:
            async with self._lock:
                await handler(self, msg)
        except SignedOut:
            return
        except Refused as exc:
            self._error(exc.code, exc.message, exc.channel)
            self._count_refusal(kind)
        except Unavailable as exc:
            log.warning("ws_store_unavailable", error=_why(exc))
            self._error(ERR_UNAVAILABLE, exc.message, msg.get("channel"))
        except DomainError as exc:
            code = next((c for cls, c in DOMAIN_CODES if isinstance(exc, cls)), exc.code)
            self._error(code, exc.message, msg.get("channel"))
            self._count_refusal(kind)
        except OSError as exc:  # a snapshot's store, reached without an adapter that translates
            log.warning("ws_store_unavailable", error=f"{type(exc).__name__}: {exc}")
            self._error(ERR_UNAVAILABLE, UNAVAILABLE, msg.get("channel"))
        except Exception:
            log.exception("ws_unhandled_error", type=kind)
            self._error(ERR_INTERNAL, "something went wrong on our side", msg.get("channel"))

    async def _on_auth(self, msg: dict[str, Any]) -> None:
        token = msg.get("token")
        if not isinstance(token, str) or not token.strip():
            raise Refused(ERR_INVALID_MESSAGE, 'auth needs a "token"')
        principal = await self._authenticate(token.strip())
        self._become(principal, token.strip())

    def _become(self, principal: Principal, token: str) -> None:
        """Speak for this principal from now on; channels it may not have are left."""
        before = self.principal
        if before is not None and principal.user_id != before.user_id:
            for sub in [s for s in self._subs.values() if s.name in (Role.AGENCY, Role.TRAVELER)]:
                self._drop(sub)
        if not _is_vip(principal):  # no longer VIP: the VIP list is left; the client subscribes again
            for sub in [s for s in self._subs.values() if s.key == LAUNCHES_VIP]:
                self._drop(sub)
                self._error(ERR_FORBIDDEN, "not a VIP any more: subscribe to launches again", sub.name)
        self.principal, self._token = principal, token

    async def recheck(self) -> None:
        """Check the session's token again now (sign-outs may have been missed); never raises."""
        async with self._lock:
            try:
                await self._recheck()
            except SignedOut:
                return
            except Exception as exc:  # the store is down, say: the next subscribe checks again
                log.warning("ws_recheck_failed", error=f"{type(exc).__name__}: {exc}")

    async def _recheck(self) -> None:
        """The token may have been revoked, or its user disabled, since it was sent: ask again. Then the
        socket is closed (4401); an expired token only loses the private channels (_resolve)."""
        if self._token is None:
            return
        try:
            principal = await self._authenticate(self._token)
        except Unauthenticated as exc:
            if exc.code not in SIGNED_OUT_CODES:
                return
            self._error(ERR_UNAUTHENTICATED, exc.message)
            self._end_signed_out(exc.message)
            raise SignedOut from exc
        self._become(principal, self._token)

    def _end_signed_out(self, reason: str) -> None:
        self.principal = self._token = None
        self.stop()
        self._out.end(CLOSE_SIGNED_OUT, reason)

    def _count_refusal(self, kind: object) -> None:
        """A refused subscription counts toward the cap; a client refused that often is closed (1008)."""
        if kind != TYPE_SUBSCRIBE:
            return
        self._refused += 1
        if self._refused >= self._limits.max_subscriptions:
            self._out.end(CLOSE_POLICY, "too many refused subscriptions")

    async def _on_subscribe(self, msg: dict[str, Any]) -> None:
        name, since, epoch = msg.get("channel"), msg.get("since"), msg.get("epoch")
        if not isinstance(name, str) or not name:
            raise Refused(ERR_INVALID_MESSAGE, 'subscribe needs a "channel"')
        if since is not None and (type(since) is not int or since < 0):
            raise Refused(ERR_INVALID_MESSAGE, '"since" must be an offset (a whole number ≥ 0)', name)
        if epoch is not None and not isinstance(epoch, str):
            raise Refused(ERR_INVALID_MESSAGE, '"epoch" must be a string', name)
        await self._recheck()
        key = self._resolve(name)
        old = self._subs.get(name)
        if old is None and len(self._subs) + self._refused >= self._limits.max_subscriptions:
            raise Refused(
                ERR_TOO_MANY_SUBSCRIPTIONS, "unsubscribe from a channel first (refused ones count too)", name
            )
        if old is not None:
            self._drop(old)
        sub = _Sub(name, key)
        self._subs[name], self._keys[key] = sub, sub
        # Listen before reading the position: no event falls between the snapshot and the live ones.
        self._broadcaster.subscribe(key, self)
        try:
            await self._activate(sub, since, epoch)
        except BaseException:
            self._drop(sub)
            raise

    async def _on_unsubscribe(self, msg: dict[str, Any]) -> None:
        name = msg.get("channel")
        if not isinstance(name, str) or not name:
            raise Refused(ERR_INVALID_MESSAGE, 'unsubscribe needs a "channel"')
        sub = self._subs.get(name)
        if sub is None:
            self._resolve(name)  # an unknown name is an error; a known one not subscribed is a no-op
            return
        self._drop(sub)

    async def _on_ping(self, msg: dict[str, Any]) -> None:
        self._out.send(_frame({"type": TYPE_PONG}))

    # Channels

    def _resolve(self, name: str) -> str:
        """The Broadcaster channel behind a client channel name, if this client may have it."""
        if name == LAUNCHES:
            principal = self.principal
            vip = principal is not None and _is_vip(principal) and principal.expires_at >= time.time()
            return LAUNCHES_VIP if vip else LAUNCHES
        if name.startswith("launch:"):
            if not _LAUNCH_ID.match(name.removeprefix("launch:")):
                raise Refused(ERR_UNKNOWN_CHANNEL, "launch:<id> needs a launch id", name)
            return launch_channel(name.removeprefix("launch:"))
        for role, channel in ((Role.AGENCY, agency_channel), (Role.TRAVELER, traveler_channel)):
            if name == role.value:
                principal = self.principal
                if principal is None or principal.expires_at < time.time():
                    raise Refused(
                        ERR_UNAUTHENTICATED, f"send auth with a valid {role.value} token first", name
                    )
                if principal.role != role:
                    raise Refused(ERR_FORBIDDEN, f"the {name} channel is for {role.value} accounts", name)
                return channel(principal.user_id)
        raise Refused(ERR_UNKNOWN_CHANNEL, "channels: launch:<id>, launches, agency, traveler", name)

    async def _activate(
        self, sub: _Sub, since: int | None, epoch: str | None, *, restarted: bool = False
    ) -> None:
        """Send `subscribed` (with the snapshot or the missed events), then the events held meanwhile."""
        broadcaster = self._broadcaster
        checked = None
        if await broadcaster.peek(sub.key) is None:
            # Nothing was ever published on the channel (or it expired): may this client have it at all?
            # A refusal (no such launch, VIP only) must leave nothing behind in the store.
            checked = await broadcaster.snapshot(self.principal, sub.key)
        current, offset = await broadcaster.position(sub.key)
        missed: list[dict[str, Any]] | None = None
        if since is not None and epoch == current:
            events = await broadcaster.since(sub.key, current, since)
            if events is not None:
                missed = [e for e in events if e["offset"] <= offset]
        snapshot = None
        if missed is None:  # the snapshot taken before still holds when no event came since: offset 0
            fresh = checked is not None and offset == 0
            snapshot = checked if fresh else await broadcaster.snapshot(self.principal, sub.key)
        if self._keys.get(sub.key) is not sub or self._out.closing:
            return
        message: dict[str, Any] = {
            "type": TYPE_SUBSCRIBED,
            "channel": sub.name,
            "epoch": current,
            "offset": offset,
            "snapshot": snapshot,
        }
        if since is not None or restarted:
            message["recovered"] = missed is not None
        if missed is not None:
            message["missed"] = [{"type": TYPE_EVENT, "channel": sub.name, **e} for e in missed]
        self._out.send(_frame(message))
        sub.floor = offset
        held, sub.held = sub.held, []
        for event_offset, frame, coalesce in held:
            self._forward(sub, event_offset, frame, coalesce)

    def _drop(self, sub: _Sub) -> None:
        if self._subs.get(sub.name) is sub:
            del self._subs[sub.name]
        if self._keys.get(sub.key) is sub:
            del self._keys[sub.key]
            self._broadcaster.unsubscribe(sub.key, self)

    # Broadcaster listener: called synchronously, never waits on the socket

    def deliver(self, channel: str, offset: int, event: str, frame: bytes, coalesce: str | None) -> None:
        sub = self._keys.get(channel)
        if sub is None or self._out.closing:
            return
        if sub.floor is None:
            sub.held.append((offset, frame, coalesce))
            if len(sub.held) > self._limits.queue_size:
                self._out.overflow()
            return
        self._forward(sub, offset, frame, coalesce)

    def restart(self, channel: str) -> None:
        sub = self._keys.get(channel)
        if sub is None or self._out.closing:
            return
        sub.floor, sub.held = None, []
        if self._tasks is None:
            self._tasks = TaskSet()
        self._tasks.spawn(self._resubscribe(sub))

    async def _resubscribe(self, sub: _Sub) -> None:
        async with self._lock:
            if self._keys.get(sub.key) is not sub:
                return
            try:
                await self._activate(sub, None, None, restarted=True)
            except Exception as exc:
                self._drop(sub)
                message = exc.message if isinstance(exc, DomainError) else "live data is unavailable"
                self._error(ERR_UNAVAILABLE, f"the channel had to restart and could not: {message}", sub.name)

    def _forward(self, sub: _Sub, offset: int, frame: bytes, coalesce: str | None) -> None:
        if sub.floor is None or offset <= sub.floor:
            return
        sub.floor = offset
        self._out.send(frame, (sub.key, coalesce) if coalesce else None)

    def _error(self, code: str, message: str, channel: Any = None) -> None:
        frame: dict[str, Any] = {"type": TYPE_ERROR, "code": code, "message": message}
        if isinstance(channel, str):
            frame["channel"] = channel
        self._out.send(_frame(frame))


# What each client message type is handled by (one table for every session).
_HANDLERS: Final[dict[str, Callable[[Session, dict[str, Any]], Awaitable[None]]]] = {
    TYPE_AUTH: Session._on_auth,
    TYPE_SUBSCRIBE: Session._on_subscribe,
    TYPE_UNSUBSCRIBE: Session._on_unsubscribe,
    TYPE_PING: Session._on_ping,
}


def _why(exc: Unavailable) -> str:
    """The store's own error behind an Unavailable, for the log."""
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}"
