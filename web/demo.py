"""`python run.py demo`: fill an empty platform with a live-looking world, through its own API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp
from aiohttp import web

from astro.config import Settings
from astro.domain.clock import FixedClock
from astro.domain.errors import Conflict
from astro.domain.users import Role
from web.app import create_app
from web.keys import AUTH, DESK, LIVE

PASSWORD: Final = "orbit-demo-passage"
DOMAIN: Final = "astro.demo"


class DemoExists(Exception):
    """The platform already has the demo data."""


@dataclass
class Login:
    email: str
    role: str
    token: str = ""
    id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Demo:
    """Talks to a running app over HTTP, with a clock it can move to make launches of the past."""

    def __init__(self, session: aiohttp.ClientSession, base: str, clock: FixedClock) -> None:
        self.session, self.base, self.clock = session, base, clock
        self.logins: list[Login] = []

    async def call(self, method: str, path: str, who: Login | None = None, **body: Any) -> dict[str, Any]:
        async with self.session.request(
            method, self.base + path, json=body or None, headers=who.headers if who else None
        ) as resp:
            data: dict[str, Any] = await resp.json() if resp.content_type == "application/json" else {}
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path} answered {resp.status}: {data}")
            return data

    async def register(self, name: str, role: str, profile: dict[str, Any]) -> Login:
        email = f"{name.split()[0].lower()}@{DOMAIN}"
        data = await self.call(
            "POST",
            "/api/system/auth/register",
            email=email,
            password=PASSWORD,
            name=name,
            role=role,
            profile=profile,
        )
        login = Login(email, role, data["token"], data["user"]["id"])
        self.logins.append(login)
        return login

    async def launch(
        self,
        agency: Login,
        rocket: dict[str, Any],
        mission: str,
        destination: str,
        days_ahead: float,
        price_cents: int,
        min_passengers: int,
    ) -> dict[str, Any]:
        when = self.clock.now() + timedelta(days=days_ahead)
        data = await self.call(
            "POST",
            "/api/agency/launches",
            agency,
            rocket_id=rocket["id"],
            mission=mission,
            destination=destination,
            scheduled_at=when.isoformat(),
            price_cents=price_cents,
            min_passengers=min_passengers,
        )
        return data["launch"]  # type: ignore[no-any-return]

    async def book(self, traveler: Login, launch: dict[str, Any], seats: int) -> dict[str, Any]:
        people = [
            {"name": f"{traveler.email.split('@')[0].title()} {i + 1}", "birth_date": f"{1975 + 3 * i}-04-12"}
            for i in range(seats)
        ]
        data = await self.call(
            "POST",
            "/api/booking/bookings",
            traveler,
            launch_id=launch["id"],
            seats=seats,
            passengers=people,
            card_token="tok_ok",
        )
        return data["booking"]  # type: ignore[no-any-return]

    async def status(self, agency: Login, launch: dict[str, Any], status: str, **extra: Any) -> None:
        await self.call("POST", f"/api/agency/launches/{launch['id']}/status", agency, status=status, **extra)


async def run_demo(settings: Settings) -> list[Login]:
    """Create the demo world; raise DemoExists when it is already there."""
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(now - timedelta(days=120))
    app = create_app(settings.replace(vip_window=86400), clock=clock)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()  # a free port
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            logins = await _world(Demo(session, f"http://127.0.0.1:{port}", clock), app, now)
        await app[DESK].wait_background()
        await app[LIVE].drain()
        return logins
    finally:
        await runner.cleanup()


async def _world(d: Demo, app: web.Application, now: datetime) -> list[Login]:
    for role, name in ((Role.IT, "Ivy Ops"), (Role.FINANCE, "Felix Ledger")):
        email = f"{role.value}@{DOMAIN}"
        try:
            await app[AUTH].create_employee(email=email, password=PASSWORD, name=name, role=role)
        except Conflict as exc:  # the first thing the demo makes: it is there, so is the rest
            raise DemoExists(f"the demo data is already here ({email} exists)") from exc
        d.logins.append(Login(email, role.value))
    orbital = await d.register(
        "Orbital Tours",
        "agency",
        {
            "legal_name": "Orbital Tours Inc.",
            "tax_id": "US-ORB-1001",
            "legal_address": "1 Launch Pad, Cape Canaveral",
            "description": "Weekend trips to low Earth orbit and the Moon.",
            "contact_email": f"ops@{DOMAIN}",
        },
    )
    redplanet = await d.register(
        "Redplanet Lines",
        "agency",
        {
            "legal_name": "Red Planet Lines Ltd.",
            "tax_id": "UK-RPL-2002",
            "legal_address": "7 Dust Road, Boca Chica",
        },
    )
    # IT verifies the two agencies through SystemAPI, as SystemWeb's users view does.
    it = await d.call("POST", "/api/system/auth/login", email=f"it@{DOMAIN}", password=PASSWORD)
    it_login = Login(f"it@{DOMAIN}", "it", it["token"], it["user"]["id"])
    for agency in (orbital, redplanet):
        await d.call("PATCH", f"/api/system/users/{agency.id}", it_login, verified=True)
    travelers = [
        await d.register(
            f"{first} {last}",
            "traveler",
            {
                "phone": f"+1 555 01{i:02d}",
                "tax_id": f"TX-{i:04d}",
                "address": f"{10 + i} Star Street, Houston",
            },
        )
        for i, (first, last) in enumerate(
            [
                ("Ada", "Lovelace"),
                ("Bo", "Chen"),
                ("Cleo", "Martins"),
                ("Dev", "Patel"),
                ("Eva", "Novak"),
                ("Finn", "Olsen"),
                ("Gia", "Russo"),
                ("Hugo", "Silva"),
            ]
        )
    ]
    ada, bo, cleo, dev, eva, finn, gia, hugo = travelers
    falcon = (
        await d.call("POST", "/api/agency/rockets", orbital, name="Falcon Z", capacity=12, range="moon")
    )["rocket"]
    hopper = (
        await d.call("POST", "/api/agency/rockets", orbital, name="Hopper", capacity=6, range="low_earth")
    )["rocket"]
    ares = (
        await d.call("POST", "/api/agency/rockets", redplanet, name="Ares VI", capacity=40, range="mars")
    )["rocket"]

    # Four months ago: launches that have flown since, one scrubbed.
    flown = await d.launch(orbital, falcon, "Tranquility weekend", "moon", 60, 4_500_000, 4)
    lunar = await d.launch(orbital, hopper, "Sunrise orbit", "low_earth", 70, 950_000, 2)
    scrubbed = await d.launch(redplanet, ares, "Olympus pioneers", "mars", 80, 25_000_000, 20)
    d.clock.advance(timedelta(days=2))  # past the VIP window
    for traveler, launch, seats in (
        (ada, flown, 2),
        (bo, flown, 3),
        (cleo, lunar, 2),
        (ada, lunar, 1),
        (dev, scrubbed, 2),
        (eva, scrubbed, 1),
    ):
        await d.book(traveler, launch, seats)
    d.clock.at = now - timedelta(days=20)  # flown since; the invoices are due in 10 days
    await d.status(orbital, flown, "successful")
    await d.status(orbital, lunar, "successful")
    await d.status(redplanet, scrubbed, "aborted", reason="dust storm season")
    invoices = (await d.call("GET", "/api/agency/invoices", orbital))["items"]
    await d.call(
        "POST",
        f"/api/agency/invoices/{invoices[0]['id']}/payments",
        orbital,
        amount_cents=invoices[0]["amount_cents"] // 2,
        card_token="tok_ok",
    )

    # Now: what is on sale.
    d.clock.at = now - timedelta(days=2)  # public already (the VIP window has passed)
    nearly_full = await d.launch(orbital, hopper, "Aurora night flight", "low_earth", 20, 1_200_000, 3)
    moon = await d.launch(orbital, falcon, "Far side photo tour", "moon", 200, 6_000_000, 6)
    mars = await d.launch(redplanet, ares, "Red dust expedition", "mars", 400, 30_000_000, 10)
    d.clock.at = now
    for traveler, seats in ((bo, 2), (cleo, 1), (dev, 2)):
        await d.book(traveler, nearly_full, seats)
    for traveler, launch, seats in ((ada, moon, 2), (finn, moon, 1), (gia, mars, 3), (hugo, mars, 2)):
        await d.book(traveler, launch, seats)
    await d.status(
        redplanet,
        mars,
        "delayed",
        scheduled_at=(now + timedelta(days=430)).isoformat(),
        reason="new heat shield",
    )
    await d.launch(redplanet, ares, "Phobos first look", "mars", 300, 28_000_000, 10)  # VIP-only for a day
    return d.logins
