"""Every bad input to AgencyAPI and BookingAPI answers 400 invalid_input naming the field, and changes
nothing; the booking rules answer 422/404/409 and leave no booking and no held seat."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest

from tests.conftest import Account

A = "/api/agency"
B = "/api/booking"


# -- the world every case runs in ------------------------------------------------------------------


def launch_day() -> datetime:
    """About 60 days ahead at noon UTC, never on 29 February (so birthdays N years back exist)."""
    day = (datetime.now(UTC) + timedelta(days=60)).replace(hour=12, minute=0, second=0, microsecond=0)
    if (day.month, day.day) == (2, 29):
        day += timedelta(days=1)
    return day


LAUNCH_AT = launch_day()


def years_before(day: date, years: int) -> date:
    return day.replace(year=day.year - years)


@dataclass
class World:
    agency: Account
    traveler: Account
    rocket_id: str
    launch_id: str

    def fill(self, value: Any) -> Any:
        """Put the real ids where a template says {rocket} or {launch}."""
        if isinstance(value, str):
            return value.replace("{rocket}", self.rocket_id).replace("{launch}", self.launch_id)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def who(self, role: str) -> Account:
        return self.agency if role == "agency" else self.traveler


async def call(
    client: Any, method: str, path: str, who: Account | None = None, **kwargs: Any
) -> tuple[int, Any]:
    headers = {**(who.headers if who else {}), **kwargs.pop("headers", {})}
    resp = await client.request(method, path, headers=headers, **kwargs)
    text = await resp.text()
    try:
        return resp.status, (json.loads(text) if text else None)
    except ValueError:
        return resp.status, text


def explain(wrong: list[tuple[Any, ...]]) -> str:
    """One line per wrong answer: method, path, status and error code."""
    lines = []
    for method, path, *rest in wrong:
        status, answer = rest[-2], rest[-1]
        code = answer.get("error", {}).get("code") if isinstance(answer, dict) else answer
        lines.append(f"{method} {path} -> {status} {code}")
    return "\n".join(lines)


@pytest.fixture
async def world(client: Any, make_agency: Any, make_traveler: Any) -> World:
    agency, traveler = await make_agency(), await make_traveler()
    status, body = await call(
        client, "POST", f"{A}/rockets", agency, json={"name": "Falcon Z", "capacity": 4, "range": "mars"}
    )
    assert status == 201, body
    rocket_id = body["rocket"]["id"]
    status, body = await call(
        client,
        "POST",
        f"{A}/launches",
        agency,
        json={
            "rocket_id": rocket_id,
            "mission": "Tranquility tour",
            "destination": "moon",
            "scheduled_at": LAUNCH_AT.isoformat(),
            "price_cents": 100_000,
            "min_passengers": 2,
        },
    )
    assert status == 201, body
    return World(agency, traveler, rocket_id, body["launch"]["id"])


async def snapshot(client: Any, w: World) -> dict[str, Any]:
    """Everything a bad request could have changed, as the API shows it."""
    reads = [
        (w.agency, f"{A}/rockets"),
        (w.agency, f"{A}/rockets/{w.rocket_id}"),
        (w.agency, f"{A}/launches"),
        (w.agency, f"{A}/launches/{w.launch_id}"),
        (w.agency, f"{A}/profile"),
        (w.traveler, f"{B}/bookings"),
        (w.traveler, f"{B}/profile"),
        (None, f"{B}/launches/{w.launch_id}"),
    ]
    out = {}
    for who, path in reads:
        status, body = await call(client, "GET", path, who)
        assert status == 200, (path, body)
        out[path] = body
    return out


async def assert_bad_input(
    client: Any, w: World, method: str, path: str, who: Account, field: str, **kwargs: Any
) -> None:
    before = await snapshot(client, w)
    status, body = await call(client, method, w.fill(path), who, **kwargs)
    assert status == 400, body
    assert isinstance(body, dict) and body["error"]["code"] == "invalid_input", body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    fields = body["error"]["details"].get("fields", {})
    assert field in fields, (field, body)
    assert await snapshot(client, w) == before, "a refused request changed something"


# -- bodies ----------------------------------------------------------------------------------------

ROCKET = {"name": "Falcon Z2", "capacity": 10, "range": "moon"}
LAUNCH = {
    "rocket_id": "{rocket}",
    "mission": "Far side",
    "destination": "moon",
    "scheduled_at": (LAUNCH_AT + timedelta(days=1)).isoformat(),
    "price_cents": 100_000,
    "min_passengers": 2,
}
STATUS = {
    "status": "delayed",
    "scheduled_at": (LAUNCH_AT + timedelta(days=7)).isoformat(),
    "reason": "weather",
}
AGENCY_PROFILE = {
    "legal_name": "New Name Ltd",
    "tax_id": "TAX-NEW",
    "legal_address": "9 New Street",
    "description": "new",
    "contact_email": "new@agency.example",
}
TRAVELER_PROFILE = {
    "phone": "+34 600 000 000",
    "contact_email": "me@traveler.example",
    "tax_id": "TAX-NEWT",
    "address": "9 New Road",
}
BOOKING = {
    "launch_id": "{launch}",
    "seats": 1,
    "passengers": [{"name": "Ada", "birth_date": "1990-05-17"}],
    "card_token": "tok_ok",
}

# endpoint id -> (method, path, caller, a good body)
ENDPOINTS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "create-rocket": ("POST", f"{A}/rockets", "agency", ROCKET),
    "put-rocket": ("PUT", f"{A}/rockets/{{rocket}}", "agency", ROCKET),
    "create-launch": ("POST", f"{A}/launches", "agency", LAUNCH),
    "launch-status": ("POST", f"{A}/launches/{{launch}}/status", "agency", STATUS),
    "agency-profile": ("PUT", f"{A}/profile", "agency", AGENCY_PROFILE),
    "traveler-profile": ("PUT", f"{B}/profile", "traveler", TRAVELER_PROFILE),
    "book": ("POST", f"{B}/bookings", "traveler", BOOKING),
}

MISSING = object()


def changed(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`body` with the dotted `path` set to `value` (or removed when value is MISSING)."""
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    target: Any = out
    for p in parents:
        target = target[int(p)] if isinstance(target, list) else target[p]
    key: Any = int(last) if isinstance(target, list) else last
    if value is MISSING:
        del target[key]
    else:
        target[key] = value
    return out


