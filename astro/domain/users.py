"""Users and roles: who may do what."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Final


class Role(enum.StrEnum):
    TRAVELER = "traveler"
    AGENCY = "agency"
    FINANCE = "finance"
    IT = "it"


SELF_REGISTERED: Final = frozenset({Role.TRAVELER, Role.AGENCY})
EMPLOYEES: Final = frozenset({Role.FINANCE, Role.IT})


@dataclass(frozen=True, slots=True)
class User:
    """A person who can log in; credentials live in SystemDB."""

    id: str
    email: str
    name: str
    role: Role
    vip: bool
    disabled: bool
    created_at: datetime
    password_hash: str = ""
    # Tokens carry the generation they were issued in; "log out everywhere" moves it on, and every token
    # of an older generation is refused (DESIGN 12).
    token_gen: int = 0
    verified: bool = True  # an agency: verified by IT (its launches public); pending when False


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request, from a verified token."""

    user_id: str
    role: Role
    jti: str
    expires_at: int
    vip: bool = False
    token_gen: int = 0
