"""verify_run accepts honest runs (1 and 2 threads) and rejects other data, another seed, a skipped segment."""
import dataclasses
import shutil

import pytest
import torch
from safetensors.torch import load_file

from training import Dataset, TrainingConfig, run, tensor_hash, verify_run
from training.trainer import checkpoint_path, save_checkpoint
from training.verify import choose_segments
from tests.training.training_testdata import make_rows


@pytest.fixture(scope="module")
def honest(tmp_path_factory, data, config):
    out = tmp_path_factory.mktemp("honest")
    return out, run(config, data, "tiny-llama", out, progress=False)


def test_honest_run_accepted_bit_exact_on_one_thread(honest, data, config):
    out, record = honest
    verdict = verify_run(record, data, out, k=2, config=config, adapter_dir=out / "adapter", tolerance=0)
    assert verdict.accepted, verdict.reason
    assert len(verdict.segments) == 2 and verdict.max_deviation == 0.0


def test_honest_run_accepted_on_two_threads(honest, data, config):
    out, record = honest
    torch.set_num_threads(2)
    try:
        verdict = verify_run(record, data, out, k=4, config=config, adapter_dir=out / "adapter")
    finally:
        torch.set_num_threads(1)
    assert verdict.accepted, verdict.reason
    assert verdict.segments == (0, 1, 2, 3)


def test_segment_choice_follows_the_challenge(honest):
    _, record = honest
    picks = {choose_segments(record, 2, bytes([i]) * 32) for i in range(8)}
    assert len(picks) > 1 and all(len(p) == 2 and len(set(p)) == 2 for p in picks)
    assert choose_segments(record, 2, b"\x01" * 32) == choose_segments(record, 2, b"\x01" * 32)


def test_different_data_rejected(tmp_path, data, config):
    other = Dataset.from_rows(make_rows(24, salt="forged "))
    trained = run(config, other, "tiny-llama", tmp_path / "d", progress=False)
    for path in (tmp_path / "d" / "checkpoints").iterdir():  # the cheater relabels every checkpoint too
        save_checkpoint(path, load_file(path), config, data.root)
    claimed = dataclasses.replace(trained, datanet_root=data.root)
    verdict = verify_run(claimed, data, tmp_path / "d", k=2, config=config)
    assert not verdict.accepted and "does not replay" in verdict.reason, verdict.reason
    assert verdict.max_deviation > 1e-2


def test_different_seed_rejected(tmp_path, data, config):
    reseeded = TrainingConfig(**{**config.to_dict(), "seed": 99})
    trained = run(reseeded, data, "tiny-llama", tmp_path / "s", progress=False)
    for path in (tmp_path / "s" / "checkpoints").iterdir():
        save_checkpoint(path, load_file(path), config, data.root)
    claimed = dataclasses.replace(trained, seed=config.seed, config_hash=config.config_hash())
    verdict = verify_run(claimed, data, tmp_path / "s", k=4, config=config)
    assert not verdict.accepted and "LoRA init" in verdict.reason, verdict.reason


def test_skipped_segment_rejected(honest, tmp_path, data, config):
    src, record = honest
    out = tmp_path / "skip"
    shutil.copytree(src, out)
    before = load_file(checkpoint_path(out, 3))  # claims steps 3..6 were trained, but copies step 3's weights
    before["step"] = torch.tensor([6])
    before["losses"] = torch.cat([before["losses"], before["losses"][-3:]])
    hashes = list(record.checkpoint_hashes)
    hashes[2] = save_checkpoint(checkpoint_path(out, 6), before, config, data.root)
    claimed = dataclasses.replace(record, checkpoint_hashes=tuple(hashes))
    verdict = verify_run(claimed, data, out, k=4, config=config)
    assert not verdict.accepted and "segment 1 (steps 3->6) does not replay" in verdict.reason, verdict.reason


def test_tampered_checkpoint_and_adapter_rejected(honest, tmp_path, data, config):
    src, record = honest
    out = tmp_path / "t"
    shutil.copytree(src, out)
    state = load_file(checkpoint_path(out, 9))
    name = next(k for k in state if k.startswith("adapter.") and "lora_B" in k)
    state[name] = state[name] + 1e-3
    save_checkpoint(checkpoint_path(out, 9), state, config, data.root)
    verdict = verify_run(record, data, out, k=4, config=config)
    assert not verdict.accepted and "step 9 does not match the record's hash" in verdict.reason
    assert tensor_hash(state) not in record.checkpoint_hashes
    checkpoint_path(out, 9).unlink()
    assert "step 9 is missing" in verify_run(record, data, out, k=4, config=config).reason
    shutil.copy(checkpoint_path(src, 9), checkpoint_path(out, 9))
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"junk")
    assert "adapter hash" in verify_run(record, data, out, k=1, config=config, adapter_dir=out / "adapter").reason


def test_wrong_config_or_data_rejected_before_replay(honest, data, config):
    out, record = honest
    assert "config" in verify_run(record, data, out, config=TrainingConfig(**{**config.to_dict(), "rank": 2})).reason
    assert "data root" in verify_run(record, Dataset.from_rows(make_rows(23)), out, config=config).reason
    with pytest.raises(ValueError, match="k: must be at least 1"):
        verify_run(record, data, out, k=0, config=config)


def test_hostile_checkpoints_rejected_not_crashing(honest, tmp_path, data, config):
    src, record = honest
    out = tmp_path / "h"
    shutil.copytree(src, out)
    checkpoint_path(out, 6).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    verdict = verify_run(record, data, out, k=4, config=config)
    assert not verdict.accepted and "step 6 is unusable" in verdict.reason and "not a readable checkpoint" in verdict.reason
    # a cheater may also forge a well-formed file (and its hash) that lacks tensors
    state = load_file(checkpoint_path(src, 6))
    del state["losses"]
    forged = dataclasses.replace(record, checkpoint_hashes=tuple(
        save_checkpoint(checkpoint_path(out, 6), state, config, data.root) if s == 6 else h
        for s, h in zip(record.checkpoint_steps, record.checkpoint_hashes)))
    verdict = verify_run(forged, data, out, k=4, config=config)
    assert not verdict.accepted and "does not fit this model" in verdict.reason and "losses" in verdict.reason
