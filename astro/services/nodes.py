"""The platform's nodes for IT: which run, since when, their last heartbeat, the launches each owns."""

from __future__ import annotations

from typing import Any, Final, Protocol

Row = dict[str, Any]
# A node is alive while its last heartbeat is younger than this many leases (it heartbeats every third
# of a lease: three missed heartbeats and more are a node gone, or stopped without saying so).
ALIVE_LEASES: Final = 3


class NodeRecords(Protocol):
    """The node rows and their owned launches (astro/store/nodes.py)."""

    async def nodes(self, alive_within: float) -> list[Row]: ...


class NodeStatus:
    def __init__(self, store: NodeRecords, lease_seconds: float) -> None:
        self._store = store
        self.lease_seconds = lease_seconds

    async def nodes(self) -> list[Row]:
        """Every node that ever ran, by name: url, pid, started_at, heartbeat_at, stopped_at, alive,
        launches_owned."""
        return await self._store.nodes(alive_within=ALIVE_LEASES * self.lease_seconds)