# (endpoint, case, dotted path to change, new value or MISSING, field named in details)
ROCKET_CASES = [
    ("missing name", "name", MISSING, "name"),
    ("missing capacity", "capacity", MISSING, "capacity"),
    ("missing range", "range", MISSING, "range"),
    ("name an int", "name", 5, "name"),
    ("name blank", "name", "   ", "name"),
    ("name null", "name", None, "name"),
    ("name too long", "name", "x" * 201, "name"),
    ("name with a NUL", "name", "Fal\u0000con", "name"),
    ("capacity a string", "capacity", "10", "capacity"),
    ("capacity a float", "capacity", 10.5, "capacity"),
    ("capacity a boolean", "capacity", True, "capacity"),
    ("capacity 0", "capacity", 0, "capacity"),
    ("capacity 1001", "capacity", 1001, "capacity"),
    ("capacity negative", "capacity", -3, "capacity"),
    ("capacity huge", "capacity", 10**20, "capacity"),
    ("range jupiter", "range", "jupiter", "range"),
    ("range upper case", "range", "MOON", "range"),
    ("range an int", "range", 1, "range"),
    ("unknown field", "color", "red", "color"),
    ("id in the body", "id", "rkt_mine", "id"),
]
LAUNCH_CASES = [
    *[(f"missing {f}", f, MISSING, f) for f in LAUNCH],
    ("rocket_id an int", "rocket_id", 5, "rocket_id"),
    ("rocket_id empty", "rocket_id", "", "rocket_id"),
    # an unknown rocket_id is well-formed: 422 unknown_rocket (test_openapi_contract.py)
    ("mission blank", "mission", "  ", "mission"),
    ("mission a list", "mission", ["x"], "mission"),
    ("mission too long", "mission", "m" * 501, "mission"),
    ("mission with a NUL", "mission", "Far\u0000side", "mission"),
    ("destination venus", "destination", "venus", "destination"),
    ("destination null", "destination", None, "destination"),
    ("destination an int", "destination", 2, "destination"),
    (
        "scheduled_at naive",
        "scheduled_at",
        (LAUNCH_AT + timedelta(days=1)).replace(tzinfo=None).isoformat(),
        "scheduled_at",
    ),
    (
        "scheduled_at a date only",
        "scheduled_at",
        (LAUNCH_AT + timedelta(days=1)).date().isoformat(),
        "scheduled_at",
    ),
    ("scheduled_at text", "scheduled_at", "next tuesday", "scheduled_at"),
    ("scheduled_at a boolean", "scheduled_at", True, "scheduled_at"),
    ("scheduled_at month 13", "scheduled_at", "2030-13-01T12:00:00Z", "scheduled_at"),
    ("price negative", "price_cents", -1, "price_cents"),
    ("price 0", "price_cents", 0, "price_cents"),
    ("price a string", "price_cents", "100000", "price_cents"),
    ("price a float", "price_cents", 999.99, "price_cents"),
    ("price too big", "price_cents", 10**13, "price_cents"),
    ("min_passengers 0", "min_passengers", 0, "min_passengers"),
    ("min_passengers a string", "min_passengers", "2", "min_passengers"),
    ("min_passengers a boolean", "min_passengers", True, "min_passengers"),
    # above the rocket's capacity is well-formed: 422 over_capacity (test_agency_api.py)
    ("unknown field status", "status", "confirmed", "status"),
    ("unknown field slug", "slug", "my-own-slug", "slug"),
]
STATUS_CASES = [
    ("missing status", "status", MISSING, "status"),
    ("status exploded", "status", "exploded", "status"),
    ("status an int", "status", 3, "status"),
    ("status null", "status", None, "status"),
    ("status upper case", "status", "ABORTED", "status"),
    (
        "scheduled_at naive",
        "scheduled_at",
        (LAUNCH_AT + timedelta(days=7)).replace(tzinfo=None).isoformat(),
        "scheduled_at",
    ),
    ("scheduled_at text", "scheduled_at", "soon", "scheduled_at"),
    ("scheduled_at an int", "scheduled_at", 7, "scheduled_at"),
    ("reason an int", "reason", 5, "reason"),
    ("reason too long", "reason", "r" * 1001, "reason"),
    ("unknown field", "force", True, "force"),
]
AGENCY_PROFILE_CASES = [
    *[(f"missing {f}", f, MISSING, f) for f in ("legal_name", "tax_id", "legal_address")],
    ("legal_name null", "legal_name", None, "legal_name"),
    ("legal_name an int", "legal_name", 1, "legal_name"),
    ("legal_name with a NUL", "legal_name", "New\u0000Name", "legal_name"),
    ("tax_id too short", "tax_id", "AB", "tax_id"),
    ("tax_id an int", "tax_id", 12345, "tax_id"),
    ("legal_address blank", "legal_address", " ", "legal_address"),
    ("description too long", "description", "d" * 4001, "description"),
    ("contact_email not an email", "contact_email", "nope", "contact_email"),
    ("unknown field", "vip", True, "vip"),
]
TRAVELER_PROFILE_CASES = [
    *[(f"missing {f}", f, MISSING, f) for f in ("phone", "tax_id", "address")],
    ("phone with letters", "phone", "call me maybe", "phone"),
    ("phone an int", "phone", 34600000000, "phone"),
    ("tax_id too short", "tax_id", "X", "tax_id"),
    ("address too long", "address", "a" * 501, "address"),
    ("address with a NUL", "address", "9 New\u0000Road", "address"),
    ("contact_email not an email", "contact_email", "me-at-home", "contact_email"),
    ("unknown field", "vip", True, "vip"),
]
BOOKING_CASES = [
    *[(f"missing {f}", f, MISSING, f) for f in BOOKING],
    ("launch_id an int", "launch_id", 1, "launch_id"),
    ("launch_id empty", "launch_id", "", "launch_id"),
    ("launch_id null", "launch_id", None, "launch_id"),
    ("seats a string", "seats", "1", "seats"),
    ("seats a float", "seats", 1.5, "seats"),
    ("seats a boolean", "seats", True, "seats"),
    ("seats 0", "seats", 0, "seats"),
    ("seats negative", "seats", -1, "seats"),
    ("seats huge", "seats", 10**9, "seats"),
    ("passengers an object", "passengers", {"name": "Ada", "birth_date": "1990-05-17"}, "passengers"),
    ("passengers empty", "passengers", [], "passengers"),
    (
        "passengers eleven",
        "passengers",
        [{"name": f"P{i}", "birth_date": "1990-05-17"} for i in range(11)],
        "passengers",
    ),
    ("passenger a string", "passengers.0", "Ada", "passengers.0"),
    ("passenger missing name", "passengers.0.name", MISSING, "passengers.0.name"),
    ("passenger missing birth_date", "passengers.0.birth_date", MISSING, "passengers.0.birth_date"),
    ("passenger name blank", "passengers.0.name", " ", "passengers.0.name"),
    ("passenger name with a NUL", "passengers.0.name", "A\u0000da", "passengers.0.name"),
    ("birth_date 30 February", "passengers.0.birth_date", "1990-02-30", "passengers.0.birth_date"),
    ("birth_date day first", "passengers.0.birth_date", "17/05/1990", "passengers.0.birth_date"),
    ("birth_date text", "passengers.0.birth_date", "long ago", "passengers.0.birth_date"),
    ("birth_date an int", "passengers.0.birth_date", 19900517, "passengers.0.birth_date"),
    ("birth_date with a time", "passengers.0.birth_date", "1990-05-17T10:00:00Z", "passengers.0.birth_date"),
    ("passenger unknown field", "passengers.0.age", 36, "passengers.0.age"),
    ("card_token empty", "card_token", "", "card_token"),
    ("card_token an int", "card_token", 4242, "card_token"),
    # "tok_gold" is well-formed: the gateway knows no such card, 422 unknown_card (test_openapi_contract.py)
    ("unknown field", "discount_pct", 50, "discount_pct"),
    ("traveler_id in the body", "traveler_id", "usr_someone", "traveler_id"),
]

