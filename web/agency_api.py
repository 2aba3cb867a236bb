"""AgencyAPI /api/agency: profile, rockets, launches, status changes, manifest, bookings report."""

from __future__ import annotations

from aiohttp import web

from astro.domain.invoices import ABORT_FEE_CENTS
from astro.domain.launches import Status
from astro.domain.users import Role
from astro.schemas.launches import (
    ActivityPage,
    AgencyLaunchEnvelope,
    AgencyLaunchOut,
    AgencyLaunchPage,
    BookingsReport,
    LaunchIn,
    Manifest,
    RocketEnvelope,
    RocketIn,
    RocketOut,
    RocketPage,
    SchedulingRules,
    StatusIn,
)
from astro.schemas.system import AgencyProfile, AgencyProfileUpdate
from astro.services.views import CardSource, launch_card, with_visibility
from astro.services.waitlist import no_demand
from web.cluster import launch_in_path, routed
from web.http import (
    authenticate,
    decode_cursor,
    page_of,
    query_date,
    query_limit,
    read_body,
    requires,
    respond,
)
from web.keys import CLOCK, DESK, FLEET, SCHEDULER, WAITLIST
from web.openapi import LIMIT, PAGE, day, doc
from web.profiles import profile_endpoints

PREFIX = "/api/agency"
agency_only = requires(Role.AGENCY)


async def _agency(request: web.Request) -> str:
    return (await authenticate(request)).user_id


async def launches_out(request: web.Request, launches: list[CardSource]) -> list[AgencyLaunchOut]:
    """The agency's launches with their occupancy and the demand on their waiting lists."""
    now = request.app[CLOCK].now()
    demand = await request.app[WAITLIST].demand([launch.id for launch in launches]) if launches else {}
    return [
        AgencyLaunchOut.model_validate(
            {**with_visibility(launch_card(launch), now), **demand.get(launch.id, no_demand(launch.id))}
        )
        for launch in launches
    ]


async def launch_out(request: web.Request, launch: CardSource) -> AgencyLaunchOut:
    return (await launches_out(request, [launch]))[0]


@doc("The agency's rockets", response=RocketPage, query=PAGE)
@agency_only
async def list_rockets(request: web.Request) -> web.Response:
    limit = query_limit(request)
    rows = await request.app[FLEET].rockets(await _agency(request), decode_cursor(request), limit + 1)
    rows, cursor = page_of(rows, limit, lambda r: str(r["id"]))
    return respond(RocketPage(items=[RocketOut.model_validate(r) for r in rows], next_cursor=cursor))


@doc("Add a rocket", body=RocketIn, response=RocketEnvelope, status=201)
@agency_only
async def create_rocket(request: web.Request) -> web.Response:
    data = await read_body(request, RocketIn)
    row = await request.app[FLEET].add_rocket(
        await _agency(request), name=data.name, capacity=data.capacity, range_=data.range
    )
    return respond(RocketEnvelope(rocket=RocketOut.model_validate(row)), status=201)


@doc("One rocket", response=RocketEnvelope)
@agency_only
async def get_rocket(request: web.Request) -> web.Response:
    row = await request.app[FLEET].rocket(await _agency(request), request.match_info["id"])
    return respond(RocketEnvelope(rocket=RocketOut.model_validate(row)))


@doc(
    "Change a rocket (launches already scheduled keep their capacity)", body=RocketIn, response=RocketEnvelope
)
@agency_only
async def put_rocket(request: web.Request) -> web.Response:
    data = await read_body(request, RocketIn)
    row = await request.app[FLEET].change_rocket(
        await _agency(request),
        request.match_info["id"],
        name=data.name,
        capacity=data.capacity,
        range_=data.range,
    )
    return respond(RocketEnvelope(rocket=RocketOut.model_validate(row)))


@doc("Delete a rocket with no unfinished launch (409 rocket_in_use otherwise)", status=204)
@agency_only
async def delete_rocket(request: web.Request) -> web.Response:
    await request.app[FLEET].remove_rocket(await _agency(request), request.match_info["id"])
    return web.Response(status=204)


@doc(
    "The agency's launches with occupancy",
    response=AgencyLaunchPage,
    query=PAGE,
)
@agency_only
async def list_launches(request: web.Request) -> web.Response:
    limit = query_limit(request)
    found = await request.app[FLEET].launches(await _agency(request), decode_cursor(request), limit + 1)
    launches, cursor = page_of(found, limit, lambda launch: launch.id)
    return respond(AgencyLaunchPage(items=await launches_out(request, list(launches)), next_cursor=cursor))


