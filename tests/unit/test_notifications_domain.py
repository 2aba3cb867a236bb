"""Notification rules without I/O: rendering, placeholder checks, IT's moves, the backoff."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from astro.domain.errors import Conflict, RuleViolation
from astro.domain.notifications import (
    LIVE_STATUSES,
    MOVES,
    PLACEHOLDERS,
    STATUSES,
    check_move,
    placeholders,
    render,
    retry_delay,
)


def test_render_fills_placeholders_and_leaves_missing_ones_empty() -> None:
    subject, body = render(
        "Hi {name} {seats}", "{mission} on {date}{reason_line}", {"name": "Ann"}, "http://x"
    )
    assert subject == "Hi Ann"
    assert body == " on "


def test_render_builds_the_link_from_the_public_url_and_the_path() -> None:
    _, body = render("s", "{link}", {"link_path": "/launches/ares-mars"}, "https://astro.example")
    assert body == "https://astro.example/launches/ares-mars"
    assert render("s", "[{link}]", {}, "https://astro.example")[1] == "[]"


def test_reason_line_appears_only_with_a_reason() -> None:
    assert render("s", "x{reason_line}", {"reason": " weather "}, "")[1] == "x\nReason: weather"
    assert render("s", "x{reason_line}", {"reason": ""}, "")[1] == "x"
    assert render("s", "x{reason_line}", {"reason": None}, "")[1] == "x"


def test_the_subject_is_always_one_line() -> None:
    assert render("{name} booked", "", {"name": "Ann\r\nBcc: evil@example.com"}, "")[0] == (
        "Ann Bcc: evil@example.com booked"
    )


def test_literal_braces_are_written_doubled() -> None:
    assert placeholders("{{not}} {name}", "body") == ["name"]
    assert render("s", "{{x}} {name}", {"name": "A"}, "")[1] == "{x} A"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{nope}", "{nope}"),
        ("{name.__class__}", "{name.__class__}"),
        ("{name[0]}", "{name[0]}"),
        ("{name!r}", "{name!r}"),
        ("{seats:>4}", "{seats:>4}"),
        ("{}", "{}"),
    ],
)
def test_unknown_or_fancy_placeholders_are_refused_naming_them(text: str, named: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        placeholders(text, "body")
    assert named in caught.value.details["fields"]["body"]


@pytest.mark.parametrize("text", ["{name", "name}", "{na{me}}"])
def test_unbalanced_braces_are_refused(text: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        placeholders(text, "subject")
    assert "subject" in caught.value.details["fields"]


def test_every_allowed_placeholder_is_accepted() -> None:
    text = " ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
    assert sorted(placeholders(text, "body")) == sorted(PLACEHOLDERS)


def test_it_moves_follow_the_table_and_nothing_else() -> None:
    allowed = {
        ("pending", "held"),
        ("held", "pending"),
        ("failed", "pending"),
        ("pending", "cancelled"),
        ("held", "cancelled"),
        ("failed", "cancelled"),
        ("pending", "sent"),
        ("held", "sent"),
        ("failed", "sent"),
    }
    for current in STATUSES:
        for target in STATUSES:
            if (current, target) in allowed:
                check_move(current, target)
            else:
                with pytest.raises(Conflict) as caught:
                    check_move(current, target)
                assert caught.value.code == "invalid_transition"
    assert {(f, t) for t, froms in MOVES.items() for f in froms} == allowed
    assert "sending" not in MOVES and set(LIVE_STATUSES) <= set(STATUSES)


def test_retry_delay_doubles_from_the_base_up_to_the_cap() -> None:
    assert [retry_delay(n, 60, 3600) for n in range(1, 6)] == [60, 120, 240, 480, 960]
    assert retry_delay(10, 60, 3600) == 3600
    assert retry_delay(0, 5, 100) == 5


def test_the_launchs_agency_is_named_as_the_author_of_the_mission_and_reason() -> None:
    data = {"mission": "Refund pending - confirm your card", "reason": " engine "}
    _, body = render(
        "{mission}", "{mission} aborted.{reason_line}\nAstroBookings\n", data, "", author="Ares Co"
    )
    assert body == (
        "Refund pending - confirm your card aborted.\nReason: engine\nAstroBookings\n\n"
        "The launch's mission name and reason were written by the agency \u201cAres Co\u201d, "
        "not by AstroBookings.\n"
    )
    _, body = render("s", "Hi {mission}", {"mission": "Moon"}, "", author="Ares Co")
    assert body.endswith(
        "The launch's mission name was written by the agency \u201cAres Co\u201d, not by AstroBookings.\n"
    )
    # Without an agency (no such launch), or a template that quotes none of its text, nothing is added.
    assert render("s", "Hi {mission}", {"mission": "Moon"}, "")[1] == "Hi Moon"
    assert render("s", "Invoice {amount}", {"mission": "Moon", "amount": "$1"}, "", author="Ares Co")[1] == (
        "Invoice $1"
    )


# -- written as a person would (issue 15, finding 7) ----------------------------------------------


def _shipped_templates() -> dict[str, tuple[str, str]]:
    """The templates as a fresh database has them: 004's seed, rewritten by the later migrations."""
    root = Path(__file__).resolve().parents[2] / "migrations"
    seed = (root / "004_notifications.sql").read_text()
    templates = {
        event: (subject, body)
        for event, subject, body in re.findall(r"\('(\w+)', '([^']*)',\s*E'([^']*)'\)", seed)
    }
    for update in (root / "014_human_templates.sql").read_text().split(";"):
        match = re.search(r"SET\s+(subject|body) = E?'([^']*)'.*?WHERE event = '(\w+)'", update, re.DOTALL)
        if match:
            field, text, event = match.groups()
            subject, body = templates[event]
            templates[event] = (text, body) if field == "subject" else (subject, text)
    return {e: (s, b.replace("\\n", "\n")) for e, (s, b) in templates.items()}


