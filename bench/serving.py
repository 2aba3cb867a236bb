"""What every bench process shares: running a coroutine on uvloop, serving an app until signalled."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop, as `python run.py` does, or on asyncio's loop where uvloop is missing."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def serve_until_stopped(
    app: web.Application, host: str, port: int, banner: str, shutdown_timeout: float = 1.0
) -> int:
    """Serve `app` on host:port until SIGINT or SIGTERM (every bench server process does this)."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, host, port, shutdown_timeout=shutdown_timeout).start()
        print(banner, flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0
