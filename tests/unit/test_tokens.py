"""Tokens: HS256 with sub, role, jti, iat, exp; everything else is refused."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from astro.domain.errors import Unauthenticated
from astro.domain.users import Role
from astro.services.tokens import TokenIssuer

SECRET = "k" * 40


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {"sub": "usr_1", "role": "traveler", "jti": "j1", "iat": now, "exp": now + 60}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_issued_token_carries_the_required_claims() -> None:
    issuer = TokenIssuer(SECRET, 120)
    token, expires = issuer.issue("usr_9", Role.AGENCY, now=1_000_000_000)
    header = jwt.get_unverified_header(token)
    body = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert body["sub"] == "usr_9" and body["role"] == "agency" and body["iat"] == 1_000_000_000
    assert body["exp"] == expires == 1_000_000_120 and len(body["jti"]) >= 16


def test_verify_returns_the_principal() -> None:
    issuer = TokenIssuer(SECRET, 120)
    token, expires = issuer.issue("usr_9", Role.IT)
    principal = issuer.verify(token)
    assert (principal.user_id, principal.role, principal.expires_at) == ("usr_9", Role.IT, expires)


def test_two_tokens_have_different_ids() -> None:
    issuer = TokenIssuer(SECRET, 120)
    assert (
        issuer.verify(issuer.issue("u", Role.IT)[0]).jti != issuer.verify(issuer.issue("u", Role.IT)[0]).jti
    )


@pytest.mark.parametrize(
    ("name", "token_factory", "code"),
    [
        ("expired", lambda: jwt.encode(claims(exp=int(time.time()) - 5), SECRET, "HS256"), "token_expired"),
        ("wrong signature", lambda: jwt.encode(claims(), "x" * 40, "HS256"), "invalid_token"),
        ("alg none", lambda: f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.", "invalid_token"),
        ("HS512", lambda: jwt.encode(claims(), SECRET, "HS512"), "invalid_token"),
        ("HS384", lambda: jwt.encode(claims(), SECRET, "HS384"), "invalid_token"),
        ("malformed", lambda: "not.a.token", "invalid_token"),
        ("garbage", lambda: "garbage", "invalid_token"),
        ("no jti", lambda: jwt.encode(claims(jti=None), SECRET, "HS256"), "invalid_token"),
        ("no exp", lambda: jwt.encode(claims(exp=None), SECRET, "HS256"), "invalid_token"),
        ("no sub", lambda: jwt.encode(claims(sub=None), SECRET, "HS256"), "invalid_token"),
        ("no iat", lambda: jwt.encode(claims(iat=None), SECRET, "HS256"), "invalid_token"),
        ("unknown role", lambda: jwt.encode(claims(role="admin"), SECRET, "HS256"), "invalid_token"),
        ("numeric sub", lambda: jwt.encode(claims(sub=5), SECRET, "HS256"), "invalid_token"),
    ],
)
def test_refused_tokens(name: str, token_factory: object, code: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        TokenIssuer(SECRET, 60).verify(token_factory())  # type: ignore[operator]
    assert caught.value.code == code, name


def test_alg_none_with_a_forged_signature_is_refused() -> None:
    forged = f"{b64({'alg': 'none'})}.{b64(claims(role='it'))}.c2lnbmF0dXJl"
    with pytest.raises(Unauthenticated):
        TokenIssuer(SECRET, 60).verify(forged)


def test_a_token_verified_before_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    issuer = TokenIssuer(SECRET, 60)
    token, expires = issuer.issue("usr_7", Role.TRAVELER)
    first = issuer.verify(token)
    assert issuer.verify(token) == first  # the second time from the cache of verified tokens
    monkeypatch.setattr("astro.services.tokens.time.time", lambda: expires + 1)
    with pytest.raises(Unauthenticated) as caught:
        issuer.verify(token)
    assert caught.value.code == "token_expired"
    # A token differing in one character of its signature is checked, not looked up.
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    monkeypatch.undo()
    with pytest.raises(Unauthenticated) as caught:
        issuer.verify(tampered)
    assert caught.value.code == "invalid_token"
