"""localstripe for the tests: one child process per session, alone on this machine, and the fixtures on it.

localstripe keeps its state in /tmp/localstripe.pickle whatever its port, so two running at once (two test
sessions of any checkout on this machine) would corrupt each other: the session holds an exclusive lock
on /tmp/localstripe.lock while its server runs, and another session waits for it.

Fixtures: `localstripe` (the session's server), `stripe_gateway` (an adapter on it), `stripe_settings`
(the test's settings pointing at it, with the webhook secret), `make_stripe_client` (an app in Stripe mode
whose webhook localstripe delivers to)."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from astro.config import Settings
from astro.embedded import free_port
from astro.store.stripe_gateway import StripeGateway
from web.app import create_app

LOCK_PATH = Path("/tmp/localstripe.lock")
LOCK_WAIT = 900.0  # seconds to wait for another session's localstripe to stop
SECRET_KEY = "sk_test_astrobookings_localstripe"
WEBHOOK_SECRET = "whsec_astrobookings_localstripe"
WEBHOOK_PATH = "/api/payments/stripe/webhook"
ROOT = Path(__file__).resolve().parent.parent
_webhook_ids = itertools.count(1)


class LocalStripe:
    """A localstripe child process on a free loopback port (tests/localstripe_shim.py says how it is run)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self._log: IO[bytes] | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def payment_url(self) -> str:
        """ASTRO_PAYMENT_URL for this server."""
        return f"stripe+http://{SECRET_KEY}@127.0.0.1:{self.port}"

    secret_key = SECRET_KEY
    webhook_secret = WEBHOOK_SECRET

    def start(self, timeout: float = 30.0) -> None:
        self._lock = _exclusive(LOCK_PATH)
        self.port = free_port()
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.localstripe_shim", "--port", str(self.port), "--from-scratch"],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None:
                self.stop()
                raise RuntimeError(f"localstripe exited with {self._process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"localstripe did not answer within {timeout:g} s; see {self.log_path}")
            time.sleep(0.05)  # a child process's readiness: nothing to await but its port

    def _answers(self) -> bool:
        request = urllib.request.Request(
            f"{self.api_base}/v1/payment_intents?limit=1", headers={"Authorization": f"Bearer {SECRET_KEY}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None

    async def register_webhook(self, url: str, *, events: list[str] | None = None) -> str:
        """Have localstripe deliver its events to `url`, signed with WEBHOOK_SECRET; the webhook's id."""
        webhook_id = f"astro{os.getpid()}_{next(_webhook_ids)}"
        await self._configure(webhook_id, url, events)
        return webhook_id

    async def disable_webhook(self, webhook_id: str, url: str) -> None:
        """localstripe cannot forget a webhook: this one is left listening to an event never sent."""
        await self._configure(webhook_id, url, ["astro.test.disabled"])

    async def _configure(self, webhook_id: str, url: str, events: list[str] | None) -> None:
        body: dict[str, Any] = {"url": url, "secret": WEBHOOK_SECRET}
        if events is not None:
            body["events"] = events
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.api_base}/_config/webhooks/{webhook_id}", json=body) as response,
        ):
            assert response.status == 200, await response.text()


def _exclusive(path: Path) -> IO[str]:
    """An exclusive lock on `path`, waiting (up to LOCK_WAIT) for whoever holds it."""
    handle = path.open("a")
    deadline = time.monotonic() + LOCK_WAIT
    told = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise RuntimeError(f"another test session kept {path} for {LOCK_WAIT:g} s") from None
            if not told:
                print(f"\nwaiting for another session's localstripe ({path}) ...", file=sys.stderr)
                told = True
            time.sleep(0.2)  # an flock held by another process: nothing to await


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    """The session's localstripe, started on first use."""
    server = LocalStripe(tmp_path_factory.mktemp("localstripe") / "localstripe.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def stripe_gateway(localstripe: LocalStripe) -> AsyncIterator[StripeGateway]:
    gateway = StripeGateway(localstripe.api_base, localstripe.secret_key)
    try:
        yield gateway
    finally:
        await gateway.close()


@pytest.fixture
def stripe_settings(settings: Settings, localstripe: LocalStripe) -> Settings:
    """This test's settings with Stripe (localstripe) as the payment gateway and the webhook's secret."""
    return settings.replace(payment_url=localstripe.payment_url, stripe_webhook_secret=WEBHOOK_SECRET)


StripeClient = TestClient[web.Request, web.Application]
MakeStripeClient = Callable[..., Awaitable[StripeClient]]


@pytest.fixture
async def make_stripe_client(
    aiohttp_client: Any, stripe_settings: Settings, localstripe: LocalStripe
) -> AsyncIterator[MakeStripeClient]:
    """An app in Stripe mode (settings changes may be passed) whose webhook localstripe delivers to; the
    webhook is turned off when the test ends, so no later test gets this one's events."""
    hooks: list[tuple[str, str]] = []

    async def make(
        clock: Any = None, *, webhook_events: list[str] | None = None, **changes: Any
    ) -> StripeClient:
        """`webhook_events`: the only events localstripe delivers (all when None)."""
        app = create_app(stripe_settings.replace(**changes) if changes else stripe_settings, clock=clock)
        client: StripeClient = await aiohttp_client(app)
        url = str(client.make_url(WEBHOOK_PATH))
        hooks.append((await localstripe.register_webhook(url, events=webhook_events), url))
        return client

    try:
        yield make
    finally:
        for webhook_id, url in hooks:
            with contextlib.suppress(Exception):
                await localstripe.disable_webhook(webhook_id, url)
