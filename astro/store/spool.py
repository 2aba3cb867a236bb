"""A spool on disk: batches of documents appended as NDJSON, read back in the same order, then removed.

The file is only appended to; how far it has been replayed is kept beside it (`<name>.offset`), so a
replay cut short by a crash or a failure goes on where it stopped (the store skips entries it has).
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Final

MAX_BYTES: Final = 512 * 1024 * 1024
_CHUNK: Final = 1 << 20


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class Spool:
    """Not thread-safe: one owner calls it, one call at a time (possibly from a worker thread)."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self._offset_path = path.with_name(path.name + ".offset")
        self._max_bytes = max_bytes
        self._offset = 0
        self._size = 0
        self.pending = 0  # documents written and not replayed yet

    def load(self) -> int:
        """Find what an earlier run left: cut a torn last line, count the documents not replayed."""
        if not self.path.exists():
            self._offset = self._size = self.pending = 0
            with contextlib.suppress(FileNotFoundError):
                self._offset_path.unlink()
            return 0
        with self.path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            end = size
            while end > 0:
                start = max(0, end - _CHUNK)
                f.seek(start)
                cut = f.read(end - start).rfind(b"\n")
                if cut >= 0:
                    end = start + cut + 1
                    break
                end = start
            if end != size:
                f.truncate(end)
            self._size = end
        try:
            self._offset = min(int(self._offset_path.read_text().strip() or 0), self._size)
        except (FileNotFoundError, ValueError):
            self._offset = 0
        count = 0
        with self.path.open("rb") as f:
            f.seek(self._offset)
            while chunk := f.read(_CHUNK):
                count += chunk.count(b"\n")
        self.pending = count
        if not count:
            self._remove()
        return count

    def append(self, docs: list[dict[str, Any]]) -> int:
        """Write the documents after everything already spooled; 0 when the spool is full."""
        payload = "".join(json.dumps(d, default=_encode, ensure_ascii=False) + "\n" for d in docs).encode()
        if self._size + len(payload) > self._max_bytes:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as f:
            f.write(payload)
            f.flush()
            self._size = f.tell()
        self.pending += len(docs)
        return len(docs)

    def read(self, limit: int) -> tuple[list[dict[str, Any]], int, int]:
        """Up to `limit` documents from where the replay stands: (documents, next offset, lines used)."""
        docs: list[dict[str, Any]] = []
        used = 0
        with self.path.open("rb") as f:
            f.seek(self._offset)
            while used < limit:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break
                used += 1
                try:
                    doc = json.loads(line)
                    doc["time"] = datetime.fromisoformat(doc["time"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line we cannot read would block every line after it
                docs.append(doc)
            return docs, f.tell(), used

    def commit(self, offset: int, used: int) -> None:
        """Everything before `offset` is stored; forget the file once all of it is."""
        self._offset = offset
        self.pending = max(0, self.pending - used)
        if self._offset >= self._size or not self.pending:
            self._remove()
            return
        tmp = self._offset_path.with_name(self._offset_path.name + ".tmp")
        tmp.write_text(str(self._offset))
        os.replace(tmp, self._offset_path)

    def _remove(self) -> None:
        for path in (self.path, self._offset_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._offset = self._size = self.pending = 0
