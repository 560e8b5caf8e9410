"""The rows of one Datanet version, verified before anything trains on them.

A row's content hash is keccak256 of its exact bytes; the version root is `vm.merkle.merkle_root`
over those hashes in the version's committed order. Rows come from the node's blob store (any
callable hash -> bytes, or a directory of files named by hex hash) or, offline, from a JSONL file
(one row per line, the line's bytes without its line ending) or a Parquet file (a binary `row`
column holds the bytes; otherwise each record's canonical JSON is the row).

A row is UTF-8: a JSON object with "text" (and "label" for classification: a class name from the
config or its index), or plain text for causal LM.
"""
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from eth_utils import keccak

from training.config import ConfigError, TrainingConfig, canonical_json
from vm.merkle import merkle_root


class DataError(ValueError):
    """A row or version that fails its hash checks or cannot be parsed (the message names which)."""


@dataclass(frozen=True)
class Example:
    text: str
    label: int | None = None


@dataclass(frozen=True)
class Dataset:
    """Verified rows of a Datanet version, in committed order."""

    rows: tuple[bytes, ...]
    hashes: tuple[bytes, ...]
    root: bytes

    @classmethod
    def from_rows(cls, rows: Sequence[bytes], expected_root: bytes | None = None) -> "Dataset":
        rows = tuple(bytes(r) for r in rows)
        hashes = tuple(keccak(r) for r in rows)
        return cls._checked(rows, hashes, expected_root)

    @classmethod
    def from_blobs(cls, hashes: Sequence[bytes], blobs: Callable[[bytes], bytes] | str | Path,
                   expected_root: bytes | None = None) -> "Dataset":
        """Fetch each row by content hash (a blob-store getter or a directory) and check it."""
        fetch = _directory_reader(Path(blobs)) if isinstance(blobs, (str, Path)) else blobs
        rows = []
        for index, content_hash in enumerate(hashes):
            if len(content_hash) != 32:
                raise DataError(f"row {index}: content hash must be 32 bytes, got {len(content_hash)}")
            row = fetch(bytes(content_hash))
            if row is None:
                raise DataError(f"row {index} (0x{content_hash.hex()}): not in the blob store")
            if keccak(row) != content_hash:
                raise DataError(f"row {index} (0x{content_hash.hex()}): bytes do not match the content hash "
                                f"(got 0x{keccak(row).hex()})")
            rows.append(bytes(row))
        return cls._checked(tuple(rows), tuple(bytes(h) for h in hashes), expected_root)

    @classmethod
    def from_file(cls, path: str | Path, expected_root: bytes | None = None) -> "Dataset":
        """Rows from a local .jsonl or .parquet file (see the module docstring for the row bytes)."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"data file {path} does not exist")
        if path.suffix == ".jsonl":
            lines = path.read_bytes().splitlines()
            rows = [line for line in lines if line.strip()]
        elif path.suffix == ".parquet":
            rows = _parquet_rows(path)
        else:
            raise DataError(f"data file {path}: unsupported type {path.suffix!r} (use .jsonl or .parquet)")
        return cls.from_rows(rows, expected_root)

    @classmethod
    def _checked(cls, rows: tuple[bytes, ...], hashes: tuple[bytes, ...], expected_root: bytes | None) -> "Dataset":
        root = merkle_root(hashes)
        if expected_root is not None and root != bytes(expected_root):
            raise DataError(f"version root mismatch: rows give 0x{root.hex()}, expected 0x{bytes(expected_root).hex()}")
        return cls(rows, hashes, root)

    def __len__(self) -> int:
        return len(self.rows)

    def examples(self, config: TrainingConfig) -> list[Example]:
        """Parse every row for `config.task`; an empty version is a config error."""
        if not self.rows:
            raise ConfigError("dataset", "the Datanet version has no rows to train on")
        return [_parse(index, row, config) for index, row in enumerate(self.rows)]


def _directory_reader(directory: Path) -> Callable[[bytes], bytes | None]:
    if not directory.is_dir():
        raise DataError(f"blob directory {directory} does not exist")

    def read(content_hash: bytes) -> bytes | None:
        for name in (content_hash.hex(), "0x" + content_hash.hex()):
            if (directory / name).is_file():
                return (directory / name).read_bytes()
        return None

    return read


def _parquet_rows(path: Path) -> list[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"data file {path}: not a readable Parquet file ({exc})") from exc
    if "row" in table.column_names and pa.types.is_binary(table.schema.field("row").type):
        return [bytes(v) for v in table.column("row").to_pylist()]
    return [canonical_json(record) for record in table.to_pylist()]


def _parse(index: int, row: bytes, config: TrainingConfig) -> Example:
    try:
        text = row.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"row {index}: not UTF-8 ({exc})") from exc
    record: object = text
    if text.lstrip().startswith("{"):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"row {index}: malformed JSON ({exc})") from exc
    if isinstance(record, str):
        if config.task == "seq_cls":
            raise DataError(f"row {index}: classification rows must be JSON objects with 'text' and 'label'")
        return Example(record)
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise DataError(f"row {index}: expected a JSON object with a string 'text'")
    if config.task != "seq_cls":
        return Example(record["text"])
    return Example(record["text"], _label(index, record.get("label"), config.labels))


def _label(index: int, label: object, labels: tuple[str, ...]) -> int:
    if isinstance(label, str) and label in labels:
        return labels.index(label)
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(labels):
        return label
    raise DataError(f"row {index}: label {label!r} is not one of {list(labels)} or an index into them")


def pang_lee_rows() -> list[bytes]:
    """The 200 labelled movie-review sentences in gensim's test data (latin-1), as JSON rows
    {"text", "label": "neg"|"pos"}: the offline sentiment set the benchmarks train on."""
    import importlib.util
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("pang_lee needs the gensim package (pip install gensim==4.4.0)")
    path = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data" / "pang_lee_polarity.cor"
    rows = []
    for line in path.read_text(encoding="latin-1").splitlines():
        label, _, text = line.partition(" ")
        if label in ("__label__neg", "__label__pos") and text.strip():
            rows.append(canonical_json({"label": label.removeprefix("__label__"), "text": text.strip()}))
    return rows
