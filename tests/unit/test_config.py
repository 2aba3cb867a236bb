"""Settings read every ASTRO_* variable and name the variable when its value is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from astro.config import ConfigError, Settings


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"ASTRO_DATA_DIR": str(tmp_path), **values}


def test_defaults_leave_every_store_embedded(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    assert (s.host, s.port, s.token_ttl, s.session_ttl, s.vip_window, s.log_level) == (
        "127.0.0.1",
        8080,
        900,
        30 * 86400,
        86400,
        "INFO",
    )
    assert (s.pg_dsn, s.mongo_url, s.redis_url, s.smtp_url, s.payment_url, s.metrics_token) == (None,) * 6


def test_every_variable_is_read(tmp_path: Path) -> None:
    s = Settings.from_env(
        env(
            tmp_path,
            ASTRO_HOST="0.0.0.0",
            ASTRO_PORT="9000",
            ASTRO_PG_DSN="postgresql://u@db:5432/ops",
            ASTRO_MONGO_URL="mongodb://m:27017/sys",
            ASTRO_REDIS_URL="redis://r:6379/2",
            ASTRO_SMTP_URL="smtps://u:p@mail:465",
            ASTRO_PAYMENT_URL="sandbox://local",
            ASTRO_JWT_SECRET="s" * 32,
            ASTRO_TOKEN_TTL="120",
            ASTRO_SESSION_TTL="3600",
            ASTRO_VIP_WINDOW="0",
            ASTRO_LOG_LEVEL="debug",
            ASTRO_METRICS_TOKEN="scrape",
            ASTRO_NODE="n7",
            ASTRO_ACTOR_IDLE_SECONDS="60",
        )
    )
    assert s.actor_idle_seconds == 60 and s.session_ttl == 3600
    assert s.host == "0.0.0.0" and s.port == 9000 and s.pg_dsn == "postgresql://u@db:5432/ops"
    assert s.mongo_url == "mongodb://m:27017/sys" and s.mongo_db == "sys"
    assert s.redis_url == "redis://r:6379/2" and s.smtp_url == "smtps://u:p@mail:465"
    assert s.payment_url == "sandbox://local" and s.jwt_secret == "s" * 32
    assert (s.token_ttl, s.vip_window, s.log_level, s.metrics_token, s.node) == (
        120,
        0,
        "DEBUG",
        "scrape",
        "n7",
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ASTRO_PORT", "http", "whole number from 1 to 65535"),
        ("ASTRO_PORT", "70000", "whole number from 1 to 65535"),
        ("ASTRO_TOKEN_TTL", "-5", "whole number"),
        ("ASTRO_SESSION_TTL", "60", "whole number from 300 to 31536000"),
        ("ASTRO_VIP_WINDOW", "1.5", "whole number"),
        ("ASTRO_LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR"),
        ("ASTRO_PG_DSN", "mysql://x/y", "postgresql://"),
        ("ASTRO_MONGO_URL", "localhost:27017", "mongodb://"),
        ("ASTRO_REDIS_URL", "http://r", "redis://"),
        ("ASTRO_SMTP_URL", "mail.example:25", "smtp://"),
        ("ASTRO_PAYMENT_URL", "https://pay.example", "sandbox://"),
        ("ASTRO_JWT_SECRET", "short", "at least 32 characters"),
        ("ASTRO_ACTOR_IDLE_SECONDS", "0", "whole number from 1 to 86400"),
    ],
)
def test_a_wrong_value_names_the_variable(tmp_path: Path, variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env(tmp_path, **{variable: value}))
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: expected")
    assert expected in str(caught.value)


def test_the_login_address_limit_defaults_to_20_and_is_checked(tmp_path: Path) -> None:
    assert Settings.from_env(env(tmp_path)).login_ip_limit == 20
    assert Settings.from_env(env(tmp_path, ASTRO_LOGIN_IP_LIMIT="50")).login_ip_limit == 50
    for bad in ("0", "-1", "many", "100001"):
        with pytest.raises(ConfigError, match="ASTRO_LOGIN_IP_LIMIT: expected a whole number"):
            Settings.from_env(env(tmp_path, ASTRO_LOGIN_IP_LIMIT=bad))


def test_generated_jwt_secret_is_kept_in_the_data_dir(tmp_path: Path) -> None:
    first = Settings.from_env(env(tmp_path)).jwt_secret
    second = Settings.from_env(env(tmp_path)).jwt_secret
    assert len(first) >= 32 and first == second
    assert (tmp_path / "jwt_secret").read_text() == first
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_mongo_database_defaults_to_astro(tmp_path: Path) -> None:
    assert Settings.from_env(env(tmp_path, ASTRO_MONGO_URL="mongodb://m:27017")).mongo_db == "astro"


@pytest.mark.parametrize(
    ("url", "api_base"),
    [
        ("sandbox://local", None),
        ("stripe://sk_test_abc123@api.stripe.com", "https://api.stripe.com"),
        ("stripe://sk_live_abc123@api.stripe.com", "https://api.stripe.com"),
        ("stripe://rk_test_abc123@stripe.internal:8443", "https://stripe.internal:8443"),
        ("stripe+http://sk_test_abc123@127.0.0.1:8420", "http://127.0.0.1:8420"),
        ("stripe+http://sk_test_abc123@[::1]:8420", "http://[::1]:8420"),
        ("stripe+http://sk_test_abc123@localhost:8420", "http://localhost:8420"),
    ],
)
def test_the_payment_url_selects_the_sandbox_or_a_stripe_api(
    tmp_path: Path, url: str, api_base: str | None
) -> None:
    s = Settings.from_env(env(tmp_path, ASTRO_PAYMENT_URL=url, ASTRO_STRIPE_WEBHOOK_SECRET="whsec_x"))
    assert s.payment_url == url and s.stripe_webhook_secret == "whsec_x"
    if api_base is None:
        assert s.stripe is None
    else:
        assert s.stripe is not None and s.stripe.api_base == api_base
        assert s.stripe.secret_key == url.split("://")[1].split("@")[0]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("stripe://api.stripe.com", "secret key"),
        ("stripe://pk_test_abc@api.stripe.com", "secret key"),
        ("stripe://sk_test_abc@api.stripe.com/v1", "a host and nothing after it"),
        ("stripe://sk_test_abc:pw@api.stripe.com", "a host and nothing after it"),
        ("stripe+http://sk_live_abc@127.0.0.1:8420", "test keys only"),
        ("stripe+http://sk_test_abc@203.0.113.7:8420", "on this machine"),
        ("stripe+http://sk_test_abc@127.0.0.1:99999", "port"),
        ("stripes://sk_test_abc@api.stripe.com", "stripe+http://"),
        ("sk_test_abc", "stripe://"),
    ],
)
def test_a_wrong_payment_url_names_the_variable_and_never_shows_the_key(
    tmp_path: Path, url: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env(tmp_path, ASTRO_PAYMENT_URL=url))
    assert caught.value.variable == "ASTRO_PAYMENT_URL" and expected in str(caught.value)
    assert "abc" not in str(caught.value)


def test_the_secret_key_and_the_webhook_secret_stay_out_of_the_settings_repr(tmp_path: Path) -> None:
    s = Settings.from_env(
        env(
            tmp_path,
            ASTRO_PAYMENT_URL="stripe://sk_live_topsecret@api.stripe.com",
            ASTRO_STRIPE_WEBHOOK_SECRET="whsec_alsosecret",
        )
    )
    shown = repr(s) + repr(s.stripe)
    assert "topsecret" not in shown and "alsosecret" not in shown and "api.stripe.com" in repr(s.stripe)


def test_run_py_exits_2_naming_a_bad_payment_url_without_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import run

    monkeypatch.setenv("ASTRO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASTRO_PAYMENT_URL", "stripe+http://sk_live_hunter2@127.0.0.1:8420")
    assert run.main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("configuration error: ASTRO_PAYMENT_URL: expected") and "hunter2" not in err


def test_the_platform_legal_data_for_invoices_is_read_and_checked(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    assert (s.company_name, s.company_address, s.company_tax_id, s.company_email) == (
        "AstroBookings",
        None,
        None,
        None,
    )
    s = Settings.from_env(
        env(
            tmp_path,
            ASTRO_COMPANY_NAME="Orbit Ops S.L.",
            ASTRO_COMPANY_ADDRESS="Calle Luna 1\\n28001 Madrid",
            ASTRO_COMPANY_TAX_ID="ESB12345678",
            ASTRO_COMPANY_EMAIL="billing@orbit.example",
        )
    )
    assert s.company_name == "Orbit Ops S.L." and s.company_address == "Calle Luna 1\n28001 Madrid"
    assert (s.company_tax_id, s.company_email) == ("ESB12345678", "billing@orbit.example")
    for bad in ("x" * 301, "bell\x07"):
        with pytest.raises(ConfigError, match="ASTRO_COMPANY_ADDRESS: expected printable text"):
            Settings.from_env(env(tmp_path, ASTRO_COMPANY_ADDRESS=bad))
