"""The benchmark's mail server: SMTP that accepts every message and keeps only a count.

    python -m bench.mailsink --smtp-port 8025 --port 8026

A stand-in for the real SMTP server a deployment points `ASTRO_SMTP_URL` at: the platform under load
sends every booking's e-mails to it over SMTP, in its own process, as it would to a mail relay. (The
embedded default instead runs its sink inside the platform and stores each message in MongoDB for
the NotifyAPI's mailbox: that is a development convenience, not part of what a booking costs.)
`GET /ready` answers 200, `GET /count` the number of messages received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.serving import run_loop, serve_until_stopped


class Counter:
    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages += 1
        return "250 Message accepted for delivery"


async def serve(host: str, smtp_port: int, port: int) -> int:
    counter = Counter()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(lambda: SMTP(counter, hostname="bench-sink", loop=loop), host, smtp_port)

    async def count(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps({"messages": counter.messages}), content_type="application/json")

    app = web.Application()
    app.router.add_get("/ready", count, allow_head=False)
    app.router.add_get("/count", count, allow_head=False)
    banner = f"bench mail sink: smtp://{host}:{smtp_port}, count on http://{host}:{port}/count"
    try:
        return await serve_until_stopped(app, host, port, banner)
    finally:
        smtp.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mailsink", description=__doc__.split("\n")[0])
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    return run_loop(serve(args.host, args.smtp_port, args.port))


if __name__ == "__main__":
    sys.exit(main())
