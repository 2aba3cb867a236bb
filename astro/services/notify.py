"""Notify: rendering notification e-mails and handing them to the mail sender; the queue's IT controls,
templates, inbox, mailbox."""

from __future__ import annotations

from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr
from typing import Any, Final, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from astro.domain import notifications as rules
from astro.domain.errors import DomainError, NotFound

log = structlog.get_logger("astro.notify")
Row = dict[str, Any]
_UTF8_QP: Final = Charset("utf-8")
_UTF8_QP.body_encoding = QP
SEND_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


# -- ports ---------------------------------------------------------------------------------------


class MailConnection(Protocol):
    """One open connection to the mail server."""

    @property
    def connected(self) -> bool: ...

    async def send(self, message: Message) -> None:
        """Hand one message over; Unavailable when the server is gone, a DomainError when it refuses."""

    async def close(self) -> None: ...


class MailSender(Protocol):
    """The mail server in use (SMTP in production)."""

    async def connect(self) -> MailConnection:
        """A connection ready to send; Unavailable when the server cannot be reached or refuses the login."""
        ...

    async def check(self) -> Row:
        """Whether the server answers: {host, port, tls, reachable, error, latency_ms}; never raises."""
        ...


class NotificationQueue(Protocol):
    """The notification rows as IT and their recipients see them, and the templates."""

    async def page(
        self, *, status: str | None, event: str | None, recipient: str | None, after: str | None, limit: int
    ) -> list[Row]: ...
    async def queue(self) -> Row: ...
    async def move(self, notification_id: str, target: str) -> Row: ...
    async def templates(self) -> dict[str, Row]: ...
    async def template(self, event: str) -> Row: ...
    async def save_template(self, event: str, subject: str, body: str, user_id: str) -> Row: ...
    async def inbox(self, recipient_id: str, after: str | None, limit: int) -> list[Row]: ...
    async def inbox_item(self, recipient_id: str, notification_id: str) -> Row | None: ...
    async def authors(self, launch_ids: list[str]) -> dict[str, str]: ...
    async def last_hour(self) -> Row: ...


class Mailbox(Protocol):
    """What the embedded SMTP sink received."""

    async def page(self, to: str | None, after: str | None, limit: int) -> list[Row]: ...


class Mailer:
    """Builds the e-mail of a notification, and connects to the mail server through its sender."""

    def __init__(self, sender: MailSender, mail_from: str) -> None:
        self.sender = sender
        self.mail_from = mail_from
        domain = parseaddr(mail_from)[1].rpartition("@")[2]
        self._msgid_domain = domain or "astrobookings"
        self._from = formataddr(parseaddr(mail_from), charset="utf-8")

    async def open(self) -> MailConnection:
        """A connection ready to send (logged in, with credentials)."""
        return await self.sender.connect()

    def message(self, row: Row, subject: str, body: str) -> Message:
        """The email of one notification; its Message-ID is the notification id, stable across retries.

        Built as a compat32 message: several times cheaper than EmailMessage's header registry, which
        was most of the dispatcher's CPU time. UTF-8 throughout, quoted-printable body (so no line
        grows past SMTP's limit), RFC 2047 words for non-ASCII names and subjects."""
        msg = MIMEText(body, "plain", _UTF8_QP)  # type: ignore[arg-type]  # a Charset works (and is documented)
        msg["From"] = self._from
        name = str(row["data"].get("name") or "") if isinstance(row["data"], dict) else ""
        msg["To"] = formataddr((" ".join(name.split()), row["recipient_email"]), charset="utf-8")
        msg["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")  # type: ignore[assignment]
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = f"<{row['id']}@{self._msgid_domain}>"
        msg["X-Astro-Notification"] = row["id"]
        msg["X-Astro-Event"] = row["event"]
        return msg

    async def check(self) -> Row:
        return await self.sender.check()


