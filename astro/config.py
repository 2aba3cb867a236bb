"""Settings: the one place that reads environment variables, validated once at start-up."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
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
    payment_url: str | None = None
    jwt_secret: str = ""
    token_ttl: int = 3600
    vip_window: int = 86400
    log_level: str = "INFO"
    metrics_token: str | None = None
    node: str = "node-1"
    # How long a seat hold waits for its payment before the seats are free again.
    hold_seconds: float = 30.0
    # Argon2id cost; lowered only by tests, never from the environment.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536

    @property
    def mongo_db(self) -> str:
        """The MongoDB database named in the URL path, `astro` when none is named."""
        path = urlsplit(self.mongo_url or "").path.strip("/")
        return path or "astro"

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
            payment_url=_url(get, "ASTRO_PAYMENT_URL", ("sandbox",)),
            jwt_secret=_jwt_secret(get("ASTRO_JWT_SECRET"), data_dir),
            token_ttl=_int(get, "ASTRO_TOKEN_TTL", 3600, 60, 30 * 86400),
            vip_window=_int(get, "ASTRO_VIP_WINDOW", 86400, 0, 365 * 86400),
            log_level=_choice(get, "ASTRO_LOG_LEVEL", "INFO", LOG_LEVELS),
            metrics_token=get("ASTRO_METRICS_TOKEN"),
            node=get("ASTRO_NODE") or f"node-{os.getpid()}",
        )


@dataclass(frozen=True, slots=True)
class TestServers:
    """Real servers for the test suite (DESIGN 10); `None` means: start the embedded one."""

    pg_dsn: str | None
    mongo_url: str | None
    redis_url: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TestServers:
        env = os.environ if env is None else env
        return cls(
            pg_dsn=env.get("ASTRO_TEST_PG_DSN") or None,
            mongo_url=env.get("ASTRO_TEST_MONGO_URL") or None,
            redis_url=env.get("ASTRO_TEST_REDIS_URL") or None,
        )


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
