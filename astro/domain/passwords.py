"""The password rule: at least 10 characters and a zxcvbn score of 3 or more (DESIGN 12)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from zxcvbn import zxcvbn

MIN_LENGTH: Final = 10
MIN_SCORE: Final = 3
# zxcvbn's work grows fast with the length; the first 72 characters decide (a strong start stays strong).
SCORED_LENGTH: Final = 72


def weakness(password: str, user_inputs: Iterable[str] = ()) -> str | None:
    """Why this password is refused, in words a user can act on; None when it is strong enough.

    `user_inputs` are the account's own words (email, name): a password made of them is easy to guess."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    words = [w for value in user_inputs for w in (value, *value.replace("@", " ").replace(".", " ").split())]
    result = zxcvbn(password[:SCORED_LENGTH], user_inputs=words)
    if int(result["score"]) >= MIN_SCORE:
        return None
    feedback = result.get("feedback") or {}
    hints = [str(feedback.get("warning") or "")] + [str(s) for s in feedback.get("suggestions") or []]
    said = " ".join(h.rstrip(".") + "." for h in hints if h)
    return "too easy to guess" + (f": {said}" if said else "; add words that are not common")
