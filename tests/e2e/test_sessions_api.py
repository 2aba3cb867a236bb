"""Browser sessions through HTTP: the refresh cookie (HttpOnly, SameSite=Strict, scoped to the auth API),
its rotation on each use, a replayed cookie ending the session, logout ending it with its access tokens."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import register, traveler_body

AUTH = "/api/system/auth"
COOKIE = "astro_refresh"


async def login(client: TestClient[Any, Any], email: str, password: str, **headers: str) -> Any:
    resp = await client.post(f"{AUTH}/login", json={"email": email, "password": password}, headers=headers)
    assert resp.status == 200, await resp.text()
    return resp


async def refresh(client: TestClient[Any, Any], cookie: str) -> Any:
    """A refresh as a browser sends it: the cookie, no Authorization header (the jar is left out)."""
    client.session.cookie_jar.clear()
    return await client.post(f"{AUTH}/refresh", headers={"Cookie": f"{COOKIE}={cookie}"})


async def me(client: TestClient[Any, Any], token: str) -> int:
    resp = await client.get(f"{AUTH}/me", headers={"Authorization": f"Bearer {token}"})
    return resp.status


async def test_login_sets_an_httponly_strict_cookie_scoped_to_the_auth_api(client: Any) -> None:
    body = traveler_body()
    await register(client, body)
    resp = await login(client, body["email"], body["password"])
    cookie = resp.cookies[COOKIE]
    assert cookie.value.startswith("ses_")
    assert cookie["httponly"] is True and cookie["samesite"] == "Strict"
    assert cookie["path"] == AUTH and not cookie["secure"]  # plain HTTP here
    assert int(cookie["max-age"]) == 30 * 86400
    assert cookie.value not in await resp.text()  # never in the body, where a script could read it

    behind_https = await login(client, body["email"], body["password"], **{"X-Forwarded-Proto": "https"})
    assert behind_https.cookies[COOKIE]["secure"] is True


async def test_the_cookie_refreshes_the_session_and_is_rotated_each_time(client: Any) -> None:
    body = traveler_body()
    account = await register(client, body)
    first = (await login(client, body["email"], body["password"])).cookies[COOKIE].value

    resp = await refresh(client, first)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    second = resp.cookies[COOKIE].value
    assert second != first and data["user"]["id"] == account.id
    assert await me(client, data["token"]) == 200

    resp = await refresh(client, second)
    assert resp.status == 200 and resp.cookies[COOKIE].value not in (first, second)


async def test_a_spent_refresh_cookie_used_again_ends_the_whole_session(client: Any) -> None:
    body = traveler_body()
    await register(client, body)
    stolen = (await login(client, body["email"], body["password"])).cookies[COOKIE].value
    resp = await refresh(client, stolen)
    current, token = resp.cookies[COOKIE].value, (await resp.json())["token"]

    replay = await refresh(client, stolen)
    assert replay.status == 401
    assert (await replay.json())["error"]["code"] == "token_revoked"
    assert replay.cookies[COOKIE]["max-age"] == "0"  # the browser is told to forget it
    # The rightful holder's cookie and the access token the session gave out end with it.
    assert (await refresh(client, current)).status == 401
    assert await me(client, token) == 401


async def test_bad_refresh_cookies_are_refused_with_401_never_500(client: Any) -> None:
    for value in ["", "nonsense", "ses_x.short", "ses_" + "A" * 26 + "." + "b" * 43, "." * 300]:
        resp = await refresh(client, value)
        assert resp.status == 401, (value, await resp.text())
        assert (await resp.json())["error"]["code"] in {"unauthenticated", "invalid_token", "token_revoked"}


async def test_logout_ends_the_session_of_the_cookie_and_every_token_it_gave_out(client: Any) -> None:
    body = traveler_body()
    await register(client, body)
    resp = await login(client, body["email"], body["password"])
    cookie, tab_one = resp.cookies[COOKIE].value, (await resp.json())["token"]
    resp = await refresh(client, cookie)  # a second tab of the same browser gets its own access token
    cookie, tab_two = resp.cookies[COOKIE].value, (await resp.json())["token"]

    client.session.cookie_jar.clear()
    out = await client.post(
        f"{AUTH}/logout", headers={"Authorization": f"Bearer {tab_one}", "Cookie": f"{COOKIE}={cookie}"}
    )
    assert out.status == 204
    assert out.cookies[COOKIE]["max-age"] == "0" and out.cookies[COOKIE]["path"] == AUTH
    assert await me(client, tab_one) == 401
    assert await me(client, tab_two) == 401
    assert (await refresh(client, cookie)).status == 401


async def test_logout_with_an_expired_token_still_ends_the_cookie_session(client: Any) -> None:
    body = traveler_body()
    await register(client, body)
    cookie = (await login(client, body["email"], body["password"])).cookies[COOKIE].value
    client.session.cookie_jar.clear()
    out = await client.post(
        f"{AUTH}/logout", headers={"Authorization": "Bearer not.a.token", "Cookie": f"{COOKIE}={cookie}"}
    )
    assert out.status == 204
    assert (await refresh(client, cookie)).status == 401


async def test_a_bearer_logout_leaves_another_users_cookie_alone(client: Any) -> None:
    ada_body, bo_body = traveler_body(), traveler_body()
    ada = await register(client, ada_body)
    await register(client, bo_body)
    bo_cookie = (await login(client, bo_body["email"], bo_body["password"])).cookies[COOKIE].value
    client.session.cookie_jar.clear()
    out = await client.post(f"{AUTH}/logout", headers={**ada.headers, "Cookie": f"{COOKIE}={bo_cookie}"})
    assert out.status == 204
    assert (await refresh(client, bo_cookie)).status == 200


async def test_logout_everywhere_ends_every_browser_session(client: Any) -> None:
    body = traveler_body()
    account = await register(client, body)
    laptop = (await login(client, body["email"], body["password"])).cookies[COOKIE].value
    phone = (await login(client, body["email"], body["password"])).cookies[COOKIE].value
    client.session.cookie_jar.clear()
    assert (await client.post(f"{AUTH}/logout-all", headers=account.headers)).status == 204
    assert (await refresh(client, laptop)).status == 401
    assert (await refresh(client, phone)).status == 401


async def test_no_cookie_and_no_token_is_401(client: Any) -> None:
    client.session.cookie_jar.clear()
    resp = await client.post(f"{AUTH}/refresh")
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthenticated"
    assert (await client.post(f"{AUTH}/logout")).status == 401


async def test_a_disabled_users_session_cannot_be_refreshed(client: Any, make_employee: Any) -> None:
    it = await make_employee("it")
    body = traveler_body()
    account = await register(client, body)
    cookie = (await login(client, body["email"], body["password"])).cookies[COOKIE].value
    client.session.cookie_jar.clear()
    resp = await client.patch(f"/api/system/users/{account.id}", json={"disabled": True}, headers=it.headers)
    assert resp.status == 200
    resp = await refresh(client, cookie)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "user_disabled"
