"""IT user administration: list with paging, create employees, set VIP and disabled flags."""

from __future__ import annotations

from typing import Any

API = "/api/system"


async def test_it_creates_a_finance_employee_who_can_log_in(client: Any, make_employee: Any) -> None:
    it = await make_employee("it")
    body = {"email": "Fiona@Astro.example", "password": "ledger-pass", "name": "Fiona", "role": "finance"}
    resp = await client.post(f"{API}/users", json=body, headers=it.headers)
    assert resp.status == 201
    user = (await resp.json())["user"]
    assert user["email"] == "fiona@astro.example" and user["role"] == "finance" and user["profile"] is None
    login = await client.post(
        f"{API}/auth/login", json={"email": "fiona@astro.example", "password": "ledger-pass"}
    )
    assert login.status == 200 and (await login.json())["user"]["role"] == "finance"
    dup = await client.post(f"{API}/users", json=body, headers=it.headers)
    assert dup.status == 409 and (await dup.json())["error"]["code"] == "email_taken"


async def test_list_users_pages_through_everyone_once(
    client: Any, make_employee: Any, make_traveler: Any, make_agency: Any
) -> None:
    it = await make_employee("it")
    created = {it.id}
    for _ in range(4):
        created.add((await make_traveler()).id)
    for _ in range(3):
        created.add((await make_agency()).id)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = f"{API}/users?limit=3" + (f"&cursor={cursor}" if cursor else "")
        data = await (await client.get(url, headers=it.headers)).json()
        assert len(data["items"]) <= 3
        seen += [u["id"] for u in data["items"]]
        pages += 1
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 8 and set(seen) == created and seen == sorted(seen)
    agencies = await (await client.get(f"{API}/users?role=agency", headers=it.headers)).json()
    assert len(agencies["items"]) == 3 and {u["role"] for u in agencies["items"]} == {"agency"}


async def test_it_sets_and_clears_vip(client: Any, make_employee: Any, make_traveler: Any) -> None:
    it, traveler = await make_employee("it"), await make_traveler()
    resp = await client.patch(f"{API}/users/{traveler.id}", json={"vip": True}, headers=it.headers)
    assert resp.status == 200 and (await resp.json())["user"]["vip"] is True
    me = await (await client.get(f"{API}/auth/me", headers=traveler.headers)).json()
    assert me["user"]["vip"] is True
    resp = await client.patch(f"{API}/users/{traveler.id}", json={"vip": False}, headers=it.headers)
    assert (await resp.json())["user"]["vip"] is False


async def test_patch_unknown_user_is_404(client: Any, make_employee: Any) -> None:
    it = await make_employee("it")
    resp = await client.patch(f"{API}/users/usr_missing", json={"vip": True}, headers=it.headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
