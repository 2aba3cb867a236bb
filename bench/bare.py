"""The reference: a bare aiohttp app answering a small JSON body, nothing else (no middleware, no store).

    python -m bench.bare --port 8098

`GET /json` answers `{"status":"ok","service":"bare","n":1}`; `GET /ready` answers 200. It runs on uvloop
with the access log off, as `python run.py` does, so the ratio platform/bare prices the platform's own
work per request, not the event loop or the HTTP parser.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

from aiohttp import web

from bench.serving import run_loop, serve_until_stopped

BODY: Final = json.dumps({"status": "ok", "service": "bare", "n": 1}, separators=(",", ":"))


async def answer(request: web.Request) -> web.Response:
    return web.Response(text=BODY, content_type="application/json")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/json", answer, allow_head=False)
    app.router.add_get("/ready", answer, allow_head=False)
    return app


async def serve(host: str, port: int) -> int:
    return await serve_until_stopped(
        create_app(), host, port, f"bare aiohttp up on http://{host}:{port}/json"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    coro = serve(args.host, args.port)
    return run_loop(coro)


if __name__ == "__main__":
    sys.exit(main())