FIELD_CASES = [
    *[("create-rocket", *c) for c in ROCKET_CASES],
    *[("put-rocket", *c) for c in ROCKET_CASES],
    *[("create-launch", *c) for c in LAUNCH_CASES],
    *[("launch-status", *c) for c in STATUS_CASES],
    *[("agency-profile", *c) for c in AGENCY_PROFILE_CASES],
    *[("traveler-profile", *c) for c in TRAVELER_PROFILE_CASES],
    *[("book", *c) for c in BOOKING_CASES],
]


@pytest.mark.parametrize(
    ("endpoint", "case", "path", "value", "field"), FIELD_CASES, ids=[f"{c[0]}: {c[1]}" for c in FIELD_CASES]
)
async def test_bad_field(
    client: Any, world: World, endpoint: str, case: str, path: str, value: Any, field: str
) -> None:
    method, url, role, good = ENDPOINTS[endpoint]
    body = changed(world.fill(good), path, value)
    await assert_bad_input(client, world, method, url, world.who(role), field, json=body)


RAW_BODIES = [
    ("malformed JSON", b"{not json"),
    ("truncated JSON", b'{"name": "x"'),
    ("trailing comma", b'{"name": "x",}'),
    ("empty body", b""),
    ("whitespace only", b"   "),
    ("JSON array", b"[]"),
    ("JSON null", b"null"),
    ("JSON string", b'"hello"'),
    ("JSON number", b"42"),
    ("not UTF-8", b'{"name": "\xff\xfe"}'),
]
RAW_CASES = [(e, name, raw) for e in ENDPOINTS for name, raw in RAW_BODIES]


