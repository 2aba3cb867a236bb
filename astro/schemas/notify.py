"""NotifyAPI models: the queue, IT's status moves, templates, status, inbox and the sink's mailbox."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from astro.schemas.common import NOT_BLANK, WS, Request, Response

Status = Literal["pending", "sending", "sent", "failed", "held", "cancelled"]


class NotificationOut(Response):
    id: str
    event: str
    recipient_id: str
    recipient_role: str
    recipient_email: str
    status: Status
    attempts: int = Field(description="delivery attempts made")
    next_attempt_at: datetime
    last_error: str | None
    claimed_by: str | None = Field(description="the node sending it or that last did")
    subject: str | None = Field(description="the subject it was sent with")
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime
    data: dict[str, Any] = Field(description="the values of the template's placeholders")


class NotificationPage(Response):
    items: list[NotificationOut]
    next_cursor: str | None = None


class NotificationEnvelope(Response):
    notification: NotificationOut


class StatusChange(Request):
    status: Status = Field(
        description="held (from pending), pending (release a held one, or retry a failed one), "
        "cancelled or sent (from pending, held or failed); anything else is 409 invalid_transition"
    )


class QueueCounts(Response):
    pending: int
    sending: int
    sent: int
    failed: int
    held: int
    cancelled: int


class QueueOut(Response):
    counts: QueueCounts
    oldest_pending_at: datetime | None
    oldest_pending_age_seconds: float | None = Field(description="null when nothing is pending")


class SmtpStatus(Response):
    reachable: bool
    host: str
    port: int
    tls: bool
    error: str | None
    latency_ms: float | None


class DispatcherStatus(Response):
    running: bool
    node: str
    poll_interval_seconds: float
    started_at: datetime | None
    last_round_at: datetime | None
    last_success_at: datetime | None = Field(description="the last email this node delivered")
    last_error: str | None
    last_error_at: datetime | None
    sent_since_start: int
    failed_attempts_since_start: int


class NotifyStatus(Response):
    smtp: SmtpStatus
    dispatcher: DispatcherStatus
    sent_last_hour: int = Field(description="delivered in the last hour, every node")
    failed_last_hour: int = Field(description="gave up (status failed) in the last hour, every node")


# One line, not blank (stated as a pattern, so the OpenAPI document says it); a body: not blank.
Subject = Annotated[
    str,
    StringConstraints(min_length=1, max_length=300, pattern=f"^[^\\r\\n\\x00]*[^{WS}\\x00][^\\r\\n\\x00]*$"),
]
Body = Annotated[str, StringConstraints(min_length=1, max_length=20_000, pattern=NOT_BLANK)]


class TemplateIn(Request):
    subject: Subject
    body: Body


class TemplateOut(Response):
    event: str
    subject: str
    body: str
    placeholders: list[str] = Field(description="the placeholders a template may use")
    updated_at: datetime
    updated_by: str | None


class TemplateEnvelope(Response):
    template: TemplateOut


class InboxItem(Response):
    id: str
    event: str
    status: Status
    subject: str | None
    created_at: datetime
    sent_at: datetime | None


class InboxMessage(InboxItem):
    body: str = Field(description="the full text of the e-mail")
    recipient_email: str = Field(description="the address it was (or will be) sent to")


class InboxEnvelope(Response):
    message: InboxMessage


class InboxPage(Response):
    items: list[InboxItem]
    next_cursor: str | None = None


class MailOut(Response):
    id: str
    received_at: datetime
    mail_from: str | None = Field(description="the envelope sender")
    to: list[str] = Field(description="the envelope recipients")
    subject: str
    body: str
    message_id: str


class MailPage(Response):
    items: list[MailOut]
    next_cursor: str | None = None
