"""AstroBookings entry point: `python run.py` serves; `migrate` and `create-user` administer."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from astro import logs
from astro.config import ConfigError, Settings, new_password_from_env
from astro.embedded import (
    AlreadyRunning,
    DataDirLock,
    EmbeddedError,
    EmbeddedServers,
    port_in_use,
    running_urls,
)

RUN_PY = Path(__file__).resolve()
APPS = (
    ("PublicWeb", "/"),
    ("AuthWeb", "/auth"),
    ("TravelerWeb", "/traveler"),
    ("AgencyWeb", "/agency"),
    ("SystemWeb", "/system"),
    ("API docs", "/api/docs"),
    ("Metrics", "/metrics"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description="AstroBookings")
    workers_help = "node processes to start on the one port (default: ASTRO_WORKERS, else 1)"
    parser.add_argument("--workers", type=_workers, help=workers_help)
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve", help="start the platform (the default)")
    serve_parser.add_argument("--workers", type=_workers, default=argparse.SUPPRESS, help=workers_help)
    sub.add_parser("migrate", help="apply database migrations and MongoDB indexes, then exit")
    sub.add_parser(
        "demo", help="fill an empty platform with sample agencies, launches, travelers and bookings"
    )
    create = sub.add_parser("create-user", help="create a finance or IT employee")
    create.add_argument("--role", required=True, choices=["it", "finance"])
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.workers is not None:
        settings = settings.replace(workers=args.workers)
    logs.configure(settings.log_level)
    try:
        if args.command in (None, "serve"):
            return _run(serve(settings))
        if args.command == "migrate":
            return _run(migrate(settings))
        if args.command == "demo":
            return _run(demo(settings))
        password = new_password_from_env() or _prompt_password()
        return _run(create_user(settings, args.role, args.email, args.name, password))
    except (AlreadyRunning, EmbeddedError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1


def _workers(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 64, got {raw!r}")
    return value


def _run(coro: object) -> int:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]


def _prompt_password() -> str:
    if not sys.stdin.isatty():
        raise SystemExit("no password: set ASTRO_NEW_PASSWORD or run create-user at a terminal")
    first = getpass.getpass("password (10 or more characters, hard to guess): ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the two passwords differ")
    return first


@contextlib.asynccontextmanager
async def platform_stores(settings: Settings, *, reuse_running: bool) -> AsyncIterator[Settings]:
    """Settings with every store filled in: configured, the running platform's, or freshly embedded."""
    missing = {
        "postgres": settings.pg_dsn is None,
        "mongo": settings.mongo_url is None,
        "redis": settings.redis_url is None,
    }
    if not any(missing.values()):
        yield settings
        return
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except AlreadyRunning:
        urls = running_urls(settings.data_dir) if reuse_running else None
        if not urls:
            raise
        yield _with_urls(settings, urls)
        return
    servers = EmbeddedServers(settings.data_dir)
    try:
        urls = await servers.start(**missing)
        yield _with_urls(settings, urls)
    finally:
        servers.stop()
        lock.release()


def _with_urls(settings: Settings, urls: dict[str, str]) -> Settings:
    return settings.replace(
        pg_dsn=settings.pg_dsn or urls.get("pg_dsn"),
        mongo_url=settings.mongo_url or urls.get("mongo_url"),
        redis_url=settings.redis_url or urls.get("redis_url"),
    )


async def serve(settings: Settings) -> int:
    from astro import workers

    # A worker of `--workers N` shares the port its parent checked (SO_REUSEPORT); anyone else refuses it.
    shared = workers.reuse_port()
    if not shared and port_in_use(settings.host, settings.port):
        print(
            f"cannot start: {settings.host}:{settings.port} is already in use; stop what uses it or set "
            "ASTRO_PORT",
            file=sys.stderr,
        )
        return 1
    if settings.workers > 1:
        if settings.node_url is not None:
            print(
                "cannot start: ASTRO_NODE_URL names one node, and --workers starts several; unset it (each "
                "worker advertises a loopback listener of its own) or run one worker per ASTRO_NODE_URL",
                file=sys.stderr,
            )
            return 2
        return await serve_workers(settings)
    return await serve_node(settings, shared=shared)


def _stop_event() -> tuple[asyncio.Event, list[int]]:
    """Set at SIGINT or SIGTERM; the list holds the signals received, in order."""
    stop = asyncio.Event()
    received: list[int] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: int) -> None:
        received.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    return stop, received


