"""NotifyAPI through HTTP: emails of real bookings in the embedded sink's mailbox, IT's controls of the
queue, templates, status, the caller's inbox, the role guard and every bad input."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from astro.domain.notifications import PLACEHOLDERS
from astro.domain.users import Role
from astro.store.notices import NoticeRows, Recipient
from tests.conftest import Account, MakeClient, agency_body, passengers, register, traveler_body
from tests.smtpd import seed_templates
from web.clients import PG_POOL
from web.keys import AUTH, DISPATCHER
from web.monitoring import LOG_SHIPPER

N = "/api/notify"
Client = TestClient[web.Request, web.Application]
_n = itertools.count(1)


# -- the world ------------------------------------------------------------------------------------


async def start(make_client: MakeClient, **changes: Any) -> Client:
    """An app whose dispatcher only runs when a test (or a PATCH) asks, on the default templates."""
    client = await make_client(notify_poll_interval=60.0, **changes)
    await seed_templates(client.app[PG_POOL])
    return client


async def employee(client: Client, role: str = "it") -> Account:
    n = next(_n)
    email, password = f"{role}-n{n}@astro.example", "employee-pass"
    user = await client.app[AUTH].create_employee(
        email=email, password=password, name=f"{role} {n}", role=Role(role)
    )
    resp = await client.post("/api/system/auth/login", json={"email": email, "password": password})
    assert resp.status == 200, await resp.text()
    return Account(user.id, email, password, (await resp.json())["token"], role)


async def new_launch(client: Client, agency: Account, *, days: float = 400) -> dict[str, Any]:
    resp = await client.post(
        "/api/agency/rockets", headers=agency.headers, json={"name": "Ares", "capacity": 50, "range": "mars"}
    )
    assert resp.status == 201, await resp.text()
    rocket = (await resp.json())["rocket"]
    resp = await client.post(
        "/api/agency/launches",
        headers=agency.headers,
        json={
            "rocket_id": rocket["id"],
            "mission": "Red dust",
            "destination": "mars",
            "scheduled_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
            "price_cents": 250_000,
            "min_passengers": 10,
        },
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["launch"]  # type: ignore[no-any-return]


async def enqueue(
    client: Client, who: list[Account], event: str = "booking_confirmed", **data: Any
) -> list[str]:
    """Rows written the way a change writes them; their ids, in the order of `who`."""
    rows = NoticeRows()
    for account in who:
        rows.add(event, [Recipient(account.id, account.role, account.email, f"Name {account.id[-4:]}")], data)
    ids = [row[0] for row in rows.rows]
    async with client.app[PG_POOL].acquire() as conn, conn.transaction():
        await rows.write(conn)
    return ids


async def sql(client: Client, query: str, *args: Any) -> list[asyncpg.Record]:
    return await client.app[PG_POOL].fetch(query, *args)  # type: ignore[no-any-return]


async def call(
    client: Client, method: str, path: str, who: Account | None = None, **kwargs: Any
) -> tuple[int, Any]:
    headers = {**(who.headers if who else {}), **kwargs.pop("headers", {})}
    resp = await client.request(method, path, headers=headers, **kwargs)
    text = await resp.text()
    return resp.status, (json.loads(text) if text else None)


async def mailbox(client: Client, it: Account, to: str) -> list[dict[str, Any]]:
    status, body = await call(client, "GET", f"{N}/mailbox", it, params={"to": to})
    assert status == 200, body
    return body["items"]  # type: ignore[no-any-return]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- delivery seen from outside -------------------------------------------------------------------


async def test_a_booking_emails_the_traveler_and_the_agency_into_the_embedded_mailbox(
    make_client: MakeClient,
) -> None:
    client = await start(make_client, public_url="https://astro.example")
    it = await employee(client)
    agency = await register(client, agency_body())
    traveler = await register(client, traveler_body())
    launch = await new_launch(client, agency)
    resp = await client.post(
        "/api/booking/bookings",
        headers=traveler.headers,
        json={"launch_id": launch["id"], "seats": 2, "passengers": passengers(2), "card_token": "tok_ok"},
    )
    assert resp.status == 201, await resp.text()
    booking = (await resp.json())["booking"]
    await client.app[DISPATCHER].run_once()

    [mail] = await mailbox(client, it, traveler.email)
    assert mail["to"] == [traveler.email]
    assert mail["subject"] == "Booking confirmed: 2 seats on Red dust"
    assert f"Booking {booking['id']}: 2 seats on Red dust to Mars" in mail["body"]
    ticket = f"https://astro.example/traveler#bookings/{booking['id']}"
    assert f"Your e-ticket and receipt (PDF): {ticket}" in mail["body"]
    assert "$5,000.00 charged" in mail["body"]
    assert f"https://astro.example/launches/{launch['slug']}" in mail["body"]
    [row] = await sql(client, "SELECT id FROM notifications WHERE recipient_id = $1", traveler.id)
    assert mail["message_id"].startswith(f"<{row['id']}@")
    to_agency = await mailbox(client, it, agency.email)
    assert sorted(m["subject"] for m in to_agency) == [mail["subject"], "New launch: Red dust to Mars"]
    assert all("e-ticket" not in m["body"] for m in to_agency)  # the agency's copy has no ticket link

    status, inbox = await call(client, "GET", f"{N}/inbox", traveler)
    assert status == 200
    [item] = inbox["items"]
    assert (item["event"], item["status"], item["subject"]) == ("booking_confirmed", "sent", mail["subject"])
    assert item["sent_at"] is not None


async def test_new_launch_reaches_vips_first_with_the_public_link(make_client: MakeClient) -> None:
    client = await start(make_client, public_url="https://astro.example")
    it = await employee(client)
    agency = await register(client, agency_body())
    vip, regular = await register(client, traveler_body()), await register(client, traveler_body())
    status, _ = await call(client, "PATCH", f"/api/system/users/{vip.id}", it, json={"vip": True})
    assert status == 200
    launch = await new_launch(client, agency)
    await client.app[DISPATCHER].run_once()
    [mail] = await mailbox(client, it, vip.email)
    assert mail["subject"] == "New launch: Red dust to Mars"
    assert "As a VIP traveler you can book it before everyone else" in mail["body"]
    assert f"https://astro.example/launches/{launch['slug']}" in mail["body"]
    assert await mailbox(client, it, regular.email) == []


async def test_the_metrics_count_what_was_sent(make_client: MakeClient) -> None:
    client = await start(make_client)
    traveler = await register(client, traveler_body())
    await enqueue(client, [traveler, traveler], event="payment_received")
    await client.app[DISPATCHER].run_once()
    text = await (await client.get("/metrics")).text()
    assert 'astro_notifications_sent_total{event="payment_received"} 2.0' in text
    assert 'astro_notification_queue{status="pending"} 0.0' in text
    assert "astro_notification_send_seconds_count 2.0" in text


# -- IT's view and control of the queue -----------------------------------------------------------


async def test_notifications_list_filters_and_pages_newest_first(make_client: MakeClient) -> None:
    client = await start(make_client)
    it = await employee(client)
    alice, bob = await register(client, traveler_body()), await register(client, traveler_body())
    first = await enqueue(client, [alice, alice, bob])
    later = await enqueue(client, [alice], event="launch_confirmed", mission="M")
    await sql(client, "UPDATE notifications SET status = 'held' WHERE id = $1", first[0])

    status, body = await call(client, "GET", f"{N}/notifications", it)
    assert status == 200
    assert [i["id"] for i in body["items"]] == sorted(first + later, reverse=True)
    assert body["items"][0]["data"]["mission"] == "M"

    async def ids(**params: str) -> list[str]:
        status, body = await call(client, "GET", f"{N}/notifications", it, params=params)
        assert status == 200, body
        return [i["id"] for i in body["items"]]

    assert await ids(status="held") == [first[0]]
    assert await ids(event="launch_confirmed") == later
    assert sorted(await ids(recipient=alice.id)) == sorted([first[0], first[1], later[0]])
    assert await ids(recipient=bob.email.upper()) == [first[2]]
    assert await ids(recipient=bob.id, status="held") == []

    seen, cursor = [], None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        status, page = await call(client, "GET", f"{N}/notifications", it, params=params)
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(first + later, reverse=True)


async def test_queue_counts_every_status_and_the_oldest_pending_age(make_client: MakeClient) -> None:
    client = await start(make_client)
    it = await employee(client)
    traveler = await register(client, traveler_body())
    status, body = await call(client, "GET", f"{N}/queue", it)
    assert status == 200
    assert body["counts"] == dict.fromkeys(["pending", "sending", "sent", "failed", "held", "cancelled"], 0)
    assert body["oldest_pending_age_seconds"] is None and body["oldest_pending_at"] is None

    ids = await enqueue(client, [traveler] * 7)
    for nid, state in zip(ids, ["held", "failed", "failed", "sent", "cancelled", "sending"], strict=False):
        await sql(client, "UPDATE notifications SET status = $2 WHERE id = $1", nid, state)
    await sql(
        client, "UPDATE notifications SET created_at = now() - interval '90 seconds' WHERE id = $1", ids[6]
    )
    status, body = await call(client, "GET", f"{N}/queue", it)
    assert body["counts"] == {"pending": 1, "sending": 1, "sent": 1, "failed": 2, "held": 1, "cancelled": 1}
    assert 90 <= body["oldest_pending_age_seconds"] < 120
    assert body["oldest_pending_at"] is not None


# Every (from, to) IT may ask for; the rest is 409 invalid_transition.
ALLOWED = {
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
STATUSES = ["pending", "sending", "sent", "failed", "held", "cancelled"]


async def test_only_the_allowed_moves_are_accepted_every_other_is_409(make_client: MakeClient) -> None:
    client = await start(make_client)
    it = await employee(client)
    traveler = await register(client, traveler_body())
    # Nothing but IT touches the rows here (a release would otherwise wake the dispatcher).
    await client.app[DISPATCHER].stop()
    wrong = []
    for current in STATUSES:
        for target in STATUSES:
            [nid] = await enqueue(client, [traveler])
            await sql(
                client,
                "UPDATE notifications SET status = $2, attempts = 3, last_error = 'x' WHERE id = $1",
                nid,
                current,
            )
            status, body = await call(
                client, "PATCH", f"{N}/notifications/{nid}", it, json={"status": target}
            )
            expected = 200 if (current, target) in ALLOWED else 409
            [row] = await sql(client, "SELECT status, attempts FROM notifications WHERE id = $1", nid)
            if status != expected:
                wrong.append((current, target, status, body))
            elif status == 409:
                assert body["error"]["code"] == "invalid_transition"
                assert body["error"]["details"]["from"] == current
                assert row["status"] == current  # unchanged
            else:
                assert body["notification"]["status"] == target == row["status"]
                # A retry of a failed notification starts counting again.
                assert row["attempts"] == (0 if (current, target) == ("failed", "pending") else 3)
    assert wrong == []


async def test_release_and_retry_are_due_at_once_and_mark_as_sent_sends_nothing(
    make_client: MakeClient,
) -> None:
    client = await start(make_client)
    it = await employee(client)
    traveler = await register(client, traveler_body())
    held, failed, manual = await enqueue(client, [traveler] * 3)
    await sql(
        client,
        """UPDATE notifications SET status = CASE id WHEN $1 THEN 'failed' ELSE 'held' END,
           next_attempt_at = now() + interval '1 day' WHERE id = ANY($2::text[])""",
        failed,
        [held, failed, manual],
    )
    for nid, target in ((held, "pending"), (failed, "pending"), (manual, "sent")):
        status, body = await call(client, "PATCH", f"{N}/notifications/{nid}", it, json={"status": target})
        assert status == 200, body
    await client.app[DISPATCHER].run_once()
    mails = await mailbox(client, it, traveler.email)
    assert len(mails) == 2
    rows = {r["id"]: r for r in await sql(client, "SELECT * FROM notifications")}
    assert rows[held]["status"] == rows[failed]["status"] == "sent"
    assert rows[manual]["status"] == "sent" and rows[manual]["claimed_by"] is None
    assert rows[manual]["sent_at"] is not None


# -- status ---------------------------------------------------------------------------------------


async def test_status_reports_smtp_the_dispatcher_and_the_last_hour(make_client: MakeClient) -> None:
    client = await start(make_client)
    it = await employee(client)
    traveler = await register(client, traveler_body())
    status, body = await call(client, "GET", f"{N}/status", it)
    assert status == 200
    assert body["smtp"]["reachable"] is True and body["smtp"]["error"] is None
    assert body["smtp"]["latency_ms"] >= 0 and body["smtp"]["tls"] is False
    assert body["dispatcher"]["running"] is True and body["dispatcher"]["node"] == "test-node"
    assert body["dispatcher"]["last_success_at"] is None
    assert (body["sent_last_hour"], body["failed_last_hour"]) == (0, 0)

    ids = await enqueue(client, [traveler] * 3)
    await sql(client, "UPDATE notifications SET status = 'failed' WHERE id = $1", ids[0])
    await client.app[DISPATCHER].run_once()
    status, body = await call(client, "GET", f"{N}/status", it)
    assert (body["sent_last_hour"], body["failed_last_hour"]) == (2, 1)
    assert body["dispatcher"]["last_success_at"] is not None
    assert body["dispatcher"]["sent_since_start"] == 2


async def test_status_says_when_smtp_is_unreachable_and_rows_wait(make_client: MakeClient) -> None:
    client = await start(make_client, smtp_url=f"smtp://127.0.0.1:{closed_port()}")
    it = await employee(client)
    traveler = await register(client, traveler_body())
    [nid] = await enqueue(client, [traveler])
    result = await client.app[DISPATCHER].run_once()
    assert result.smtp_down is not None
    status, body = await call(client, "GET", f"{N}/status", it)
    assert status == 200
    assert body["smtp"]["reachable"] is False and body["smtp"]["error"]
    assert "SMTP" in body["dispatcher"]["last_error"]
    status, body = await call(client, "GET", f"{N}/notifications", it)
    [item] = body["items"]
    assert (item["id"], item["status"], item["attempts"]) == (nid, "pending", 1)
    due, updated = (datetime.fromisoformat(item[k]) for k in ("next_attempt_at", "updated_at"))
    assert item["last_error"] and (due - updated).total_seconds() == pytest.approx(60.0)


# -- templates ------------------------------------------------------------------------------------


async def test_a_template_edit_changes_the_next_email(make_client: MakeClient) -> None:
    client = await start(make_client)
    it = await employee(client)
    traveler = await register(client, traveler_body())
    status, body = await call(client, "GET", f"{N}/templates/invoice_issued", it)
    assert status == 200
    assert body["template"]["subject"] == "Invoice {invoice_number}: {amount}"
    assert body["template"]["placeholders"] == sorted(PLACEHOLDERS)

    new = {"subject": "Bill {invoice_number}", "body": "Pay {amount} by {due_date}, {name}."}
    status, body = await call(client, "PUT", f"{N}/templates/invoice_issued", it, json=new)
    assert status == 200, body
    assert body["template"]["updated_by"] == it.id
    status, body = await call(client, "GET", f"{N}/templates/invoice_issued", it)
    assert (body["template"]["subject"], body["template"]["body"]) == (new["subject"], new["body"])

    await enqueue(client, [traveler], event="invoice_issued", invoice_number="INV-1", amount="$9.00")
    await client.app[DISPATCHER].run_once()
    [mail] = await mailbox(client, it, traveler.email)
    assert mail["subject"] == "Bill INV-1"
    assert mail["body"].strip() == f"Pay $9.00 by , Name {traveler.id[-4:]}."


# -- the caller's inbox ---------------------------------------------------------------------------


async def test_the_inbox_shows_only_the_callers_notifications_newest_first(make_client: MakeClient) -> None:
    client = await start(make_client)
    alice, bob = await register(client, traveler_body()), await register(client, traveler_body())
    agency = await register(client, agency_body())
    mine = await enqueue(client, [alice], mission="One")
    await enqueue(client, [bob, agency])
    mine += await enqueue(client, [alice], event="launch_delayed", mission="Two")

    status, body = await call(client, "GET", f"{N}/inbox", alice)
    assert status == 200
    assert [i["id"] for i in body["items"]] == mine[::-1]
    # Not sent yet: the subject is what the current template makes of it.
    assert [i["subject"] for i in body["items"]] == [
        "Delayed: Two now on",
        "Booking confirmed: on One",
    ]
    assert {i["status"] for i in body["items"]} == {"pending"}

    status, page = await call(client, "GET", f"{N}/inbox", alice, params={"limit": "1"})
    assert [i["id"] for i in page["items"]] == [mine[1]] and page["next_cursor"]
    status, page = await call(client, "GET", f"{N}/inbox", alice, params={"cursor": page["next_cursor"]})
    assert [i["id"] for i in page["items"]] == [mine[0]] and page["next_cursor"] is None

    for who, count in (
        (bob, 1),
        (agency, 1),
        (await employee(client), 0),
        (await employee(client, "finance"), 0),
    ):
        status, body = await call(client, "GET", f"{N}/inbox", who)
        assert status == 200 and len(body["items"]) == count


async def test_a_message_opens_with_its_full_text_for_its_recipient_only(make_client: MakeClient) -> None:
    client = await start(make_client, public_url="https://astro.example")
    agency = await register(client, agency_body(name="Selene Lines"))
    alice, bob = await register(client, traveler_body()), await register(client, traveler_body())
    launch = await new_launch(client, agency)
    resp = await client.post(
        "/api/booking/bookings",
        headers=alice.headers,
        json={"launch_id": launch["id"], "seats": 1, "passengers": passengers(1), "card_token": "tok_ok"},
    )
    assert resp.status == 201, await resp.text()
    booking = (await resp.json())["booking"]
    [item] = (await call(client, "GET", f"{N}/inbox", alice))[1]["items"]

    # pending: the text the current template makes of it
    status, body = await call(client, "GET", f"{N}/inbox/{item['id']}", alice)
    assert status == 200, body
    message = body["message"]
    assert (message["id"], message["event"]) == (item["id"], "booking_confirmed")
    assert message["status"] == "pending"
    assert message["subject"] == "Booking confirmed: 1 seat on Red dust"
    assert message["recipient_email"] == alice.email
    assert message["body"].startswith("Hello ")
    assert f"Booking {booking['id']}: 1 seat on Red dust to Mars on " in message["body"]
    assert f"https://astro.example/traveler#bookings/{booking['id']}" in message["body"]
    assert "written by the agency \u201cSelene Lines\u201d" in message["body"]  # as the e-mail names it

    # sent: the subject that went out, and the same text
    await client.app[DISPATCHER].run_once()
    status, sent = await call(client, "GET", f"{N}/inbox/{item['id']}", alice)
    assert status == 200 and sent["message"]["status"] == "sent" and sent["message"]["sent_at"]
    assert (sent["message"]["subject"], sent["message"]["body"]) == (message["subject"], message["body"])

    # anyone else's, or none, is the same 404; without a token, 401
    for who in (bob, agency, await employee(client)):
        status, answer = await call(client, "GET", f"{N}/inbox/{item['id']}", who)
        assert status == 404 and answer["error"]["code"] == "not_found", who.role
    status, none = await call(client, "GET", f"{N}/inbox/ntf_nope", alice)
    assert status == 404 and none["error"]["message"] == answer["error"]["message"]
    status, _ = await call(client, "GET", f"{N}/inbox/{'x' * 300}", alice)
    assert status == 404
    status, _ = await call(client, "GET", f"{N}/inbox/{item['id']}")
    assert status == 401


# -- the embedded sink's mailbox ------------------------------------------------------------------


async def test_the_mailbox_filters_by_recipient_and_pages_newest_first(make_client: MakeClient) -> None:
    client = await start(make_client)
    it = await employee(client)
    alice, bob = await register(client, traveler_body()), await register(client, traveler_body())
    await enqueue(client, [alice, bob, alice])
    await client.app[DISPATCHER].run_once()
    status, body = await call(client, "GET", f"{N}/mailbox", it)
    assert status == 200 and len(body["items"]) == 3
    received = [i["received_at"] for i in body["items"]]
    assert received == sorted(received, reverse=True)
    assert all(i["mail_from"] == "notifications@astrobookings.example" for i in body["items"])
    assert len(await mailbox(client, it, alice.email)) == 2
    assert [m["to"] for m in await mailbox(client, it, bob.email)] == [[bob.email]]
    assert await mailbox(client, it, "nobody@example.com") == []

    status, page = await call(client, "GET", f"{N}/mailbox", it, params={"limit": "2"})
    assert len(page["items"]) == 2 and page["next_cursor"]
    status, rest = await call(client, "GET", f"{N}/mailbox", it, params={"cursor": page["next_cursor"]})
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {i["id"] for i in page["items"] + rest["items"]} == {i["id"] for i in body["items"]}


# -- the role guard and bad input -----------------------------------------------------------------

IT_ENDPOINTS = [
    ("GET", f"{N}/notifications", None),
    ("GET", f"{N}/queue", None),
    ("PATCH", f"{N}/notifications/ntf_X", {"status": "held"}),
    ("GET", f"{N}/status", None),
    ("GET", f"{N}/templates/booking_confirmed", None),
    ("PUT", f"{N}/templates/booking_confirmed", {"subject": "s", "body": "b"}),
    ("GET", f"{N}/mailbox", None),
]


async def test_it_endpoints_are_for_it_only_and_the_inbox_for_any_user(make_client: MakeClient) -> None:
    client = await start(make_client)
    callers = {
        "traveler": await register(client, traveler_body()),
        "agency": await register(client, agency_body()),
        "finance": await employee(client, "finance"),
    }
    wrong = []
    for method, path, body in IT_ENDPOINTS:
        status, answer = await call(client, method, path, json=body)
        if (status, answer["error"]["code"]) != (401, "unauthenticated"):
            wrong.append((method, path, "anonymous", status))
        for role, who in callers.items():
            status, answer = await call(client, method, path, who, json=body)
            if (status, answer["error"]["code"]) != (403, "forbidden"):
                wrong.append((method, path, role, status))
    assert wrong == []
    status, answer = await call(client, "GET", f"{N}/inbox")
    assert status == 401 and answer["error"]["code"] == "unauthenticated"
    # A forbidden template edit changed nothing.
    [row] = await sql(client, "SELECT subject FROM notification_templates WHERE event = 'booking_confirmed'")
    assert row["subject"].startswith("Booking confirmed")


BAD_INPUT = [
    ("GET", f"{N}/notifications?status=lost", None, "status"),
    ("GET", f"{N}/notifications?event=party", None, "event"),
    ("GET", f"{N}/notifications?recipient=" + "x" * 255, None, "recipient"),
    ("GET", f"{N}/notifications?limit=0", None, "limit"),
    ("GET", f"{N}/notifications?limit=201", None, "limit"),
    ("GET", f"{N}/notifications?cursor=!!!", None, "cursor"),
    ("PATCH", f"{N}/notifications/{{id}}", b"", "body"),
    ("PATCH", f"{N}/notifications/{{id}}", b"{not json", "body"),
    ("PATCH", f"{N}/notifications/{{id}}", {}, "status"),
    ("PATCH", f"{N}/notifications/{{id}}", {"status": "lost"}, "status"),
    ("PATCH", f"{N}/notifications/{{id}}", {"status": 1}, "status"),
    ("PATCH", f"{N}/notifications/{{id}}", {"status": "held", "why": "x"}, "why"),
    ("PATCH", f"{N}/notifications/{{id}}", [], "body"),
    # a placeholder the template language refuses is well-formed text: 422 invalid_template (below)
    ("PUT", f"{N}/templates/booking_confirmed", {"subject": "two\nlines", "body": "b"}, "subject"),
    ("PUT", f"{N}/templates/booking_confirmed", {"subject": "", "body": "b"}, "subject"),
    ("PUT", f"{N}/templates/booking_confirmed", {"subject": "s", "body": "   "}, "body"),
    ("PUT", f"{N}/templates/booking_confirmed", {"subject": "s"}, "body"),
    ("PUT", f"{N}/templates/booking_confirmed", {"subject": "s", "body": "a\x00b"}, "body"),
    ("PUT", f"{N}/templates/booking_confirmed", {"subject": "s", "body": "x" * 20_001}, "body"),
    ("PUT", f"{N}/templates/booking_confirmed", {"subject": "s", "body": "b", "html": "<p>"}, "html"),
    ("GET", f"{N}/inbox?limit=abc", None, "limit"),
    ("GET", f"{N}/inbox?cursor=bad", None, "cursor"),
    ("GET", f"{N}/mailbox?to=" + "y" * 255, None, "to"),
    ("GET", f"{N}/mailbox?limit=-1", None, "limit"),
    ("GET", f"{N}/mailbox?cursor=" + "eyJ4Il0", None, "cursor"),
]


async def test_every_bad_input_is_400_naming_the_field_and_changes_nothing(make_client: MakeClient) -> None:
    client = await start(make_client)
    it = await employee(client)
    traveler = await register(client, traveler_body())
    [nid] = await enqueue(client, [traveler])
    before = await sql(client, "SELECT * FROM notification_templates ORDER BY event")
    wrong = []
    for method, path, body, field in BAD_INPUT:
        path = path.replace("{id}", nid)
        # Raw bodies are declared JSON: what is checked is their content (a body that is not declared
        # JSON is refused with 415 before it is read: tests/e2e/test_api_hardening.py).
        kwargs: dict[str, Any] = (
            {"data": body, "headers": {"Content-Type": "application/json"}}
            if isinstance(body, bytes)
            else {"json": body}
        )
        if method == "GET":
            kwargs = {}
        status, answer = await call(client, method, path, it, **kwargs)
        fields = (answer or {}).get("error", {}).get("details", {}).get("fields", {}) if status == 400 else {}
        if status != 400 or answer["error"]["code"] != "invalid_input" or field not in fields:
            wrong.append((method, path[:80], field, status, answer))
    assert wrong == []
    assert await sql(client, "SELECT * FROM notification_templates ORDER BY event") == before
    [row] = await sql(client, "SELECT status FROM notifications")
    assert row["status"] == "pending"


async def test_unknown_ids_and_events_are_404(make_client: MakeClient) -> None:
    client = await start(make_client)
    it = await employee(client)
    for method, path, body in [
        ("PATCH", f"{N}/notifications/ntf_nope", {"status": "held"}),
        ("PATCH", f"{N}/notifications/{'z' * 65}", {"status": "held"}),
        ("GET", f"{N}/templates/party", None),
        ("PUT", f"{N}/templates/party", {"subject": "s", "body": "b"}),
    ]:
        status, answer = await call(client, method, path, it, json=body)
        assert (status, answer["error"]["code"]) == (404, "not_found"), (method, path, answer)


async def test_a_patch_to_pending_wakes_the_dispatcher(make_client: MakeClient) -> None:
    client = await start(make_client)
    it = await employee(client)
    traveler = await register(client, traveler_body())
    [nid] = await enqueue(client, [traveler])
    await sql(client, "UPDATE notifications SET status = 'held'")
    status, _ = await call(client, "PATCH", f"{N}/notifications/{nid}", it, json={"status": "pending"})
    assert status == 200

    async def sent() -> None:
        while (await sql(client, "SELECT status FROM notifications"))[0]["status"] != "sent":
            await client.app[DISPATCHER].background.round_end()

    # The poll interval is 60 s here: only the wake-up can send it this soon.
    await asyncio.wait_for(sent(), 5)
    assert len(await mailbox(client, it, traveler.email)) == 1


@pytest.mark.parametrize("to", ["held", "cancelled", "sent"])
async def test_a_row_being_sent_cannot_be_moved(make_client: MakeClient, to: str) -> None:
    client = await start(make_client)
    it = await employee(client)
    traveler = await register(client, traveler_body())
    [nid] = await enqueue(client, [traveler])
    await sql(client, "UPDATE notifications SET status = 'sending', claimed_by = 'n9', claimed_at = now()")
    status, answer = await call(client, "PATCH", f"{N}/notifications/{nid}", it, json={"status": to})
    assert status == 409 and answer["error"]["details"] == {
        "from": "sending",
        "to": to,
        "allowed_from": list({"held": ["pending"]}.get(to, ["pending", "held", "failed"])),
    }


@pytest.mark.parametrize(
    ("template", "field"),
    [
        ({"subject": "Hi {nope}", "body": "b"}, "subject"),
        ({"subject": "s", "body": "Dear {name.__class__}"}, "body"),
        ({"subject": "s", "body": "unclosed {name"}, "body"),
    ],
)
async def test_a_template_the_language_refuses_is_422_and_changes_nothing(
    client: Any, make_employee: Any, template: dict[str, str], field: str
) -> None:
    it = await make_employee("it")
    before = await client.get(f"{N}/templates/booking_confirmed", headers=it.headers)
    resp = await client.put(f"{N}/templates/booking_confirmed", json=template, headers=it.headers)
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_template" and field in error["details"]["fields"]
    after = await client.get(f"{N}/templates/booking_confirmed", headers=it.headers)
    assert (await after.json())["template"] == (await before.json())["template"]


async def test_the_emails_sent_together_are_one_log_entry_found_by_each_id(make_client: MakeClient) -> None:
    client = await start(make_client)
    it = await employee(client)
    agency = await register(client, agency_body())
    travelers = [await register(client, traveler_body()) for _ in range(3)]
    launch = await new_launch(client, agency)
    for traveler in travelers:
        resp = await client.post(
            "/api/booking/bookings",
            headers=traveler.headers,
            json={"launch_id": launch["id"], "seats": 1, "passengers": passengers(1), "card_token": "tok_ok"},
        )
        assert resp.status == 201, await resp.text()
    await client.app[DISPATCHER].run_once()
    await client.app[LOG_SHIPPER].flush()
    rows = await sql(client, "SELECT id, recipient_id, status FROM notifications ORDER BY id")
    assert len(rows) == 7 and {r["status"] for r in rows} == {"sent"}  # a launch notice and 2 per booking

    status, body = await call(client, "GET", "/api/system/logs", it, params={"q": "notifications_sent"})
    assert status == 200, body
    [entry] = body["items"]  # was an entry per e-mail: 7
    assert entry["data"]["sent"] == 7
    assert sorted(d["notification_id"] for d in entry["data"]["deliveries"]) == [r["id"] for r in rows]
    for key in (rows[3]["id"], travelers[1].id):
        status, found = await call(client, "GET", "/api/system/logs", it, params={"entity_id": key})
        assert [e["id"] for e in found["items"] if e["message"] == "notifications_sent"] == [entry["id"]]
