"""`run.py --workers N`: N node processes sharing one port (SO_REUSEPORT), started and watched by the parent.

The parent starts the embedded stores once (run.py), then one `python run.py serve` per worker with every
store's URL, its own node name (`<ASTRO_NODE or node>-<i>`), its own data directory (its log spool) and
two internal variables: bind the public port with SO_REUSEPORT, and say "ready" on an inherited pipe.
The kernel spreads the port's connections over the workers. A worker that exits while the parent is not
stopping is started again; a stop signal is passed on to every worker, and the parent waits for them all
before it stops the stores. Each worker gets SIGTERM should the parent die (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from astro.config import Settings
from astro.embedded import EmbeddedError, _die_with_parent

log = structlog.get_logger("astro.workers")

# Internal: set by the parent for its workers only, never by an operator.
REUSE_PORT_ENV: Final = "ASTRO_INTERNAL_REUSE_PORT"
READY_FD_ENV: Final = "ASTRO_INTERNAL_READY_FD"
STOP_TIMEOUT: Final = 30.0  # seconds a worker has to stop cleanly before it is killed
QUICK_EXIT: Final = 10.0  # a worker that exits sooner than this after its start waits before the next
RESTART_DELAY_CAP: Final = 30.0


def reuse_port() -> bool:
    """Is this process a worker of `--workers N`, binding the shared public port with SO_REUSEPORT?"""
    return os.environ.get(REUSE_PORT_ENV) == "1"


def report_ready(node: str, url: str) -> None:
    """Tell the parent (if any) that this worker serves: one line on the pipe it inherited."""
    raw = os.environ.get(READY_FD_ENV)
    if not raw:
        return
    fd = int(raw)
    try:
        os.write(fd, f"{node} {url}\n".encode())
    finally:
        os.close(fd)


def base_node_name(env: dict[str, str] | None = None) -> str:
    """The prefix of the workers' node names: ASTRO_NODE, else `node`."""
    found = (os.environ if env is None else env).get("ASTRO_NODE", "").strip()
    return found or "node"


@dataclass
class Worker:
    index: int
    node: str
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    url: str = ""  # its own loopback URL, once it said it is ready
    quick_exits: int = 0


class WorkerFailed(EmbeddedError):
    """A worker exited before it was ready at the platform's start."""


class Supervisor:
    """Starts `count` workers of run.py on `settings` (every store's URL filled in) and keeps them up."""

    def __init__(self, settings: Settings, run_py: Path, count: int, base: str) -> None:
        self._settings = settings
        self._run_py = run_py
        self.workers = [Worker(i, f"{base}-{i}") for i in range(1, count + 1)]
        self.stopping = False
        self.restarts = 0

    def env_for(self, worker: Worker, ready_fd: int) -> dict[str, str]:
        s = self._settings
        env = {k: v for k, v in os.environ.items() if k != "ASTRO_NODE_URL"}
        env.update(
            ASTRO_PG_DSN=s.pg_dsn or "",
            ASTRO_MONGO_URL=s.mongo_url or "",
            ASTRO_REDIS_URL=s.redis_url or "",
            ASTRO_JWT_SECRET=s.jwt_secret,
            ASTRO_WORKERS="1",
            ASTRO_NODE=worker.node,
            # Its own data directory: the log spool of one process is never written by another.
            ASTRO_DATA_DIR=str(s.data_dir / "nodes" / worker.node),
            PYTHONUNBUFFERED="1",
        )
        env[REUSE_PORT_ENV] = "1"
        env[READY_FD_ENV] = str(ready_fd)
        return env

    async def _spawn(self, worker: Worker) -> str:
        """Start the worker and return its loopback URL once it serves; WorkerFailed if it exits first."""
        read_fd, write_fd = os.pipe()
        try:
            worker.process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(self._run_py),
                "serve",
                env=self.env_for(worker, write_fd),
                pass_fds=(write_fd,),
                stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=_die_with_parent(signal.SIGTERM),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        worker.started_at = time.monotonic()
        line = await _read_all(read_fd)
        if not line:
            code = await worker.process.wait()
            raise WorkerFailed(f"worker {worker.node} exited with code {code} before it was ready")
        worker.url = line.split()[-1]
        log.info("worker_started", node=worker.node, pid=worker.process.pid, url=worker.url)
        return worker.url

    async def start(self) -> None:
        """Start every worker and wait until each serves; on a failure stop those started and raise."""
        try:
            await asyncio.gather(*(self._spawn(w) for w in self.workers))
        except BaseException:
            await self.stop(signal.SIGTERM)
            raise

    async def watch(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: start again every worker that exits (a crash, a kill)."""
        waits = {asyncio.ensure_future(self._exited(w)): w for w in self.workers}
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while True:
                done, _ = await asyncio.wait([stopped, *waits], return_when=asyncio.FIRST_COMPLETED)
                if stopped in done:
                    return
                for task in done:
                    worker = waits.pop(task)
                    if await self._restart(worker, task.result(), stop):
                        waits[asyncio.ensure_future(self._exited(worker))] = worker
                    else:
                        return
        finally:
            for task in [stopped, *waits]:
                task.cancel()

    async def _exited(self, worker: Worker) -> int:
        assert worker.process is not None
        return await worker.process.wait()

    async def _restart(self, worker: Worker, code: int, stop: asyncio.Event) -> bool:
        """Start an exited worker again (after a pause when it keeps exiting quickly); False if stopping."""
        lived = time.monotonic() - worker.started_at
        worker.quick_exits = worker.quick_exits + 1 if lived < QUICK_EXIT else 0
        delay = min(RESTART_DELAY_CAP, 2.0 ** (worker.quick_exits - 1)) if worker.quick_exits else 0.0
        log.warning(
            "worker_exited",
            node=worker.node,
            pid=worker.process.pid if worker.process else None,
            code=code,
            lived_s=round(lived, 1),
            restart_in_s=delay,
        )
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        while not stop.is_set():
            try:
                await self._spawn(worker)
            except WorkerFailed as exc:
                log.error("worker_restart_failed", node=worker.node, error=str(exc))
                worker.quick_exits += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(RESTART_DELAY_CAP, 2.0**worker.quick_exits))
                continue
            self.restarts += 1
            log.info("worker_restarted", node=worker.node, pid=worker.process and worker.process.pid)
            return True
        return False

    async def stop(self, sig: int) -> None:
        """Pass `sig` on to every running worker and wait for them (SIGKILL after STOP_TIMEOUT)."""
        self.stopping = True
        running = [w.process for w in self.workers if w.process and w.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                log.error("worker_kill", pid=process.pid, reason=f"not stopped after {STOP_TIMEOUT:.0f} s")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


async def _read_all(fd: int) -> str:
    """Everything written to the pipe until its last writer closes it."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        return (await reader.read()).decode(errors="replace").strip()
    finally:
        transport.close()
