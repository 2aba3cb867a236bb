"""JWT access tokens: HS256 only, with sub, role, jti, iat and exp."""

from __future__ import annotations

import secrets
import time
from typing import Final

import jwt

from astro.domain.errors import Unauthenticated
from astro.domain.users import Principal, Role

ALGORITHM: Final = "HS256"
REQUIRED_CLAIMS: Final = ["sub", "role", "jti", "iat", "exp"]
# Tokens whose signature and claims were checked once, by their exact text (the oldest go first).
VERIFIED_CACHE: Final = 10_000


class TokenIssuer:
    """Signs and verifies tokens; verifying checks signature, algorithm, claims and expiry, not revocation."""

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl = ttl_seconds
        self._verified: dict[str, Principal] = {}

    def issue(
        self,
        user_id: str,
        role: Role,
        *,
        now: float | None = None,
        token_gen: int = 0,
        jti: str | None = None,
    ) -> tuple[str, int]:
        """A new token and its expiry (Unix seconds), of the user's token generation `token_gen`; its id
        `jti` when given (a session keeps the ids of the tokens it issued), else a random one."""
        issued = int(now if now is not None else time.time())
        expires = issued + self.ttl
        claims = {
            "sub": user_id,
            "role": role.value,
            "jti": jti or secrets.token_urlsafe(16),
            "iat": issued,
            "exp": expires,
            "gen": token_gen,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires

    def verify(self, token: str) -> Principal:
        """The token's principal. A token seen before skips the signature check (the same text has the
        same signature and claims), never the expiry: a client sends its token with every request, and
        decoding it again was a twentieth of a booking's CPU."""
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at <= time.time():
                del self._verified[token]
                raise Unauthenticated("token expired; refresh it or log in again", code="token_expired")
            return known
        principal = self._decode(token)
        if len(self._verified) >= VERIFIED_CACHE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = principal
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise Unauthenticated("token algorithm not accepted; log in again", code="invalid_token")
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": REQUIRED_CLAIMS}
            )
            role = Role(claims["role"])
            if not isinstance(claims["sub"], str) or not isinstance(claims["jti"], str):
                raise ValueError("sub and jti must be strings")
            gen = claims.get("gen", 0)  # tokens issued before generations existed are generation 0
            if type(gen) is not int or gen < 0:
                raise ValueError("gen must be a whole number")
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired; refresh it or log in again", code="token_expired") from None
        except (jwt.InvalidTokenError, ValueError, KeyError):
            raise Unauthenticated("token invalid; log in again", code="invalid_token") from None
        return Principal(
            user_id=claims["sub"], role=role, jti=claims["jti"], expires_at=int(claims["exp"]), token_gen=gen
        )