@pytest.mark.parametrize(("endpoint", "case", "raw"), RAW_CASES, ids=[f"{c[0]}: {c[1]}" for c in RAW_CASES])
async def test_bad_body(client: Any, world: World, endpoint: str, case: str, raw: bytes) -> None:
    method, url, role, _ = ENDPOINTS[endpoint]
    await assert_bad_input(
        client,
        world,
        method,
        url,
        world.who(role),
        "body",
        data=raw,
        headers={"Content-Type": "application/json"},
    )


async def test_good_bodies_are_accepted(client: Any, world: World) -> None:
    """The base bodies the cases above spoil are themselves good, so each case tests one fault."""
    for endpoint in (
        "create-rocket",
        "put-rocket",
        "create-launch",
        "agency-profile",
        "traveler-profile",
        "book",
        "launch-status",
    ):
        method, url, role, good = ENDPOINTS[endpoint]
        status, body = await call(client, method, world.fill(url), world.who(role), json=world.fill(good))
        assert status in (200, 201), (endpoint, body)


# -- query strings ---------------------------------------------------------------------------------


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


LIMIT_CURSOR_VALUES = [
    ("limit 0", "limit=0", "limit"),
    ("limit 201", "limit=201", "limit"),
    ("limit negative", "limit=-1", "limit"),
    ("limit a word", "limit=ten", "limit"),
    ("limit a decimal", "limit=1.5", "limit"),
    # "limit=" is no bad input: an empty parameter is an absent one (OpenAPI allowEmptyValue; tested in
    # test_openapi_contract.py)
    ("limit huge", "limit=100000000000000000000000", "limit"),
    ("limit superscript two", "limit=%C2%B2", "limit"),
    ("cursor not base64", "cursor=%25%25%25", "cursor"),
    ("cursor random text", "cursor=hello-world", "cursor"),
    ("cursor of a number", f"cursor={cursor_of([1])}", "cursor"),
    ("cursor of an empty list", f"cursor={cursor_of([])}", "cursor"),
    ("cursor of an object", f"cursor={cursor_of({'id': 'x'})}", "cursor"),
    ("cursor of null", f"cursor={cursor_of(None)}", "cursor"),
    ("cursor with a NUL", "cursor=" + cursor_of(["rkt_\u0000"]), "cursor"),
]
LISTS = [
    ("agency rockets", f"{A}/rockets", "agency"),
    ("agency launches", f"{A}/launches", "agency"),
    ("traveler bookings", f"{B}/bookings", "traveler"),
]
QUERY_CASES = [
    *[
        (f"{lst}: {case}", path, role, query, field)
        for lst, path, role in LISTS
        for case, query, field in LIMIT_CURSOR_VALUES
    ],
    # DESIGN 6: "Lists take limit (<= 200) and cursor" - the public launch list too.
    *[
        (f"public launches: {case}", f"{B}/launches", "traveler", query, field)
        for case, query, field in LIMIT_CURSOR_VALUES
        if case in ("limit 0", "limit 201", "limit a word", "cursor random text")
    ],
    ("report: from text", f"{A}/reports/bookings", "agency", "from=yesterday", "from"),
    ("report: from 30 February", f"{A}/reports/bookings", "agency", "from=2027-02-30", "from"),
    ("report: to day first", f"{A}/reports/bookings", "agency", "from=2027-01-01&to=31/01/2027", "to"),
    ("public launches: destination venus", f"{B}/launches", "traveler", "destination=venus", "destination"),
    ("public launches: from text", f"{B}/launches", "traveler", "from=soon", "from"),
    ("public launches: to month 13", f"{B}/launches", "traveler", "to=2027-13-01", "to"),
]


