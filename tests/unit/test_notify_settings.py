"""The notification settings: read from ASTRO_*, validated, named when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from astro.config import DEFAULT_MAIL_FROM, ConfigError, Settings


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"ASTRO_DATA_DIR": str(tmp_path), **values}


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, ASTRO_PORT="9000"))
    assert s.base_url == "http://127.0.0.1:9000"
    assert s.mail_from == DEFAULT_MAIL_FROM
    assert (s.notify_poll_interval, s.notify_retry_base, s.smtp_timeout) == (1.0, 60.0, 30.0)


def test_notification_variables_are_read(tmp_path: Path) -> None:
    s = Settings.from_env(
        env(
            tmp_path,
            ASTRO_PUBLIC_URL="https://astro.example/",
            ASTRO_MAIL_FROM="Astro <mail@astro.example>",
            ASTRO_NOTIFY_POLL_INTERVAL="0.25",
            ASTRO_NOTIFY_RETRY_BASE="5",
            ASTRO_SMTP_TIMEOUT="10",
        )
    )
    assert s.base_url == "https://astro.example"
    assert s.mail_from == "Astro <mail@astro.example>"
    assert (s.notify_poll_interval, s.notify_retry_base, s.smtp_timeout) == (0.25, 5.0, 10.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ASTRO_PUBLIC_URL", "ftp://astro.example"),
        ("ASTRO_PUBLIC_URL", "astro.example"),
        ("ASTRO_MAIL_FROM", "nobody"),
        ("ASTRO_NOTIFY_POLL_INTERVAL", "0"),
        ("ASTRO_NOTIFY_POLL_INTERVAL", "soon"),
        ("ASTRO_NOTIFY_POLL_INTERVAL", "nan"),
        ("ASTRO_NOTIFY_RETRY_BASE", "7200"),
        ("ASTRO_SMTP_TIMEOUT", "-1"),
    ],
)
def test_a_bad_value_names_its_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env(tmp_path, **{name: value}))
    assert caught.value.variable == name
    assert str(caught.value).startswith(f"{name}: expected")
