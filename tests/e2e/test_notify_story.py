"""The notification story a new user tries: each change emails the right people the right figures,
and IT sees and steers the queue while the SMTP server is down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import MakeClient, agency_body, passengers, register, traveler_body
from tests.e2e.test_notify_api import call, employee, new_launch, start
from tests.smtpd import SmtpServer
from web.keys import DISPATCHER

N = "/api/notify"


def mails_to(server: SmtpServer, address: str) -> list[Any]:
    return [m for m in server.received if address in m.rcpt_tos]


async def book(client: Any, traveler: Any, launch_id: str, seats: int) -> dict[str, Any]:
    resp = await client.post(
        "/api/booking/bookings",
        headers=traveler.headers,
        json={
            "launch_id": launch_id,
            "seats": seats,
            "passengers": passengers(seats),
            "card_token": "tok_ok",
        },
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["booking"]  # type: ignore[no-any-return]


async def test_book_cancel_delay_abort_email_the_right_people_while_it_steers_the_queue(
    make_client: MakeClient,
) -> None:
    smtp = SmtpServer()
    await smtp.start()
    client = await start(make_client, smtp_url=smtp.url, public_url="https://astro.example")
    dispatcher = client.app[DISPATCHER]
    it = await employee(client)
    agency = await register(client, agency_body())
    ada, bo = await register(client, traveler_body()), await register(client, traveler_body())
    launch = await new_launch(client, agency, days=400)  # $2,500.00 a seat

    first = await book(client, ada, launch["id"], 2)
    await book(client, bo, launch["id"], 1)
    resp = await client.post(f"/api/booking/bookings/{first['id']}/cancel", headers=ada.headers)
    assert (await resp.json())["refund_cents"] == 450_000  # 90 % of $5,000.00
    await dispatcher.run_once()
    [cancelled, confirmed] = sorted(mails_to(smtp, ada.email), key=lambda m: m.subject)
    assert (
        confirmed.subject == "Booking confirmed: 2 seats on Red dust"
        and "$5,000.00 charged" in confirmed.body
    )
    assert cancelled.subject == "Booking cancelled: Red dust"
    assert "Refund: $4,500.00 (90 %)" in cancelled.body
    assert {m.subject for m in mails_to(smtp, agency.email)} >= {
        confirmed.subject,
        cancelled.subject,
        "Booking confirmed: 1 seat on Red dust",
    }

    # The SMTP server goes down: the delay and the abort wait in the queue, IT sees and steers them.
    await smtp.stop()
    later = datetime.now(UTC) + timedelta(days=500)
    resp = await client.post(
        f"/api/agency/launches/{launch['id']}/status",
        headers=agency.headers,
        json={"status": "delayed", "scheduled_at": later.isoformat(), "reason": "weather"},
    )
    assert resp.status == 200
    await dispatcher.run_once()
    status, queue = await call(client, "GET", f"{N}/queue", it)
    assert status == 200 and queue["counts"]["pending"] == 2  # agency and Bo; Ada cancelled
    status, state = await call(client, "GET", f"{N}/status", it)
    assert state["smtp"]["reachable"] is False
    status, rows = await call(client, "GET", f"{N}/notifications", it, params={"event": "launch_delayed"})
    assert {r["recipient_id"] for r in rows["items"]} == {agency.id, bo.id}
    assert all(r["attempts"] == 1 and r["last_error"] for r in rows["items"])
    to_bo = next(r for r in rows["items"] if r["recipient_id"] == bo.id)
    status, held = await call(
        client, "PATCH", f"{N}/notifications/{to_bo['id']}", it, json={"status": "held"}
    )
    assert status == 200 and held["notification"]["status"] == "held"

    resp = await client.post(
        f"/api/agency/launches/{launch['id']}/status",
        headers=agency.headers,
        json={"status": "aborted", "reason": "engine"},
    )
    assert resp.status == 200

    # Back up: everything pending goes out once; the held email waits until IT releases it.
    await smtp.start()
    for row in (await call(client, "GET", f"{N}/notifications", it, params={"status": "pending"}))[1][
        "items"
    ]:
        await call(client, "PATCH", f"{N}/notifications/{row['id']}", it, json={"status": "held"})
        await call(client, "PATCH", f"{N}/notifications/{row['id']}", it, json={"status": "pending"})
    await dispatcher.run_once()
    aborted = [m for m in mails_to(smtp, bo.email) if m.subject == "Aborted: Red dust"]
    assert len(aborted) == 1 and "Every booking is refunded in full: $2,500.00 to you." in aborted[0].body
    assert "Reason: engine" in aborted[0].body
    assert [m.subject for m in mails_to(smtp, bo.email) if m.subject.startswith("Delayed")] == []
    await call(client, "PATCH", f"{N}/notifications/{to_bo['id']}", it, json={"status": "pending"})
    await dispatcher.run_once()
    delayed = [m for m in mails_to(smtp, bo.email) if m.subject.startswith("Delayed")]
    assert (
        len(delayed) == 1
        and later.strftime("%Y-%m-%d") in delayed[0].body
        and "Reason: weather" in delayed[0].body
    )
    assert all(n == 1 for n in smtp.per_notification().values())  # exactly once each
    await smtp.stop()
