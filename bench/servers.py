"""The servers under test and the references, each in its own process, and what their logs say."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from astro.embedded import free_port
from bench.common import ROOT, Stores, progress

READY_TIMEOUT: Final = 90.0
STOP_TIMEOUT: Final = 20.0
_PR_SET_PDEATHSIG: Final = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: it gets SIGTERM if the benchmark dies, so nothing is left behind."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ServerProcess:
    """A server under test in its own process, its output in a log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    base_url: str
    ready_path: str = "/ready"
    process: asyncio.subprocess.Process | None = None
    workers: int = 1  # the platform's --workers: node processes under this one (1: this one serves)
    nodes: tuple[str, ...] = ()  # the node names seen answering, once every worker is up

    async def create_user(self, role: str, email: str, name: str, password: str) -> None:
        """`python run.py create-user` on this platform's stores, as an operator makes an employee (under a
        node name of its own, so that the running platform keeps its leases)."""
        env = {
            **self.env,
            "ASTRO_NEW_PASSWORD": password,
            "ASTRO_NODE": f"{self.env.get('ASTRO_NODE', 'bench')}-cli",
        }
        cli = await asyncio.create_subprocess_exec(
            *(sys.executable, "run.py", "create-user", "--role", role, "--email", email, "--name", name),
            cwd=str(ROOT),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await cli.communicate()
        if cli.returncode != 0:
            raise RuntimeError(f"create-user exited with {cli.returncode}: {out.decode(errors='replace')}")

    async def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *self.args,
                cwd=str(ROOT),
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        started = time.monotonic()
        last = "no answer yet"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() - started < READY_TIMEOUT:
                if self.process.returncode is not None:
                    code = self.process.returncode
                    raise RuntimeError(f"{self.name} exited with code {code} while starting:\n{self.tail()}")
                try:
                    async with session.get(self.base_url + self.ready_path) as resp:
                        if resp.status == 200:
                            progress(f"{self.name} ready in {time.monotonic() - started:.1f} s")
                            return
                        last = f"HTTP {resp.status}: {(await resp.text())[:200]}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    last = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.2)
        await self.stop()
        raise RuntimeError(f"{self.name} not ready within {READY_TIMEOUT:.0f} s ({last}):\n{self.tail()}")

    async def stop(self) -> int | None:
        """SIGTERM (a clean stop), a kill after STOP_TIMEOUT; the exit code."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                progress(f"{self.name} did not stop within {STOP_TIMEOUT:.0f} s: killing it")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        return process.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def platform_server(stores: Stores, work: Path, secret: str, **env: str) -> ServerProcess:
    """`python run.py` on the benchmark's stores, on a free port; env adds or overrides ASTRO_* values."""
    port = free_port()
    return ServerProcess(
        name="platform",
        args=[sys.executable, "run.py"],
        env={
            **os.environ,
            "ASTRO_PG_DSN": stores.pg_dsn,
            "ASTRO_MONGO_URL": stores.mongo_url,
            "ASTRO_REDIS_URL": stores.redis_url,
            "ASTRO_PORT": str(port),
            "ASTRO_HOST": "127.0.0.1",
            "ASTRO_JWT_SECRET": secret,
            "ASTRO_DATA_DIR": str(work / "platform"),
            "ASTRO_LOG_LEVEL": "WARNING",
            "ASTRO_VIP_WINDOW": "0",
            # one agency makes every launch of a run (hundreds through the API, thousands inserted)
            "ASTRO_AGENCY_LAUNCHES_PER_DAY": "100000",
            **env,
        },
        log_path=work / "platform.log",
        base_url=f"http://127.0.0.1:{port}",
    )


def baseline_server(stores: Stores, work: Path, secret: str, pool: int) -> ServerProcess:
    """bench/baseline.py (SELECT ... FOR UPDATE per booking) on the same database, on a free port."""
    port = free_port()
    return ServerProcess(
        name="baseline",
        args=[
            sys.executable,
            "-m",
            "bench.baseline",
            "--dsn",
            stores.pg_dsn,
            "--port",
            str(port),
            f"--secret={secret}",  # one argument even when the random secret starts with "-"
            "--pool",
            str(pool),
        ],
        env=dict(os.environ),
        log_path=work / "baseline.log",
        base_url=f"http://127.0.0.1:{port}",
    )


def ceiling_server(stores: Stores, work: Path) -> ServerProcess:
    """bench/ceiling.py (group commit, no auth, no logs) on the same database, on a free port."""
    port = free_port()
    return ServerProcess(
        name="ceiling",
        args=[sys.executable, "-m", "bench.ceiling", "--dsn", stores.pg_dsn, "--port", str(port)],
        env=dict(os.environ),
        log_path=work / "ceiling.log",
        base_url=f"http://127.0.0.1:{port}",
    )


def bare_server(work: Path) -> ServerProcess:
    """bench/bare.py: the bare aiohttp JSON endpoint every throughput ratio is taken against."""
    port = free_port()
    return ServerProcess(
        name="bare",
        args=[sys.executable, "-m", "bench.bare", "--port", str(port)],
        env=dict(os.environ),
        log_path=work / "bare.log",
        base_url=f"http://127.0.0.1:{port}",
    )


def mail_sink_server(work: Path) -> tuple[ServerProcess, str]:
    """bench/mailsink.py: the SMTP server the platform sends its e-mails to, and its smtp:// URL."""
    port, smtp_port = free_port(), free_port()
    server = ServerProcess(
        name="mail sink",
        args=[sys.executable, "-m", "bench.mailsink", "--smtp-port", str(smtp_port), "--port", str(port)],
        env=dict(os.environ),
        log_path=work / "mailsink.log",
        base_url=f"http://127.0.0.1:{port}",
    )
    return server, f"smtp://127.0.0.1:{smtp_port}"


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def log_summary(path: Path, *, show: int = 12) -> dict[str, Any]:
    """Warning and error lines of a server log (JSON lines or plain text), counted by level and event."""
    by_level: Counter[str] = Counter()
    events: Counter[str] = Counter()
    examples: dict[str, str] = {}
    tracebacks = 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {"missing": True}
    for line in lines:
        if line.startswith("Traceback"):
            tracebacks += 1
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        level = str(record.get("level", "")).lower()
        if level in ("warning", "error", "critical", "exception"):
            by_level[level] += 1
            name = f"{level}:{record.get('event', '?')}"
            events[name] += 1
            if name not in examples:  # the first one's details say what it was about
                detail = record.get("error") or record.get("exception") or ""
                examples[name] = f"{record.get('timestamp', '')} {str(detail)[-300:]}".strip()
    for name, count in events.most_common(show):
        progress(f"  {path.name}: {count} x {name} (first: {examples[name][:200]})")
    return {
        "warnings": by_level["warning"],
        "errors": by_level["error"] + by_level["critical"] + by_level["exception"],
        "tracebacks": tracebacks,
        "top": dict(events.most_common(show)),
        "examples": {name: examples[name] for name, _ in events.most_common(show)},
    }
