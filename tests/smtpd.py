"""Notification test helpers: a real SMTP server (aiosmtpd on the test's loop) that keeps what it
receives, can be stopped, started again on the same port, made to refuse messages or to require a
login; and the default templates put back after the per-test reset."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Final

import asyncpg
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from astro.store.postgres import MIGRATIONS_DIR

WAIT = 10.0


@dataclass
class Received:
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def notification_id(self) -> str:
        return str(self.message["X-Astro-Notification"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        return str(text).replace("\r\n", "\n")


class SmtpServer:
    """Start with `await start()`; `url` is the ASTRO_SMTP_URL that reaches it."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.received: list[Received] = []
        self.credentials = credentials
        # An SMTP reply to give at DATA instead of accepting (e.g. "451 4.3.0 try again later").
        self.refuse_with: str | None = None
        self.port = 0
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()
        self._connections: list[SMTP] = []

    @property
    def url(self) -> str:
        user = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"smtp://{user}127.0.0.1:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        options: dict[str, Any] = {"hostname": "test-smtp", "loop": loop}
        if self.credentials is not None:
            options.update(auth_required=True, auth_require_tls=False, authenticator=self._authenticate)

        def connection() -> SMTP:
            protocol = SMTP(self, **options)
            self._connections.append(protocol)
            return protocol

        self._server = await loop.create_server(connection, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for protocol in self._connections:
                if protocol.transport is not None:
                    protocol.transport.close()
            self._connections.clear()
            await self._server.wait_closed()
            self._server = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.credentials is not None
            and (data.login.decode(), data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_with is not None:
            return self.refuse_with
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(list(envelope.rcpt_tos), parsed))
        self._changed.set()
        return "250 OK"

    def per_notification(self) -> Counter[str]:
        return Counter(r.notification_id for r in self.received)

    async def until(self, done: Callable[[], bool], timeout: float = WAIT) -> None:  # noqa: ASYNC109
        async def wait() -> None:
            while not done():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    async def count(self, n: int, timeout: float = WAIT) -> None:  # noqa: ASYNC109
        await self.until(lambda: len(self.received) >= n, timeout)


TEMPLATE_MIGRATIONS: Final = ("014_human_templates.sql",)
_SEED = re.compile(r"INSERT INTO notification_templates\b.*?\);\s*(?:\n|$)", re.DOTALL)


async def seed_templates(pool: asyncpg.Pool) -> None:
    """Put back the default templates of the migrations (the per-test reset empties every table)."""
    assert _SEED.search((MIGRATIONS_DIR / "004_notifications.sql").read_text()), (
        "004_notifications.sql no longer seeds notification_templates"
    )
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        for match in _SEED.finditer(path.read_text()):
            statement = match.group(0).strip().removesuffix(";")
            await pool.execute(statement + " ON CONFLICT (event) DO NOTHING")
    for later in TEMPLATE_MIGRATIONS:  # the migrations that rewrote the shipped texts since
        await pool.execute((MIGRATIONS_DIR / later).read_text())
