"""Notification rows (the e-mail queue), written inside the transaction of the change that causes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg

from astro.domain.ids import new_id
from astro.services.announcements import Notice, ToAgency, ToTraveler, ToVipTravelers


@dataclass(frozen=True, slots=True)
class Recipient:
    id: str
    role: str
    email: str
    name: str


@dataclass
class NoticeRows:
    """Notifications gathered during one transaction and written with one statement (one round trip,
    however many recipients)."""

    rows: list[tuple[str, str, str, str, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, event: str, recipients: list[Recipient], data: dict[str, Any]) -> None:
        for r in recipients:
            self.rows.append((new_id("ntf"), event, r.id, r.role, r.email, {**data, "name": r.name}))

    async def write(self, conn: asyncpg.Connection) -> int:
        if self.rows:
            columns = list(zip(*self.rows, strict=True))
            await conn.execute(
                """INSERT INTO notifications (id, event, recipient_id, recipient_role, recipient_email, data)
                   SELECT id, event, recipient_id, recipient_role, recipient_email, data::jsonb
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                        AS n(id, event, recipient_id, recipient_role, recipient_email, data)""",
                *columns[:5],
                [json.dumps(data, default=str) for data in columns[5]],
            )
        written = len(self.rows)
        self.rows = []
        return written


# Who receives an email, and at which address (the contact address when one is set).
TRAVELERS: Final = "SELECT id, COALESCE(contact_email, email) AS email, name FROM travelers"
AGENCIES: Final = "SELECT id, COALESCE(contact_email, email) AS email, name FROM agencies"


def _recipients(rows: list[asyncpg.Record], role: str) -> list[Recipient]:
    return [Recipient(r["id"], role, r["email"], r["name"]) for r in rows]


async def vip_travelers(conn: asyncpg.Connection) -> list[Recipient]:
    rows = await conn.fetch(f"{TRAVELERS} WHERE vip ORDER BY id")
    return _recipients(rows, "traveler")


async def write_notices(conn: asyncpg.Connection, notices: Sequence[Notice]) -> int:
    """The notification rows of these notices, addressed from the data of this transaction, in one
    INSERT; a recipient who does not exist (any more) gets none."""
    if not notices:
        return 0
    agencies = {n.to.agency_id for n in notices if isinstance(n.to, ToAgency)}
    travelers = {n.to.traveler_id for n in notices if isinstance(n.to, ToTraveler)}
    found: dict[tuple[str, str], Recipient] = {}
    if agencies:
        for r in await conn.fetch(f"{AGENCIES} WHERE id = ANY($1::text[])", list(agencies)):
            found["agency", r["id"]] = Recipient(r["id"], "agency", r["email"], r["name"])
    if travelers:
        for r in await conn.fetch(f"{TRAVELERS} WHERE id = ANY($1::text[])", list(travelers)):
            found["traveler", r["id"]] = Recipient(r["id"], "traveler", r["email"], r["name"])
    vips = await vip_travelers(conn) if any(isinstance(n.to, ToVipTravelers) for n in notices) else []
    rows = NoticeRows()
    for notice in notices:
        to = notice.to
        if isinstance(to, ToAgency):
            who = [found[key]] if (key := ("agency", to.agency_id)) in found else []
        elif isinstance(to, ToTraveler):
            who = [found[key]] if (key := ("traveler", to.traveler_id)) in found else []
        else:
            who = vips
        rows.add(notice.event, who, notice.data)
    return await rows.write(conn)
