"""Refresh tokens: `<session id>.<secret>`, only a hash of the secret stored; anything else is refused."""

from __future__ import annotations

import pytest

from astro.domain.errors import Unauthenticated
from astro.services.sessions import digest, split


def test_a_refresh_token_splits_into_its_session_and_secret() -> None:
    secret = "s" * 43
    assert split(f"ses_01ABC.{secret}") == ("ses_01ABC", secret)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "ses_1",
        "ses_1.",
        ".secretsecretsecretsecret",
        "usr_1." + "s" * 43,
        "ses_1.short",
        "ses_" + "x" * 80 + ".s",
    ],
)
def test_a_malformed_refresh_token_is_an_invalid_token(token: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        split(token)
    assert refused.value.code == "invalid_token"


def test_only_a_digest_of_the_secret_is_kept() -> None:
    assert digest("abc") == digest("abc") != digest("abd")
    assert "abc" not in digest("abc") and len(digest("abc")) == 64