@pytest.mark.parametrize(
    ("case", "path", "role", "query", "field"), QUERY_CASES, ids=[c[0] for c in QUERY_CASES]
)
async def test_bad_query(
    client: Any, world: World, case: str, path: str, role: str, query: str, field: str
) -> None:
    await assert_bad_input(client, world, "GET", f"{path}?{query}", world.who(role), field)


# -- ids that are not ids --------------------------------------------------------------------------

ID_ENDPOINTS = [
    ("GET", f"{A}/rockets/{{x}}", "agency", None),
    ("PUT", f"{A}/rockets/{{x}}", "agency", ROCKET),
    ("DELETE", f"{A}/rockets/{{x}}", "agency", None),
    ("GET", f"{A}/launches/{{x}}", "agency", None),
    ("POST", f"{A}/launches/{{x}}/status", "agency", {"status": "aborted"}),
    ("GET", f"{A}/launches/{{x}}/bookings", "agency", None),
    ("GET", f"{B}/launches/{{x}}", "traveler", None),
    ("GET", f"{B}/bookings/{{x}}", "traveler", None),
    ("POST", f"{B}/bookings/{{x}}/cancel", "traveler", None),
]


@pytest.mark.parametrize(
    "bad_id",
    ["nope", "lch_nope", "rkt_nope", "bkg_nope", "%00", "lch_%00", "x" * 300, "%F0%9F%9A%80"],
    ids=[
        "word",
        "launch-prefix",
        "rocket-prefix",
        "booking-prefix",
        "nul",
        "prefix-nul",
        "300-chars",
        "emoji",
    ],
)
async def test_ids_that_are_not_ids_are_not_found(client: Any, world: World, bad_id: str) -> None:
    """Never a 500: an id that names nothing is 404 (a malformed one may be 400 invalid_input)."""
    before = await snapshot(client, world)
    wrong = []
    for method, url, role, body in ID_ENDPOINTS:
        path = url.replace("{x}", bad_id)
        status, answer = await call(client, method, path, world.who(role), **({"json": body} if body else {}))
        code = answer.get("error", {}).get("code") if isinstance(answer, dict) else None
        if (status, code) not in ((404, "not_found"), (400, "invalid_input")):
            wrong.append((method, path[:80], status, answer))
    # The same non-ids inside bodies: a launch to book, a rocket to schedule on.
    raw_id = unquote(bad_id)
    booking = {**world.fill(BOOKING), "launch_id": raw_id}
    status, answer = await call(client, "POST", f"{B}/bookings", world.traveler, json=booking)
    code = answer.get("error", {}).get("code") if isinstance(answer, dict) else None
    if (status, code) not in ((404, "not_found"), (400, "invalid_input")):
        wrong.append(("POST", f"{B}/bookings launch_id={bad_id[:40]}", status, answer))
    launch = {**world.fill(LAUNCH), "rocket_id": raw_id}
    status, answer = await call(client, "POST", f"{A}/launches", world.agency, json=launch)
    code = answer.get("error", {}).get("code") if isinstance(answer, dict) else None
    # a well-formed id of no rocket is 422 unknown_rocket; a malformed one (a NUL, too long) 400
    if (status, code) not in ((422, "unknown_rocket"), (400, "invalid_input")) or "rocket_id" not in answer[
        "error"
    ]["details"].get("fields", {}):
        wrong.append(("POST", f"{A}/launches rocket_id={bad_id[:40]}", status, answer))
    assert wrong == [], explain(wrong)
    assert await snapshot(client, world) == before


