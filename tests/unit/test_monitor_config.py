"""Monitoring settings: the metric sampling interval and a separate entry log store."""

from __future__ import annotations

from pathlib import Path

import pytest

from astro.config import ConfigError, Settings


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env({"ASTRO_DATA_DIR": str(tmp_path)})
    assert s.metrics_interval == 15 and s.log_mongo_url is None
    assert s.replace(mongo_url="mongodb://m/sys").log_mongo_db == "sys"


def test_both_are_read(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "ASTRO_DATA_DIR": str(tmp_path),
            "ASTRO_METRICS_INTERVAL": "60",
            "ASTRO_MONGO_URL": "mongodb://m/sys",
            "ASTRO_LOG_MONGO_URL": "mongodb://logs:27017/audit",
        }
    )
    assert s.metrics_interval == 60 and s.log_mongo_url == "mongodb://logs:27017/audit"
    assert s.log_mongo_db == "audit" and s.mongo_db == "sys"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ASTRO_METRICS_INTERVAL", "0"),
        ("ASTRO_METRICS_INTERVAL", "3601"),
        ("ASTRO_METRICS_INTERVAL", "fast"),
        ("ASTRO_METRICS_INTERVAL", "1.5"),
        ("ASTRO_LOG_MONGO_URL", "http://logs"),
    ],
)
def test_a_bad_value_names_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"ASTRO_DATA_DIR": str(tmp_path), name: value})
    assert err.value.variable == name and name in str(err.value)
