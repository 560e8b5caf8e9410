"""`openledger train` / `openledger verify-run` in-process through node.cli.main: real files, tiny model."""
import json

import pytest
from eth_utils import keccak

from node.cli import main
from tests.training.training_testdata import RUN_TOML, make_rows
from vm.merkle import merkle_root

CONFIG = RUN_TOML


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    rows = make_rows(12)
    (tmp / "rows.jsonl").write_bytes(b"\n".join(rows) + b"\n")
    (tmp / "run.toml").write_text(CONFIG)
    return tmp, merkle_root([keccak(r) for r in rows])


@pytest.fixture(scope="module")
def trained(inputs):
    tmp, root = inputs
    out = tmp / "out"
    args = ["train", "--data", str(tmp / "rows.jsonl"), "--root", "0x" + root.hex(), "--base", "tiny-llama",
            "--config", str(tmp / "run.toml"), "--out", str(out), "--seed-block", "0x" + "ab" * 32, "--run-id", "9"]
    assert main(args) == 0
    return out


def test_train_writes_a_record_with_the_chain_seed(trained, inputs, capsys):
    from training import TrainingRun, derive_seed
    _, root = inputs
    record = TrainingRun.from_json((trained / "record.json").read_bytes())
    assert record.seed == derive_seed(bytes.fromhex("ab" * 32), 9) and record.run_id == 9
    assert record.datanet_root == root and record.step_count == 3
    assert json.loads((trained / "config.json").read_text())["seed"] == record.seed


def test_verify_run_accepts_then_rejects_other_data(trained, inputs, tmp_path, capsys):
    tmp, _ = inputs
    assert main(["verify-run", "--run", str(trained), "--data", str(tmp / "rows.jsonl"), "-k", "2",
                 "--tolerance", "0", "--challenge", "0x" + "01" * 32]) == 0
    verdict = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert verdict["accepted"] and len(verdict["segments"]) == 2
    other = tmp_path / "other.jsonl"
    other.write_bytes(b"\n".join(make_rows(12, "x")))
    assert main(["verify-run", "--run", str(trained), "--data", str(other)]) == 2
    assert "data root" in json.loads(capsys.readouterr().out)["reason"]


@pytest.mark.parametrize("change, message", [
    (["--root", "0x" + "00" * 32], "version root mismatch"),
    (["--root", "0x1234"], "invalid hash '0x1234'"),
    (["--run-id", "-1"], "invalid number '-1'"),
    (["--datanet", "3"], "invalid Datanet version '3'"),
    (["--config", "missing.toml"], "cannot read missing.toml"),
    (["--base", "gpt-5"], "unknown base model 'gpt-5'"),
])
def test_bad_arguments_are_named(inputs, tmp_path, capsys, change, message):
    tmp, root = inputs
    args = {"--data": str(tmp / "rows.jsonl"), "--base": "tiny-llama", "--config": str(tmp / "run.toml"),
            "--out": str(tmp_path / "o")}
    for flag, value in zip(change[::2], change[1::2]):
        args[flag] = value
    argv = ["train"] + [x for kv in args.items() for x in kv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse rejects malformed values itself
        code = exc.code
    assert code in (1, 2)
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "record.json").exists()


def test_bad_config_field_named(inputs, tmp_path, capsys):
    tmp, _ = inputs
    (tmp_path / "bad.toml").write_text("[training]\nrank = 0\n")
    assert main(["train", "--data", str(tmp / "rows.jsonl"), "--base", "tiny-llama", "--config",
                 str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o")]) == 1
    assert "rank: must be a positive integer, got 0" in capsys.readouterr().err
