"""SystemAPI models: registration, login, tokens, users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from astro.schemas.common import Email, Name, Password, Request, Response, Text


class TravelerProfile(Request):
    phone: Annotated[str, Field(min_length=5, max_length=40, pattern=r"^\+?[0-9 ()\-]{5,40}$")]
    contact_email: Email | None = None
    tax_id: Annotated[str, Field(min_length=3, max_length=40)]
    address: Text


class AgencyProfile(Request):
    legal_name: Name
    tax_id: Annotated[str, Field(min_length=3, max_length=40)]
    legal_address: Text
    description: Annotated[str, Field(max_length=4000)] | None = None
    contact_email: Email | None = None


class RegisterTraveler(Request):
    email: Email
    password: Password
    name: Name
    role: Literal["traveler"]
    profile: TravelerProfile


class RegisterAgency(Request):
    email: Email
    password: Password
    name: Name
    role: Literal["agency"]
    profile: AgencyProfile


RegisterRequest = Annotated[RegisterTraveler | RegisterAgency, Field(discriminator="role")]


class LoginRequest(Request):
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=256)]


class ChangePasswordRequest(Request):
    current_password: Annotated[str, Field(min_length=1, max_length=256)]
    new_password: Password = Field(
        description="at least 10 characters, zxcvbn score 3 or more, not the current one"
    )


class PasswordResetRequest(Request):
    email: Email


class PasswordResetConfirm(Request):
    token: Annotated[str, Field(min_length=1, max_length=200, description="the token of the e-mailed link")]
    password: Password


class ValidateRequest(Request):
    token: Annotated[str, Field(min_length=1, max_length=4096)]


class CreateEmployeeRequest(Request):
    email: Email
    password: Password
    name: Name
    role: Literal["finance", "it"]


def _at_least_one_field(schema: dict[str, Any]) -> None:
    schema["minProperties"] = 1
    for name, prop in schema.get("properties", {}).items():
        prop.pop("default", None)  # a left-out field stays as it is; it has no default value to send
        kinds = [k for k in prop.get("anyOf", []) if k != {"type": "null"}]
        if len(kinds) == 1:  # null is refused (leave the field out): the schema is the value's own
            prop.pop("anyOf")
            prop.update(kinds[0])
        schema["properties"][name] = prop


class PatchUserRequest(Request):
    """At least one field; a field to leave as it is is left out (null is refused, as the schema says)."""

    model_config = ConfigDict(json_schema_extra=_at_least_one_field)

    vip: bool | None = Field(
        None, description="set by hand: the automatic VIP rule never changes it afterwards (travelers)"
    )
    disabled: bool | None = None
    name: Name | None = None
    verified: Literal[True] | None = Field(
        None,
        description="verify a pending agency: its launches become public, bookable and announced "
        "(as if scheduled now); agencies only, and it cannot be undone (disable the agency instead)",
    )

    @field_validator("vip", "disabled", "name", "verified", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("leave the field out instead of sending null")
        return value

    @model_validator(mode="after")
    def _something_to_change(self) -> PatchUserRequest:
        if self.vip is None and self.disabled is None and self.name is None and self.verified is None:
            raise ValueError("give vip, disabled, name or verified")
        return self


class TravelerProfileUpdate(TravelerProfile):
    """The traveler's profile, and optionally a new name (kept in sync with the user in SystemDB)."""

    name: Name | None = None


class AgencyProfileUpdate(AgencyProfile):
    name: Name | None = None


class UserOut(Response):
    id: str
    email: str
    name: str
    role: Literal["traveler", "agency", "finance", "it"]
    vip: bool
    disabled: bool
    verified: bool | None = Field(
        None, description="agencies: verified by IT (pending while false); null for other roles"
    )
    created_at: datetime
    profile: dict[str, Any] | None = None


class UserEnvelope(Response):
    user: UserOut


class AuthOut(Response):
    user: UserOut
    token: str
    expires_at: datetime


class ValidateOut(Response):
    valid: bool
    user: UserOut | None = None
    expires_at: datetime | None = None


class UserPage(Response):
    items: list[UserOut]
    next_cursor: str | None = None


class NodeOut(Response):
    name: str
    url: str = Field(description="where the other nodes forward this node's launches' requests")
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None = Field(description="set when the node stopped cleanly")
    alive: bool = Field(description="not stopped, and a heartbeat within 3 lease lengths")
    launches_owned: int = Field(description="launches whose lease this run of the node holds now")


class NodeList(Response):
    items: list[NodeOut]
    lease_seconds: float
    node: str = Field(description="the node that answered")
