"""One platform process for fault tests: `python run.py` on given stores, started, killed and restarted.

The process runs in its own session and gets SIGKILL should the test process die (PR_SET_PDEATHSIG), so
nothing outlives a test; `close()` (in a fixture's finally) ends whatever is still running. Every start
writes its stdout (the platform's JSON log lines) to a file of its own in the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp

from astro.embedded import _die_with_parent

ROOT: Final = Path(__file__).resolve().parents[2]
RUN_PY: Final = ROOT / "run.py"
READY_TIMEOUT: Final = 60.0  # a start on external stores takes a few seconds; this is the bound
STOP_TIMEOUT: Final = 20.0
JWT_SECRET: Final = "fault-tests-" + "k" * 40  # fixed, so a restart accepts the tokens issued before it


@dataclass(frozen=True, slots=True)
class StoreUrls:
    """The stores a platform process runs on (the same after a restart)."""

    pg_dsn: str
    mongo_url: str
    redis_url: str


@dataclass
class PlatformProcess:
    """`python run.py` on `stores`, listening on `port` (kept across restarts, as a client expects)."""

    stores: StoreUrls
    data_dir: Path
    port: int
    log_dir: Path
    node: str = "fault-node"  # ASTRO_NODE: several processes on the same stores need distinct names
    extra_env: dict[str, str] = field(default_factory=dict)  # ASTRO_* set (or replaced) for this one
    process: subprocess.Popen[bytes] | None = None
    runs: list[Path] = field(default_factory=list)
    paused: bool = False
    args: tuple[str, ...] = ()  # after run.py: e.g. ("--workers", "2")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRO_")}
        env.update(
            ASTRO_PG_DSN=self.stores.pg_dsn,
            ASTRO_MONGO_URL=self.stores.mongo_url,
            ASTRO_REDIS_URL=self.stores.redis_url,
            ASTRO_PORT=str(self.port),
            ASTRO_DATA_DIR=str(self.data_dir),
            ASTRO_JWT_SECRET=JWT_SECRET,
            ASTRO_VIP_WINDOW="0",  # launches are bookable by every traveler at once
            ASTRO_LOG_LEVEL="INFO",
            ASTRO_NODE=self.node,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    async def create_user(self, role: str, email: str, name: str, password: str) -> None:
        """`python run.py create-user` on this platform's stores, as an operator makes an employee (under a
        node name of its own: the running platform keeps its leases)."""
        env = {**self.env(), "ASTRO_NEW_PASSWORD": password, "ASTRO_NODE": f"{self.node}-cli"}
        cli = await asyncio.create_subprocess_exec(
            *(sys.executable, str(RUN_PY), "create-user", "--role", role, "--email", email, "--name", name),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        out, _ = await cli.communicate()
        assert cli.returncode == 0, (
            f"create-user exited with {cli.returncode}:\n{out.decode(errors='replace')}"
        )

    def start(self) -> None:
        """Start `python run.py` (not waiting for it); a second start after a kill reuses every store."""
        assert self.process is None or self.process.poll() is not None, "the platform is still running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out_path = self.log_dir / f"platform-{len(self.runs) + 1}.log"
        self.runs.append(out_path)
        with out_path.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(RUN_PY), *self.args],
                cwd=ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent(signal.SIGKILL),
                start_new_session=True,
            )

    async def wait_ready(self, session: aiohttp.ClientSession) -> float:
        """Poll GET /ready until it answers 200 (another process: its answer is the only signal); the
        monotonic time it did. Fails with the platform's output if it exits or takes too long."""
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer yet"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise AssertionError(f"run.py exited with code {code} before it was ready:\n{self.tail()}")
            try:
                async with session.get(self.base + "/ready", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    if resp.status == 200:
                        return time.monotonic()
                    last = f"{resp.status} {await resp.text()}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.1)
        raise AssertionError(
            f"/ready did not answer 200 within {READY_TIMEOUT:.0f} s ({last}):\n{self.tail()}"
        )

    def kill9(self) -> None:
        """`kill -9`: no shutdown, no cleanup, nothing flushed -- a crash."""
        assert self.process is not None and self.process.poll() is None, "the platform is not running"
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def pause(self) -> None:
        """SIGSTOP: the process is frozen as by a long GC pause or a VM stall -- it answers nothing, its
        timers stop, its sockets stay open; `resume()` lets it go on where it stood."""
        assert self.process is not None and self.process.poll() is None, "the platform is not running"
        os.kill(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT after `pause()`."""
        assert self.process is not None and self.process.poll() is None, "the platform is not running"
        os.kill(self.process.pid, signal.SIGCONT)
        self.paused = False

    def close(self) -> None:
        """End the process if it still runs (SIGTERM, then SIGKILL): the fixture's clean-up."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        if self.paused:  # a stopped process would only see SIGTERM once continued
            self.resume()
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def output(self) -> str:
        """Every run's output, each under a header naming its file."""
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')}" for path in self.runs)

    def lines(self, *words: str) -> list[str]:
        """The output lines of every run that contain any of `words` (the relevant log entries)."""
        found = []
        for path in self.runs:
            for line in path.read_text(errors="replace").splitlines():
                if any(word in line for word in words):
                    found.append(f"{path.name}: {line}")
        return found

    def errors(self) -> list[str]:
        """Every unhandled error the platform logged (a 500): its request, and of its traceback the
        project's frames and each exception of the chain."""
        found = []
        for path in self.runs:
            for line in path.read_text(errors="replace").splitlines():
                if '"unhandled_error"' not in line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    found.append(f"{path.name}: {line[-2000:]}")
                    continue
                trace = [
                    row
                    for row in str(entry.get("exception", "")).splitlines()
                    if (row.startswith("  File") and str(ROOT) in row and "site-packages" not in row)
                    or (row and not row.startswith(" "))
                ]
                found.append(
                    f"{path.name}: {entry.get('timestamp')} request {entry.get('request_id')}:\n"
                    + "\n".join(trace)
                )
        return found

    def tail(self, count: int = 40) -> str:
        if not self.runs:
            return "(never started)"
        return "\n".join(self.runs[-1].read_text(errors="replace").splitlines()[-count:])
