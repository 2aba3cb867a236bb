"""Every bad input to SystemAPI answers 400 invalid_input naming the field, and changes nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import agency_body, traveler_body

API = "/api/system"


def without(body: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = out
    for p in parents:
        target = target[p]
    del target[last]
    return out


def with_value(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = out
    for p in parents:
        target = target[p]
    target[last] = value
    return out


TRAVELER = traveler_body(email="base-traveler@example.com")
AGENCY = agency_body(email="base-agency@example.com")

REGISTER_CASES = [
    # (case, body, field named in details)
    *[
        (f"traveler missing {f}", without(TRAVELER, f), f)
        for f in (
            "email",
            "password",
            "name",
            "profile",
            "profile.phone",
            "profile.tax_id",
            "profile.address",
        )
    ],
    *[
        (f"agency missing {f}", without(AGENCY, f), f)
        for f in ("profile.legal_name", "profile.tax_id", "profile.legal_address")
    ],
    ("email not an email", with_value(TRAVELER, "email", "not-an-email"), "email"),
    ("email a number", with_value(TRAVELER, "email", 42), "email"),
    ("password too short", with_value(TRAVELER, "password", "short"), "password"),
    ("password not a string", with_value(TRAVELER, "password", 12345678), "password"),
    ("name empty", with_value(TRAVELER, "name", "   "), "name"),
    ("name a list", with_value(TRAVELER, "name", ["a"]), "name"),
    ("role employee", with_value(TRAVELER, "role", "it"), "role"),
    ("role missing", without(TRAVELER, "role"), "role"),
    ("role wrong type", with_value(TRAVELER, "role", 1), "role"),
    ("unknown top-level field", with_value(TRAVELER, "admin", True), "admin"),
    ("unknown profile field", with_value(TRAVELER, "profile.vip", True), "profile.vip"),
    (
        "agency fields on a traveler",
        with_value(TRAVELER, "profile.legal_name", "X Ltd"),
        "profile.legal_name",
    ),
    ("phone with letters", with_value(TRAVELER, "profile.phone", "call me"), "profile.phone"),
    ("contact email invalid", with_value(TRAVELER, "profile.contact_email", "nope"), "profile.contact_email"),
    ("profile not an object", with_value(TRAVELER, "profile", "x"), "profile"),
    ("description too long", with_value(AGENCY, "profile.description", "x" * 4001), "profile.description"),
]


@pytest.mark.parametrize(("case", "body", "field"), REGISTER_CASES, ids=[c[0] for c in REGISTER_CASES])
async def test_register_bad_input(client: Any, case: str, body: dict[str, Any], field: str) -> None:
    resp = await client.post(f"{API}/auth/register", json=body)
    data = await resp.json()
    assert resp.status == 400, data
    assert data["error"]["code"] == "invalid_input"
    assert field in data["error"]["details"]["fields"], (case, data)
    # Nothing was written: the same email can still register with a good body.
    good = traveler_body(
        email=body.get("email")
        if isinstance(body.get("email"), str) and "@" in body.get("email", "")
        else None
    )
    assert (await client.post(f"{API}/auth/register", json=good)).status == 201


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        ("/auth/register", b"{not json", "body"),
        ("/auth/register", b"", "body"),
        ("/auth/register", b"[]", "body"),
        ("/auth/register", b"null", "body"),
        ("/auth/login", b'{"email": "a@b.co"', "body"),
        ("/auth/login", b'{"email": "a@b.co"}', "password"),
        ("/auth/login", b'{"email": "a@b.co", "password": 5}', "password"),
        ("/auth/login", b'{"email": "a@b.co", "password": "x", "remember": true}', "remember"),
        ("/auth/validate", b"{}", "token"),
        ("/auth/validate", b'{"token": 7}', "token"),
    ],
)
async def test_malformed_or_wrong_bodies(client: Any, path: str, raw: bytes, field: str) -> None:
    resp = await client.post(f"{API}{path}", data=raw, headers={"Content-Type": "application/json"})
    data = await resp.json()
    assert resp.status == 400, data
    assert data["error"]["code"] == "invalid_input" and field in data["error"]["details"]["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "x@y.co", "password": "long-enough", "name": "X", "role": "traveler"}, "role"),
        ({"email": "x@y.co", "password": "short", "name": "X", "role": "it"}, "password"),
        ({"email": "x@y.co", "password": "long-enough", "role": "it"}, "name"),
        ({"email": "x", "password": "long-enough", "name": "X", "role": "finance"}, "email"),
        ({"email": "x@y.co", "password": "long-enough", "name": "X", "role": "it", "vip": True}, "vip"),
    ],
)
async def test_create_employee_bad_input(
    client: Any, make_employee: Any, body: dict[str, Any], field: str
) -> None:
    it = await make_employee("it")
    resp = await client.post(f"{API}/users", json=body, headers=it.headers)
    data = await resp.json()
    assert resp.status == 400 and field in data["error"]["details"]["fields"], data
    listed = await (await client.get(f"{API}/users?role={body['role']}", headers=it.headers)).json()
    assert all(u["email"] != body["email"] for u in listed["items"])


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "body"), ({"vip": "yes"}, "vip"), ({"disabled": 1}, "disabled"), ({"role": "it"}, "role")],
)
async def test_patch_user_bad_input(
    client: Any, make_employee: Any, make_traveler: Any, body: dict[str, Any], field: str
) -> None:
    it, traveler = await make_employee("it"), await make_traveler()
    resp = await client.patch(f"{API}/users/{traveler.id}", json=body, headers=it.headers)
    data = await resp.json()
    assert resp.status == 400 and field in data["error"]["details"]["fields"], data


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("cursor=%%%", "cursor"),
        ("role=pilot", "role"),
    ],
)
async def test_list_users_bad_query(client: Any, make_employee: Any, query: str, field: str) -> None:
    it = await make_employee("it")
    resp = await client.get(f"{API}/users?{query}", headers=it.headers)
    data = await resp.json()
    assert resp.status == 400 and field in data["error"]["details"]["fields"], data
