"""Where the machine's CPU went during a measured window, per process, read from /proc.

The load generator shares the 2 cores with the servers, and so does whatever else runs on the
machine; each figure carries this breakdown so a slow run can be told from a busy machine.
"""

from __future__ import annotations

import os
import resource
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

TICKS: Final = os.sysconf("SC_CLK_TCK")
SHOW: Final = 8


def _processes() -> dict[int, tuple[str, int, float]]:
    """pid -> (command name, parent pid, CPU seconds so far)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        head, _, rest = raw.rpartition(")")
        comm = head.partition("(")[2]
        fields = rest.split()
        out[int(entry)] = (comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


def _ours() -> float:
    self_, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + children.ru_utime + children.ru_stime


class CpuWindow:
    """start() ... stop(): cores used on average by each process group in between."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names

    def start(self) -> None:
        self._started = time.monotonic()
        self._before = _processes()
        self._machine = _machine()
        self._ours = _ours()

    def _label(self, pid: int, comm: str, parent: int) -> str:
        if pid in self.names:
            return self.names[pid]
        if pid == os.getpid():
            return "bench (load generator / clients)"
        if parent == os.getpid():
            return f"{comm} (started by the bench)"
        if comm.startswith("kworker/"):
            return "kernel workers (I/O)"
        return comm

    def stop(self) -> dict[str, Any]:
        seconds = time.monotonic() - self._started
        after = _processes()
        used: Counter[str] = Counter()
        for pid, (comm, parent, cpu) in after.items():
            before = self._before.get(pid)
            # a kernel worker renames itself with its work queue: the pid tells it is the same one
            spent = cpu - before[2] if before and before[2] <= cpu else cpu
            if spent > 0:
                used[self._label(pid, comm, parent)] += spent
        # Children of the bench that have exited meanwhile (wrk) only show in its rusage.
        gone = _ours() - self._ours - used["bench (load generator / clients)"]
        if gone > 0.05:
            used["wrk / exited bench children"] += gone
        busy, total = _machine()
        cores = (total - self._machine[1]) / seconds if seconds else 0.0
        return {
            "window_s": round(seconds, 1),
            "machine_busy_cores": round((busy - self._machine[0]) / seconds, 2) if seconds else None,
            "machine_cores": round(cores),
            "cores_by_process": {k: round(v / seconds, 2) for k, v in used.most_common(SHOW)},
        }