@pytest.mark.parametrize("key", ["", "k" * 256], ids=["empty", "256-chars"])
async def test_bad_idempotency_key(client: Any, world: World, key: str) -> None:
    await assert_bad_input(
        client,
        world,
        "POST",
        f"{B}/bookings",
        world.traveler,
        "Idempotency-Key",
        json=world.fill(BOOKING),
        headers={"Idempotency-Key": key},
    )


# -- booking rules: 422, 404, 409 with no booking and no held seat ---------------------------------

DAY = LAUNCH_AT.date()
ADULT = "1990-05-17"
JUST_17 = (years_before(DAY, 18) + timedelta(days=1)).isoformat()  # turns 18 the day after the launch
JUST_71 = years_before(DAY, 71).isoformat()  # turns 71 on the launch day
UNBORN = (DAY + timedelta(days=1)).isoformat()


def group(*births: str) -> list[dict[str, str]]:
    return [{"name": f"Passenger {i}", "birth_date": b} for i, b in enumerate(births)]


# (case, launch id or template, seats, passengers, status, code, field named in details or None)
RULE_CASES = [
    (
        "passenger 17 on the launch date",
        "{launch}",
        1,
        group(JUST_17),
        422,
        "passenger_age",
        "passengers.0.birth_date",
    ),
    (
        "passenger 71 on the launch date",
        "{launch}",
        1,
        group(JUST_71),
        422,
        "passenger_age",
        "passengers.0.birth_date",
    ),
    ("passenger not yet born", "{launch}", 1, group(UNBORN), 422, "passenger_age", "passengers.0.birth_date"),
    (
        "second passenger too young",
        "{launch}",
        2,
        group(ADULT, JUST_17),
        422,
        "passenger_age",
        "passengers.1.birth_date",
    ),
    (
        "third passenger too old",
        "{launch}",
        3,
        group(ADULT, ADULT, JUST_71),
        422,
        "passenger_age",
        "passengers.2.birth_date",
    ),
    ("5 seats for a non-VIP", "{launch}", 5, group(*[ADULT] * 5), 422, "seat_limit", "seats"),
    ("6 seats for a non-VIP", "{launch}", 6, group(*[ADULT] * 6), 422, "seat_limit", "seats"),
    ("2 seats 1 passenger", "{launch}", 2, group(ADULT), 422, "seat_limit", "passengers"),
    ("1 seat 2 passengers", "{launch}", 1, group(ADULT, ADULT), 422, "seat_limit", "passengers"),
    ("4 seats 3 passengers", "{launch}", 4, group(ADULT, ADULT, ADULT), 422, "seat_limit", "passengers"),
    ("launch does not exist", "lch_01DOESNOTEXIST0000000000", 1, group(ADULT), 404, "not_found", None),
    ("launch id without prefix", "no-such-launch", 1, group(ADULT), 404, "not_found", None),
    ("launch given by its rocket id", "{rocket}", 1, group(ADULT), 404, "not_found", None),
    ("launch aborted", "{launch}", 1, group(ADULT), 409, "launch_not_bookable", None),
]


