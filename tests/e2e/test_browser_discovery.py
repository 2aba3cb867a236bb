"""The README's `pytest` on a machine without Chromium: the browser tests are deselected with one line
saying how to run them, the rest runs and passes; in CI (CI=true) they stay selected (and fail there
for want of Chromium, see tests/browser/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = """
import pytest

@pytest.mark.browser
def test_in_a_browser():
    pass

def test_without_one():
    pass
"""


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.browser.conftest", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ASTRO_CHROMIUM": "/nonexistent/chromium", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_chromium_the_browser_tests_are_left_out_with_one_line(tmp_path: Path) -> None:
    done = run(tmp_path, CI="")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 deselected" in done.stdout
    notes = [line for line in done.stdout.splitlines() if line.startswith("browser tests not run")]
    assert notes == [
        "browser tests not run (1): no Chromium found; install Debian's `chromium` "
        "(apt-get install chromium) or set ASTRO_CHROMIUM=/path/to/chrome, then run `pytest -m browser`"
    ], done.stdout


def test_in_ci_the_browser_tests_stay_selected(tmp_path: Path) -> None:
    done = run(tmp_path, CI="true")
    assert "2 passed" in done.stdout and "deselected" not in done.stdout, done.stdout
    assert "browser tests not run" not in done.stdout
