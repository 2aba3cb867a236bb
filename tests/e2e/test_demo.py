"""`python run.py demo` fills an empty platform with a world a new user can look at."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Account
from web.demo import PASSWORD, DemoExists, run_demo


async def login(client: Any, email: str) -> Account:
    resp = await client.post("/api/system/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    return Account(data["user"]["id"], email, PASSWORD, data["token"], data["user"]["role"])


async def test_demo_world(settings: Any, make_client: Any) -> None:
    logins = await run_demo(settings)
    assert {x.role for x in logins} == {"it", "finance", "agency", "traveler"} and len(logins) == 12
    client = await make_client(vip_window=86400)
    public = (await (await client.get("/api/booking/launches")).json())["items"]
    on_sale = {"Aurora night flight", "Far side photo tour", "Red dust expedition"}
    assert {x["mission"] for x in public} == on_sale
    assert any(x["seats_available"] == 1 for x in public)  # nearly full
    assert any(x["status"] == "delayed" for x in public)
    ada = await login(client, "ada@astro.demo")
    me = await (await client.get("/api/system/auth/me", headers=ada.headers)).json()
    assert me["user"]["vip"] is True
    seen = (await (await client.get("/api/booking/launches", headers=ada.headers)).json())["items"]
    assert [x["mission"] for x in seen if x["vip_only"]] == ["Phobos first look"]
    finance = await login(client, "finance@astro.demo")
    invoices = (await (await client.get("/api/finance/invoices", headers=finance.headers)).json())["items"]
    assert [(i["kind"], i["status"]) for i in invoices] == [
        ("commission", "partially_paid"),
        ("commission", "issued"),
        ("abort_fee", "issued"),
    ]
    with pytest.raises(DemoExists):
        await run_demo(settings)
