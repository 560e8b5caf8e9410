"""Training runs on a tiny random-init model: determinism, resume, outputs, record hashing."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from training import ConfigError, Dataset, TrainingConfig, TrainingRun, adapter_hash, evaluate, run
from tests.training.training_testdata import make_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def honest(tmp_path_factory, data, config):
    out = tmp_path_factory.mktemp("honest")
    return out, run(config, data, "tiny-llama", out, run_id=3, progress=False)


def test_outputs_are_a_peft_adapter_checkpoints_and_a_record(honest, data, config):
    out, record = honest
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["r"] == 4
    assert any(k.endswith("lora_B.weight") for k in load_file(out / "adapter" / "adapter_model.safetensors"))
    assert record.step_count == 12 and record.checkpoint_steps == (0, 3, 6, 9, 12)
    assert len({*record.checkpoint_hashes}) == 5
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"step-{s:08d}.safetensors" for s in (0, 3, 6, 9, 12)]
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics] == [0, 1] and all(m["steps"] == 6 and m["train_loss"] > 0 for m in metrics)
    assert record.datanet_root == data.root and record.config_hash == config.config_hash() and record.seed == 7
    assert record.adapter_hash == adapter_hash(out / "adapter")
    assert TrainingRun.from_json((out / "record.json").read_bytes()) == record


def test_two_runs_give_bit_identical_adapters(honest, tmp_path, data, config):
    _, first = honest
    second = run(config, data, "tiny-llama", tmp_path / "again", run_id=3, progress=False)
    assert second.adapter_hash == first.adapter_hash
    assert second.record_hash() == first.record_hash()
    other_seed = run(TrainingConfig(**{**config.to_dict(), "seed": 8}), data, "tiny-llama", tmp_path / "s8",
                     progress=False)
    assert other_seed.adapter_hash != first.adapter_hash


def test_resume_equals_uninterrupted(honest, tmp_path, data, config):
    _, uninterrupted = honest

    class Interrupted(Exception):
        pass

    def crash_at_six(step, _hash):
        if step == 6:
            raise Interrupted

    with pytest.raises(Interrupted):
        run(config, data, "tiny-llama", tmp_path / "r", run_id=3, progress=False, on_checkpoint=crash_at_six)
    assert not (tmp_path / "r" / "adapter").exists()
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        run(config, data, "tiny-llama", tmp_path / "r", run_id=3, progress=False)
    resumed = run(config, data, "tiny-llama", tmp_path / "r", run_id=3, progress=False, resume=True)
    assert resumed == uninterrupted and resumed.record_hash() == uninterrupted.record_hash()


def test_resume_refuses_other_config(honest, tmp_path, data, config):
    out, _ = honest
    other = tmp_path / "o"
    (other / "checkpoints").mkdir(parents=True)
    src = out / "checkpoints" / "step-00000003.safetensors"
    (other / "checkpoints" / src.name).write_bytes(src.read_bytes())
    with pytest.raises(ConfigError, match="written for another config"):
        run(TrainingConfig(**{**config.to_dict(), "lr": 1e-2}), data, "tiny-llama", other, progress=False, resume=True)
    with pytest.raises(ConfigError, match="another Datanet version"):
        run(config, Dataset.from_rows(make_rows(24, "x")), "tiny-llama", other, progress=False, resume=True)


def test_record_hash_stable_across_processes(honest, tmp_path):
    out, record = honest
    script = (
        "import sys, torch; torch.set_num_threads(1)\n"
        "from training import Dataset, TrainingConfig, run\n"
        "sys.path.insert(0, sys.argv[2]); from training_testdata import make_rows\n"
        "cfg = TrainingConfig(rank=4, alpha=8, dropout=0.1, lr=5e-3, batch_size=4, max_length=32, epochs=2,"
        " checkpoint_every=3, seed=7)\n"
        "print(run(cfg, Dataset.from_rows(make_rows(24)), 'tiny-llama', sys.argv[1], run_id=3,"
        " progress=False).record_hash().hex())\n")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "p"), str(Path(__file__).parent)],
                            capture_output=True, text=True, cwd=ROOT, env={"PYTHONHASHSEED": "12345", "PATH": ""},
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == record.record_hash().hex()


def test_classification_run_and_attribution_hook(tmp_path, data):
    config = TrainingConfig(task="seq_cls", labels=("neg", "pos"), target_modules=("c_attn",), rank=4, alpha=8,
                            lr=1e-2, batch_size=6, max_length=32, epochs=2, checkpoint_every=2, seed=1)
    seen = {}

    def index_builder(trained):
        seen["rows"] = len(trained.examples)
        seen["training"] = trained.model.training
        seen["batched"] = evaluate(trained.model, trained.tokenizer, trained.examples, config)
        one_by_one = [evaluate(trained.model, trained.tokenizer, [e], config) for e in trained.examples]
        seen["single"] = {k: sum(r[k] for r in one_by_one) / len(one_by_one) for k in ("loss", "accuracy")}
        return b"\xab" * 32

    record = run(config, data, "tiny-gpt2", tmp_path / "cls", progress=False, attribution=index_builder)
    batched, single = seen.pop("batched"), seen.pop("single")
    assert seen == {"rows": 24, "training": False}
    assert batched["accuracy"] == single["accuracy"], "right padding must not change a classifier's answer"
    assert batched["loss"] == pytest.approx(single["loss"], rel=1e-5)
    assert record.attribution_index_root == b"\xab" * 32
    metrics = json.loads((tmp_path / "cls" / "metrics.json").read_text())
    assert all(0 <= m["train_accuracy"] <= 1 for m in metrics)
    saved = load_file(tmp_path / "cls" / "adapter" / "adapter_model.safetensors")
    assert any("score" in k for k in saved), "the classifier head is trained and saved with the adapter"


def test_record_rejects_malformed_json():
    with pytest.raises(ValueError, match="malformed"):
        TrainingRun.from_json("{not json")
    with pytest.raises(ValueError, match="unexpected fields"):
        TrainingRun.from_json('{"evil": 1}')
    with pytest.raises(ValueError, match="base_model_hash"):
        TrainingRun.from_json(json.dumps({"base_model_hash": "0x12"}))


def test_resume_refuses_damaged_checkpoint(honest, tmp_path, data, config):
    out, _ = honest
    (tmp_path / "d" / "checkpoints").mkdir(parents=True)
    (tmp_path / "d" / "checkpoints" / "step-00000003.safetensors").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="not a readable checkpoint"):
        run(config, data, "tiny-llama", tmp_path / "d", progress=False, resume=True)
