"""Datanet rows: content hashes and the version root are checked before training; bad rows are named."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from eth_utils import keccak

from training import DataError, Dataset, TrainingConfig
from vm.merkle import merkle_root

from tests.training.training_testdata import make_rows

CLS = TrainingConfig(task="seq_cls", target_modules=("c_attn",), labels=("neg", "pos"))


def test_jsonl_rows_are_the_line_bytes_in_order(tmp_path):
    rows = make_rows(5)
    path = tmp_path / "v1.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n\n")
    data = Dataset.from_file(path, expected_root=merkle_root([keccak(r) for r in rows]))
    assert data.rows == tuple(rows) and data.hashes == tuple(keccak(r) for r in rows)
    assert [e.label for e in data.examples(CLS)] == [0, 1, 0, 1, 0]


def test_root_mismatch_rejected(tmp_path):
    rows = make_rows(4)
    path = tmp_path / "v1.jsonl"
    path.write_bytes(b"\n".join(rows[::-1]))  # same rows, other order: another version
    with pytest.raises(DataError, match="version root mismatch"):
        Dataset.from_file(path, expected_root=merkle_root([keccak(r) for r in rows]))


def test_blob_directory_detects_corrupted_and_missing_rows(tmp_path):
    rows = make_rows(4)
    hashes = [keccak(r) for r in rows]
    for row, h in zip(rows, hashes):
        (tmp_path / h.hex()).write_bytes(row)
    root = merkle_root(hashes)
    assert Dataset.from_blobs(hashes, tmp_path, expected_root=root).rows == tuple(rows)
    (tmp_path / hashes[2].hex()).write_bytes(rows[2].replace(b"review", b"REVIEW"))
    with pytest.raises(DataError, match=f"row 2 \\(0x{hashes[2].hex()}\\): bytes do not match"):
        Dataset.from_blobs(hashes, tmp_path, expected_root=root)
    (tmp_path / hashes[2].hex()).unlink()
    with pytest.raises(DataError, match="row 2 .*not in the blob store"):
        Dataset.from_blobs(hashes, tmp_path)
    with pytest.raises(DataError, match="row 0: content hash must be 32 bytes"):
        Dataset.from_blobs([b"\x01" * 31], tmp_path)


def test_blob_getter_callable():
    rows = make_rows(3)
    store = {keccak(r): r for r in rows}
    assert Dataset.from_blobs(list(store), store.get).rows == tuple(rows)


def test_parquet_row_column_and_records(tmp_path):
    rows = make_rows(3)
    pq.write_table(pa.table({"row": pa.array(rows, pa.binary())}), tmp_path / "raw.parquet")
    assert Dataset.from_file(tmp_path / "raw.parquet").rows == tuple(rows)
    pq.write_table(pa.table({"text": ["b", "a"], "label": [1, 0]}), tmp_path / "rec.parquet")
    data = Dataset.from_file(tmp_path / "rec.parquet")
    assert data.rows == (b'{"label":1,"text":"b"}', b'{"label":0,"text":"a"}')
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        Dataset.from_file(tmp_path / "junk.parquet")


@pytest.mark.parametrize("row, message", [
    (b"\xff\xfe text", "row 0: not UTF-8"),
    (b'{"text": "x", ', "row 0: malformed JSON"),
    (b'{"txt": "x"}', "row 0: expected a JSON object with a string 'text'"),
    (b'{"text": "x", "label": "meh"}', "label 'meh' is not one of"),
    (b'{"text": "x", "label": 2}', "label 2 is not one of"),
    (b'{"text": "x", "label": true}', "label True is not one of"),
    (b"plain text row", "classification rows must be JSON objects"),
])
def test_hostile_rows_named(row, message):
    with pytest.raises(DataError, match=message):
        Dataset.from_rows([row]).examples(CLS)


def test_plain_text_rows_for_causal_lm():
    examples = Dataset.from_rows([b"just text", json.dumps({"text": "obj"}).encode()]).examples(TrainingConfig())
    assert [e.text for e in examples] == ["just text", "obj"]


def test_bad_file_types(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        Dataset.from_file(tmp_path / "nope.jsonl")
    (tmp_path / "rows.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported type '.csv'"):
        Dataset.from_file(tmp_path / "rows.csv")
