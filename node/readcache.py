"""A shared, bounded read cache for replays of historical state (traces).

Trie nodes, contract code and headers are stored under the keccak of their bytes, so an entry
whose key is the hash of its value can never change: caching it is always correct, whichever
block's state it is read for. Sequential blocks walk mostly the same nodes (the accounts and
contracts a chain keeps using), so a replay of block N+1 finds most of its nodes left there by
block N's. Entries that are not content-addressed (heads, indexes) are read through uncached.
"""
from __future__ import annotations

import threading

from eth.db.backends.base import BaseDB
from eth_hash.auto import keccak

DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024


class ContentCache(BaseDB):
    """Read-only view of `db` that keeps up to `budget_bytes` of content-addressed values.

    Two generations approximate LRU without per-hit bookkeeping: values land in the young
    one; when it holds half the budget it becomes the old one (the previous old one is
    dropped), and an old value read again moves back to the young one. Safe to share between
    threads: a lost race only costs a re-read."""

    read_only = True  # writes raise TypeError; vm.tracing replays read it without an overlay

    def __init__(self, db: BaseDB, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        if budget_bytes < 2:
            raise ValueError(f"cache budget must be at least 2 bytes, got {budget_bytes}")
        self._db = db
        self._half = budget_bytes // 2
        self._young: dict[bytes, bytes] = {}
        self._old: dict[bytes, bytes] = {}
        self._young_bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __getitem__(self, key: bytes) -> bytes:
        value = self._young.get(key)
        if value is not None:
            self.hits += 1
            return value
        value = self._old.get(key)
        if value is not None:
            self.hits += 1
            self._keep(key, value)
            return value
        self.misses += 1
        value = self._db[key]
        if len(key) == 32 and len(value) <= self._half and keccak(value) == key:
            self._keep(key, value)
        return value

    def _keep(self, key: bytes, value: bytes) -> None:
        with self._lock:
            if key in self._young:
                return
            if self._young_bytes + len(value) > self._half:
                self._old, self._young, self._young_bytes = self._young, {}, 0
            self._young[key] = value
            self._young_bytes += len(value)

    @property
    def cached_bytes(self) -> int:
        """Bytes of values held now (at most the budget)."""
        return sum(map(len, self._young.values())) + sum(map(len, self._old.values()))

    def _exists(self, key: bytes) -> bool:
        return key in self._young or key in self._old or key in self._db

    def __setitem__(self, key: bytes, value: bytes) -> None:
        raise TypeError("ContentCache is a read-only view of the chain")

    def __delitem__(self, key: bytes) -> None:
        raise TypeError("ContentCache is a read-only view of the chain")