async def seats_booked(client: Any, w: World) -> tuple[int, int]:
    status, body = await call(client, "GET", f"{A}/launches/{w.launch_id}", w.agency)
    assert status == 200, body
    status, public = await call(client, "GET", f"{B}/launches/{w.launch_id}")
    return body["launch"]["seats_booked"], (public["launch"]["seats_booked"] if status == 200 else -1)


@pytest.mark.parametrize(
    ("case", "launch", "seats", "people", "status", "code", "field"),
    RULE_CASES,
    ids=[c[0] for c in RULE_CASES],
)
async def test_booking_rules_refuse_and_leave_nothing(
    client: Any,
    world: World,
    case: str,
    launch: str,
    seats: int,
    people: list[dict[str, str]],
    status: int,
    code: str,
    field: str | None,
) -> None:
    aborted = code == "launch_not_bookable"
    if aborted:
        got, body = await call(
            client, "POST", f"{A}/launches/{world.launch_id}/status", world.agency, json={"status": "aborted"}
        )
        assert got == 200, body
    assert (await seats_booked(client, world))[0] == 0
    got, body = await call(
        client,
        "POST",
        f"{B}/bookings",
        world.traveler,
        json={"launch_id": world.fill(launch), "seats": seats, "passengers": people, "card_token": "tok_ok"},
    )
    assert got == status, body
    assert body["error"]["code"] == code, body
    if field is not None:
        fields = body["error"]["details"].get("fields", {})
        assert field in fields, body
        if code == "passenger_age":  # only the passengers who are out of range are named
            assert set(fields) == {field}, body
    # Nothing booked, nothing charged, no seat held.
    status_, mine = await call(client, "GET", f"{B}/bookings", world.traveler)
    assert status_ == 200 and mine["items"] == [], mine
    status_, launch_now = await call(client, "GET", f"{A}/launches/{world.launch_id}", world.agency)
    assert launch_now["launch"]["seats_booked"] == 0, launch_now
    assert launch_now["launch"]["status"] == ("aborted" if aborted else "scheduled")
    if not aborted:  # every seat is still free: the whole rocket (4 seats) can be booked at once
        got, body = await call(
            client,
            "POST",
            f"{B}/bookings",
            world.traveler,
            json={
                "launch_id": world.launch_id,
                "seats": 4,
                "passengers": group(*[ADULT] * 4),
                "card_token": "tok_ok",
            },
        )
        assert got == 201, body


async def test_unknown_card_token_leaves_no_booking_and_no_held_seat(client: Any, world: World) -> None:
    status, body = await call(
        client,
        "POST",
        f"{B}/bookings",
        world.traveler,
        json={
            "launch_id": world.launch_id,
            "seats": 4,
            "passengers": group(*[ADULT] * 4),
            "card_token": "tok_platinum",
        },
    )
    assert status == 422 and body["error"]["code"] == "unknown_card", body  # well-formed, refused
    assert "card_token" in body["error"]["details"]["fields"], body
    assert (await call(client, "GET", f"{B}/bookings", world.traveler))[1]["items"] == []
    assert (await seats_booked(client, world)) == (0, 0)
    status, body = await call(
        client,
        "POST",
        f"{B}/bookings",
        world.traveler,
        json={
            "launch_id": world.launch_id,
            "seats": 4,
            "passengers": group(*[ADULT] * 4),
            "card_token": "tok_ok",
        },
    )
    assert status == 201, body


async def test_age_boundaries_are_accepted(client: Any, world: World) -> None:
    """18 on the launch day and 70 the day before turning 71 may fly."""
    turns_18 = years_before(DAY, 18).isoformat()
    still_70 = (years_before(DAY, 71) + timedelta(days=1)).isoformat()
    status, body = await call(
        client,
        "POST",
        f"{B}/bookings",
        world.traveler,
        json={
            "launch_id": world.launch_id,
            "seats": 2,
            "passengers": group(turns_18, still_70),
            "card_token": "tok_ok",
        },
    )
    assert status == 201, body
    assert [p["birth_date"] for p in body["booking"]["passengers"]] == [turns_18, still_70]
    assert (await seats_booked(client, world))[0] == 2
