"""The cluster tests use the fault tests' fixtures: clean shared stores and platform processes that are
always ended (a paused one continued first), even when a test fails."""

from __future__ import annotations

from tests.faults.conftest import platforms, shared_stores

__all__ = ["platforms", "shared_stores"]
