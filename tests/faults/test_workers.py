"""`python run.py --workers 2`: two node processes answer on one port, a killed one is started again,
SIGTERM to the parent stops them all; a port taken by another program is still refused."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.faults.platform import ROOT, RUN_PY, STOP_TIMEOUT, PlatformProcess, StoreUrls

pytestmark = pytest.mark.faults
WAIT = 60.0  # seconds before a test gives up on an event; never reached when the code works
TRIES = 400  # fresh connections sent to see both workers (the kernel hashes each to one of them)


def children(pid: int) -> set[int]:
    """The live child processes of `pid` (Linux: /proc/<pid>/task/*/children)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


async def nodes_answering(base: str, want: int) -> dict[str, int]:
    """X-Astro-Node of answers to /health, each on a new connection, until `want` nodes answered."""
    seen: dict[str, int] = {}
    for _ in range(TRIES):
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
            session.get(base + "/health") as resp,
        ):
            assert resp.status == 200
            node = resp.headers["X-Astro-Node"]
            seen[node] = seen.get(node, 0) + 1
        if len(seen) >= want:
            break
    return seen


async def test_two_workers_answer_on_one_port_and_stop_with_the_parent(
    shared_stores: StoreUrls, platforms: Callable[[StoreUrls], PlatformProcess]
) -> None:
    platform = platforms(shared_stores)
    platform.args = ("--workers", "2")
    platform.extra_env = {"ASTRO_NODE": "wk"}
    platform.start()
    assert platform.process is not None
    parent = platform.process.pid
    async with aiohttp.ClientSession() as session:
        await platform.wait_ready(session)
    # Ready on the port means one worker is: each says so before the parent prints the apps.
    async with asyncio.timeout(WAIT):
        while "Press Ctrl-C" not in platform.output():
            await asyncio.sleep(0.05)
    workers = children(parent)
    assert len(workers) == 2, platform.output()
    assert set(await nodes_answering(platform.base, 2)) == {"wk-1", "wk-2"}
    assert platform.output().count("SystemWeb") == 1  # the apps' URLs printed once

    # kill -9 of a worker: the parent starts another, and both names answer again.
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    async with asyncio.timeout(WAIT):
        while not platform.lines('"worker_restarted"'):
            await asyncio.sleep(0.05)
    assert len(platform.lines('"worker_exited"')) == 1, platform.output()
    after = children(parent)
    assert len(after) == 2 and victim not in after and after - workers
    assert set(await nodes_answering(platform.base, 2)) == {"wk-1", "wk-2"}

    # SIGTERM to the parent: every worker stops, then the parent.
    platform.process.send_signal(signal.SIGTERM)
    assert platform.process.wait(timeout=STOP_TIMEOUT) == 0, platform.tail()
    assert all(gone(pid) for pid in after)
    out = platform.output()
    assert "stopped worker wk-1." in out and "stopped worker wk-2." in out
    assert out.rstrip().endswith("stopped.")


def test_a_port_taken_by_another_program_is_refused_with_workers(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRO_")}
        env.update(ASTRO_PORT=str(port), ASTRO_DATA_DIR=str(tmp_path / "data"), ASTRO_WORKERS="2")
        done = subprocess.run(
            [sys.executable, str(RUN_PY)], cwd=ROOT, env=env, capture_output=True, timeout=60, check=False
        )
    assert done.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in done.stderr.decode()
