"""AgencyAPI over HTTP: profile, rockets, launches with occupancy, slugs, status, manifest, bookings report,
and that an agency only ever sees its own objects (another agency's id is 404, other roles 403)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from astro.domain.clock import FixedClock
from tests.conftest import Account, agency_body, passengers, register, traveler_body

A = "/api/agency"
B = "/api/booking"


# -- helpers ---------------------------------------------------------------------------------------


async def call(
    client: Any, method: str, path: str, who: Account | None = None, **kwargs: Any
) -> tuple[int, Any]:
    """Status and decoded JSON body (None when there is no body)."""
    headers = {**(who.headers if who else {}), **kwargs.pop("headers", {})}
    resp = await client.request(method, path, headers=headers, **kwargs)
    text = await resp.text()
    return resp.status, (json.loads(text) if text else None)


def explain(wrong: list[tuple[Any, ...]]) -> str:
    """One line per wrong answer: method, path, status and error code."""
    lines = []
    for method, path, *rest in wrong:
        status, answer = rest[-2], rest[-1]
        code = answer.get("error", {}).get("code") if isinstance(answer, dict) else answer
        lines.append(f"{method} {path} -> {status} {code}")
    return "\n".join(lines)


def at(days: float, hour: int = 12) -> datetime:
    """A moment `days` from now at a fixed hour (UTC), far from midnight so its date is unambiguous."""
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


async def new_rocket(
    client: Any, agency: Account, name: str = "Falcon Z", capacity: int = 100, range_: str = "mars"
) -> dict[str, Any]:
    status, body = await call(
        client, "POST", f"{A}/rockets", agency, json={"name": name, "capacity": capacity, "range": range_}
    )
    assert status == 201, body
    return body["rocket"]  # type: ignore[no-any-return]


def launch_body(rocket_id: str, when: datetime, **changes: Any) -> dict[str, Any]:
    body = {
        "rocket_id": rocket_id,
        "mission": "Tranquility tour",
        "destination": "moon",
        "scheduled_at": when.isoformat(),
        "price_cents": 100_000,
        "min_passengers": 10,
    }
    body.update(changes)
    return body


async def new_launch(
    client: Any, agency: Account, rocket_id: str, when: datetime | None = None, **changes: Any
) -> dict[str, Any]:
    status, body = await call(
        client, "POST", f"{A}/launches", agency, json=launch_body(rocket_id, when or at(30), **changes)
    )
    assert status == 201, body
    return body["launch"]  # type: ignore[no-any-return]


async def book(client: Any, traveler: Account, launch_id: str, seats: int) -> dict[str, Any]:
    status, body = await call(
        client,
        "POST",
        f"{B}/bookings",
        traveler,
        json={
            "launch_id": launch_id,
            "seats": seats,
            "passengers": passengers(seats),
            "card_token": "tok_ok",
        },
    )
    assert status == 201, body
    return body["booking"]  # type: ignore[no-any-return]


async def set_status(
    client: Any, agency: Account, launch_id: str, status: str, **extra: Any
) -> dict[str, Any]:
    code, body = await call(
        client, "POST", f"{A}/launches/{launch_id}/status", agency, json={"status": status, **extra}
    )
    assert code == 200, body
    return body["launch"]  # type: ignore[no-any-return]


async def all_pages(client: Any, who: Account, path: str, limit: int) -> tuple[list[str], list[int]]:
    """Ids of every item, following next_cursor, and the size of each page."""
    ids: list[str] = []
    sizes: list[int] = []
    cursor = None
    for _ in range(100):
        url = f"{path}?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        status, body = await call(client, "GET", url, who)
        assert status == 200, body
        assert set(body) == {"items", "next_cursor"}
        ids += [x["id"] for x in body["items"]]
        sizes.append(len(body["items"]))
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, sizes
    raise AssertionError("the cursor never ran out")


def error_of(status: int, body: Any, expected_status: int, code: str) -> dict[str, Any]:
    assert status == expected_status, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


# -- profile ---------------------------------------------------------------------------------------


async def test_profile_get_then_put_replaces_it(client: Any) -> None:
    reg = agency_body()
    agency = await register(client, reg)
    status, body = await call(client, "GET", f"{A}/profile", agency)
    assert status == 200, body
    assert body["legal_name"] == reg["profile"]["legal_name"]
    assert body["tax_id"] == reg["profile"]["tax_id"]
    assert body["legal_address"] == reg["profile"]["legal_address"]
    assert body.get("description") is None and body.get("contact_email") is None

    full = {
        "legal_name": "Orbital Ventures SL",
        "tax_id": "ES-B12345678",
        "legal_address": "1 Rocket Way, Seville",
        "description": "Moon tours since 2026",
        "contact_email": "billing@orbital.example",
    }
    status, body = await call(client, "PUT", f"{A}/profile", agency, json=full)
    assert status == 200, body
    assert body == full
    status, body = await call(client, "GET", f"{A}/profile", agency)
    assert status == 200 and body == full, body

    # PUT replaces: the optional fields left out are cleared, not kept.
    minimal = {"legal_name": "Orbital Ventures SA", "tax_id": "ES-A00000001", "legal_address": "2 Rocket Way"}
    status, body = await call(client, "PUT", f"{A}/profile", agency, json=minimal)
    assert status == 200, body
    status, body = await call(client, "GET", f"{A}/profile", agency)
    assert status == 200, body
    assert {k: body[k] for k in minimal} == minimal
    assert body.get("description") is None and body.get("contact_email") is None


async def test_profile_is_per_agency(client: Any, make_agency: Any) -> None:
    one, two = await make_agency(), await make_agency()
    new = {"legal_name": "One Ltd", "tax_id": "TAX-ONE", "legal_address": "1 One Street"}
    assert (await call(client, "PUT", f"{A}/profile", one, json=new))[0] == 200
    status, body = await call(client, "GET", f"{A}/profile", two)
    assert status == 200 and body["legal_name"] != "One Ltd" and body["tax_id"] != "TAX-ONE", body


# -- rockets ---------------------------------------------------------------------------------------


async def test_rocket_create_get_put_delete(client: Any, make_agency: Any) -> None:
    agency = await make_agency()
    rocket = await new_rocket(client, agency, name="Falcon Z", capacity=12, range_="moon")
    assert (
        rocket["id"]
        and rocket["name"] == "Falcon Z"
        and rocket["capacity"] == 12
        and rocket["range"] == "moon"
    )
    assert rocket["created_at"] and rocket["updated_at"]

    status, body = await call(client, "GET", f"{A}/rockets/{rocket['id']}", agency)
    assert status == 200 and body["rocket"] == rocket, body

    status, body = await call(
        client,
        "PUT",
        f"{A}/rockets/{rocket['id']}",
        agency,
        json={"name": "Falcon Z2", "capacity": 40, "range": "mars"},
    )
    assert status == 200, body
    changed = body["rocket"]
    assert changed["id"] == rocket["id"] and changed["created_at"] == rocket["created_at"]
    assert (changed["name"], changed["capacity"], changed["range"]) == ("Falcon Z2", 40, "mars")
    status, body = await call(client, "GET", f"{A}/rockets/{rocket['id']}", agency)
    assert status == 200 and body["rocket"] == changed, body
    status, body = await call(client, "GET", f"{A}/rockets", agency)
    assert [r["id"] for r in body["items"]] == [rocket["id"]] and body["items"][0]["name"] == "Falcon Z2"

    status, body = await call(client, "DELETE", f"{A}/rockets/{rocket['id']}", agency)
    assert status == 204, body
    error_of(*await call(client, "GET", f"{A}/rockets/{rocket['id']}", agency), 404, "not_found")
    error_of(*await call(client, "DELETE", f"{A}/rockets/{rocket['id']}", agency), 404, "not_found")
    error_of(
        *await call(
            client,
            "PUT",
            f"{A}/rockets/{rocket['id']}",
            agency,
            json={"name": "Ghost", "capacity": 1, "range": "moon"},
        ),
        404,
        "not_found",
    )
    status, body = await call(client, "GET", f"{A}/rockets", agency)
    assert status == 200 and body == {"items": [], "next_cursor": None}, body


@pytest.mark.parametrize(
    ("count", "limit", "sizes"),
    [(7, 3, [3, 3, 1]), (6, 3, [3, 3]), (5, 5, [5]), (5, 200, [5]), (3, 1, [1, 1, 1])],
    ids=["7-by-3", "6-by-3-exact", "5-by-5", "5-by-200", "3-by-1"],
)
async def test_rocket_list_pages_visit_each_rocket_once(
    client: Any, make_agency: Any, count: int, limit: int, sizes: list[int]
) -> None:
    agency, other = await make_agency(), await make_agency()
    created = [(await new_rocket(client, agency, name=f"Rocket {i}"))["id"] for i in range(count)]
    await new_rocket(client, other, name="Not mine")
    ids, page_sizes = await all_pages(client, agency, f"{A}/rockets", limit)
    assert len(ids) == len(set(ids)) == count
    assert set(ids) == set(created)
    assert page_sizes == sizes
    status, body = await call(client, "GET", f"{A}/rockets", agency)  # default limit
    assert status == 200 and {r["id"] for r in body["items"]} == set(created) and body["next_cursor"] is None


@pytest.mark.parametrize("unfinished", ["scheduled", "confirmed", "delayed"])
async def test_rocket_with_an_unfinished_launch_cannot_be_deleted_until_aborted(
    client: Any, make_agency: Any, unfinished: str
) -> None:
    agency = await make_agency()
    rocket = await new_rocket(client, agency)
    spare = await new_rocket(client, agency, name="Spare")
    launch = await new_launch(client, agency, rocket["id"], at(30))
    if unfinished == "confirmed":
        await set_status(client, agency, launch["id"], "confirmed")
    elif unfinished == "delayed":
        await set_status(client, agency, launch["id"], "delayed", scheduled_at=at(40).isoformat())

    err = error_of(*await call(client, "DELETE", f"{A}/rockets/{rocket['id']}", agency), 409, "rocket_in_use")
    assert err["details"].get("open_launches") == 1, err
    status, body = await call(client, "GET", f"{A}/rockets", agency)
    assert {r["id"] for r in body["items"]} == {rocket["id"], spare["id"]}
    assert (await call(client, "GET", f"{A}/rockets/{rocket['id']}", agency))[0] == 200

    assert (await set_status(client, agency, launch["id"], "aborted"))["status"] == "aborted"
    status, body = await call(client, "DELETE", f"{A}/rockets/{rocket['id']}", agency)
    assert status == 204, body
    status, body = await call(client, "GET", f"{A}/rockets", agency)
    assert [r["id"] for r in body["items"]] == [spare["id"]]
    error_of(*await call(client, "GET", f"{A}/rockets/{rocket['id']}", agency), 404, "not_found")
    # The finished launch is history: it stays readable after its rocket is gone.
    status, body = await call(client, "GET", f"{A}/launches/{launch['id']}", agency)
    assert status == 200 and body["launch"]["status"] == "aborted", body
    # ... but a deleted rocket cannot get new launches.
    status, body = await call(client, "POST", f"{A}/launches", agency, json=launch_body(rocket["id"], at(50)))
    assert "rocket_id" in error_of(status, body, 422, "unknown_rocket")["details"]["fields"]


# -- launches --------------------------------------------------------------------------------------


OCCUPANCY = ("capacity", "seats_booked", "seats_available", "occupancy_pct", "min_passengers", "viable")


async def test_launch_create_get_list_with_occupancy(
    client: Any, make_agency: Any, make_traveler: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    rocket = await new_rocket(client, agency, name="Selene", capacity=8, range_="moon")
    when = at(45)
    # Given with a +02:00 offset: the same instant comes back in UTC.
    local = when.astimezone(timezone(timedelta(hours=2)))
    status, body = await call(
        client,
        "POST",
        f"{A}/launches",
        agency,
        json=launch_body(rocket["id"], local, mission="Far side", price_cents=123_456, min_passengers=3),
    )
    assert status == 201, body
    launch = body["launch"]
    assert launch["id"] and launch["status"] == "scheduled"
    assert (
        launch["mission"] == "Far side"
        and launch["destination"] == "moon"
        and launch["price_cents"] == 123_456
    )
    assert datetime.fromisoformat(launch["scheduled_at"]) == when
    assert datetime.fromisoformat(launch["scheduled_at"]).utcoffset() == timedelta(0)
    assert launch["rocket"]["id"] == rocket["id"] and launch["rocket"]["name"] == "Selene"
    assert launch["agency"]["id"] == agency.id
    assert {k: launch[k] for k in OCCUPANCY} == {
        "capacity": 8,
        "seats_booked": 0,
        "seats_available": 8,
        "occupancy_pct": 0.0,
        "min_passengers": 3,
        "viable": False,
    }

    status, body = await call(client, "GET", f"{A}/launches/{launch['id']}", agency)
    assert status == 200 and body["launch"] == launch, body
    status, body = await call(client, "GET", f"{A}/launches", agency)
    assert status == 200 and body["items"] == [launch] and body["next_cursor"] is None, body

    await book(client, traveler, launch["id"], 2)
    got = (await call(client, "GET", f"{A}/launches/{launch['id']}", agency))[1]["launch"]
    assert {k: got[k] for k in OCCUPANCY} == {
        "capacity": 8,
        "seats_booked": 2,
        "seats_available": 6,
        "occupancy_pct": 25.0,
        "min_passengers": 3,
        "viable": False,
    }
    assert got["status"] == "scheduled"
    await book(client, traveler, launch["id"], 1)
    got = (await call(client, "GET", f"{A}/launches/{launch['id']}", agency))[1]["launch"]
    assert {k: got[k] for k in OCCUPANCY} == {
        "capacity": 8,
        "seats_booked": 3,
        "seats_available": 5,
        "occupancy_pct": 37.5,
        "min_passengers": 3,
        "viable": True,
    }
    assert got["status"] == "confirmed"
    listed = (await call(client, "GET", f"{A}/launches", agency))[1]["items"]
    assert [x["seats_booked"] for x in listed] == [3]


async def test_launch_list_pages_visit_each_launch_once(client: Any, make_agency: Any) -> None:
    agency, other = await make_agency(), await make_agency()
    rocket = await new_rocket(client, agency)
    created = [(await new_launch(client, agency, rocket["id"], at(20 + i)))["id"] for i in range(5)]
    await new_launch(client, other, (await new_rocket(client, other))["id"])
    ids, sizes = await all_pages(client, agency, f"{A}/launches", 2)
    assert sizes == [2, 2, 1]
    assert len(ids) == len(set(ids)) == 5 and set(ids) == set(created)


async def test_slug_is_readable_and_unique_per_rocket_and_day(client: Any, make_agency: Any) -> None:
    agency = await make_agency()
    rocket = await new_rocket(client, agency, name="Falcon Heavy", range_="mars")
    morning, evening = at(60, hour=9), at(60, hour=18)
    day = morning.date().isoformat()
    first = await new_launch(client, agency, rocket["id"], morning, destination="low_earth")
    second = await new_launch(client, agency, rocket["id"], evening, destination="low_earth")
    other = await new_launch(client, agency, rocket["id"], morning, destination="mars")
    assert first["slug"] == f"falcon-heavy-low-earth-{day}", first["slug"]
    assert other["slug"] == f"falcon-heavy-mars-{day}", other["slug"]
    assert second["slug"] != first["slug"]
    assert second["slug"].startswith(f"falcon-heavy-low-earth-{day}"), second["slug"]
    # Each slug leads to its own launch on the public site.
    for launch in (first, second, other):
        status, body = await call(client, "GET", f"{B}/launches/{launch['slug']}")
        assert status == 200 and body["launch"]["id"] == launch["id"], body


async def test_scheduling_in_the_past_is_date_in_past(client: Any, make_agency: Any) -> None:
    agency = await make_agency()
    rocket = await new_rocket(client, agency)
    for when in (datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) - timedelta(seconds=5)):
        status, body = await call(
            client, "POST", f"{A}/launches", agency, json=launch_body(rocket["id"], when)
        )
        err = error_of(status, body, 422, "date_in_past")
        assert "scheduled_at" in err["details"].get("fields", {}), err
    assert (await call(client, "GET", f"{A}/launches", agency))[1]["items"] == []


@pytest.mark.parametrize(
    ("rocket_range", "destination", "allowed"),
    [
        ("low_earth", "mars", False),
        ("low_earth", "moon", False),
        ("moon", "mars", False),
        ("low_earth", "low_earth", True),
        ("moon", "moon", True),
        ("mars", "low_earth", True),
        ("mars", "mars", True),
    ],
    ids=lambda v: str(v),
)
async def test_destination_must_be_in_the_rockets_range(
    client: Any, make_agency: Any, rocket_range: str, destination: str, allowed: bool
) -> None:
    agency = await make_agency()
    rocket = await new_rocket(client, agency, range_=rocket_range)
    status, body = await call(
        client,
        "POST",
        f"{A}/launches",
        agency,
        json=launch_body(rocket["id"], at(30), destination=destination),
    )
    if allowed:
        assert status == 201 and body["launch"]["destination"] == destination, body
    else:
        err = error_of(status, body, 422, "out_of_range")
        assert "destination" in err["details"].get("fields", {}), err
        assert (await call(client, "GET", f"{A}/launches", agency))[1]["items"] == []


async def test_min_passengers_above_capacity_is_invalid(client: Any, make_agency: Any) -> None:
    agency = await make_agency()
    rocket = await new_rocket(client, agency, capacity=10)
    status, body = await call(
        client, "POST", f"{A}/launches", agency, json=launch_body(rocket["id"], at(30), min_passengers=11)
    )
    assert "min_passengers" in error_of(status, body, 422, "over_capacity")["details"]["fields"]
    assert (await call(client, "GET", f"{A}/launches", agency))[1]["items"] == []
    # The capacity itself is fine.
    launch = await new_launch(client, agency, rocket["id"], min_passengers=10)
    assert launch["min_passengers"] == 10 and launch["capacity"] == 10


async def test_unknown_or_foreign_rocket_id_is_invalid(client: Any, make_agency: Any) -> None:
    agency, other = await make_agency(), await make_agency()
    foreign = await new_rocket(client, other)
    for rocket_id in ("rkt_doesnotexist", foreign["id"]):
        status, body = await call(
            client, "POST", f"{A}/launches", agency, json=launch_body(rocket_id, at(30))
        )
        assert "rocket_id" in error_of(status, body, 422, "unknown_rocket")["details"]["fields"], rocket_id
    assert (await call(client, "GET", f"{A}/launches", agency))[1]["items"] == []
    assert (await call(client, "GET", f"{A}/launches", other))[1]["items"] == []


async def test_launch_keeps_its_capacity_when_the_rocket_changes(client: Any, make_agency: Any) -> None:
    agency = await make_agency()
    rocket = await new_rocket(client, agency, capacity=10)
    launch = await new_launch(client, agency, rocket["id"], min_passengers=2)
    status, _ = await call(
        client,
        "PUT",
        f"{A}/rockets/{rocket['id']}",
        agency,
        json={"name": "Bigger", "capacity": 50, "range": "mars"},
    )
    assert status == 200
    got = (await call(client, "GET", f"{A}/launches/{launch['id']}", agency))[1]["launch"]
    assert got["capacity"] == 10 and got["seats_available"] == 10


# -- another agency's objects, other roles ---------------------------------------------------------


async def test_another_agencys_objects_are_not_found(
    client: Any, make_agency: Any, make_traveler: Any
) -> None:
    owner, intruder, traveler = await make_agency(), await make_agency(), await make_traveler()
    rocket = await new_rocket(client, owner, name="Owned", capacity=10)
    launch = await new_launch(client, owner, rocket["id"], min_passengers=5)
    await book(client, traveler, launch["id"], 2)
    rocket_body = {"name": "Stolen", "capacity": 5, "range": "moon"}
    attempts = [
        ("GET", f"{A}/rockets/{rocket['id']}", None),
        ("PUT", f"{A}/rockets/{rocket['id']}", rocket_body),
        ("DELETE", f"{A}/rockets/{rocket['id']}", None),
        ("GET", f"{A}/launches/{launch['id']}", None),
        ("GET", f"{A}/launches/{launch['id']}/bookings", None),
        ("POST", f"{A}/launches/{launch['id']}/status", {"status": "aborted"}),
        ("POST", f"{A}/launches/{launch['id']}/status", {"status": "confirmed"}),
        (
            "POST",
            f"{A}/launches/{launch['id']}/status",
            {"status": "delayed", "scheduled_at": at(90).isoformat()},
        ),
    ]
    wrong = []
    for method, path, body in attempts:
        status, answer = await call(client, method, path, intruder, **({"json": body} if body else {}))
        if (
            status != 404
            or not isinstance(answer, dict)
            or answer.get("error", {}).get("code") != "not_found"
        ):
            wrong.append((method, path, body, status, answer))
    assert wrong == [], explain(wrong)
    # The intruder sees none of it in lists, and nothing of the owner's changed.
    assert (await call(client, "GET", f"{A}/rockets", intruder))[1]["items"] == []
    assert (await call(client, "GET", f"{A}/launches", intruder))[1]["items"] == []
    status, body = await call(client, "GET", f"{A}/rockets/{rocket['id']}", owner)
    assert status == 200 and body["rocket"]["name"] == "Owned" and body["rocket"]["capacity"] == 10
    status, body = await call(client, "GET", f"{A}/launches/{launch['id']}", owner)
    assert status == 200 and body["launch"]["status"] == "scheduled" and body["launch"]["seats_booked"] == 2
    assert body["launch"]["scheduled_at"] == launch["scheduled_at"]
    mine = (await call(client, "GET", f"{B}/bookings", traveler))[1]["items"]
    assert [b["status"] for b in mine] == ["confirmed"]


async def test_ids_that_do_not_exist_are_not_found(client: Any, make_agency: Any) -> None:
    agency = await make_agency()
    attempts = [
        ("GET", f"{A}/rockets/rkt_nope", None),
        ("PUT", f"{A}/rockets/rkt_nope", {"name": "X", "capacity": 5, "range": "moon"}),
        ("DELETE", f"{A}/rockets/rkt_nope", None),
        ("GET", f"{A}/launches/lch_nope", None),
        ("GET", f"{A}/launches/lch_nope/bookings", None),
        ("POST", f"{A}/launches/lch_nope/status", {"status": "aborted"}),
        ("GET", f"{A}/launches/nope", None),
        ("POST", f"{A}/launches/nope/status", {"status": "aborted"}),
    ]
    wrong = []
    for method, path, body in attempts:
        status, answer = await call(client, method, path, agency, **({"json": body} if body else {}))
        if (
            status != 404
            or not isinstance(answer, dict)
            or answer.get("error", {}).get("code") != "not_found"
        ):
            wrong.append((method, path, status, answer))
    assert wrong == [], explain(wrong)


def agency_endpoints(rocket_id: str, launch_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", f"{A}/profile", None),
        ("PUT", f"{A}/profile", {"legal_name": "X", "tax_id": "TAX-X", "legal_address": "X street"}),
        ("GET", f"{A}/rockets", None),
        ("POST", f"{A}/rockets", {"name": "X", "capacity": 5, "range": "moon"}),
        ("GET", f"{A}/rockets/{rocket_id}", None),
        ("PUT", f"{A}/rockets/{rocket_id}", {"name": "X", "capacity": 5, "range": "moon"}),
        ("DELETE", f"{A}/rockets/{rocket_id}", None),
        ("GET", f"{A}/launches", None),
        ("POST", f"{A}/launches", launch_body(rocket_id, at(30))),
        ("GET", f"{A}/launches/{launch_id}", None),
        ("POST", f"{A}/launches/{launch_id}/status", {"status": "aborted"}),
        ("GET", f"{A}/launches/{launch_id}/bookings", None),
        ("GET", f"{A}/reports/bookings?from=2026-01-01&to=2030-01-01", None),
    ]


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("traveler", (403, "forbidden")),
        ("finance", (403, "forbidden")),
        ("it", (403, "forbidden")),
        ("no token", (401, "unauthenticated")),
        ("garbage token", (401, None)),
        ("not bearer", (401, None)),
    ],
    ids=["traveler-403", "finance-403", "it-403", "no-token-401", "garbage-token-401", "basic-auth-401"],
)
async def test_agency_api_is_for_agencies_only(
    client: Any,
    make_agency: Any,
    make_traveler: Any,
    make_employee: Any,
    caller: str,
    expected: tuple[int, str | None],
) -> None:
    owner = await make_agency()
    rocket = await new_rocket(client, owner, name="Guarded")
    launch = await new_launch(client, owner, rocket["id"])
    headers: dict[str, str]
    if caller == "traveler":
        headers = (await make_traveler()).headers
    elif caller in ("finance", "it"):
        headers = (await make_employee(caller)).headers
    elif caller == "garbage token":
        headers = {"Authorization": "Bearer not.a.token"}
    elif caller == "not bearer":
        headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    else:
        headers = {}
    wrong = []
    for method, path, body in agency_endpoints(rocket["id"], launch["id"]):
        extra: dict[str, Any] = {"json": body} if body else {}
        status, answer = await call(client, method, path, headers=headers, **extra)
        ok = status == expected[0] and isinstance(answer, dict) and "error" in answer
        if ok and expected[1] is not None:
            ok = answer["error"]["code"] == expected[1]
        if not ok:
            wrong.append((method, path, status, answer))
    assert wrong == [], explain(wrong)
    # Nothing changed for the owner.
    assert [r["name"] for r in (await call(client, "GET", f"{A}/rockets", owner))[1]["items"]] == ["Guarded"]
    launches = (await call(client, "GET", f"{A}/launches", owner))[1]["items"]
    assert [(x["id"], x["status"]) for x in launches] == [(launch["id"], "scheduled")]


# -- manifest --------------------------------------------------------------------------------------


async def test_manifest_lists_bookings_with_passengers(client: Any, make_agency: Any) -> None:
    agency = await make_agency()
    t1_body, t2_body = traveler_body(), traveler_body()
    t1, t2 = await register(client, t1_body), await register(client, t2_body)
    rocket = await new_rocket(client, agency, capacity=10)
    launch = await new_launch(client, agency, rocket["id"], at(400), price_cents=50_000, min_passengers=5)
    other = await new_launch(client, agency, rocket["id"], at(401), min_passengers=5)

    status, body = await call(client, "GET", f"{A}/launches/{launch['id']}/bookings", agency)
    empty = {"launch_id": launch["id"], "seats_booked": 0, "items": []}
    costs = {"active_bookings": 0, "refund_all_cents": 0, "abort_fee_cents": 100_000}
    assert status == 200 and body == {**empty, **costs}, body

    group = [
        {"name": "Ada Lovelace", "birth_date": "1985-12-10"},
        {"name": "Alan Turing", "birth_date": "1980-06-23"},
    ]
    status, made = await call(
        client,
        "POST",
        f"{B}/bookings",
        t1,
        json={"launch_id": launch["id"], "seats": 2, "passengers": group, "card_token": "tok_ok"},
    )
    assert status == 201, made
    b1 = made["booking"]
    b2 = await book(client, t2, launch["id"], 1)
    await book(client, t2, other["id"], 1)  # not on this manifest

    status, body = await call(client, "GET", f"{A}/launches/{launch['id']}/bookings", agency)
    assert status == 200, body
    assert body["launch_id"] == launch["id"] and body["seats_booked"] == 3
    by_id = {x["id"]: x for x in body["items"]}
    assert set(by_id) == {b1["id"], b2["id"]}
    first = by_id[b1["id"]]
    assert first["traveler_id"] == t1.id and first["traveler_email"] == t1.email
    assert first["traveler_name"] == t1_body["name"]
    assert first["seats"] == 2 and first["total_cents"] == 100_000 and first["status"] == "confirmed"
    assert first["passengers"] == group
    second = by_id[b2["id"]]
    assert second["traveler_id"] == t2.id and second["seats"] == 1 and len(second["passengers"]) == 1

    # A cancellation shows on the manifest with its refund.
    status, cancelled = await call(client, "POST", f"{B}/bookings/{b2['id']}/cancel", t2)
    assert status == 200 and cancelled["refund_pct"] == 90, cancelled
    status, body = await call(client, "GET", f"{A}/launches/{launch['id']}/bookings", agency)
    assert status == 200, body
    entry = {x["id"]: x for x in body["items"]}[b2["id"]]
    assert entry["status"] == "cancelled" and entry["refund_cents"] == 45_000 and entry["cancelled_at"]
    assert body["seats_booked"] == 2
    # What aborting would cost now: the one active booking back in full, and the flat fee.
    assert (body["active_bookings"], body["refund_all_cents"], body["abort_fee_cents"]) == (
        1,
        100_000,
        100_000,
    )


# -- bookings report -------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def timed_client(make_client: Any, clock: FixedClock) -> Any:
    """A client whose app reads the time from `clock`, so launches can be flown in a test."""
    return await make_client(clock=clock)


def day_after(d: date) -> str:
    return (d + timedelta(days=1)).isoformat()


async def test_bookings_report_lists_successful_launches_with_tax_data(
    timed_client: Any, clock: FixedClock
) -> None:
    c = timed_client
    agency, other_agency = await register(c, agency_body()), await register(c, agency_body())
    t1_body, t2_body = traveler_body(), traveler_body()
    t1, t2 = await register(c, t1_body), await register(c, t2_body)
    rocket = await new_rocket(c, agency, capacity=20)

    start = clock.now()

    def when(days: int) -> datetime:
        return (start + timedelta(days=days)).replace(hour=12, minute=0, second=0)

    flown_a = await new_launch(
        c, agency, rocket["id"], when(100), mission="A", price_cents=100_000, min_passengers=2
    )
    flown_b = await new_launch(
        c, agency, rocket["id"], when(130), mission="B", price_cents=50_000, min_passengers=1
    )
    aborted = await new_launch(c, agency, rocket["id"], when(110), mission="C", min_passengers=1)
    not_flown = await new_launch(c, agency, rocket["id"], when(400), mission="D", min_passengers=1)

    a1 = await book(c, t1, flown_a["id"], 2)  # 200 000, kept
    a2 = await book(c, t2, flown_a["id"], 1)  # 100 000, cancelled 100 days ahead: 70 % back
    status, body = await call(c, "POST", f"{B}/bookings/{a2['id']}/cancel", t2)
    assert status == 200 and body["refund_pct"] == 70 and body["refund_cents"] == 70_000, body
    b1 = await book(c, t2, flown_b["id"], 1)  # 50 000
    await book(c, t1, aborted["id"], 1)
    await book(c, t1, not_flown["id"], 1)
    await set_status(c, agency, aborted["id"], "aborted")

    # Not before scheduled_at.
    status, body = await call(
        c, "POST", f"{A}/launches/{flown_a['id']}/status", agency, json={"status": "successful"}
    )
    error_of(status, body, 422, "too_early")

    clock.advance(timedelta(days=131))
    for launch in (flown_a, flown_b):
        assert (await set_status(c, agency, launch["id"], "successful"))["status"] == "successful"

    status, report = await call(c, "GET", f"{A}/reports/bookings", agency)
    assert status == 200, report
    lines = {x["booking_id"]: x for x in report["items"]}
    assert set(lines) == {a1["id"], a2["id"], b1["id"]}, report
    expected = {
        a1["id"]: (flown_a, t1, t1_body, 2, 200_000, 0, "confirmed"),
        a2["id"]: (flown_a, t2, t2_body, 1, 100_000, 70_000, "cancelled"),
        b1["id"]: (flown_b, t2, t2_body, 1, 50_000, 0, "confirmed"),
    }
    for booking_id, (launch, who, reg, seats, total, refund, state) in expected.items():
        line = lines[booking_id]
        assert line["launch_id"] == launch["id"] and line["mission"] == launch["mission"]
        assert datetime.fromisoformat(line["scheduled_at"]) == datetime.fromisoformat(launch["scheduled_at"])
        assert line["traveler_id"] == who.id and line["traveler_name"] == reg["name"]
        assert line["tax_id"] == reg["profile"]["tax_id"] and line["address"] == reg["profile"]["address"]
        assert (
            line["seats"],
            line["total_cents"],
            line["refund_cents"],
            line["net_cents"],
            line["status"],
        ) == (seats, total, refund, total - refund, state), line
    assert report["total_cents"] == sum(x["total_cents"] for x in report["items"]) == 350_000
    assert report["refund_cents"] == sum(x["refund_cents"] for x in report["items"]) == 70_000
    assert report["net_cents"] == sum(x["net_cents"] for x in report["items"]) == 280_000

    # [from, to) on the launch date: `to` is exclusive.
    day_a, day_b = when(100).date(), when(130).date()
    windows = {
        (day_a.isoformat(), day_after(day_a)): {a1["id"], a2["id"]},
        (day_b.isoformat(), day_after(day_b)): {b1["id"]},
        (day_a.isoformat(), day_b.isoformat()): {a1["id"], a2["id"]},
        (day_after(day_a), day_b.isoformat()): set(),
        (day_a.isoformat(), day_after(day_b)): {a1["id"], a2["id"], b1["id"]},
    }
    for (first, end), ids in windows.items():
        status, body = await call(c, "GET", f"{A}/reports/bookings?from={first}&to={end}", agency)
        assert status == 200, body
        assert {x["booking_id"] for x in body["items"]} == ids, (first, end, body)
        assert body["total_cents"] == sum(x["total_cents"] for x in body["items"])
        assert body["refund_cents"] == sum(x["refund_cents"] for x in body["items"])
        assert body["net_cents"] == sum(x["net_cents"] for x in body["items"])
    status, body = await call(c, "GET", f"{A}/reports/bookings?from={day_after(day_a)}", agency)
    assert {x["booking_id"] for x in body["items"]} == {b1["id"]}
    status, body = await call(c, "GET", f"{A}/reports/bookings?to={day_after(day_a)}", agency)
    assert {x["booking_id"] for x in body["items"]} == {a1["id"], a2["id"]}

    # Another agency's report is its own: empty.
    status, body = await call(c, "GET", f"{A}/reports/bookings", other_agency)
    assert status == 200 and body == {"items": [], "total_cents": 0, "refund_cents": 0, "net_cents": 0}, body


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=not-a-date", "from"),
        ("from=2027-02-30", "from"),
        ("from=31/01/2027", "from"),
        ("to=2027-13-01", "to"),
        ("from=2027-01-01&to=tomorrow", "to"),
    ],
    ids=["from-text", "from-feb-30", "from-dmy", "to-month-13", "to-text"],
)
async def test_bookings_report_bad_dates(client: Any, make_agency: Any, query: str, field: str) -> None:
    agency = await make_agency()
    status, body = await call(client, "GET", f"{A}/reports/bookings?{query}", agency)
    err = error_of(status, body, 400, "invalid_input")
    assert field in err["details"]["fields"], err


async def test_activity_answers_the_agency_its_recent_history_newest_first(
    client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, other = await make_agency(), await make_agency()
    traveler = await make_traveler()
    launch = await make_launch(agency, capacity=10, min_passengers=2, price_cents=250_000, days=400)
    mine = {"Authorization": agency.headers["Authorization"]}
    resp = await client.post(
        "/api/booking/bookings",
        headers=traveler.headers,
        json={"launch_id": launch["id"], "seats": 2, "passengers": passengers(2), "card_token": "tok_ok"},
    )
    assert resp.status == 201, await resp.text()
    booking = (await resp.json())["booking"]
    resp = await client.post(f"/api/booking/bookings/{booking['id']}/cancel", headers=traveler.headers)
    assert resp.status == 200, await resp.text()
    resp = await client.post(
        f"{A}/launches/{launch['id']}/status", headers=mine, json={"status": "aborted", "reason": "weather"}
    )
    assert resp.status == 200, await resp.text()

    resp = await client.get(f"{A}/activity", headers=mine)
    assert resp.status == 200, await resp.text()
    items = (await resp.json())["items"]
    # The booking and the confirmation it caused share one commit: either may come first.
    assert [i["kind"] for i in items[:2]] == ["status", "cancel"] and items[4]["kind"] == "launch_added"
    aborted, cancel = items[:2]
    [confirmed] = [i for i in items[2:4] if i["kind"] == "status"]
    [booked] = [i for i in items[2:4] if i["kind"] == "booking"]
    assert all(i["launch_id"] == launch["id"] and i["mission"] == launch["mission"] for i in items)
    assert (aborted["status"], aborted["reason"]) == ("aborted", "weather")
    assert confirmed["status"] == "confirmed"  # two seats reached min_passengers
    assert (booked["booking_id"], booked["seats"], booked["total_cents"]) == (booking["id"], 2, 500_000)
    refund = (cancel["booking_id"], cancel["refund_pct"], cancel["refund_cents"])
    assert refund == (booking["id"], 90, 450_000)
    assert cancel["seats_released"] is True
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    resp = await client.get(f"{A}/activity?limit=2", headers=mine)
    assert [i["id"] for i in (await resp.json())["items"]] == [aborted["id"], cancel["id"]]

    resp = await client.get(f"{A}/activity", headers=other.headers)
    assert resp.status == 200 and (await resp.json())["items"] == []  # another agency's history is not theirs
    resp = await client.get(f"{A}/activity", headers=traveler.headers)
    assert resp.status == 403
    resp = await client.get(f"{A}/activity?limit=500", headers=mine)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_input"


async def test_scheduling_rules_tell_the_agency_the_vip_window_limit_and_abort_fee(
    make_client: Any, make_employee: Any
) -> None:
    client = await make_client(vip_window=7200, agency_launches_per_day=3)
    agency = await register(client, agency_body())
    status, body = await call(client, "GET", f"{A}/scheduling", agency)
    assert status == 200, body
    assert body == {"vip_window_seconds": 7200, "launches_per_day": 3, "abort_fee_cents": 100_000}
    traveler = await register(client, traveler_body())
    assert (await call(client, "GET", f"{A}/scheduling", traveler))[0] == 403
