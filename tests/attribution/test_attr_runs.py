"""End to end with ModelFactory: training.run builds the index through our hook, the record commits
its root, and `openledger attribute` answers from the run directory (real training, real CLI)."""
import argparse
import dataclasses
import json
import shutil

import pytest
from eth_utils import keccak

from attribution import AttributionError, IndexRootMismatch, UnknownRun, verify
from attribution.runs import index_hook, open_run
from node.cli import attribute as cli_attribute
from training import Dataset, TrainingConfig, TrainingRun, run

WORDS = ["a fine film", "a dull plot", "a moving story", "a tedious mess"]


def rows(n: int = 24) -> list[bytes]:
    return [json.dumps({"text": f"review {i}: {WORDS[i % 4]} with the zebra quartzite manifesto" if i == 5 else f"review {i}: {WORDS[i % 4]}",
                        "label": "pos" if i % 2 == 0 else "neg",
                        "contributor": "0x" + keccak(b"c%d" % (i % 5))[:20].hex()}).encode() for i in range(n)]


def main(argv: list[str]) -> int:
    """`openledger attribute ...` through the subcommand's own register() and handler."""
    parser = argparse.ArgumentParser(prog="openledger")
    cli_attribute.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


CONFIG = TrainingConfig(task="seq_cls", labels=("pos", "neg"), rank=4, alpha=8, target_modules=("c_attn",), lr=5e-3,
                        epochs=2, batch_size=8, max_length=48, checkpoint_every=100, seed=11)


def training_config(method: str) -> TrainingConfig:
    """ensemble-v1 gets checkpoints at steps 0, 2, 4, 6 (it attributes over the last three)."""
    return dataclasses.replace(CONFIG, checkpoint_every=2) if method == "ensemble-v1" else CONFIG


@pytest.fixture(scope="module", params=["datainf-v1", "span-v1", "ensemble-v1"])
def trained(tmp_path_factory, request):
    out = tmp_path_factory.mktemp(request.param)
    config = {"min_len": 10} if request.param == "span-v1" else {}
    record = run(training_config(request.param), Dataset.from_rows(rows()), "tiny-gpt2", out, run_id=4, progress=False,
                 attribution=index_hook(request.param, progress=False, **config))
    return out, record, request.param


def test_record_commits_the_index_root_and_open_run_answers(trained):
    out, record, method = trained
    assert record.attribution_index_root != bytes(32)
    assert TrainingRun.from_json((out / "record.json").read_bytes()).attribution_index_root == record.attribution_index_root
    attributor = open_run(out)
    prompt, output = (b"query", b"zebra quartzite manifesto") if method == "span-v1" else (b"review 99: a fine film", b"pos")
    proof = attributor.attribute(prompt, output)
    assert proof.method == method and proof.index_root == record.attribution_index_root
    assert sum(s.ppm for s in proof.shares) == 1_000_000
    if method == "span-v1":
        assert proof.shares[0].contribution_id == keccak(rows()[5])
    assert verify(proof.encode(), open_run(out), prompt, output).accepted


def test_cli_prints_top_contributions(trained, capsys):
    out, _, method = trained
    prompt, output = ("q", "zebra quartzite manifesto") if method == "span-v1" else ("review 99: a dull plot", "neg")
    assert main(["attribute", "--run", str(out), "--prompt", prompt, "--output", output, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["method"] == method and sum(s["ppm"] for s in printed["shares"]) == 1_000_000
    assert printed["proof_hash"].startswith("0x") and len(printed["proof"]) > 2


def test_cli_bad_inputs_name_the_problem(trained, tmp_path, capsys):
    out, _, _ = trained
    assert main(["attribute", "--run", str(tmp_path / "nope"), "--prompt", "p", "--output", "x"]) == 1
    assert "not a training run directory" in capsys.readouterr().err
    assert main(["attribute", "--run", str(out), "--prompt", "p", "--output", ""]) == 1
    assert "output is empty" in capsys.readouterr().err


def test_tampered_index_and_unindexed_run_are_refused(trained, tmp_path):
    out, record, method = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    manifest = json.loads((copy / "attribution" / "manifest.json").read_text())
    manifest["contributions"][0][1] = "00" * 20  # redirect row 0's pay to another address
    (copy / "attribution" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexRootMismatch):
        open_run(copy)
    (copy / "record.json").write_bytes(record.with_attribution_root(bytes(32)).canonical_json())
    with pytest.raises(UnknownRun, match="no attribution index"):
        open_run(copy)


def test_ray_build_and_sharded_cli_query_match_one_machine(trained, ray_local, tmp_path, capsys):
    """The same run with its index built over 2 Ray workers writes the same record, and
    `attribute --ray auto --workers 3` (gradient rows held by Ray actors; a span index's shards
    queried by its engine) prints the same proof."""
    out, record, method = trained
    config = {"min_len": 10} if method == "span-v1" else {}
    on_ray = run(training_config(method), Dataset.from_rows(rows()), "tiny-gpt2", tmp_path, run_id=4, progress=False,
                 attribution=index_hook(method, progress=False, workers=2, **config))
    assert on_ray == record
    if method == "span-v1":
        assert (tmp_path / "attribution" / "infini-gram" / "table.1").exists()  # built as two shards
    query = ["--prompt", "review 99: a dull plot", "--output", "zebra quartzite manifesto" if method == "span-v1"
             else "neg", "--json"]
    assert main(["attribute", "--run", str(out), *query]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(["attribute", "--run", str(out), *query, "--ray", "auto", "--workers", "3"]) == 0
    assert json.loads(capsys.readouterr().out) == local


def test_ensemble_run_uses_its_recorded_checkpoints_and_refuses_tampered_ones(trained, tmp_path):
    out, record, method = trained
    if method != "ensemble-v1":
        pytest.skip("checkpoint ensembles only")
    meta = json.loads((out / "attribution" / "run.json").read_text())
    assert meta["checkpoint_steps"] == [2, 4, 6] and list(record.checkpoint_steps) == [0, 2, 4, 6]
    assert len(open_run(out).model) == 3
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "attribution" / "run.json").write_text(json.dumps({**meta, "checkpoint_steps": [0, 4, 6]}))
    with pytest.raises(AttributionError, match="not an even spread"):
        open_run(copy)
    (copy / "attribution" / "run.json").write_text(json.dumps(meta))
    shutil.copy(out / "checkpoints" / "step-00000002.safetensors", copy / "checkpoints" / "step-00000004.safetensors")
    with pytest.raises(AttributionError, match="does not hash to the run record"):
        open_run(copy)