@doc(
    "Schedule a launch on one of the agency's rockets",
    body=LaunchIn,
    response=AgencyLaunchEnvelope,
    status=201,
)
@agency_only
async def create_launch(request: web.Request) -> web.Response:
    data = await read_body(request, LaunchIn)
    launch = await request.app[SCHEDULER].schedule(
        await _agency(request),
        rocket_id=data.rocket_id,
        mission=data.mission,
        destination=data.destination,
        scheduled_at=data.scheduled_at,
        price_cents=data.price_cents,
        min_passengers=data.min_passengers,
    )
    return respond(AgencyLaunchEnvelope(launch=await launch_out(request, launch)), status=201)


@doc(
    "What scheduling a launch implies: the VIP window, the daily limit, the abort fee",
    response=SchedulingRules,
)
@agency_only
async def scheduling_rules(request: web.Request) -> web.Response:
    scheduler = request.app[SCHEDULER]
    return respond(
        SchedulingRules(
            vip_window_seconds=scheduler.vip_window_seconds,
            launches_per_day=scheduler.launches_per_day,
            abort_fee_cents=ABORT_FEE_CENTS,
        )
    )


@doc("One launch with occupancy", response=AgencyLaunchEnvelope)
@agency_only
async def get_launch(request: web.Request) -> web.Response:
    launch = await request.app[FLEET].launch(await _agency(request), request.match_info["id"])
    return respond(AgencyLaunchEnvelope(launch=await launch_out(request, launch)))


@doc("Change the launch's status (DESIGN 5 table)", body=StatusIn, response=AgencyLaunchEnvelope)
@routed(launch_in_path)
@agency_only
async def change_status(request: web.Request) -> web.Response:
    data = await read_body(request, StatusIn)
    launch = await request.app[DESK].change_status(
        agency_id=await _agency(request),
        launch_id=request.match_info["id"],
        status=Status(data.status),
        scheduled_at=data.scheduled_at,
        reason=data.reason,
    )
    return respond(AgencyLaunchEnvelope(launch=await launch_out(request, launch)))


@doc("The manifest: every booking with its passengers", response=Manifest)
@agency_only
async def manifest(request: web.Request) -> web.Response:
    found = await request.app[FLEET].manifest(await _agency(request), request.match_info["id"])
    return respond(Manifest.model_validate(found))


@doc(
    "Bookings of successful launches with each traveler's tax data",
    response=BookingsReport,
    query={"from": day("first launch date"), "to": day("the day after the last")},
)
@agency_only
async def bookings_report(request: web.Request) -> web.Response:
    start, end = query_date(request, "from"), query_date(request, "to")
    report = await request.app[FLEET].bookings_report(await _agency(request), start, end)
    return respond(BookingsReport.model_validate(report))


@doc(
    "What happened lately to the agency's launches and bookings, newest first: launches scheduled, "
    "status changes, bookings, cancellations (the history of the live `agency` channel's feed)",
    response=ActivityPage,
    query={"limit": LIMIT},
)
@agency_only
async def activity(request: web.Request) -> web.Response:
    items = await request.app[FLEET].activity(await _agency(request), query_limit(request))
    return respond(ActivityPage.model_validate({"items": items}))


get_profile, put_profile = profile_endpoints(
    Role.AGENCY, AgencyProfile, AgencyProfileUpdate, "agency's legal profile"
)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/profile", get_profile, allow_head=False)
    r.add_put(f"{PREFIX}/profile", put_profile)
    r.add_get(f"{PREFIX}/rockets", list_rockets, allow_head=False)
    r.add_post(f"{PREFIX}/rockets", create_rocket)
    r.add_get(f"{PREFIX}/rockets/{{id}}", get_rocket, allow_head=False)
    r.add_put(f"{PREFIX}/rockets/{{id}}", put_rocket)
    r.add_delete(f"{PREFIX}/rockets/{{id}}", delete_rocket)
    r.add_get(f"{PREFIX}/launches", list_launches, allow_head=False)
    r.add_post(f"{PREFIX}/launches", create_launch)
    r.add_get(f"{PREFIX}/launches/{{id}}", get_launch, allow_head=False)
    r.add_post(f"{PREFIX}/launches/{{id}}/status", change_status)
    r.add_get(f"{PREFIX}/launches/{{id}}/bookings", manifest, allow_head=False)
    r.add_get(f"{PREFIX}/reports/bookings", bookings_report, allow_head=False)
    r.add_get(f"{PREFIX}/activity", activity, allow_head=False)
    r.add_get(f"{PREFIX}/scheduling", scheduling_rules, allow_head=False)
