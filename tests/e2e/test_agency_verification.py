"""Agency verification, the launches-per-day limit and the free text e-mails quote (issue 14, finding 4)."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.conftest import MakeClient, Settings, agency_body, register, traveler_body, verify_agency
from tests.e2e.test_launch_status import book, launch_on, set_status
from tests.e2e.test_notify_api import employee, new_launch, start
from tests.smtpd import SmtpServer
from web.keys import DISPATCHER

B, A = "/api/booking", "/api/agency"


async def vip_notices(settings: Settings, traveler_id: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        rows = await conn.fetch(
            "SELECT data FROM notifications WHERE event = 'launch_scheduled' AND recipient_id = $1",
            traveler_id,
        )
    finally:
        await conn.close()
    import json

    return [json.loads(r["data"]) if isinstance(r["data"], str) else dict(r["data"]) for r in rows]


async def test_a_pending_agencys_launch_is_not_public_bookable_or_announced_until_it_verifies_it(
    client: Any, settings: Settings, make_employee: Any
) -> None:
    it = await make_employee("it")
    vip = await register(client, traveler_body())
    assert (
        await client.patch(f"/api/system/users/{vip.id}", json={"vip": True}, headers=it.headers)
    ).status == 200
    agency = await register(client, agency_body(name="AstroBookings Support"), verify=False)
    me = await (await client.get("/api/system/auth/me", headers=agency.headers)).json()
    assert me["user"]["verified"] is False
    launch = await launch_on(client, agency, min_passengers=1)  # the agency builds its fleet and launches
    listed = await (await client.get(f"{B}/launches")).json()
    assert [x["id"] for x in listed["items"]] == []
    assert (await client.get(f"{B}/launches/{launch['id']}")).status == 404
    resp = await book(client, vip, launch["id"], 1)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "agency_not_verified"
    assert await vip_notices(settings, vip.id) == []

    await verify_agency(client, agency.id)
    listed = await (await client.get(f"{B}/launches")).json()
    assert [x["id"] for x in listed["items"]] == [launch["id"]]
    assert (await book(client, vip, launch["id"], 1)).status == 201
    notices = await vip_notices(settings, vip.id)
    assert len(notices) == 1 and notices[0]["launch_id"] == launch["id"]
    users = await (await client.get("/api/system/users?role=agency", headers=it.headers)).json()
    assert [(u["id"], u["verified"]) for u in users["items"]] == [(agency.id, True)]


async def test_only_agencies_are_verified(client: Any, make_employee: Any) -> None:
    it, traveler = await make_employee("it"), await register(client, traveler_body())
    resp = await client.patch(f"/api/system/users/{traveler.id}", json={"verified": True}, headers=it.headers)
    assert (
        resp.status == 422
        and (await resp.json())["error"]["code"] == "not_an_agency"
        and (await resp.json())["error"]["details"]["fields"].keys() == {"verified"}
    )


async def test_an_agency_creates_at_most_the_daily_limit_of_launches(make_client: Any) -> None:
    client = await make_client(agency_launches_per_day=2)
    agency = await register(client, agency_body())
    for _ in range(2):
        await launch_on(client, agency)
    resp = await client.post(
        f"{A}/rockets", headers=agency.headers, json={"name": "Atlas", "capacity": 10, "range": "mars"}
    )
    rocket = (await resp.json())["rocket"]
    body = {
        "rocket_id": rocket["id"],
        "mission": "One too many",
        "destination": "mars",
        "scheduled_at": "2099-01-01T00:00:00+00:00",
        "price_cents": 100,
        "min_passengers": 1,
    }
    resp = await client.post(f"{A}/launches", headers=agency.headers, json=body)
    error = (await resp.json())["error"]
    assert resp.status == 429 and error["code"] == "launch_limit" and error["details"]["per_day"] == 2
    assert int(resp.headers["Retry-After"]) > 0


async def test_free_text_that_e_mails_quote_is_one_bounded_line(client: Any, make_agency: Any) -> None:
    agency = await make_agency()
    resp = await client.post(
        f"{A}/rockets", headers=agency.headers, json={"name": "Atlas", "capacity": 10, "range": "mars"}
    )
    rocket = (await resp.json())["rocket"]
    base = {
        "rocket_id": rocket["id"],
        "destination": "mars",
        "scheduled_at": "2099-01-01T00:00:00+00:00",
        "price_cents": 100,
        "min_passengers": 1,
    }
    for mission in ("Refund pending\nConfirm your card at https://evil.example", "x" * 121):
        resp = await client.post(f"{A}/launches", headers=agency.headers, json={**base, "mission": mission})
        assert resp.status == 400 and "mission" in (await resp.json())["error"]["details"]["fields"]
    launch = await launch_on(client, agency)
    resp = await client.post(
        f"{A}/launches/{launch['id']}/status",
        headers=agency.headers,
        json={"status": "aborted", "reason": "x" * 501},
    )
    assert resp.status == 400 and "reason" in (await resp.json())["error"]["details"]["fields"]


async def test_e_mails_name_the_agency_as_the_author_of_its_mission_and_reason(
    make_client: MakeClient, settings: Settings
) -> None:
    smtp = SmtpServer()
    await smtp.start()
    try:
        client = await start(make_client, smtp_url=smtp.url, public_url="https://astro.example")
        it = await employee(client)
        vip = await register(client, traveler_body())
        resp = await client.patch(f"/api/system/users/{vip.id}", json={"vip": True}, headers=it.headers)
        assert resp.status == 200
        agency = await register(client, agency_body(name="AstroBookings Support"))
        launch = await new_launch(client, agency)  # "Red dust"
        assert (await book(client, vip, launch["id"], 1)).status == 201
        assert (await set_status(client, agency, launch["id"], "aborted", reason="engine")).status == 200
        await client.app[DISPATCHER].run_once()
        mails = {m.subject: m.body for m in smtp.received if vip.email in m.rcpt_tos}
        author = "\u201cAstroBookings Support\u201d, not by AstroBookings."
        assert mails["New launch: Red dust to Mars"].endswith(
            f"\n\nThe launch's mission name was written by the agency {author}\n"
        )
        assert "Reason: engine" in mails["Aborted: Red dust"]
        assert mails["Aborted: Red dust"].endswith(
            f"\n\nThe launch's mission name and reason were written by the agency {author}\n"
        )
        # Added when the e-mail is rendered: the stored notification data is what the event made.
        conn = await asyncpg.connect(settings.pg_dsn)
        try:
            stored = await conn.fetch(
                "SELECT data::text AS data FROM notifications WHERE recipient_id = $1", vip.id
            )
        finally:
            await conn.close()
        assert len(stored) == len(mails) and not any("AstroBookings Support" in r["data"] for r in stored)
    finally:
        await smtp.stop()
