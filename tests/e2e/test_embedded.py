"""Start-up smoke tests of the real embedded default (DESIGN 3): `python run.py` as a user runs it.

Every test starts `run.py` as a child process with a fresh ASTRO_DATA_DIR, a free ASTRO_PORT and no
ASTRO_* store settings, so the embedded PostgreSQL, SecantusDB and redis-server really start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil
import pymongo
import pymongo.errors
import pytest
import redis

from tests.conftest import traveler_body

pytestmark = pytest.mark.embedded

ROOT = Path(__file__).resolve().parents[2]
RUN_PY = ROOT / "run.py"
START_TIMEOUT = 60.0  # run.py's own limit per embedded server is 60 s as well
STOP_TIMEOUT = 30.0  # run.py gives its children 15 s, then kills them
QUICK = 10.0  # a refused start must not take longer than this
CHILD_NAMES = {"postgres", "secantusd-py", "redis-server"}
STORE_VARIABLES = ("ASTRO_PG_DSN", "ASTRO_MONGO_URL", "ASTRO_REDIS_URL", "ASTRO_SMTP_URL")


# -- helpers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(data_dir: Path, port: int | None = None, /, **extra: str) -> dict[str, str]:
    """This environment without any ASTRO_* setting (so every part is embedded), plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRO_")}
    assert not any(name in env for name in STORE_VARIABLES)
    env["ASTRO_DATA_DIR"] = str(data_dir)
    if port is not None:
        env["ASTRO_PORT"] = str(port)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_command(
    *args: str, env: dict[str, str], timeout: float = 60.0
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `python run.py ARGS` to completion; return the result and how long it took."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(RUN_PY), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    return result, time.monotonic() - started


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """One HTTP request; the status and the decoded JSON body (None when there is none)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class Platform:
    """One `python run.py` process and what it left on disk."""

    data_dir: Path
    port: int
    out_path: Path
    process: subprocess.Popen[bytes]
    started: float
    children: list[psutil.Process] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_ready(self) -> dict[str, Any]:
        """Poll GET /ready until it answers 200; fail with run.py's output if it exits or takes too long."""
        deadline = self.started + START_TIMEOUT
        last: Any = "no answer yet"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                pytest.fail(f"run.py exited with code {code} before it was ready:\n{self.output()[-4000:]}")
            try:
                status, body = http("GET", self.base + "/ready")
            except (OSError, urllib.error.URLError) as exc:
                last = exc
            else:
                if status == 200:
                    self.children = self.embedded_children()
                    return body  # type: ignore[no-any-return]
                last = (status, body)
            time.sleep(0.05)  # another process: its /ready answer is the only signal; polled to a deadline
        pytest.fail(
            f"GET /ready did not answer 200 within {START_TIMEOUT:.0f} s (last: {last!r}):\n"
            f"{self.output()[-4000:]}"
        )

    def embedded_children(self) -> list[psutil.Process]:
        """Every process below run.py (the three servers and PostgreSQL's own backends)."""
        children: list[psutil.Process] = psutil.Process(self.process.pid).children(recursive=True)
        return children

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig` the way a user would; SIGINT goes to the process group, as Ctrl-C in a terminal does."""
        if sig == signal.SIGINT:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        return self.process.wait(timeout=STOP_TIMEOUT)

    def kill_everything(self) -> None:
        """Clean-up after a failed test: nothing may outlive it."""
        procs = [*self.children]
        if self.process.poll() is None:
            with contextlib.suppress(psutil.Error):
                procs += self.embedded_children()
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _, alive = psutil.wait_procs(procs, timeout=5)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()


def start(data_dir: Path, logs: Path, port: int | None = None) -> Platform:
    """Start `python run.py` (not waiting for it); its stdout and stderr go to one file."""
    port = port or free_port()
    logs.mkdir(parents=True, exist_ok=True)
    out_path = logs / f"run-{port}-{time.monotonic_ns()}.log"
    with out_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(RUN_PY)],
            cwd=ROOT,
            env=child_env(data_dir, port),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # its own process group, like a terminal job
    return Platform(data_dir, port, out_path, process, time.monotonic())


def still_running(procs: list[psutil.Process]) -> list[str]:
    """The processes (as `name(pid)`) that have not ended; zombies count as ended."""
    _, alive = psutil.wait_procs(procs, timeout=3)
    left = []
    for proc in alive:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{proc.name()}({proc.pid})")
        except psutil.NoSuchProcess:
            pass
    return left


def names(procs: list[psutil.Process]) -> set[str]:
    found = set()
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            found.add(proc.name())
    return found


def register_traveler(base: str) -> tuple[dict[str, Any], str]:
    body = traveler_body()
    status, data = http("POST", base + "/api/system/auth/register", body)
    assert status == 201, data
    return body, data["token"]


def login(base: str, email: str, password: str) -> tuple[int, Any]:
    return http("POST", base + "/api/system/auth/login", {"email": email, "password": password})


# -- one platform shared by the tests that only talk to it ---------------------------------------


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("platform")
    running = start(root / "data", root / "logs")
    try:
        running.wait_ready()
        yield running
    finally:
        running.kill_everything()


def test_platform_comes_up_ready_and_prints_its_urls(platform: Platform) -> None:
    status, body = http("GET", platform.base + "/ready")
    assert status == 200, body
    assert body == {"status": "ready"}  # the parts only for IT or the metrics token

    out = platform.output()
    for path in ("/", "/auth", "/traveler", "/agency", "/system", "/api/docs", "/metrics"):
        assert f"{platform.base}{path}\n" in out, f"{path} missing from:\n{out}"
    assert "AstroBookings is up in" in out
    status, _ = http("GET", platform.base + "/metrics")
    assert status == 200
    # the three embedded servers are children of run.py, each on a port of its own (never a standard one)
    assert names(platform.children) >= CHILD_NAMES, names(platform.children)
    urls = json.loads((platform.data_dir / "embedded.json").read_text())
    assert urls["pid"] == platform.process.pid
    assert {"pg_dsn", "mongo_url", "redis_url"} <= set(urls)
    for standard in (":5432/", ":27017/", ":6379/"):
        assert not any(standard in str(url) for url in urls.values()), urls


def test_the_embedded_stores_refuse_anyone_without_the_generated_credentials(platform: Platform) -> None:
    """Issue 14, finding 6: no local user gets in without the passwords, and only we can read them."""
    data = platform.data_dir
    mode = data.stat().st_mode & 0o777
    if os.geteuid() == 0:  # PostgreSQL runs as a user of its own, which must reach var/pg: its group only
        assert (mode, data.stat().st_gid) == (0o710, pwd.getpwnam("embedded_postgres").pw_gid)
    else:
        assert mode == 0o700
    for name in ("credentials.json", "embedded.json", "redis/redis.conf"):
        assert (data / name).stat().st_mode & 0o777 == 0o600, name
    assert not (data / "pg.pwfile").exists()
    secrets = json.loads((data / "credentials.json").read_text())
    urls = json.loads((data / "embedded.json").read_text())
    assert {"postgres", "redis", "mongo"} <= set(secrets) and len(set(secrets.values())) == len(secrets)
    assert all(len(secret) >= 40 for secret in secrets.values())
    pg, mongo_url, redis_url = (urlsplit(urls[k]) for k in ("pg_dsn", "mongo_url", "redis_url"))
    assert (pg.password, mongo_url.password, redis_url.password) == (
        secrets["postgres"],
        secrets["mongo"],
        secrets["redis"],
    )
    # no password on a command line, where `ps` shows it to every local user
    for proc in platform.embedded_children():
        with contextlib.suppress(psutil.Error):
            assert not any(s in " ".join(proc.cmdline()) for s in secrets.values()), proc.name()

    async def postgres(password: str | None) -> object:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=pg.port, user="postgres", password=password, database="astro", timeout=5
        )
        try:
            return await conn.fetchval("SELECT current_user")
        finally:
            await conn.close()

    for wrong in (None, "", "postgres"):
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
            asyncio.run(postgres(wrong))
    assert asyncio.run(postgres(secrets["postgres"])) == "postgres"

    anonymous = redis.Redis(host="127.0.0.1", port=redis_url.port or 0, socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):  # NOAUTH: revoked tokens cannot be deleted
        anonymous.keys("auth:revoked:*")
    anonymous.close()
    with redis.Redis.from_url(urls["redis_url"], socket_timeout=5) as kept:
        assert kept.ping() is True

    with pymongo.MongoClient(f"mongodb://127.0.0.1:{mongo_url.port}/", serverSelectionTimeoutMS=5000) as bare:
        with pytest.raises(pymongo.errors.OperationFailure) as refused:
            bare["astro"]["users"].find_one()
        assert refused.value.code == 13  # Unauthorized
    with pymongo.MongoClient(urls["mongo_url"], serverSelectionTimeoutMS=5000) as client:
        assert client["astro"]["users"].estimated_document_count() >= 0


def test_register_login_me_logout(platform: Platform) -> None:
    base = platform.base + "/api/system/auth"
    body, _ = register_traveler(platform.base)
    status, session = login(platform.base, body["email"], body["password"])
    assert status == 200, session
    token = session["token"]
    assert session["user"]["email"] == body["email"] and session["user"]["role"] == "traveler"

    status, me = http("GET", base + "/me", token=token)
    assert status == 200, me
    assert me["user"]["id"] == session["user"]["id"]
    assert me["user"]["profile"]["tax_id"] == body["profile"]["tax_id"]  # from PostgreSQL

    status, _ = http("POST", base + "/logout", token=token)
    assert status == 204
    status, refused = http("GET", base + "/me", token=token)
    assert status == 401, refused


def test_second_start_on_the_same_data_directory_is_refused(platform: Platform) -> None:
    lock_owner = (platform.data_dir / "astro.lock").read_text()
    result, took = run_command(env=child_env(platform.data_dir, free_port()), timeout=30)
    assert result.returncode != 0, result.stdout + result.stderr
    assert took < QUICK, f"took {took:.1f} s"
    assert str(platform.data_dir.resolve()) in result.stderr, result.stderr
    assert "ASTRO_DATA_DIR" in result.stderr
    # the running platform is untouched: same lock owner, same servers, still ready
    assert (platform.data_dir / "astro.lock").read_text() == lock_owner == str(platform.process.pid)
    assert http("GET", platform.base + "/ready")[0] == 200


def test_start_on_a_port_in_use_is_refused(platform: Platform, tmp_path: Path) -> None:
    result, took = run_command(env=child_env(tmp_path / "data", platform.port), timeout=30)
    assert result.returncode != 0, result.stdout + result.stderr
    assert took < QUICK, f"took {took:.1f} s"
    assert str(platform.port) in result.stderr and "ASTRO_PORT" in result.stderr, result.stderr
    assert "already in use" in result.stderr
    assert not (tmp_path / "data" / "pg").exists(), "no embedded server should start for a refused port"
    assert http("GET", platform.base + "/ready")[0] == 200


def test_create_user_while_the_platform_runs(platform: Platform) -> None:
    email, password = f"it{time.monotonic_ns()}@astro.example", "it-pass-word"
    servers_before = {p.pid for p in platform.embedded_children() if p.name() in CHILD_NAMES}
    result, _ = run_command(
        "create-user",
        "--role",
        "it",
        "--email",
        email,
        "--name",
        "Ida Tech",
        env=child_env(platform.data_dir, ASTRO_NEW_PASSWORD=password),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"created it user {email}" in result.stdout

    status, session = login(platform.base, email, password)
    assert status == 200, session
    assert session["user"]["role"] == "it" and session["user"]["name"] == "Ida Tech"
    # the role is real: the IT-only user list answers, and lists the new user
    status, page = http("GET", platform.base + "/api/system/users?role=it", token=session["token"])
    assert status == 200, page
    assert email in [user["email"] for user in page["items"]]
    # a second create-user with the same email is refused, and says why
    again, _ = run_command(
        "create-user",
        "--role",
        "finance",
        "--email",
        email,
        "--name",
        "Other",
        env=child_env(platform.data_dir, ASTRO_NEW_PASSWORD=password),
    )
    assert again.returncode == 1, again.stdout + again.stderr
    assert "already registered" in again.stderr
    # the command reused the running servers: it neither stopped nor replaced them
    assert {p.pid for p in platform.embedded_children() if p.name() in CHILD_NAMES} == servers_before
    assert http("GET", platform.base + "/ready")[0] == 200


# -- tests with a platform of their own ----------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_everything_with_exit_code_0(sig: int, tmp_path: Path) -> None:
    running = start(tmp_path / "data", tmp_path / "logs")
    try:
        running.wait_ready()
        children = running.children
        assert names(children) >= CHILD_NAMES, names(children)

        code = running.stop(sig)
        assert code == 0, running.output()[-4000:]
        assert still_running(children) == []
        out = running.output()
        assert "stopped." in out
        assert "Traceback" not in out, out[-4000:]
        assert not (running.data_dir / "embedded.json").exists()
    finally:
        running.kill_everything()


def test_data_survives_a_restart(tmp_path: Path) -> None:
    data, logs = tmp_path / "data", tmp_path / "logs"
    first = start(data, logs)
    try:
        first.wait_ready()
        body, kept_token = register_traveler(first.base)
        status, session = login(first.base, body["email"], body["password"])
        assert status == 200, session
        revoked_token, user_id = session["token"], session["user"]["id"]
        assert http("POST", first.base + "/api/system/auth/logout", token=revoked_token)[0] == 204
        assert first.stop(signal.SIGTERM) == 0
    finally:
        first.kill_everything()

    second = start(data, logs)
    try:
        second.wait_ready()
        assert "migration_applied" not in second.output(), "migrations must not run again on a warm start"
        status, session = login(second.base, body["email"], body["password"])
        assert status == 200, session
        assert session["user"]["id"] == user_id
        status, me = http("GET", second.base + "/api/system/auth/me", token=session["token"])
        assert status == 200 and me["user"]["profile"]["tax_id"] == body["profile"]["tax_id"], me
        # the token from before the restart that was never revoked still works (the JWT secret is kept) ...
        status, me = http("GET", second.base + "/api/system/auth/me", token=kept_token)
        assert status == 200, me
        # ... and the one revoked by logout stays revoked
        status, refused = http("GET", second.base + "/api/system/auth/me", token=revoked_token)
        assert status == 401, refused
        assert second.stop(signal.SIGINT) == 0
    finally:
        second.kill_everything()


def test_migrate_on_a_fresh_data_directory(tmp_path: Path) -> None:
    migrations = sorted(p.stem for p in (ROOT / "migrations").glob("*.sql"))
    assert migrations
    env = child_env(tmp_path / "data")
    result, _ = run_command("migrate", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"migrations applied: {', '.join(migrations)}" in result.stdout, result.stdout
    assert "MongoDB indexes ensured" in result.stdout
    assert not (tmp_path / "data" / "embedded.json").exists(), "the servers it started must be stopped"

    again, _ = run_command("migrate", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "migrations applied: none (up to date)" in again.stdout, again.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ASTRO_PORT", "notaport"),
        ("ASTRO_PORT", "70000"),
        ("ASTRO_PG_DSN", "mysql://db.example/astro"),
        ("ASTRO_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_setting_exits_with_code_2(variable: str, value: str, tmp_path: Path) -> None:
    result, took = run_command(env=child_env(tmp_path / "data", **{variable: value}), timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert took < QUICK, f"took {took:.1f} s"
    assert "configuration error" in result.stderr and variable in result.stderr, result.stderr
    assert repr(value) in result.stderr
    assert not (tmp_path / "data" / "pg").exists()


def test_a_data_directory_made_with_trust_authentication_is_secured_on_start(tmp_path: Path) -> None:
    """A var/pg made before passwords existed (initdb --auth=trust) gets the password and scram on start."""
    import warnings

    from astro.embedded import EmbeddedServers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    data = tmp_path / "data"
    pgdata = data / "pg"
    pgdata.mkdir(parents=True)
    user = EmbeddedServers._pg_user(pgdata, POSTGRES_BIN_PATH)
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "--auth=trust", "-U", "postgres"],
        user=user,
        group=user,
        capture_output=True,
        check=True,
    )
    servers = EmbeddedServers(data)

    async def check() -> None:
        urls = await servers.start(postgres=True, mongo=False, redis=False)
        port = urlsplit(urls["pg_dsn"]).port
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="astro", timeout=5)
        conn = await asyncpg.connect(urls["pg_dsn"], timeout=5)
        try:
            assert (
                await conn.fetchval("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'") == 0
            )
        finally:
            await conn.close()

    try:
        asyncio.run(check())
    finally:
        servers.stop()