def _print_apps(base: str) -> None:
    for name, path in APPS:
        print(f"  {name:<12} {base}{path}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)


async def serve_node(settings: Settings, *, shared: bool = False) -> int:
    """One node process: the app on the public port (shared with sibling workers when `shared`) and on
    its own loopback listener, the URL other nodes forward to (unless ASTRO_NODE_URL names one)."""
    from aiohttp import web

    from astro import workers
    from web.app import create_app

    started = time.monotonic()
    stop, _ = _stop_event()
    own: socket.socket | None = None
    if settings.node_url is None:
        own = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        own.bind(("127.0.0.1", 0))
        own.listen(128)
        settings = settings.replace(node_url=f"http://127.0.0.1:{own.getsockname()[1]}")
    try:
        async with platform_stores(settings, reuse_running=False) as full:
            runner = web.AppRunner(create_app(full), handle_signals=False, access_log=None)
            await runner.setup()
            try:
                site = web.TCPSite(
                    runner, settings.host, settings.port, shutdown_timeout=5, reuse_port=shared or None
                )
                await site.start()
                if own is not None:
                    await web.SockSite(runner, own, shutdown_timeout=5).start()
                    own = None  # the site owns it now
                base = f"http://{settings.host}:{settings.port}"
                up = f"{time.monotonic() - started:.1f} s (node {full.node}, {full.node_url})"
                if shared:
                    print(f"worker up in {up}", flush=True)
                    workers.report_ready(full.node, full.node_url or "")
                else:
                    print(f"AstroBookings is up in {up}", flush=True)
                    _print_apps(base)
                await stop.wait()
                print(f"stopping{' worker ' + full.node if shared else ''}...", flush=True)
            finally:
                await runner.cleanup()
    finally:
        if own is not None:
            own.close()
    print(f"stopped{' worker ' + settings.node if shared else ''}.", flush=True)
    return 0


async def serve_workers(settings: Settings) -> int:
    """`--workers N`: the stores started once, N node processes on the one port, watched until a stop."""
    from astro import workers

    started = time.monotonic()
    stop, received = _stop_event()
    async with platform_stores(settings, reuse_running=False) as full:
        supervisor = workers.Supervisor(full, RUN_PY, settings.workers, workers.base_node_name())
        try:
            starting = asyncio.ensure_future(supervisor.start())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait([starting, stopped], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not stop.is_set():
                await starting  # raises WorkerFailed: a worker could not start
                base = f"http://{settings.host}:{settings.port}"
                names = ", ".join(w.node for w in supervisor.workers)
                print(
                    f"AstroBookings is up in {time.monotonic() - started:.1f} s "
                    f"({settings.workers} workers: {names})",
                    flush=True,
                )
                _print_apps(base)
                await supervisor.watch(stop)
            print("stopping...", flush=True)
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                if not starting.done():
                    starting.cancel()
                    await starting
            await supervisor.stop(received[0] if received else signal.SIGTERM)
    print("stopped.", flush=True)
    return 0


async def migrate(settings: Settings) -> int:
    from astro.store import mongo, postgres

    async with platform_stores(settings, reuse_running=True) as full:
        pool = await postgres.create_pool(full.pg_dsn or "", min_size=1, max_size=2)
        try:
            applied = await postgres.migrate(pool)
        finally:
            await pool.close()
        client = mongo.connect(full.mongo_url or "")
        try:
            await mongo.ensure_indexes(client[full.mongo_db])
        finally:
            await client.close()
    done = ", ".join(applied) if applied else "none (up to date)"
    print(f"migrations applied: {done}; MongoDB indexes ensured")
    return 0


async def demo(settings: Settings) -> int:
    from web.demo import PASSWORD, DemoExists, run_demo

    async with platform_stores(settings, reuse_running=True) as full:
        try:
            logins = await run_demo(full)
        except DemoExists as exc:
            print(f"nothing to do: {exc}")
            return 0
    print(f"demo data created; every password is {PASSWORD!r}:")
    for login in logins:
        print(f"  {login.role:<9} {login.email}")
    print(f"open http://{settings.host}:{settings.port}/ (start the platform with: python run.py)")
    return 0


async def create_user(settings: Settings, role: str, email: str, name: str, password: str) -> int:
    from pydantic import ValidationError

    from astro.domain.errors import DomainError
    from astro.schemas.system import CreateEmployeeRequest
    from web.app import create_app, started
    from web.keys import AUTH

    try:
        data = CreateEmployeeRequest.model_validate(
            {"email": email, "password": password, "name": name, "role": role}
        )
    except ValidationError as exc:
        print(
            "invalid: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
            file=sys.stderr,
        )
        return 2
    from astro.domain.users import Role

    async with platform_stores(settings, reuse_running=True) as full:
        app = create_app(full.replace(smtp_url=full.smtp_url or "smtp://127.0.0.1:1"))
        async with started(app):
            try:
                user = await app[AUTH].create_employee(
                    email=data.email, password=data.password, name=data.name, role=Role(data.role)
                )
            except DomainError as exc:
                print(f"refused: {exc.message} ({exc.code})", file=sys.stderr)
                return 1
    print(f"created {user.role.value} user {user.email} with id {user.id}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers are in place
        sys.exit(130)
