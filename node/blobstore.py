"""Content-addressed storage of the bytes behind on-chain hashes (Datanet rows, adapters, outputs).

A blob's name is keccak256 of its bytes, the same hash a contribution carries on chain, so a
Datanet's rows can be fetched and checked by anyone. Two kinds share the store: Datanet rows,
served only through their Datanet's access rule, and public objects (adapter files and manifests,
run records, configs, metrics, prompts, outputs, activation commitments, attribution proofs),
served to anyone by hash; a public object is marked by an empty `<hash>.public` file beside it,
written by whoever stored those bytes as public (they knew the bytes, so nothing leaks).
The hash is verified when a blob is written
(against the hash the writer claims) and again when it is read (a damaged file is an error, never
served). Files live under `<dir>/<first byte hex>/<hash hex>`, written to a temporary name and
renamed, so a crash never leaves a partial blob under a valid name.
"""
import os
import pathlib
import threading

from eth_utils import keccak

MAX_BLOB_BYTES = 2 * 1024 * 1024
"""Largest blob accepted (hex doubles it on the wire; the RPC body limit is 5 MiB)."""
MAX_STORE_BYTES = 16 * 1024**3
"""Default cap on all blobs together (`--blobs.maxsize`): anyone who may call ol_putBlob could
otherwise fill the node's disk, 2 MiB at a time."""


def blob_message(chain_id: int, blob_hash: bytes) -> str:
    """The text a reader signs (personal_sign) to fetch a blob of an allowlist Datanet."""
    return f"openledger ol_getBlob chain {chain_id} blob 0x{blob_hash.hex()}"


class BlobError(ValueError):
    """A blob that cannot be stored or served; the message names the hash or the limit."""


class BlobStore:
    def __init__(self, directory: str | os.PathLike, max_bytes: int = MAX_BLOB_BYTES,
                 max_total_bytes: int = MAX_STORE_BYTES) -> None:
        self.directory = pathlib.Path(directory)
        self.max_bytes = max_bytes
        self.max_total_bytes = max_total_bytes
        self._used: int | None = None  # bytes stored, counted from the files on first write
        self._lock = threading.Lock()  # writes run in worker threads

    def used_bytes(self) -> int:
        """The bytes of all blobs stored (a scan of the directory the first time)."""
        with self._lock:
            return self._count()

    def _count(self) -> int:
        if self._used is None:
            self._used = sum(f.stat().st_size for f in self.directory.glob("*/*")
                             if not f.name.startswith(".") and not f.name.endswith(".public"))
        return self._used

    def _path(self, blob_hash: bytes) -> pathlib.Path:
        if len(blob_hash) != 32:
            raise BlobError(f"blob hash must be 32 bytes, got {len(blob_hash)}")
        name = blob_hash.hex()
        return self.directory / name[:2] / name

    def put(self, data: bytes, expected_hash: bytes | None = None, public: bool = False) -> bytes:
        """Store `data` (as a public object if `public`); returns its keccak256. Refuses oversize data
        and a wrong claimed hash."""
        if len(data) > self.max_bytes:
            raise BlobError(f"blob of {len(data)} bytes exceeds the {self.max_bytes}-byte limit")
        blob_hash = keccak(data)
        if expected_hash is not None and expected_hash != blob_hash:
            raise BlobError(f"blob hash mismatch: data hashes to 0x{blob_hash.hex()}, not 0x{expected_hash.hex()}")
        path = self._path(blob_hash)
        with self._lock:
            if path.exists():
                if public:
                    self._mark_public(path)
                return blob_hash
            used = self._count()
            if used + len(data) > self.max_total_bytes:
                raise BlobError(f"blob store is full: {used} of {self.max_total_bytes} bytes used, "
                                f"{len(data)} more refused (raise --blobs.maxsize)")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            self._used = used + len(data)
            if public:
                self._mark_public(path)
        return blob_hash

    @staticmethod
    def _mark_public(path: pathlib.Path) -> None:
        path.with_name(path.name + ".public").touch()

    def is_public(self, blob_hash: bytes) -> bool:
        return self._path(blob_hash).with_name(blob_hash.hex() + ".public").exists()

    def has(self, blob_hash: bytes) -> bool:
        return self._path(blob_hash).exists()

    def get(self, blob_hash: bytes) -> bytes:
        """The blob's bytes; raises BlobError when unknown or when the file no longer hashes right."""
        try:
            data = self._path(blob_hash).read_bytes()
        except FileNotFoundError:
            raise BlobError(f"unknown blob 0x{blob_hash.hex()}") from None
        if keccak(data) != blob_hash:
            raise BlobError(f"blob 0x{blob_hash.hex()} is corrupt on this node (hash mismatch)")
        return data
