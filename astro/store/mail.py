"""Email over SMTP: sending and probing through aiosmtplib (the MailSender port), and the embedded sink
(aiosmtpd) that keeps every message in SystemDB."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import Message
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session
from pymongo.asynchronous.database import AsyncDatabase

from astro.domain.errors import DomainError, Unavailable

Row = dict[str, Any]
# Errors that mean the server cannot be reached (not that it refused one message): the rest of a
# dispatcher round is not tried.
UNREACHABLE: Final = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    aiosmtplib.SMTPAuthenticationError,
    OSError,
    TimeoutError,
)
SMTP_ERRORS: Final = (aiosmtplib.SMTPException, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """The SMTP server in use: ASTRO_SMTP_URL (with credentials; implicit TLS for smtps://) or the sink."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @classmethod
    def of(cls, smtp_url: str | None, address: tuple[str, int], timeout: float) -> SmtpTarget:
        host, port = address
        if smtp_url is None:
            return cls(host, port, timeout=timeout)
        parts = urlsplit(smtp_url)
        return cls(
            host,
            port,
            tls=parts.scheme == "smtps",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            timeout=timeout,
        )


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def translate(exc: BaseException) -> Exception:
    """An SMTP error as the port states it: Unavailable when the server cannot be reached, else a
    refusal of this message (code mail_refused); the text is the server's own, kept for the queue."""
    if isinstance(exc, UNREACHABLE):
        return Unavailable(describe(exc))
    return DomainError(describe(exc), code="mail_refused")


class SmtpConnection:
    """One connected (and, with credentials, logged-in) SMTP client."""

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self._client = client

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected)

    async def send(self, message: Message) -> None:
        try:
            await self._client.send_message(message)
        except SMTP_ERRORS as exc:
            raise translate(exc) from exc

    async def close(self) -> None:
        """QUIT politely when connected, else just drop the transport."""
        await _close(self._client)


class SmtpSender:
    """The MailSender of the SMTP server in use: connections to it, and a probe of it."""

    def __init__(self, target: SmtpTarget) -> None:
        self.target = target

    def _client(self) -> aiosmtplib.SMTP:
        t = self.target
        return aiosmtplib.SMTP(
            hostname=t.host,
            port=t.port,
            use_tls=t.tls,
            username=t.username,
            password=t.password,
            timeout=t.timeout,
        )

    async def connect(self) -> SmtpConnection:
        client = self._client()
        try:
            await client.connect()
        except SMTP_ERRORS as exc:
            raise translate(exc) from exc
        return SmtpConnection(client)

    async def check(self) -> Row:
        """Connect (TLS and login included), expect the greeting, say NOOP and QUIT."""
        t = self.target
        started = time.perf_counter()
        shown: Row = {"host": t.host, "port": t.port, "tls": t.tls}
        client = self._client()
        try:
            await client.connect(timeout=min(t.timeout, 5.0))
            await client.noop()
        except SMTP_ERRORS as exc:
            return {**shown, "reachable": False, "error": describe(exc), "latency_ms": None}
        finally:
            await _close(client)
        latency = round((time.perf_counter() - started) * 1000, 2)
        return {**shown, "reachable": True, "error": None, "latency_ms": latency}


async def _close(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        try:
            await client.quit(timeout=2.0)
            return
        except SMTP_ERRORS:
            pass
    client.close()


class MailboxHandler:
    """aiosmtpd handler: every accepted message becomes a document in `mailbox`."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._mailbox = db["mailbox"]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = message_from_bytes(raw, policy=policy.default)
        body = parsed.get_body(preferencelist=("plain", "html"))
        await self._mailbox.insert_one(
            {
                "received_at": datetime.now(UTC),
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": str(parsed.get("Subject", "")),
                "body": body.get_content() if body is not None else "",
                "message_id": str(parsed.get("Message-ID", "")),
            }
        )
        return "250 Message accepted for delivery"


async def start_sink(
    db: AsyncDatabase[dict[str, Any]], host: str = "127.0.0.1", port: int = 0
) -> asyncio.Server:
    """A real SMTP server on the running loop; port 0 picks a free port."""
    handler = MailboxHandler(db)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SMTP(handler, hostname="astro-sink", loop=loop), host, port)
