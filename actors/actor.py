"""An actor and its messages: the base class, the envelope a message travels in, the runtime's errors."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog

from astro.domain.errors import DomainError

log = structlog.get_logger("astro.actors")


class ActorError(Exception):
    """Base of the runtime's own errors."""


class AskTimeout(ActorError):
    """ask() got no reply within its timeout."""


class ActorStopped(ActorError):
    """The actor stopped (shutdown, failed start, gave up restarting) before handling the message."""


class ActorCrashed(ActorError):
    """The batch holding the message crashed the actor."""


class MailboxFull(ActorError):
    """The actor's bounded mailbox has no room."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message in a mailbox; reply is the asker's future, None for tell."""

    message: object
    reply: asyncio.Future[Any] | None


class Actor:
    """Base class: override on_start, receive (or receive_batch), on_stop, can_passivate."""

    # Subclasses without __slots__ get a __dict__ anyway; these keep the base cheap.
    __slots__ = ("_idle_since", "key")

    mailbox_size: ClassVar[int] = 10_000
    max_batch: ClassVar[int] = 512
    key: str
    _idle_since: float

    async def on_start(self) -> None:
        """Load state before the first message; raising means the start failed."""

    async def on_stop(self) -> None:
        """Release resources on a clean stop or passivation (never after a crash)."""

    async def receive(self, message: object) -> Any:
        """Handle one message and return the reply; raise a DomainError to refuse it."""
        raise NotImplementedError(f"{type(self).__name__} does not handle {type(message).__name__}")

    async def receive_batch(self, batch: list[Envelope]) -> None:
        """Handle the messages in order; overrides may decide all first and commit once."""
        for env in batch:
            try:
                reply = await self.receive(env.message)
            except DomainError as exc:
                if env.reply is None:
                    log.info("actor_tell_refused", key=self.key, error=repr(exc))
                elif not env.reply.done():
                    env.reply.set_exception(exc)
                continue
            if env.reply is not None and not env.reply.done():
                env.reply.set_result(reply)

    def can_passivate(self) -> bool:
        """Whether the actor may be stopped when idle; say no while holding outstanding work."""
        return True

    @property
    def idle_since(self) -> float:
        """Time (the system's clock) of the last message handled, or of the start."""
        return self._idle_since
