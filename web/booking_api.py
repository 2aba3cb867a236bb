"""BookingAPI /api/booking: the public launch list, traveler profile, booking and cancelling."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from actors.desk import BookingNotMade, StillDeciding
from astro.domain.bookings import BookingView, Passenger
from astro.domain.errors import InvalidInput
from astro.domain.users import Role
from astro.schemas.launches import (
    BookingEnvelope,
    BookingIn,
    BookingOut,
    BookingPage,
    CancelOut,
    LaunchEnvelope,
    LaunchOut,
    LaunchPage,
)
from astro.schemas.system import TravelerProfile, TravelerProfileUpdate
from astro.schemas.waitlist import WaitlistEntryOut, WaitlistEnvelope, WaitlistIn, WaitlistPage
from astro.services.idempotency import InProgress
from astro.services.views import booking_json
from astro.services.waitlist import entry_json
from web.cluster import launch_in_body, launch_in_path, launch_of_booking, routed
from web.http import (
    IDEMPOTENCY_CLAIM,
    authenticate,
    decode_cursor,
    idempotent,
    idempotent_resuming,
    json_body,
    page_of,
    query_date,
    query_limit,
    read_body,
    requires,
    respond,
)
from web.keys import CATALOG, CLOCK, DESK, LEDGER, WAITLIST
from web.openapi import PAGE, choice, day, doc
from web.profiles import profile_endpoints

PREFIX = "/api/booking"
traveler_only = requires(Role.TRAVELER)
DESTINATIONS = ("low_earth", "moon", "mars")


def booking_out(view: BookingView, now: datetime) -> BookingOut:
    """A booking with what cancelling it now would refund (the one rendering: REST and live events)."""
    return BookingOut.model_validate(booking_json(view, now))


async def _is_vip(request: web.Request) -> bool:
    """Public endpoints look at the token when one is sent: VIP travelers see launches early."""
    if "Authorization" not in request.headers:
        return False
    principal = await authenticate(request)
    return principal.role is Role.TRAVELER and principal.vip


@doc(
    "Upcoming launches with live occupancy (public, cached)",
    response=LaunchPage,
    query={
        "destination": choice("one destination", DESTINATIONS),
        "from": day("first launch date"),
        "to": day("the day after the last"),
        **PAGE,
    },
    public=True,
    errors={401: "a token was sent and it is expired or revoked (send none to browse anonymously)"},
)
async def list_launches(request: web.Request) -> web.Response:
    destination = request.query.get("destination") or None
    if destination is not None and destination not in DESTINATIONS:
        raise InvalidInput(
            "destination must be low_earth, moon or mars", {"fields": {"destination": destination}}
        )
    start, end = query_date(request, "from"), query_date(request, "to")
    limit, after = query_limit(request), decode_cursor(request)

    def render(cards: list[dict[str, Any]]) -> bytes:
        if after is not None:  # the list is ordered by (scheduled_at, id): resume after the cursor's launch
            cards = [c for c in cards if f"{c['scheduled_at']}|{c['id']}" > after]
        cards, cursor = page_of(cards, limit, lambda c: f"{c['scheduled_at']}|{c['id']}")
        return json_body(LaunchPage(items=[LaunchOut.model_validate(c) for c in cards], next_cursor=cursor))

    body = await request.app[CATALOG].upcoming_page(
        vip=await _is_vip(request),
        destination=destination,
        start=start,
        end=end,
        query=(limit, after),
        render=render,
    )
    return web.Response(body=body, content_type="application/json")


@doc(
    "One launch by id or slug, with live occupancy (public, cached)",
    response=LaunchEnvelope,
    public=True,
    errors={401: "a token was sent and it is expired or revoked (send none to browse anonymously)"},
)
async def get_launch(request: web.Request) -> web.Response:
    card = await request.app[CATALOG].launch(request.match_info["ref"], vip=await _is_vip(request))
    return respond(LaunchEnvelope(launch=LaunchOut.model_validate(card)))


async def booking_of_attempt(request: web.Request, attempt_id: str) -> web.Response | None:
    """A retry of a booking whose first request did not answer: what came of its payment attempt (the
    booking, 201), its refusal, 503 while it is being decided, or None to book afresh (it ended without
    a booking)."""
    try:
        view = await request.app[DESK].outcome(attempt_id, (await authenticate(request)).user_id)
    except BookingNotMade:
        return None
    except StillDeciding:  # the first request may still be running
        raise InProgress() from None
    return respond(BookingEnvelope(booking=booking_out(view, request.app[CLOCK].now())), status=201)


@doc(
    "Book seats: one passenger per seat, charged at once (Idempotency-Key honoured)",
    body=BookingIn,
    response=BookingEnvelope,
    status=201,
    errors={402: "payment_declined", 404: "no such launch"},
)
@routed(launch_in_body)
@traveler_only
@idempotent_resuming(booking_of_attempt)
async def book(request: web.Request) -> web.Response:
    data = await read_body(request, BookingIn)
    principal = await authenticate(request)
    view = await request.app[DESK].book(
        traveler_id=principal.user_id,
        launch_id=data.launch_id,
        seats=data.seats,
        passengers=[Passenger(p.name, p.birth_date) for p in data.passengers],
        card_token=data.card_token,
        vip=principal.vip,
        idempotency=request.get(IDEMPOTENCY_CLAIM),
    )
    return respond(BookingEnvelope(booking=booking_out(view, request.app[CLOCK].now())), status=201)


@doc(
    "The traveler's bookings, newest first, with each launch's current status",
    response=BookingPage,
    query=PAGE,
)
@traveler_only
async def list_bookings(request: web.Request) -> web.Response:
    limit = query_limit(request)
    rows = await request.app[LEDGER].traveler_bookings(
        (await authenticate(request)).user_id, decode_cursor(request), limit + 1
    )
    rows, cursor = page_of(rows, limit, lambda r: r.id)
    now = request.app[CLOCK].now()
    return respond(BookingPage(items=[booking_out(r, now) for r in rows], next_cursor=cursor))


@doc("One of the traveler's bookings with its passengers", response=BookingEnvelope)
@traveler_only
async def get_booking(request: web.Request) -> web.Response:
    view = await request.app[LEDGER].traveler_booking(
        (await authenticate(request)).user_id, request.match_info["id"]
    )
    return respond(BookingEnvelope(booking=booking_out(view, request.app[CLOCK].now())))


@doc("Cancel a booking; the refund follows the policy (Idempotency-Key honoured)", response=CancelOut)
@routed(launch_of_booking)
@traveler_only
@idempotent
async def cancel(request: web.Request) -> web.Response:
    traveler_id = (await authenticate(request)).user_id
    result = await request.app[DESK].cancel(traveler_id=traveler_id, booking_id=request.match_info["id"])
    view = await request.app[LEDGER].traveler_booking(traveler_id, request.match_info["id"])
    return respond(
        CancelOut(
            booking=booking_out(view, request.app[CLOCK].now()),
            refund_cents=result.refund_cents,
            refund_pct=result.refund_pct,
        )
    )


@doc(
    "Join a sold-out launch's waiting list with a party size (1-4 seats, VIP 1-6): freed seats are offered "
    "in joining order",
    body=WaitlistIn,
    response=WaitlistEnvelope,
    status=201,
    errors={
        403: "vip_only: the launch is open to VIP travelers only for now",
        404: "no such launch",
        409: "seats_available (book them instead), already_waiting, launch_not_bookable, agency_not_verified",
        422: "seat_limit: a party of 1 to 4 seats (6 for VIP travelers)",
    },
)
@routed(launch_in_path)
@traveler_only
async def join_waitlist(request: web.Request) -> web.Response:
    data = await read_body(request, WaitlistIn)
    principal = await authenticate(request)
    joined = await request.app[DESK].join_waitlist(
        traveler_id=principal.user_id,
        launch_id=request.match_info["id"],
        seats=data.seats,
        vip=principal.vip,
    )
    row = await request.app[WAITLIST].entry(joined.entry.id)
    assert row is not None, "the entry was committed before the actor answered"
    return respond(WaitlistEnvelope(entry=WaitlistEntryOut.model_validate(entry_json(row))), status=201)


@doc(
    "Leave a launch's waiting list (an offer held is passed on to the next traveler)",
    status=204,
    errors={404: "no such launch, or you are not on its waiting list"},
)
@routed(launch_in_path)
@traveler_only
async def leave_waitlist(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await request.app[DESK].leave_waitlist(traveler_id=principal.user_id, launch_id=request.match_info["id"])
    return web.Response(status=204)


@doc(
    "The traveler's waiting-list entries, newest first: status, position (1 is next) and offer deadline",
    response=WaitlistPage,
    query=PAGE,
)
@traveler_only
async def list_waitlist(request: web.Request) -> web.Response:
    limit = query_limit(request)
    rows = await request.app[WAITLIST].traveler_entries(
        (await authenticate(request)).user_id, decode_cursor(request), limit + 1
    )
    rows, cursor = page_of(rows, limit, lambda r: str(r["id"]))
    items = [WaitlistEntryOut.model_validate(entry_json(r)) for r in rows]
    return respond(WaitlistPage(items=items, next_cursor=cursor))


get_profile, put_profile = profile_endpoints(
    Role.TRAVELER, TravelerProfile, TravelerProfileUpdate, "traveler's contact and tax data"
)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/launches", list_launches, allow_head=False)
    r.add_get(f"{PREFIX}/launches/{{ref}}", get_launch, allow_head=False)
    r.add_get(f"{PREFIX}/profile", get_profile, allow_head=False)
    r.add_put(f"{PREFIX}/profile", put_profile)
    r.add_post(f"{PREFIX}/bookings", book)
    r.add_get(f"{PREFIX}/bookings", list_bookings, allow_head=False)
    r.add_get(f"{PREFIX}/bookings/{{id}}", get_booking, allow_head=False)
    r.add_post(f"{PREFIX}/bookings/{{id}}/cancel", cancel)
    r.add_post(f"{PREFIX}/launches/{{id}}/waitlist", join_waitlist)
    r.add_delete(f"{PREFIX}/launches/{{id}}/waitlist", leave_waitlist)
    r.add_get(f"{PREFIX}/waitlist", list_waitlist, allow_head=False)
