"""Several real node processes (`python run.py`, each its own ASTRO_NODE and port) on the same stores, and
what the cluster tests read of them: who owns a launch (table launch_leases, DESIGN 8.5), how each node's
API shows the launch, and every node's 500s."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import asyncpg

from tests.faults.audit import Books, open_attempts, wait_final
from tests.faults.conftest import MakePlatform
from tests.faults.platform import PlatformProcess, StoreUrls
from tests.faults.storm import Storm

NODE_NAMES: Final = ("node-a", "node-b", "node-c")
LEASE_SECONDS: Final = 5.0  # the platform's default lease (ASTRO_LEASE_SECONDS)
TAKEOVER_SLACK: Final = 5.0  # the bound: another node serves a dead owner's launch by lease + 5 s


@dataclass(frozen=True, slots=True)
class Lease:
    """A launch's row in launch_leases: who owns it, under which fencing epoch, until when."""

    epoch: int
    node: str
    holder: str
    live: bool  # expires_at > now()

    def __str__(self) -> str:
        return f"epoch {self.epoch} {self.node} ({'live' if self.live else 'expired'})"


@dataclass
class Cluster:
    """The running nodes, in the order they were named (node-a, node-b, ...)."""

    stores: StoreUrls
    nodes: list[PlatformProcess]

    @property
    def bases(self) -> list[str]:
        return [node.base for node in self.nodes]

    def node(self, name: str) -> PlatformProcess:
        (found,) = [node for node in self.nodes if node.node == name]
        return found

    def others(self, node: PlatformProcess) -> list[PlatformProcess]:
        return [other for other in self.nodes if other is not node]

    def errors(self) -> list[str]:
        """Every node's unhandled errors (500s), named by node."""
        return [f"{node.node} {error}" for node in self.nodes for error in node.errors()]

    def explain(self, problems: list[str], report: dict[str, Any]) -> str:
        """The findings, the numbers, each node's 500s and its last warnings and errors."""
        lines = [f"{len(problems)} problem(s):", *problems[:60], f"report: {json.dumps(report, default=str)}"]
        for node in self.nodes:
            errors = node.errors()
            logged = node.lines('"level": "error"', '"level": "warning"', "Traceback")
            lines += [
                f"--- {node.node} ({node.base}), logs in {node.log_dir}: {len(errors)} unhandled error(s)",
                *errors[:5],
                f"warnings and errors logged ({len(logged)}; the last 15):",
                *logged[-15:],
            ]
        return "\n".join(lines)


async def start_cluster(
    platforms: MakePlatform, stores: StoreUrls, session: aiohttp.ClientSession, count: int, **env: str
) -> Cluster:
    """`count` nodes on `stores` (same JWT secret, own ASTRO_NODE and port), started together, ready."""
    nodes = [platforms(stores, name, **env) for name in NODE_NAMES[:count]]
    for node in nodes:
        node.start()
    await asyncio.gather(*(node.wait_ready(session) for node in nodes))
    return Cluster(stores, nodes)


async def lease_of(dsn: str, launch_id: str) -> Lease | None:
    """The launch's lease row, or None when no node ever took it (no ownership at all)."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT epoch, node, holder, expires_at > now() AS live FROM launch_leases WHERE launch_id = $1",
            launch_id,
        )
    finally:
        await conn.close()
    return None if row is None else Lease(row["epoch"], row["node"], row["holder"], row["live"])


async def owner_of(cluster: Cluster, launch_id: str, problems: list[str]) -> PlatformProcess:
    """The node holding the launch's live lease. Without one (a platform without ownership) the first
    node stands in, and `problems` says so: the test goes on to show what happens then."""
    lease = await lease_of(cluster.stores.pg_dsn, launch_id)
    if lease is not None and lease.live:
        return cluster.node(lease.node)
    problems.append(
        f"no live lease of launch {launch_id} in launch_leases ({lease}): expected the node serving it to "
        f"own it (DESIGN 8.5); {cluster.nodes[0].node} stood in as the owner"
    )
    return cluster.nodes[0]


async def launch_on(
    session: aiohttp.ClientSession, node: PlatformProcess, launch_id: str, agency_token: str
) -> dict[str, Any]:
    """The launch as the agency reads it through `node`'s API."""
    async with session.get(
        f"{node.base}/api/agency/launches/{launch_id}",
        headers={"Authorization": f"Bearer {agency_token}"},
        timeout=aiohttp.ClientTimeout(total=30),
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, (node.node, resp.status, body)
        launch: dict[str, Any] = body["launch"]
        return launch


async def views(
    session: aiohttp.ClientSession, cluster: Cluster, launch_id: str, agency_token: str
) -> dict[str, tuple[int, str]]:
    """(seats_booked, status) of the launch as each node's API shows it, by node."""
    found = await asyncio.gather(*(launch_on(session, n, launch_id, agency_token) for n in cluster.nodes))
    return {
        node.node: (launch["seats_booked"], launch["status"])
        for node, launch in zip(cluster.nodes, found, strict=True)
    }


SERVED: Final = ("201", "409 sold_out")  # answers only the launch's serving actor gives


def first_served_after(storm: Storm, moment: float, bases: list[str]) -> float | None:
    """When a request sent to one of `bases` after `moment` (monotonic) was first decided by the launch:
    accepted (201) or refused as sold out."""
    answers = [a for o in storm.orders for a in o.answers]
    times = [a.at for a in answers if a.label() in SERVED and a.sent > moment and a.base in bases]
    return min(times, default=None)


async def books_when_final(dsn: str, launch_id: str, *, within: float) -> Books:
    """The books once no payment attempt is open any more (captures run after the answer), or as they
    stand after `within` seconds (the audit then names what stayed open)."""
    await wait_final(dsn, set(await open_attempts(dsn)), until=time.monotonic() + within)
    return await Books.read(dsn, launch_id)


def refusals(storm: Storm) -> dict[str, int]:
    """Every answer but a 201, counted by kind (409 sold_out, 503 ..., no answer)."""
    return {label: n for label, n in storm.counts().items() if label != "201"}