@pytest.mark.parametrize(("seats", "shown"), [(1, "1 seat"), (2, "2 seats"), (6, "6 seats")])
def test_booking_subjects_count_seats_in_words(seats: int, shown: str) -> None:
    subject, body = _shipped_templates()["booking_confirmed"]
    data = {"mission": "Artemis", "destination": "the Moon", "seats": seats, "booking_id": "bkg_1"}
    out_subject, out_body = render(subject, body, data, "https://astro.example")
    assert out_subject == f"Booking confirmed: {shown} on Artemis"
    assert f"Booking bkg_1: {shown} on Artemis to the Moon on" in out_body


@pytest.mark.parametrize(
    ("stored", "shown"),
    [("the Moon", "the Moon"), ("moon", "the Moon"), ("low earth", "Low Earth orbit"), ("mars", "Mars")],
)
def test_new_launch_subject_names_the_destination_for_people(stored: str, shown: str) -> None:
    """Notifications queued before destinations were named for people stored 'low earth', 'moon'."""
    subject, body = _shipped_templates()["launch_scheduled"]
    out_subject, _ = render(subject, body, {"mission": "Artemis IV", "destination": stored}, "https://x")
    assert out_subject == f"New launch: Artemis IV to {shown}"


def test_no_shipped_template_says_seat_s_or_a_raw_destination() -> None:
    for event, (subject, body) in _shipped_templates().items():
        for text in (subject, body):
            assert "(s)" not in text and "{seats} seat" not in text, event
            assert "{seats_available} seats" not in text, event


def test_launch_with_one_seat_left_says_1_seat() -> None:
    subject, body = _shipped_templates()["launch_scheduled"]
    _, out = render(subject, body, {"mission": "M", "destination": "Mars", "seats_available": 1}, "https://x")
    assert ", 1 seat at " in out


def test_ticket_and_invoice_lines_only_when_there_is_a_link() -> None:
    subject, body = _shipped_templates()["booking_confirmed"]
    data = {"mission": "M", "seats": 1, "booking_id": "bkg_1", "ticket_path": "/traveler#bookings/bkg_1"}
    _, traveler = render(subject, body, data, "https://astro.example")
    assert "Your e-ticket and receipt (PDF): https://astro.example/traveler#bookings/bkg_1" in traveler
    _, agency = render(subject, body, {k: v for k, v in data.items() if k != "ticket_path"}, "https://x")
    assert "e-ticket" not in agency
    subject, body = _shipped_templates()["invoice_issued"]
    _, mail = render(
        subject, body, {"invoice_number": "INV-1", "invoice_path": "/agency#invoices/i"}, "https://x"
    )
    assert "See it and download the PDF: https://x/agency#invoices/i" in mail
