"""A MongoDB wire server (SecantusDB) that a test can stop and start again on the same port and data."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from astro.embedded import _die_with_parent, free_port


class StoppableMongo:
    """`secantusd-py` as a child process: `start()`, `stop()`, `start()` again keeps port and storage."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "astro_logs") -> str:
        return f"mongodb://127.0.0.1:{self.port}/{database}"

    async def start(self) -> None:
        self.process = self._spawn()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            assert self.process.poll() is None, (self.directory / "server.log").read_text()[-2000:]
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
                self.url(), serverSelectionTimeoutMS=300
            )
            try:
                await client.admin.command("ping")
                return
            except Exception:
                if loop.time() > deadline:
                    raise
            finally:
                await client.close()
            await asyncio.sleep(0.1)

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = Path(sys.executable).parent / "secantusd-py"
        found = str(command) if command.exists() else shutil.which("secantusd-py")
        assert found, "secantusd-py is missing: pip install secantusdb"
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "server.log").open("ab") as out:
            return subprocess.Popen(
                [
                    found,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--storage-path",
                    str(self.directory / "data"),
                    "--sync-on-commit",
                    "--log-level",
                    "WARNING",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent(signal.SIGTERM),  # never outlive a killed test run
            )

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
