"""`--profile DIR`: py-spy samples the platform and the embedded MongoDB server during a measured load.

Each profile is py-spy's `raw` format (collapsed stacks, one line per stack with its sample count),
which `python -m bench.profile FILE` summarises: the functions that hold the most samples, by
their own time and with their callees. Sampling is at 100 Hz, with `--nonblocking` so the servers are
never paused (the figures of a profiled run are still a little lower than of an unprofiled one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from bench.common import Stores, progress

RATE = 100


def _embedded_mongo() -> int | None:
    """The SecantusDB server this bench started, if any (a child of this process)."""
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            comm = stat.partition("(")[2].rpartition(")")[0]
            parent = stat.rpartition(")")[2].split()[1]
            if parent == me and comm.startswith("secantusd"):
                return int(entry)
    return None


def _plan(directory: str, names: dict[int, str], stores: Stores) -> tuple[str, list[tuple[int, str]]]:
    """py-spy's path and (pid, output file) for the platform and the embedded MongoDB server."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    targets = {pid: "platform" for pid, name in names.items() if name == "platform server"}
    mongo = _embedded_mongo() if stores.sources.get("mongo") == "embedded" else None
    if mongo is not None:
        targets[mongo] = "mongo"
    Path(directory).mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%H%M%S")
    return spy, [
        (pid, str(Path(directory) / f"{stamp}-{name}.txt"))
        for pid, name in targets.items()
        if Path(f"/proc/{pid}").exists()
    ]


@contextlib.asynccontextmanager
async def profiled(directory: str | None, names: dict[int, str], stores: Stores) -> AsyncIterator[list[str]]:
    """py-spy record on the running platform (and embedded MongoDB) while the body runs."""
    files: list[str] = []
    if not directory:
        yield files
        return
    spy, plan = _plan(directory, names, stores)
    spies = []
    for pid, out in plan:
        spies.append(
            await asyncio.create_subprocess_exec(
                spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(RATE),
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                out,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        )
        files.append(out)
    try:
        yield files
    finally:
        for process in spies:  # SIGINT: py-spy writes its profile and exits
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(2)
        for process in spies:
            await process.wait()
        progress(f"  profiles: {', '.join(files)}")


def summary(path: str, top: int = 25) -> str:
    """The functions holding the most samples of a raw py-spy profile: own time and with callees."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [f.split(" (")[0] + " " + f.rpartition("/")[2].rstrip(")") for f in stack.split(";")[1:]]
        if frames:
            own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{path}: {samples} samples"]
    for title, counter in (("own", own), ("with callees", total)):
        lines.append(f"-- {title}")
        lines += [f"{100 * n / max(samples, 1):5.1f}%  {frame}" for frame, n in counter.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(summary(arg))
