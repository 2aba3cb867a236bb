"""Settings: the one place that reads environment variables, validated once at start-up."""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_MAIL_FROM: Final = "AstroBookings <notifications@astrobookings.example>"
_Getter = Callable[[str], "str | None"]


class ConfigError(Exception):
    """A setting has a wrong value; the message names the variable and what it expects."""

    def __init__(self, variable: str, expected: str, got: str | None = None) -> None:
        shown = "" if got is None else f" (got {got!r})"
        super().__init__(f"{variable}: expected {expected}{shown}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the platform needs to run; `None` for a part means: use the embedded default."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("var")
    pg_dsn: str | None = None
    mongo_url: str | None = None
    redis_url: str | None = None
    smtp_url: str | None = None
    # sandbox://..., stripe://KEY@api.stripe.com or stripe+http://KEY@127.0.0.1:PORT (see `stripe`); it may
    # hold a secret key, so neither it nor the webhook secret is ever part of the settings' repr.
    payment_url: str | None = field(default=None, repr=False)
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    jwt_secret: str = ""
    token_ttl: int = 900  # the access token's lifetime (seconds)
    # How long a browser session lasts unused: its refresh token (the HttpOnly cookie) expires this long
    # after it was last used; every use rotates it.
    session_ttl: int = 30 * 86400
    # Failed logins a minute from one client address before 429 (beside 5 a minute per email).
    login_ip_limit: int = 20
    vip_window: int = 86400
    agency_launches_per_day: int = 20
    log_level: str = "INFO"
    metrics_token: str | None = None
    node: str = "node-1"
    # Several nodes (DESIGN 8.5): node processes `run.py` starts on this port (SO_REUSEPORT); how long a
    # launch's lease lasts unless renewed; the secret nodes sign forwarded requests with (None: derived
    # from the JWT secret); the URL other nodes reach this one at (None: a loopback listener of its own).
    workers: int = 1
    lease_seconds: float = 5.0
    cluster_secret: str | None = field(default=None, repr=False)
    node_url: str | None = None
    # How often the sync worker and the job runner look for work (seconds).
    sync_interval: float = 1.0
    # How long a seat hold waits for its payment before the seats are free again.
    hold_seconds: float = 30.0
    # How long a waiting-list offer holds its seats for the traveler it is made to.
    waitlist_offer_seconds: float = 900.0
    # A launch actor idle this long is passivated (its memory freed; it reloads on the next message).
    actor_idle_seconds: int = 300
    recovery_interval: float = 2.0  # seconds between the payment recovery worker's rounds
    ask_timeout: float = 10.0  # seconds the booking desk waits for a launch actor's answer
    # Argon2id cost; lowered only by tests, never from the environment.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    # Monitoring: seconds between metric samples; where entry logs go (None: the SystemDB of mongo_url).
    metrics_interval: float = 15.0
    log_mongo_url: str | None = None
    # Log shipper tuning: entries per insert, seconds between flushes, entries buffered in memory.
    log_batch_size: int = 500
    log_flush_interval: float = 0.5
    log_queue_size: int = 50_000
    # Notifications: the address links in emails point to (None: http://host:port), the sender,
    # the dispatcher's pace and retries (delay base x 2^(attempt-1), capped), and SMTP limits.
    public_url: str | None = None
    mail_from: str = DEFAULT_MAIL_FROM
    notify_poll_interval: float = 1.0
    notify_retry_base: float = 60.0
    notify_retry_cap: float = 3600.0
    notify_claim_timeout: float = 300.0
    notify_batch_size: int = 50
    notify_connections: int = 4
    smtp_timeout: float = 30.0
    # The platform's legal data printed on every invoice (ASTRO_COMPANY_*); None: a line saying to set it.
    company_name: str = "AstroBookings"
    company_address: str | None = None
    company_tax_id: str | None = None
    company_email: str | None = None

    @property
    def mongo_db(self) -> str:
        """The MongoDB database named in the URL path, `astro` when none is named."""
        path = urlsplit(self.mongo_url or "").path.strip("/")
        return path or "astro"

    @property
    def log_mongo_db(self) -> str:
        """The database of the entry logs: the one ASTRO_LOG_MONGO_URL names, else the SystemDB."""
        if self.log_mongo_url is None:
            return self.mongo_db
        return urlsplit(self.log_mongo_url).path.strip("/") or "astro"

    @property
    def base_url(self) -> str:
        """Where the platform is reached from outside: ASTRO_PUBLIC_URL, else http://host:port."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def cluster_key(self) -> bytes:
        """The key nodes sign forwarded requests with: ASTRO_CLUSTER_SECRET, else derived from the JWT
        secret (so nodes sharing ASTRO_JWT_SECRET trust each other, and the derived key reveals nothing)."""
        if self.cluster_secret is not None:
            return self.cluster_secret.encode()
        return hashlib.sha256(b"astro-cluster:" + self.jwt_secret.encode()).digest()

    @property
    def stripe(self) -> StripeTarget | None:
        """The Stripe API in use when ASTRO_PAYMENT_URL selects Stripe, else None (the sandbox)."""
        return _stripe_target(self.payment_url) if self.payment_url else None

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every ASTRO_* variable; raise ConfigError naming the first bad one."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        data_dir = Path(get("ASTRO_DATA_DIR") or "var")
        return cls(
            host=get("ASTRO_HOST") or "127.0.0.1",
            port=_int(get, "ASTRO_PORT", 8080, 1, 65535),
            data_dir=data_dir,
            pg_dsn=_url(get, "ASTRO_PG_DSN", ("postgresql", "postgres")),
            mongo_url=_url(get, "ASTRO_MONGO_URL", ("mongodb", "mongodb+srv")),
            redis_url=_url(get, "ASTRO_REDIS_URL", ("redis", "rediss", "unix")),
            smtp_url=_url(get, "ASTRO_SMTP_URL", ("smtp", "smtps")),
            payment_url=_payment_url(get("ASTRO_PAYMENT_URL")),
            stripe_webhook_secret=get("ASTRO_STRIPE_WEBHOOK_SECRET"),
            jwt_secret=_jwt_secret(get("ASTRO_JWT_SECRET"), data_dir),
            token_ttl=_int(get, "ASTRO_TOKEN_TTL", 900, 60, 30 * 86400),
            session_ttl=_int(get, "ASTRO_SESSION_TTL", 30 * 86400, 300, 365 * 86400),
            login_ip_limit=_int(get, "ASTRO_LOGIN_IP_LIMIT", 20, 1, 100_000),
            vip_window=_int(get, "ASTRO_VIP_WINDOW", 86400, 0, 365 * 86400),
            agency_launches_per_day=_int(get, "ASTRO_AGENCY_LAUNCHES_PER_DAY", 20, 1, 100_000),
            log_level=_choice(get, "ASTRO_LOG_LEVEL", "INFO", LOG_LEVELS),
            metrics_token=get("ASTRO_METRICS_TOKEN"),
            node=get("ASTRO_NODE") or f"node-{os.getpid()}",
            workers=_int(get, "ASTRO_WORKERS", 1, 1, 64),
            lease_seconds=_float(get, "ASTRO_LEASE_SECONDS", 5.0, 1.0, 300.0),
            cluster_secret=_cluster_secret(get("ASTRO_CLUSTER_SECRET")),
            node_url=_url(get, "ASTRO_NODE_URL", ("http", "https")),
            metrics_interval=_int(get, "ASTRO_METRICS_INTERVAL", 15, 1, 3600),
            actor_idle_seconds=_int(get, "ASTRO_ACTOR_IDLE_SECONDS", 300, 1, 86400),
            waitlist_offer_seconds=_int(get, "ASTRO_WAITLIST_OFFER_SECONDS", 900, 10, 7 * 86400),
            log_mongo_url=_url(get, "ASTRO_LOG_MONGO_URL", ("mongodb", "mongodb+srv")),
            public_url=_url(get, "ASTRO_PUBLIC_URL", ("http", "https")),
            mail_from=_mail_from(get("ASTRO_MAIL_FROM")),
            notify_poll_interval=_float(get, "ASTRO_NOTIFY_POLL_INTERVAL", 1.0, 0.05, 60),
            notify_retry_base=_float(get, "ASTRO_NOTIFY_RETRY_BASE", 60.0, 0.1, 3600),
            smtp_timeout=_float(get, "ASTRO_SMTP_TIMEOUT", 30.0, 1, 300),
            company_name=_legal(get, "ASTRO_COMPANY_NAME") or "AstroBookings",
            company_address=_legal(get, "ASTRO_COMPANY_ADDRESS"),
            company_tax_id=_legal(get, "ASTRO_COMPANY_TAX_ID"),
            company_email=_legal(get, "ASTRO_COMPANY_EMAIL"),
        )


@dataclass(frozen=True, slots=True)
class StripeTarget:
    """Where the Stripe API is and the secret key it takes; the key never shows in a repr or a log."""

    api_base: str  # https://api.stripe.com, or http://127.0.0.1:PORT for a local Stripe-compatible server
    secret_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TestServers:
    """Real servers for the test suite (DESIGN 10); `None` means: start the embedded one."""

    pg_dsn: str | None
    mongo_url: str | None
    redis_url: str | None
    # The database the session creates beside the one pg_dsn names; two checkouts testing against one
    # PostgreSQL at once each need their own (ASTRO_TEST_DATABASE).
    database: str = "astro_test"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TestServers:
        env = os.environ if env is None else env
        database = env.get("ASTRO_TEST_DATABASE") or "astro_test"
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
            raise ConfigError("ASTRO_TEST_DATABASE", "a lower-case SQL name like astro_test", database)
        return cls(
            pg_dsn=env.get("ASTRO_TEST_PG_DSN") or None,
            mongo_url=env.get("ASTRO_TEST_MONGO_URL") or None,
            redis_url=env.get("ASTRO_TEST_REDIS_URL") or None,
            database=database,
        )


def _cluster_secret(raw: str | None) -> str | None:
    if raw is not None and len(raw) < 32:
        raise ConfigError("ASTRO_CLUSTER_SECRET", "at least 32 characters (e.g. `openssl rand -hex 32`)")
    return raw


def new_password_from_env() -> str | None:
    """The password for `run.py create-user`, when given by ASTRO_NEW_PASSWORD."""
    return os.environ.get("ASTRO_NEW_PASSWORD") or None


def _int(get: _Getter, name: str, default: int, low: int, high: int) -> int:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"a whole number from {low} to {high}", raw) from None
    if not low <= value <= high:
        raise ConfigError(name, f"a whole number from {low} to {high}", raw)
    return value


def _float(get: _Getter, name: str, default: float, low: float, high: float) -> float:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"a number of seconds from {low:g} to {high:g}", raw) from None
    if not low <= value <= high:  # also refuses nan
        raise ConfigError(name, f"a number of seconds from {low:g} to {high:g}", raw)
    return value


def _mail_from(raw: str | None) -> str:
    """The sender of every email: an address, optionally with a display name (`Name <a@b.c>`)."""
    if raw is None:
        return DEFAULT_MAIL_FROM
    _, address = parseaddr(raw)
    if "@" not in address or any(c in raw for c in "\r\n\x00"):
        raise ConfigError("ASTRO_MAIL_FROM", "an email address, optionally as Name <address>", raw)
    return raw


def _legal(get: _Getter, name: str) -> str | None:
    """A line of the platform's legal data for invoices: printable text, at most 300 characters
    (an address may keep its line breaks, written as \\n)."""
    raw = get(name)
    if raw is None:
        return None
    text = raw.replace("\\n", "\n")
    if len(text) > 300 or any(not c.isprintable() and c != "\n" for c in text):
        raise ConfigError(name, "printable text of at most 300 characters", raw[:300])
    return text


def _choice(get: _Getter, name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = get(name)
    if raw is None:
        return default
    if raw.upper() not in allowed:
        raise ConfigError(name, "one of " + ", ".join(allowed), raw)
    return raw.upper()


def _url(get: _Getter, name: str, schemes: tuple[str, ...]) -> str | None:
    raw = get(name)
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        expected = " or ".join(f"{s}://..." for s in schemes)
        raise ConfigError(name, f"a URL of the form {expected}", raw)
    return raw


PAYMENT_SCHEMES: Final = ("sandbox", "stripe", "stripe+http")
PAYMENT_FORMS: Final = (
    "sandbox://..., stripe://<secret key>@api.stripe.com or stripe+http://<secret key>@127.0.0.1:<port>"
)


def _payment_url(raw: str | None) -> str | None:
    """ASTRO_PAYMENT_URL checked: the sandbox, or Stripe with a secret key (never shown in the error)."""
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in PAYMENT_SCHEMES or not (parts.netloc or parts.path):
        raise ConfigError("ASTRO_PAYMENT_URL", f"a URL of the form {PAYMENT_FORMS}", _redacted(raw))
    if parts.scheme != "sandbox":
        _stripe_target(raw)
    return raw


def _stripe_target(url: str) -> StripeTarget | None:
    """The Stripe API a checked stripe:// or stripe+http:// URL names; None for the sandbox."""
    parts = urlsplit(url)
    if parts.scheme == "sandbox":
        return None

    def bad(why: str) -> ConfigError:
        return ConfigError("ASTRO_PAYMENT_URL", f"{PAYMENT_FORMS}: {why}", _redacted(url))

    key = unquote(parts.username or "")
    if not re.fullmatch(r"(sk|rk)_(test|live)_[A-Za-z0-9_]{1,250}", key):
        raise bad("the secret key (sk_test_..., sk_live_..., rk_...) goes before the @")
    try:
        port = parts.port
    except ValueError:
        raise bad("the port is a whole number from 1 to 65535") from None
    host = parts.hostname or ""
    if not host or parts.password is not None or parts.path.strip("/") or parts.query or parts.fragment:
        raise bad("a host and nothing after it")
    if parts.scheme == "stripe":
        return StripeTarget(f"https://{host}" + (f":{port}" if port else ""), key)
    if "_live_" in key:  # a live key never crosses a network in clear text
        raise bad("stripe+http:// (plain HTTP) takes test keys only")
    if not is_loopback(host):
        raise bad("stripe+http:// is for a Stripe-compatible server on this machine (127.0.0.1, ::1)")
    shown = f"[{host}]" if ":" in host else host
    return StripeTarget(f"http://{shown}:{port or 80}", key)


def is_loopback(host: str) -> bool:
    """Is `host` (a name or an address) this machine's loopback?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _redacted(url: str) -> str:
    """The value for an error message without what may be a secret (a key, anything before an @)."""
    if re.search(r"[sr]k_(test|live)_", url):
        return "(hidden: it holds a secret key)"
    scheme, sep, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}" if sep and "@" in rest else url


def _jwt_secret(raw: str | None, data_dir: Path) -> str:
    """The configured secret, else one generated once and kept in the data directory."""
    if raw is not None:
        if len(raw) < 32:
            raise ConfigError("ASTRO_JWT_SECRET", "at least 32 characters", f"{len(raw)} characters")
        return raw
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret
