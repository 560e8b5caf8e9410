"""The services' progress in one JSON file under the node's data dir: the last block whose events
were taken in, and every job still in flight with what was done for it (a signed transaction is
recorded before it is sent, so a restart re-sends the same bytes instead of doing the job twice).

Each save replaces the file atomically (write, fsync, rename), so a kill -9 leaves the previous or
the next state, never half of one. A lock file keeps two services processes off the same state.
"""
from __future__ import annotations

import fcntl
import json
import os
import pathlib


class StateError(Exception):
    """The state file is in use or unreadable."""


class State:
    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "state.json"
        self._lock = open(self.folder / "LOCK", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StateError(f"{self.folder} is in use by another services process") from None
        try:
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
        except (OSError, ValueError) as e:
            raise StateError(f"cannot read {self.path}: {e}") from None
        self.last_block: int = data.get("last_block", -1)
        self.jobs: dict[str, dict] = data.get("jobs", {})  # job id (decimal) -> {"serve": {...}, "verify": {...}}

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"last_block": self.last_block, "jobs": self.jobs}, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        self._lock.close()
