"""LevelDB (plyvel) storage for the node: py-evm's atomic database API plus our own indexes.

py-evm dropped its LevelDB backend, so `LevelDB` implements `BaseAtomicDB` over plyvel.
`atomic_batch()` collects every write of its body in memory and flushes them as ONE plyvel
write batch on a clean exit (nothing on an exception): that is how a whole block (state trie
nodes, header, body, receipts, tx index, log index, head pointer) lands on disk at once.
All keys this module adds are built by `Schema`; py-evm builds its own with `eth.db.schema`.
"""
import contextlib
import pathlib
from collections.abc import Iterator

import plyvel
from eth.db.backends.base import BaseAtomicDB, BaseDB

_DELETED = None


class Schema:
    """Keys of the node's own indexes (py-evm's chain keys come from eth.db.schema.SchemaV1)."""

    LOG_BLOCK = b"ol:log-block:"  # + number -> b"": the block has at least one log
    LOG_ADDRESS = b"ol:log-addr:"  # + address(20) + number -> b""
    LOG_TOPIC = b"ol:log-topic:"  # + topic(32) + number -> b"" (topic at any position)
    BLOCK_BODY = b"ol:body:"  # + block hash -> msgpack body record (node.records)
    BLOCK_RECEIPTS = b"ol:receipts:"  # + block hash -> msgpack receipt record (node.records)
    COMMIT = b"ol:commit:"  # + number -> RLP commit certificate of that block (consensus.Commit)
    VALIDATOR_SET = b"ol:vset:"  # + number -> the validator set of that height, priorities included

    @staticmethod
    def number(n: int) -> bytes:
        return n.to_bytes(8, "big")

    @classmethod
    def log_block(cls, n: int) -> bytes:
        return cls.LOG_BLOCK + cls.number(n)

    @classmethod
    def log_address(cls, address: bytes, n: int) -> bytes:
        return cls.LOG_ADDRESS + address + cls.number(n)

    @classmethod
    def log_topic(cls, topic: bytes, n: int) -> bytes:
        return cls.LOG_TOPIC + topic + cls.number(n)

    @classmethod
    def block_body(cls, block_hash: bytes) -> bytes:
        return cls.BLOCK_BODY + block_hash

    @classmethod
    def block_receipts(cls, block_hash: bytes) -> bytes:
        return cls.BLOCK_RECEIPTS + block_hash

    @classmethod
    def commit(cls, n: int) -> bytes:
        return cls.COMMIT + cls.number(n)

    @classmethod
    def validator_set(cls, n: int) -> bytes:
        return cls.VALIDATOR_SET + cls.number(n)


class WriteBatch(BaseDB):
    """The pending writes of one `LevelDB.atomic_batch()`: readable (falls back to the
    database for keys it has not touched), applied only when the batch commits.

    py-evm's AtomicDBWriteBatch applies its diff key by key to the target; we need the diff
    itself to hand to plyvel's write batch, hence this small class."""

    def __init__(self, db: "LevelDB") -> None:
        self._db = db
        self.writes: dict[bytes, bytes | None] = {}

    def __getitem__(self, key: bytes) -> bytes:
        try:
            value = self.writes[key]
        except KeyError:
            return self._db[key]
        if value is _DELETED:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self.writes[key] = _DELETED

    def _exists(self, key: bytes) -> bool:
        try:
            value = self.writes[key]
        except KeyError:
            return self._db._exists(key)
        return value is not _DELETED


class LevelDB(BaseAtomicDB):
    """py-evm's AtomicDatabaseAPI over a plyvel LevelDB directory (created if missing)."""

    def __init__(self, path: str | pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._db = plyvel.DB(str(self.path), create_if_missing=True)

    def __getitem__(self, key: bytes) -> bytes:
        value = self._db.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        # Mapping.get would go through __getitem__ and a KeyError: the read path calls this a
        # few times for every answer.
        value = self._db.get(key)
        return default if value is None else value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._db.put(key, value)

    def __delitem__(self, key: bytes) -> None:
        if self._db.get(key) is None:
            raise KeyError(key)
        self._db.delete(key)

    def _exists(self, key: bytes) -> bool:
        return self._db.get(key) is not None

    @contextlib.contextmanager
    def atomic_batch(self) -> Iterator[WriteBatch]:
        batch = WriteBatch(self)
        yield batch
        # Only reached when the body did not raise: flush everything in one write batch.
        self.write(batch)

    def write(self, batch: WriteBatch) -> None:
        """Apply a batch's writes as ONE plyvel write batch (a block staged earlier, then decided)."""
        with self._db.write_batch(transaction=True) as wb:
            for key, value in batch.writes.items():
                if value is _DELETED:
                    wb.delete(key)
                else:
                    wb.put(key, value)

    def keys_between(self, start: bytes, stop: bytes, reverse: bool = False) -> Iterator[bytes]:
        """Committed keys in [start, stop), in order or in reverse (index range scans)."""
        return self._db.iterator(start=start, stop=stop, include_value=False, reverse=reverse)

    def close(self) -> None:
        self._db.close()

    @property
    def closed(self) -> bool:
        return self._db.closed
