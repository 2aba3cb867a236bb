"""Email: the embedded SMTP sink (aiosmtpd) that keeps every message in SystemDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from pymongo.asynchronous.database import AsyncDatabase


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
