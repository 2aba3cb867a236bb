"""Ids are opaque, prefixed and sort by creation time."""

from __future__ import annotations

import re
import time

from astro.domain.ids import new_id


def test_id_has_prefix_and_26_crockford_characters() -> None:
    assert re.fullmatch(r"usr_[0-9A-HJKMNP-TV-Z]{26}", new_id("usr"))


def test_ids_sort_by_creation_time_and_are_unique() -> None:
    first = new_id("x")
    time.sleep(0.002)  # the passing of time is what is tested: the later ids are made at a later millisecond
    later = [new_id("x") for _ in range(1000)]
    assert all(first < i for i in later)
    assert len(set(later)) == 1000
