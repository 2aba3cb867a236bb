"""AgencyAPI and BookingAPI models: rockets, launches, status changes, bookings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, Field, StringConstraints

from astro.schemas.common import WHOLE, WS, Name, Request, Response, UtcTime

RangeName = Literal["low_earth", "moon", "mars"]
Cents = Annotated[int, Field(gt=0, le=10**12), WHOLE]


class RocketIn(Request):
    name: Name
    capacity: Annotated[int, Field(ge=1, le=1000), WHOLE]
    range: RangeName


class RocketOut(Response):
    id: str
    name: str
    capacity: int
    range: RangeName
    created_at: datetime
    updated_at: datetime


class RocketEnvelope(Response):
    rocket: RocketOut


class RocketPage(Response):
    items: list[RocketOut]
    next_cursor: str | None = None


# Free text an agency writes that e-mails quote (mission, reason): one line of plain text, bounded, so it
# cannot pass for the e-mail's own lines; the e-mails name the agency as its author.
ONE_LINE: Final = r"^[^\x00-\x1f\x7f]*$"
ONE_LINE_NOT_BLANK: Final = f"^[^\\x00-\\x1f\\x7f]*[^{WS}\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"
Mission = Annotated[
    str,
    StringConstraints(min_length=1, max_length=120, pattern=ONE_LINE_NOT_BLANK),
    AfterValidator(str.strip),
    Field(description="one line of plain text, at most 120 characters; e-mails quote it as the agency's"),
]
Reason = Annotated[
    str,
    StringConstraints(max_length=500, pattern=ONE_LINE),
    AfterValidator(str.strip),
    Field(description="one line of plain text, at most 500 characters; e-mails quote it as the agency's"),
]


class LaunchIn(Request):
    rocket_id: Annotated[str, Field(min_length=1, max_length=64)]
    mission: Mission
    destination: RangeName
    scheduled_at: UtcTime
    price_cents: Cents
    min_passengers: Annotated[int, Field(ge=1, le=1000), WHOLE]


class StatusIn(Request):
    status: Literal["confirmed", "delayed", "aborted", "successful", "failed"]
    scheduled_at: UtcTime | None = None
    reason: Reason | None = None


class LaunchOut(Response):
    """A launch with its live occupancy."""

    id: str
    slug: str
    mission: str
    destination: RangeName
    scheduled_at: datetime
    price_cents: int
    status: str
    status_reason: str | None = None
    public_from: datetime
    vip_only: bool = False
    rocket: dict[str, Any]
    agency: dict[str, Any]
    capacity: int
    seats_booked: int
    seats_available: int
    occupancy_pct: float
    min_passengers: int
    viable: bool


class LaunchEnvelope(Response):
    launch: LaunchOut


class LaunchPage(Response):
    items: list[LaunchOut]
    next_cursor: str | None = None


class AgencyLaunchOut(LaunchOut):
    """A launch as its agency sees it: with the demand on its waiting list (what a second launch could
    serve)."""

    waitlist_length: int = Field(0, description="travelers waiting")
    waitlist_seats: int = Field(0, description="seats they want")
    seats_offered: int = Field(0, description="seats offered to the waiting list, not booked yet")


class AgencyLaunchEnvelope(Response):
    launch: AgencyLaunchOut


class AgencyLaunchPage(Response):
    items: list[AgencyLaunchOut]
    next_cursor: str | None = None


class PassengerIn(Request):
    name: Name
    birth_date: date


class BookingIn(Request):
    launch_id: Annotated[str, Field(min_length=1, max_length=64)]
    seats: Annotated[int, Field(ge=1, le=1000), WHOLE]
    passengers: Annotated[list[PassengerIn], Field(min_length=1, max_length=10)]
    card_token: Annotated[str, Field(min_length=1, max_length=200)]


class PassengerOut(Response):
    name: str
    birth_date: date


class BookingOut(Response):
    id: str
    launch_id: str
    seats: int
    price_cents: int
    total_cents: int
    status: Literal["confirmed", "cancelled"]
    created_at: datetime
    launch_status: str
    launch_slug: str
    mission: str
    scheduled_at: datetime
    cancel_reason: str | None = None
    refund_pct: int | None = None
    refund_cents: int | None = None
    cancelled_at: datetime | None = None
    passengers: list[PassengerOut] | None = None
    delayed_since_booking: bool = False
    refund_pct_if_cancelled_now: int | None = Field(
        default=None,
        description="what cancelling now would refund (DESIGN 5); null when it cannot be cancelled",
    )


class BookingEnvelope(Response):
    booking: BookingOut


class BookingPage(Response):
    items: list[BookingOut]
    next_cursor: str | None = None


class CancelOut(Response):
    booking: BookingOut
    refund_cents: int
    refund_pct: int


class ManifestEntry(Response):
    id: str
    traveler_id: str
    traveler_name: str
    traveler_email: str
    seats: int
    total_cents: int
    status: str
    refund_cents: int | None = None
    created_at: datetime
    cancelled_at: datetime | None = None
    passengers: list[PassengerOut]


class Manifest(Response):
    launch_id: str
    seats_booked: int
    items: list[ManifestEntry]
    active_bookings: int = Field(
        description="bookings not cancelled: each refunded in full if it is aborted or failed"
    )
    refund_all_cents: int = Field(description="what aborting or failing the launch refunds to travelers")
    abort_fee_cents: int = Field(description="the flat fee invoiced to the agency when it aborts the launch")


class ReportLine(Response):
    booking_id: str
    launch_id: str
    mission: str
    scheduled_at: datetime
    traveler_id: str
    traveler_name: str
    tax_id: str
    address: str
    contact_email: str | None = None
    seats: int
    total_cents: int
    refund_cents: int
    net_cents: int
    status: str


class BookingsReport(Response):
    items: list[ReportLine]
    total_cents: int
    refund_cents: int
    net_cents: int


class ActivityItem(Response):
    """One thing that happened to the agency's launches or bookings, as its live feed shows it."""

    id: str
    at: datetime
    kind: Literal["launch_added", "status", "booking", "cancel"]
    launch_id: str | None = None
    mission: str | None = None
    status: str | None = Field(default=None, description="kind status: the launch's new status")
    reason: str | None = None
    booking_id: str | None = None
    seats: int | None = None
    total_cents: int | None = None
    refund_cents: int | None = None
    refund_pct: int | None = None
    seats_released: bool | None = None


class ActivityPage(Response):
    items: list[ActivityItem]


class SchedulingRules(Response):
    """What scheduling a launch implies, for the agency's schedule form."""

    vip_window_seconds: int = Field(
        description="a new launch is visible and bookable only to VIP travelers for this long (public_from)"
    )
    launches_per_day: int = Field(description="launches one agency may create in any 24 hours")
    abort_fee_cents: int = Field(description="the flat fee invoiced when the agency aborts a launch")
