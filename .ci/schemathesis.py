"""The contract step of .ci/run: schemathesis against a running platform, once per role, every check.

For each run -- anonymous, then as a traveler, an agency, finance and IT -- starts a platform of its own
as `python run.py` does on a fresh machine (the embedded default, in a temporary data directory), fills
it with the demo data, logs in and runs `schemathesis run` with every check (`-c all`), bounded by
ASTRO_ST_EXAMPLES examples per operation (default 25) and seeded by ASTRO_ST_SEED (default 1) so that a
run can be replayed; ASTRO_ST_RUNS=it,agency replays some runs only. Exit code 0 when every run
passes; else 1, naming the runs that failed.

The token-ending operations (logout, logout-all, refresh: each revokes the caller's token) run only in
the anonymous run: in a role's run they would end that run's own session half-way.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".ci" / "schemathesis.toml"
PASSWORD = "orbit-demo-passage"
ROLES = {
    "traveler": "ada@astro.demo",
    "agency": "orbital@astro.demo",
    "finance": "finance@astro.demo",
    "it": "it@astro.demo",
}
TOKEN_ENDING = ("/api/system/auth/logout", "/api/system/auth/logout-all", "/api/system/auth/refresh")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, server: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(
                f"the platform exited with code {server.returncode} before it was ready (see its log above)"
            )
        try:
            with urllib.request.urlopen(f"{base}/ready", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    sys.exit(f"the platform was not ready at {base}/ready after {seconds:.0f} s")


def login(base: str, email: str) -> str:
    request = urllib.request.Request(
        f"{base}/api/system/auth/login",
        data=json.dumps({"email": email, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return str(json.load(resp)["token"])


def schemathesis(base: str, name: str, token: str | None) -> bool:
    examples = os.environ.get("ASTRO_ST_EXAMPLES", "25")
    seed = os.environ.get("ASTRO_ST_SEED", "1")
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base}/api/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        examples,
        "--seed",
        seed,
        "--no-color",
    ]
    if token is not None:
        command += ["-H", f"Authorization: Bearer {token}"]
        for path in TOKEN_ENDING:
            command += ["--exclude-path", path]
    print(f"\n--- schemathesis as {name}: {examples} examples per operation, seed {seed}", flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode == 0


def run_as(name: str, email: str | None) -> bool:
    """One role's run on a platform of its own (new data directory, demo data): no run sees the state
    another left -- users it disabled, tokens it revoked, the log entries of thousands of requests."""
    began = time.monotonic()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="astro-schemathesis-") as data:
        env = {**os.environ, "ASTRO_DATA_DIR": data, "ASTRO_PORT": str(port), "ASTRO_HOST": "127.0.0.1"}
        for key in [n for n in env if n.startswith("ASTRO_") and (n.endswith("_URL") or n.endswith("_DSN"))]:
            del env[key]  # the embedded default, as on a fresh machine
        print(
            f"\nfilling a new platform with the demo data for the {name} run (python run.py demo)", flush=True
        )
        subprocess.run(
            [sys.executable, "run.py", "demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
        )
        log = Path(data) / "platform.log"
        with log.open("wb") as out:
            server = subprocess.Popen([sys.executable, "run.py"], cwd=ROOT, env=env, stdout=out, stderr=out)
            try:
                wait_ready(base, server)
                token = login(base, email) if email is not None else None  # before any fuzzed login
                ok = schemathesis(base, name, token)
            finally:
                server.terminate()
                try:
                    server.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    server.kill()
        took = time.monotonic() - began
        print(f"\nthe {name} run took {took:.0f} s; load average {os.getloadavg()[0]:.1f}", flush=True)
        if not ok:
            text = log.read_text(errors="replace")
            print(f"\nthe slowest requests of the {name} run:\n{slowest(text)}", flush=True)
            print(f"\nthe platform's log of the {name} run (last 20,000 characters):", flush=True)
            print(text[-20_000:])
        return ok


def slowest(log: str, count: int = 15) -> str:
    """The platform's `request` entries that took longest, with their whole query string."""
    found = []
    for line in log.splitlines():
        if '"event": "request"' in line:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            found.append((float(entry.get("duration_ms", 0)), entry.get("method"), entry.get("path")))
    found.sort(reverse=True)
    return "\n".join(f"{ms:9.0f} ms  {method} {path}" for ms, method, path in found[:count])


def main() -> int:
    # ASTRO_ST_RUNS (comma-separated, e.g. "it") replays some of the runs; default all of them.
    chosen = [n for n in os.environ.get("ASTRO_ST_RUNS", "").split(",") if n] or ["anonymous", *ROLES]
    unknown = [n for n in chosen if n != "anonymous" and n not in ROLES]
    if unknown:
        print(f"ASTRO_ST_RUNS names no run: {', '.join(unknown)} (anonymous, {', '.join(ROLES)})")
        return 2
    results = {name: run_as(name, ROLES.get(name)) for name in chosen}
    failed = [name for name, ok in results.items() if not ok]
    if failed:
        print(f"\nschemathesis failed as: {', '.join(failed)}", flush=True)
        return 1
    print("\nschemathesis passed anonymously and as every role", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
