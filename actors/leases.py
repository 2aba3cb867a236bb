"""This node's launch leases (DESIGN 8.5): taken by a launch actor when it starts, renewed while it lives,
given up when it stops; the node's own row in the registry, heartbeated with the same round.

The keeper renews every lease of the node in one statement every third of the lease's length. A lease it
could not renew under its epoch (another node took the launch over: this node was paused, cut off or too
slow) is lost: the launch's actor is stopped, and whatever it still tries to write is refused by the
database's fence anyway -- stopping it only spares it the refusals."""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import structlog

from actors.loop import BackgroundLoop, TaskSet
from astro.domain.errors import Unavailable
from astro.domain.leases import Fence, Lease, Owner

log = structlog.get_logger("astro.leases")


class Leases(Protocol):
    async def acquire(self, launch_id: str, owner: Owner, seconds: float) -> Fence: ...
    async def renew(self, owner: Owner, fences: list[Fence], seconds: float) -> set[str]: ...
    async def release(self, owner: Owner, fence: Fence) -> None: ...
    async def owner(self, launch_id: str) -> Lease | None: ...
    async def register(self, owner: Owner, pid: int) -> None: ...
    async def heartbeat(self, owner: Owner) -> None: ...
    async def stopped(self, owner: Owner) -> None: ...


async def _nothing_lost(launch_id: str) -> None:
    log.error("lease_lost_unwatched", launch_id=launch_id)


class LeaseKeeper:
    """Takes, renews and gives up this node's leases; `on_lost(launch_id)` stops a launch that moved."""

    def __init__(self, leases: Leases, owner: Owner, seconds: float) -> None:
        self.owner = owner
        self.seconds = seconds
        self._leases = leases
        self._held: dict[str, Fence] = {}
        self._alive: Callable[[str], bool] = lambda _: True
        self._on_lost: Callable[[str], Coroutine[Any, Any, None]] = _nothing_lost
        self._stopping = TaskSet()
        self._loop = BackgroundLoop(
            self._round, interval=seconds / 3, name="leases:renew", failed_event="lease_renewal_failed"
        )

    def watch(
        self, alive: Callable[[str], bool], on_lost: Callable[[str], Coroutine[Any, Any, None]]
    ) -> None:
        """`alive(launch_id)`: is the launch's actor still running here; `on_lost`: stop it."""
        self._alive, self._on_lost = alive, on_lost

    @property
    def held(self) -> dict[str, Fence]:
        return dict(self._held)

    def owns(self, launch_id: str) -> bool:
        return launch_id in self._held

    async def take(self, launch_id: str) -> Fence:
        """The launch's lease for this node (OwnedElsewhere when another node holds it)."""
        fence = await self._leases.acquire(launch_id, self.owner, self.seconds)
        self._held[launch_id] = fence
        return fence

    async def give_up(self, fence: Fence) -> None:
        """Release a lease this node holds under `fence` (an actor stopping cleanly). With the database
        unreachable the lease simply expires: another node waits a lease's length at most."""
        if self._held.get(fence.launch_id) == fence:
            del self._held[fence.launch_id]
        try:
            await self._leases.release(self.owner, fence)
        except Unavailable as exc:
            log.warning("lease_release_failed", launch_id=fence.launch_id, error=str(exc))

    async def elsewhere(self, launch_id: str) -> Lease | None:
        """The lease of another node on the launch, if one holds it now."""
        if launch_id in self._held:
            return None
        lease = await self._leases.owner(launch_id)
        # A lease of an earlier run of this node (it was killed and restarted) is this node's to take.
        return None if lease is None or lease.node == self.owner.node else lease

    async def start(self) -> None:
        await self._leases.register(self.owner, os.getpid())
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._stopping.wait()
        self._held.clear()
        try:
            await self._leases.stopped(self.owner)
        except Unavailable as exc:  # the leases expire on their own; the registry shows the node silent
            log.warning("node_stop_unrecorded", node=self.owner.node, error=str(exc))

    async def _round(self) -> None:
        # A launch whose actor is gone without giving its lease up (it crashed for good): given up now.
        for launch_id, fence in list(self._held.items()):
            if not self._alive(launch_id):
                await self.give_up(fence)
        fences = list(self._held.values())
        kept = await self._leases.renew(self.owner, fences, self.seconds)
        for fence in fences:
            if fence.launch_id not in kept and self._held.get(fence.launch_id) == fence:
                del self._held[fence.launch_id]
                log.warning("lease_lost", launch_id=fence.launch_id, epoch=fence.epoch)
                self._stopping.spawn(self._on_lost(fence.launch_id))
        await self._leases.heartbeat(self.owner)