def describe(exc: BaseException) -> str:
    """An error as one line for the queue and the logs; a domain error's own text, with its cause when
    the text does not say it already."""
    if isinstance(exc, DomainError):
        cause = exc.__cause__
        text = exc.message
        if cause is not None and describe(cause) not in text:
            text = f"{text} ({describe(cause)})"
        return text
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class NotifyMetrics:
    """Delivery counters, send latency and the queue by status, in the app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.sent = Counter(
            "astro_notifications_sent",
            "Notifications delivered to the SMTP server",
            ["event"],
            registry=registry,
        )
        self.failed = Counter(
            "astro_notifications_failed",
            "Failed delivery attempts; outcome retry (will be tried again) or failed (gave up)",
            ["event", "outcome"],
            registry=registry,
        )
        self.queue = Gauge(
            "astro_notification_queue",
            "Unfinished notifications by status (refreshed by the dispatcher every round)",
            ["status"],
            registry=registry,
        )
        self.send_seconds = Histogram(
            "astro_notification_send_seconds",
            "Time to hand one email to the SMTP server",
            buckets=SEND_BUCKETS,
            registry=registry,
        )

    def set_queue(self, counts: dict[str, int]) -> None:
        for status, n in counts.items():
            self.queue.labels(status).set(n)


class NotifyService:
    """IT's control of the queue and templates, a user's inbox, the sink's mailbox, SMTP status."""

    def __init__(self, store: NotificationQueue, mailbox: Mailbox, mailer: Mailer, base_url: str) -> None:
        self.store = store
        self._mailbox = mailbox
        self.mailer = mailer
        self.base_url = base_url

    async def notifications(
        self, *, status: str | None, event: str | None, recipient: str | None, after: str | None, limit: int
    ) -> list[Row]:
        return await self.store.page(
            status=status, event=event, recipient=recipient, after=after, limit=limit
        )

    async def queue(self) -> Row:
        return await self.store.queue()

    async def move(self, notification_id: str, status: str, user_id: str) -> Row:
        """IT holds, releases, retries, cancels or marks as sent (409 invalid_transition otherwise)."""
        row = await self.store.move(notification_id, status)
        log.info(
            "notification_status_set",
            notification_id=notification_id,
            notify_event=row["event"],
            status=status,
            user_id=user_id,
        )
        return row

    async def template(self, event: str) -> Row:
        return await self.store.template(event)

    async def save_template(self, event: str, subject: str, body: str, user_id: str) -> Row:
        """Replace an event's template; every placeholder must be a known one (400 names it)."""
        rules.placeholders(subject, "subject")
        rules.placeholders(body, "body")
        row = await self.store.save_template(event, subject, body, user_id)
        log.info("notification_template_saved", notify_event=event, user_id=user_id)
        return row

    async def inbox(self, user_id: str, after: str | None, limit: int) -> list[Row]:
        """The caller's notifications, newest first, with the subject sent or the current template's."""
        rows = await self.store.inbox(user_id, after, limit)
        if not rows:
            return rows
        templates = await self.store.templates()
        for row in rows:
            if row["subject"] is None and row["event"] in templates:
                tpl = templates[row["event"]]
                row["subject"] = self.render(tpl, row)[0]
        return rows

    async def inbox_message(self, user_id: str, notification_id: str) -> Row:
        """One of the caller's notifications with its full text (404 for anyone else's: the same answer
        as for none). The subject is the one sent; the body is rendered from the event's template now,
        as the dispatcher renders it (the queue keeps the data, not the text)."""
        row = await self.store.inbox_item(user_id, notification_id)
        if row is None:
            raise NotFound("no such message")
        template = (await self.store.templates()).get(row["event"])
        if template is None:
            return {**row, "body": ""}
        launch_id = (row["data"] or {}).get("launch_id")
        authors = await self.store.authors([str(launch_id)]) if launch_id else {}
        subject, body = rules.render(
            template["subject"],
            template["body"],
            row["data"] or {},
            self.base_url,
            author=authors.get(str(launch_id)) if launch_id else None,
        )
        return {**row, "subject": row["subject"] or subject, "body": body}

    def render(self, template: Row, row: Row) -> tuple[str, str]:
        return rules.render(template["subject"], template["body"], row["data"] or {}, self.base_url)

    async def mailbox(self, to: str | None, after: str | None, limit: int) -> list[Row]:
        return await self._mailbox.page(to, after, limit)

    async def smtp_status(self) -> Row:
        return await self.mailer.check()

    async def last_hour(self) -> Row:
        return await self.store.last_hour()
