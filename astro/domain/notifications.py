"""Notifications: queue statuses and the moves IT may make, templates and their placeholders, backoff."""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter
from typing import Any, Final

from astro.domain.errors import Conflict, RuleViolation

STATUSES: Final = ("pending", "sending", "sent", "failed", "held", "cancelled")
# The queue proper: what is not finished yet (sent and cancelled are history).
LIVE_STATUSES: Final = ("pending", "sending", "held", "failed")
EVENTS: Final = (
    "launch_scheduled",
    "launch_confirmed",
    "launch_delayed",
    "launch_aborted",
    "launch_successful",
    "launch_failed",
    "booking_confirmed",
    "booking_cancelled",
    "invoice_issued",
    "payment_received",
    "password_reset",
    "waitlist_offer",
    "waitlist_closed",
)
MAX_ATTEMPTS: Final = 5
PLACEHOLDERS: Final = frozenset(
    {
        "name",
        "mission",
        "destination",
        "date",
        "seats",
        "seats_text",
        "seats_available",
        "seats_available_text",
        "price",
        "amount",
        "refund",
        "refund_pct",
        "invoice_number",
        "kind",
        "due_date",
        "balance",
        "booking_id",
        "link",
        "reason_line",
        "ticket_link",
        "ticket_line",
        "invoice_link",
        "invoice_line",
        "seats_are_text",
        "offer_until",
        "offer_until_date",
        "status_text",
    }
)
# Destinations as notifications written before they were named for people stored them ("low earth").
_OLD_DESTINATIONS: Final = {"low earth": "Low Earth orbit", "moon": "the Moon", "mars": "Mars"}

# For each status IT may set, the statuses it may be set from (the dispatcher owns `sending`).
MOVES: Final[Mapping[str, tuple[str, ...]]] = {
    "held": ("pending",),
    "pending": ("held", "failed"),
    "cancelled": ("pending", "held", "failed"),
    "sent": ("pending", "held", "failed"),
}


def check_move(current: str, target: str) -> None:
    """Raise 409 invalid_transition unless IT may move a notification from current to target."""
    if current not in MOVES.get(target, ()):
        raise Conflict(
            f"a {current} notification cannot be set to {target}",
            {"from": current, "to": target, "allowed_from": list(MOVES.get(target, ()))},
            code="invalid_transition",
        )


def placeholders(text: str, field: str) -> list[str]:
    """The placeholders of a template text; 422 invalid_template naming `field` for a malformed or unknown
    one (a well-formed string the template language refuses).

    Only plain `{name}` is accepted: no attribute or index access, conversion or format spec, so
    rendering can neither reach into objects nor fail on a value's type."""
    try:
        parsed = list(Formatter().parse(text))
    except ValueError as exc:
        raise RuleViolation(
            f"{field} is not a valid template: {exc} (write {{{{ and }}}} for literal braces)",
            {"fields": {field: str(exc)}},
            code="invalid_template",
        ) from None
    found: list[str] = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            reason = "unknown placeholder" if name not in PLACEHOLDERS else "only plain {name} placeholders"
            raise RuleViolation(
                f"{field}: {reason} {shown}; allowed: {', '.join(sorted(PLACEHOLDERS))}",
                {"fields": {field: f"{reason} {shown}"}, "placeholder": name},
                code="invalid_template",
            )
        found.append(name)
    return found


class _Blank(dict[str, str]):
    """Placeholders with no value render empty."""

    def __missing__(self, key: str) -> str:
        return ""


def count(n: object, noun: str) -> str:
    """A number of things as a person writes it: '1 seat', '2 seats' (a non-number as it is)."""
    try:
        number = int(str(n))
    except ValueError:
        return f"{n} {noun}s"
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def values(data: Mapping[str, Any], base_url: str) -> dict[str, str]:
    """The placeholder values of a notification: its data, plus the links, the lines that hold them
    (`reason_line`, `ticket_line`, `invoice_line`: empty when there is nothing to say) and the counts
    in words (`seats_text`: "1 seat", "2 seats")."""
    out = {k: str(v) for k, v in data.items() if v is not None}
    path = out.get("link_path", "")
    out["link"] = f"{base_url}{path}" if path else ""
    reason = out.get("reason", "").strip()
    out["reason_line"] = f"\nReason: {reason}" if reason else ""
    out["destination"] = _OLD_DESTINATIONS.get(out.get("destination", ""), out.get("destination", ""))
    for name in ("seats", "seats_available"):
        if name in out:
            out[f"{name}_text"] = count(out[name], "seat")
    if "seats" in out:  # "1 seat is", "2 seats are": a waiting-list offer's subject
        out["seats_are_text"] = out["seats_text"] + (" is" if out["seats_text"].startswith("1 ") else " are")
    ticket = out.get("ticket_path", "")
    out["ticket_link"] = f"{base_url}{ticket}" if ticket else ""
    out["ticket_line"] = f"\nYour e-ticket and receipt (PDF): {out['ticket_link']}" if ticket else ""
    invoice = out.get("invoice_path", "")
    out["invoice_link"] = f"{base_url}{invoice}" if invoice else ""
    out["invoice_line"] = f"\nSee it and download the PDF: {out['invoice_link']}" if invoice else ""
    return out


def authored_by(template: str, data: Mapping[str, Any], author: str) -> str:
    """The closing line that names the launch's agency as the author of the free text the e-mail quotes
    (its mission name, and its reason when there is one), so neither passes for our words; "" when the
    template (subject and body) quotes neither. The agency chose its own name too: it is quoted, and
    called an agency."""
    used = {name for _, name, _, _ in Formatter().parse(template) if name}
    quoted = ["mission name"] if "mission" in used and data.get("mission") else []
    if "reason_line" in used and str(data.get("reason") or "").strip():
        quoted.append("reason")
    if not quoted:
        return ""
    what = " and ".join(quoted)
    verb = "were" if len(quoted) > 1 else "was"
    return (
        f"\n\nThe launch's {what} {verb} written by the agency \u201c{author}\u201d, not by AstroBookings.\n"
    )


def render(
    subject: str, body: str, data: Mapping[str, Any], base_url: str, *, author: str | None = None
) -> tuple[str, str]:
    """Subject (one line) and body of a template filled in with the notification's data; with `author`
    (the launch's agency, read when rendering: it is not in the stored data) the body ends naming it as
    the author of the mission and reason it wrote."""
    filled = _Blank(values(data, base_url))
    text = body.format_map(filled)
    closing = authored_by(f"{subject}\n{body}", data, author) if author else ""
    if closing:
        text = text.rstrip("\n") + closing
    return " ".join(subject.format_map(filled).split()), text


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next try after `attempts` failed ones: base, 2 base, 4 base, ... capped."""
    return float(min(base * 2 ** max(attempts - 1, 0), cap))
