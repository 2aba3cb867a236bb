"""The spool on disk: appended in order, read back in order, resumable, removed when replayed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from astro.store.spool import Spool

T = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def docs(start: int, n: int) -> list[dict[str, Any]]:
    return [
        {"_id": f"e{i:04d}", "time": T, "message": f"line\nwith break {i}", "data": {"i": i}}
        for i in range(start, start + n)
    ]


def test_read_back_in_order_with_times_restored(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool" / "e.ndjson")
    assert spool.append(docs(0, 3)) == 3 and spool.append(docs(3, 2)) == 2 and spool.pending == 5
    got, offset, used = spool.read(4)
    assert [d["_id"] for d in got] == ["e0000", "e0001", "e0002", "e0003"] and used == 4
    assert got[0]["time"] == T and got[0]["message"] == "line\nwith break 0"
    spool.commit(offset, used)
    rest, offset, used = spool.read(10)
    assert [d["_id"] for d in rest] == ["e0004"] and spool.pending == 1
    spool.commit(offset, used)
    assert spool.pending == 0 and not spool.path.exists()


def test_a_new_owner_goes_on_where_the_replay_stopped(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson"
    first = Spool(path)
    first.append(docs(0, 6))
    _, offset, used = first.read(2)
    first.commit(offset, used)
    second = Spool(path)
    assert second.load() == 4
    got, _, _ = second.read(10)
    assert [d["_id"] for d in got] == ["e0002", "e0003", "e0004", "e0005"]


def test_a_torn_last_line_is_cut_and_appending_goes_on_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson"
    Spool(path).append(docs(0, 2))
    with path.open("ab") as f:
        f.write(b'{"_id": "e9999", "time": "2026-')  # the process died in the middle of a write
    spool = Spool(path)
    assert spool.load() == 2
    spool.append(docs(2, 1))
    got, _, used = spool.read(10)
    assert [d["_id"] for d in got] == ["e0000", "e0001", "e0002"] and used == 3


def test_an_unreadable_line_is_skipped_not_blocking(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson"
    spool = Spool(path)
    spool.append(docs(0, 1))
    with path.open("ab") as f:
        f.write(b"not json\n")
    spool.append(docs(1, 1))
    spool = Spool(path)
    assert spool.load() == 3
    got, offset, used = spool.read(10)
    assert [d["_id"] for d in got] == ["e0000", "e0001"] and used == 3
    spool.commit(offset, used)
    assert not path.exists()


def test_a_full_spool_refuses_the_batch(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "e.ndjson", max_bytes=300)
    assert spool.append(docs(0, 1)) == 1
    assert spool.append(docs(1, 5)) == 0 and spool.pending == 1


def test_nothing_left_means_no_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "e.ndjson")
    assert spool.load() == 0 and not spool.path.exists()
