"""Training sweeps on a local Ray instance: every run of a sweep file trains as a Ray task and
writes the record a single `training.run` writes for the same config (bit-identical); a bad
sweep file is refused naming its fault."""
import json

import pytest
from eth_utils import keccak

from node.cli import main
from tests.training.training_testdata import RUN_TOML, make_rows
from training import ConfigError, Dataset, TrainingConfig, run
from training.sweep import load_sweep
from vm.merkle import merkle_root



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    rows = make_rows(8)
    (tmp / "rows.jsonl").write_bytes(b"\n".join(rows) + b"\n")
    (tmp / "run.toml").write_text(RUN_TOML)
    (tmp / "sweep.toml").write_text('config = "run.toml"\nseeds = [1, 2]\n[grid]\nlr = [0.005, 0.02]\n')
    return tmp, merkle_root([keccak(r) for r in rows])


def test_sweep_runs_are_the_single_process_runs(files, ray_local, tmp_path):
    tmp, root = files
    out = tmp_path / "out"
    assert main(["train", "--sweep", str(tmp / "sweep.toml"), "--data", str(tmp / "rows.jsonl"), "--root",
                 "0x" + root.hex(), "--base", "tiny-llama", "--out", str(out), "--ray", "auto"]) == 0
    table = json.loads((out / "sweep.json").read_text())
    assert [(r["run"], r["lr"], r["seed"]) for r in table] == [(1, 0.005, 1), (2, 0.005, 2), (3, 0.02, 1), (4, 0.02, 2)]
    assert len({r["record_hash"] for r in table}) == 4
    config = TrainingConfig.from_dict({**TrainingConfig.from_toml(tmp / "run.toml").to_dict(), "lr": 0.02, "seed": 1})
    single = run(config, Dataset.from_file(tmp / "rows.jsonl"), "tiny-llama", tmp_path / "single", run_id=3,
                 progress=False)
    assert "0x" + single.record_hash().hex() == table[2]["record_hash"]
    assert (out / "run-3" / "record.json").read_bytes() == (tmp_path / "single" / "record.json").read_bytes()


@pytest.mark.parametrize("text, message", [
    ('config = "run.toml"\nbogus = 1\n', "unknown key(s) ['bogus']"),
    ('seeds = [1]\n', "needs config ="),
    ('config = "run.toml"\n[grid]\nlearning_rate = [0.1]\n', "unknown config field(s) ['learning_rate']"),
    ('config = "run.toml"\n[grid]\nlr = []\n', "non-empty lists"),
    ('config = "run.toml"\n[grid]\nrank = [0]\n', "rank"),
    ('config = "run.toml"\nseeds = []\n', "non-empty list of integers"),
    ('config = "missing.toml"\n', "missing.toml"),
])
def test_bad_sweep_files_are_refused_naming_the_fault(files, tmp_path, text, message):
    tmp, _ = files
    (tmp / "bad.toml").write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        load_sweep(tmp / "bad.toml")


def test_sweep_without_ray_is_a_clear_cli_error(files, tmp_path, capsys):
    tmp, _ = files
    assert main(["train", "--sweep", str(tmp / "sweep.toml"), "--data", str(tmp / "rows.jsonl"), "--base",
                 "tiny-llama", "--out", str(tmp_path / "o")]) == 1
    assert "--sweep runs on Ray: add --ray auto" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp / "rows.jsonl"), "--base", "tiny-llama", "--out", str(tmp_path / "o")]) == 1
    assert "train needs --config or --sweep" in capsys.readouterr().err
