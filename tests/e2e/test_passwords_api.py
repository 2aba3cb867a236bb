"""Passwords through HTTP: change (other sessions revoked), reset by an e-mailed single-use link valid 30
minutes (202 for any address), its confirmation revoking every session; every bad input a 400."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Account, MakeClient, register, traveler_body
from tests.e2e.test_notify_api import start
from tests.smtpd import SmtpServer
from web.clients import PG_POOL
from web.keys import BACKGROUND, DISPATCHER

AUTH = "/api/system/auth"
COOKIE = "astro_refresh"
NEW = "violet-tundra-ferry-42"


@pytest.fixture
async def smtp() -> Any:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def mail_client(make_client: MakeClient, smtp: SmtpServer) -> TestClient[Any, Any]:
    return await start(make_client, smtp_url=smtp.url, public_url="https://astro.example")


async def login(client: TestClient[Any, Any], email: str, password: str) -> Any:
    return await client.post(f"{AUTH}/login", json={"email": email, "password": password})


async def status_of_me(client: TestClient[Any, Any], token: str) -> int:
    return (await client.get(f"{AUTH}/me", headers={"Authorization": f"Bearer {token}"})).status


async def refresh_status(client: TestClient[Any, Any], cookie: str) -> int:
    client.session.cookie_jar.clear()
    return (await client.post(f"{AUTH}/refresh", headers={"Cookie": f"{COOKIE}={cookie}"})).status


async def ask_reset(client: TestClient[Any, Any], email: str) -> Any:
    resp = await client.post(f"{AUTH}/password-reset", json={"email": email})
    await client.app[BACKGROUND].wait()  # the e-mail is queued after the answer
    await client.app[DISPATCHER].run_once()
    return resp


def link_in(smtp: SmtpServer, address: str) -> str:
    [mail] = [m for m in smtp.received if address in m.rcpt_tos]
    found = re.search(r"https://astro\.example/auth/reset\?token=\S+", mail.body)
    assert found, mail.body
    return found.group(0)


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


# -- change ------------------------------------------------------------------------------------------


async def test_changing_the_password_revokes_the_other_sessions_and_keeps_this_one(client: Any) -> None:
    body = traveler_body()
    account = await register(client, body)
    other = await login(client, body["email"], body["password"])  # another device
    other_token, other_cookie = (await other.json())["token"], other.cookies[COOKIE].value
    client.session.cookie_jar.clear()

    resp = await client.post(
        f"{AUTH}/password",
        json={"current_password": body["password"], "new_password": NEW},
        headers=account.headers,
    )
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["user"]["id"] == account.id and resp.cookies[COOKIE]["httponly"]
    assert await status_of_me(client, data["token"]) == 200  # this tab goes on
    assert await status_of_me(client, account.token) == 401
    assert await status_of_me(client, other_token) == 401
    assert await refresh_status(client, other_cookie) == 401
    assert (await login(client, body["email"], body["password"])).status == 401
    assert (await login(client, body["email"], NEW)).status == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"current_password": "correct-horse", "new_password": "short"}, "new_password"),
        ({"current_password": "correct-horse"}, "new_password"),
        ({"new_password": NEW}, "current_password"),
        ({"current_password": 5, "new_password": NEW}, "current_password"),
        ({"current_password": "correct-horse", "new_password": NEW, "extra": 1}, "extra"),
    ],
)
async def test_a_bad_password_change_is_400_naming_the_field(
    client: Any, payload: dict[str, Any], field: str
) -> None:
    account = await register(client, traveler_body())
    resp = await client.post(f"{AUTH}/password", json=payload, headers=account.headers)
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_input" and field in error["details"]["fields"]
    assert await status_of_me(client, account.token) == 200  # nothing was revoked


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        (
            {"current_password": "wrong-password-here", "new_password": NEW},
            "current_password",
            "wrong_password",
        ),
        (
            {"current_password": "correct-horse", "new_password": "password123"},
            "new_password",
            "weak_password",
        ),
        (
            {"current_password": "correct-horse", "new_password": "correct-horse"},
            "new_password",
            "same_password",
        ),
    ],
)
async def test_a_well_formed_password_change_refused_is_422_naming_the_field(
    client: Any, payload: dict[str, Any], field: str, code: str
) -> None:
    account = await register(client, traveler_body())
    resp = await client.post(f"{AUTH}/password", json=payload, headers=account.headers)
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == code and field in error["details"]["fields"]
    assert await status_of_me(client, account.token) == 200  # nothing was revoked


async def test_changing_the_password_needs_a_token_and_json(client: Any) -> None:
    body = {"current_password": "correct-horse", "new_password": NEW}
    assert (await client.post(f"{AUTH}/password", json=body)).status == 401
    account = await register(client, traveler_body())
    resp = await client.post(f"{AUTH}/password", data="x=1", headers=account.headers)
    assert resp.status in (400, 415)


async def test_guessing_the_current_password_is_rate_limited_like_a_login(client: Any) -> None:
    account = await register(client, traveler_body())
    wrong = {"current_password": "not-my-password", "new_password": NEW}
    codes = [
        (await client.post(f"{AUTH}/password", json=wrong, headers=account.headers)).status for _ in range(6)
    ]
    assert codes == [422] * 5 + [429]  # wrong_password: well-formed, refused


# -- reset ---------------------------------------------------------------------------------------------


async def test_a_reset_link_is_mailed_and_sets_the_password_once_revoking_every_session(
    mail_client: Any, smtp: SmtpServer
) -> None:
    client = mail_client
    body = traveler_body()
    account = await register(client, body)
    cookie = (await login(client, body["email"], body["password"])).cookies[COOKIE].value

    resp = await ask_reset(client, body["email"].upper())  # any case: emails are compared lower-cased
    assert resp.status == 202
    link = link_in(smtp, body["email"])
    [mail] = smtp.received
    assert mail.subject == "Reset your AstroBookings password" and "30 minutes" in mail.body
    # The queue keeps no usable copy of the link once it is mailed; the table keeps only its hash.
    pool = client.app[PG_POOL]
    data = await pool.fetchval("SELECT data FROM notifications WHERE event = 'password_reset'")
    assert "link_path" not in data and token_of(link) not in str(data)
    assert (
        await pool.fetchval("SELECT count(*) FROM password_resets WHERE token_hash = $1", token_of(link)) == 0
    )

    weak = await client.post(
        f"{AUTH}/password-reset/confirm", json={"token": token_of(link), "password": "password123"}
    )
    assert weak.status == 422 and "password" in (await weak.json())["error"]["details"]["fields"]

    client.session.cookie_jar.clear()
    done = await client.post(
        f"{AUTH}/password-reset/confirm", json={"token": token_of(link), "password": NEW}
    )
    assert done.status == 204, await done.text()
    assert await status_of_me(client, account.token) == 401
    assert await refresh_status(client, cookie) == 401
    assert (await login(client, body["email"], NEW)).status == 200

    again = await client.post(
        f"{AUTH}/password-reset/confirm", json={"token": token_of(link), "password": NEW}
    )
    assert again.status == 422
    error = (await again.json())["error"]
    assert error["code"] == "invalid_reset_token" and error["details"]["reason"] == "used"


async def test_an_expired_reset_link_is_refused(mail_client: Any, smtp: SmtpServer) -> None:
    client = mail_client
    body = traveler_body()
    await register(client, body)
    await ask_reset(client, body["email"])
    token = token_of(link_in(smtp, body["email"]))
    await client.app[PG_POOL].execute("UPDATE password_resets SET expires_at = now() - interval '1 second'")
    resp = await client.post(f"{AUTH}/password-reset/confirm", json={"token": token, "password": NEW})
    assert resp.status == 422
    assert (await resp.json())["error"]["details"]["reason"] == "expired"
    assert (await login(client, body["email"], body["password"])).status == 200


async def test_a_reset_link_is_valid_for_30_minutes(mail_client: Any, smtp: SmtpServer) -> None:
    client = mail_client
    body = traveler_body()
    await register(client, body)
    await ask_reset(client, body["email"])
    minutes = await client.app[PG_POOL].fetchval(
        "SELECT extract(epoch FROM expires_at - created_at) / 60 FROM password_resets"
    )
    assert 29.9 < float(minutes) <= 30.1


async def test_an_unknown_address_gets_202_and_no_mail(mail_client: Any, smtp: SmtpServer) -> None:
    client = mail_client
    resp = await ask_reset(client, "nobody-here@example.com")
    assert resp.status == 202
    assert smtp.received == []
    assert await client.app[PG_POOL].fetchval("SELECT count(*) FROM password_resets") == 0


async def test_an_employee_can_reset_too(mail_client: Any, smtp: SmtpServer, make_employee: Any) -> None:
    finance: Account = await make_employee("finance")
    await ask_reset(mail_client, finance.email)
    assert link_in(smtp, finance.email)


async def test_reset_requests_are_rate_limited_like_logins(mail_client: Any) -> None:
    codes = [
        (await mail_client.post(f"{AUTH}/password-reset", json={"email": "x@example.com"})).status
        for _ in range(6)
    ]
    assert codes == [202] * 5 + [429]


@pytest.mark.parametrize(
    "payload",
    [{}, {"email": "not-an-email"}, {"email": 7}, {"email": "a@b.co", "more": 1}, {"email": "a\x00@b.co"}],
)
async def test_a_bad_reset_request_is_400(client: Any, payload: dict[str, Any]) -> None:
    resp = await client.post(f"{AUTH}/password-reset", json=payload)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"token": "", "password": NEW}, "invalid_input"),
        ({"token": "x" * 201, "password": NEW}, "invalid_input"),
        ({"password": NEW}, "invalid_input"),
        ({"token": "made-up-token"}, "invalid_input"),
        ({"token": "made-up-token", "password": "short"}, "invalid_input"),
        ({"token": ["a"], "password": NEW}, "invalid_input"),
    ],
)
async def test_a_bad_reset_confirmation_is_400(client: Any, payload: dict[str, Any], code: str) -> None:
    resp = await client.post(f"{AUTH}/password-reset/confirm", json=payload)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == code


async def test_an_unknown_reset_token_is_refused_by_rule(client: Any) -> None:
    resp = await client.post(
        f"{AUTH}/password-reset/confirm", json={"token": "made-up-token", "password": NEW}
    )
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["code"] == "invalid_reset_token"
