"""ensemble-v1: the run's checkpoints with a damped inverse per block (tiny model, real torch + peft).

Its proofs must verify, be re-checkable by another process holding only the saved checkpoints and
index, be deterministic, refuse malformed input, and keep the inflation defences."""
import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from attribution import (
    METHODS, PPM, AttributionError, AttributionProof, EnsembleConfig, GradDotConfig, GradientAttributor, GradientIndex,
    build_gradient_index, chain_seed, near_duplicates, onchain_args, project_rows, self_influence, verify,
)
from attribution.gradient import model_blocks
from tests.attribution.attr_tiny import PLANTED, encode, make_tiny, per_example_loss
from tests.attribution.test_attr_robust import HONEST, QUERIES, X, Y, outlier_rows

SEED = chain_seed(b"\x44" * 32, 9)
CONFIG = EnsembleConfig(top_k=5)


@pytest.fixture(scope="module")
def run(tiny):
    """The tiny run's three checkpoints (steps 50, 100, 150) and an ensemble-v1 attributor over them."""
    x, y = tiny.x, tiny.y
    ckpts = make_tiny(x, y, every=50).checkpoints
    index = build_gradient_index(ckpts, per_example_loss, tiny.batches, tiny.contributions, CONFIG, SEED)
    return ckpts, GradientAttributor(index, ckpts, per_example_loss, encode)


def test_registered_as_method_five_on_chain(tiny, run):
    import genesis

    _, attributor = run
    proof = attributor.attribute(*tiny.query(8))
    assert METHODS["ensemble-v1"].code == 5 == onchain_args(proof)[1]
    assert genesis.ATTRIBUTION_METHODS[5] == "ensemble-v1"
    assert dict(proof.params)["damping_ppm"] == CONFIG.damping_ppm


def test_index_has_one_block_per_checkpoint_and_lora_module(tiny, run):
    ckpts, attributor = run
    assert len(ckpts) == 3
    names = attributor.index.block_names
    assert len(names) == 3 * len(model_blocks(tiny.model)) and names[0].startswith("ckpt0.") and names[-1].startswith("ckpt2.")
    assert attributor.index.vectors.shape == (len(tiny.contributions), len(names) * CONFIG.proj_dim)


def test_planted_mislabel_ranks_first_decile(tiny, run):
    ckpts, _ = run
    rows = project_rows(ckpts, per_example_loss, tiny.batches, SEED, CONFIG.proj_dim)
    scores = self_influence(rows, CONFIG, len(model_blocks(ckpts)))
    assert int((scores > scores[PLANTED]).sum()) < 0.1 * len(scores)


def test_proof_verifies_across_thread_counts_and_tampering_fails(tiny, run):
    _, attributor = run
    prompt, output = tiny.query(8)
    proof = attributor.attribute(prompt, output)
    assert sum(s.ppm for s in proof.shares) == PPM and len(proof.shares) >= 2
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            assert verify(proof.encode(), attributor, prompt, output).accepted
        finally:
            torch.set_num_threads(1)
    a, b, *rest = proof.shares
    moved = dataclasses.replace(proof, shares=(dataclasses.replace(a, ppm=a.ppm - 1), dataclasses.replace(b, ppm=b.ppm + 1), *rest))
    assert "differ" in verify(moved, attributor, prompt, output).reason
    other_damping = dataclasses.replace(proof, params=EnsembleConfig(top_k=5, damping_ppm=1).params())
    assert not verify(other_damping, attributor, prompt, output).accepted


def test_deterministic_across_builds(tiny, run):
    ckpts, attributor = run
    again = build_gradient_index(ckpts, per_example_loss, tiny.batches, tiny.contributions, CONFIG, SEED)
    assert again.root == attributor.index.root and np.array_equal(again.vectors, attributor.index.vectors)
    prompt, output = tiny.query(21)
    first = attributor.attribute(prompt, output)
    assert GradientAttributor(again, ckpts, per_example_loss, encode).attribute(prompt, output).encode() == first.encode()


RECHECK = textwrap.dedent("""
    import json, sys, torch
    from safetensors.torch import load_file
    from attribution import AttributionProof, GradientAttributor, GradientIndex, verify
    from tests.attribution.attr_tiny import encode, make_tiny, per_example_loss, synthetic
    torch.set_num_threads(1)
    d = sys.argv[1]
    job = json.load(open(d + "/job.json"))
    x, _ = synthetic()
    models = []
    for c in range(job["checkpoints"]):  # the architecture, untrained; then the committed weights
        model = make_tiny(x, torch.zeros(len(x), dtype=torch.long), steps=0).model
        model.load_state_dict(load_file(f"{d}/ckpt{c}.safetensors"))
        models.append(model.eval())
    index = GradientIndex.load(d + "/index", expected_root=bytes.fromhex(job["root"]))
    attributor = GradientAttributor(index, models, per_example_loss, encode)
    prompt, output = bytes.fromhex(job["prompt"]), bytes.fromhex(job["output"])
    verdict = verify(bytes.fromhex(job["proof"]), attributor, prompt, output)
    claimed = AttributionProof.decode(bytes.fromhex(job["proof"]))
    mine = attributor._proof(prompt, output, torch.frombuffer(bytearray(claimed.evidence), dtype=torch.int16).numpy())
    print(json.dumps({"accepted": verdict.accepted, "reason": verdict.reason, "hash": mine.hash().hex(),
                      "own_attribution": attributor.attribute(prompt, output).hash().hex()}))
""")


def test_another_process_rechecks_the_same_integers(tiny, run, tmp_path):
    """A validator in another process, holding only the saved checkpoints and the index checked
    against its committed root, accepts the proof and recomputes the same shares (same hash)."""
    ckpts, attributor = run
    for c, model in enumerate(ckpts):
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / f"ckpt{c}.safetensors"))
    root = attributor.index.save(tmp_path / "index")
    prompt, output = tiny.query(30)
    proof = attributor.attribute(prompt, output)
    (tmp_path / "job.json").write_text(json.dumps({"checkpoints": len(ckpts), "root": root.hex(), "proof": proof.encode().hex(),
                                                   "prompt": prompt.hex(), "output": output.hex()}))
    root_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", RECHECK, str(tmp_path)], capture_output=True, text=True, timeout=600,
                          cwd=root_dir, env={**os.environ, "PYTHONPATH": root_dir})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["accepted"], result["reason"]
    assert result["hash"] == proof.hash().hex()
    assert result["own_attribution"] == proof.hash().hex()


def test_malformed_input_is_refused(tiny, run):
    ckpts, attributor = run
    prompt, output = tiny.query(8)
    proof = attributor.attribute(prompt, output)
    short = dataclasses.replace(proof, evidence=proof.evidence[:-2])
    assert "evidence must hold" in verify(short, attributor, prompt, output).reason
    assert not verify(proof.encode()[:-1], attributor, prompt, output).accepted
    with pytest.raises(AttributionError, match="do not match the index"):  # fewer checkpoints than the index has
        GradientAttributor(attributor.index, ckpts[:2], per_example_loss, encode)
    with pytest.raises(AttributionError, match="no model"):
        GradientAttributor(attributor.index, [], per_example_loss, encode)
    with pytest.raises(AttributionError, match="damping_ppm must be positive"):
        EnsembleConfig(damping_ppm=-1)
    # the checkpoints in another order are other weights: the honest proof no longer verifies
    swapped = GradientAttributor(attributor.index, [ckpts[1], ckpts[0], ckpts[2]], per_example_loss, encode)
    assert "query gradient differs" in verify(proof, swapped, prompt, output).reason
    # a graddot-v1 index cannot check an ensemble-v1 proof
    single = GradientAttributor(build_gradient_index(tiny.model, per_example_loss, tiny.batches, tiny.contributions, GradDotConfig(), SEED),
                                tiny.model, per_example_loss, encode)
    assert not verify(proof, single, prompt, output).accepted
    assert AttributionProof.decode(proof.encode()) == proof


def test_index_on_disk_round_trips(run, tmp_path):
    _, attributor = run
    root = attributor.index.save(tmp_path)
    loaded = GradientIndex.load(tmp_path, expected_root=root)
    assert loaded.config == CONFIG and loaded.block_names == attributor.index.block_names


def _attacker_payout(x, y, config, canonical=None) -> float:
    """Mean share of the fee paid to the owner of rows HONEST.. (ensemble-v1 over 3 checkpoints)."""
    tiny = make_tiny(x, y, list(range(HONEST)) + [999] * (len(x) - HONEST), every=50)
    index = build_gradient_index(tiny.checkpoints, per_example_loss, tiny.batches, tiny.contributions, config, 5, canonical)
    attributor = GradientAttributor(index, tiny.checkpoints, per_example_loss, encode)
    owner = tiny.contributions[-1].contributor
    paid = 0
    for q in QUERIES:
        proof = attributor.attribute(X[q].numpy().astype("<f4").tobytes(), str(int(Y[q])).encode())
        paid += sum(s.ppm for s in proof.shares if s.contributor == owner)
    return paid / len(QUERIES) / PPM


def test_inflation_gain_bounded_with_the_defences_on():
    """Outlier rows (shadow-model crafted) and copy spam (Wang et al. 2409.05657's two attacks):
    with norm clipping and near-duplicate credit the attacker gains at most 10% of the payout."""
    y = Y[:60]
    clean, attacked = X[:60], torch.cat([X[:HONEST], outlier_rows()])
    undefended = _attacker_payout(attacked, y, EnsembleConfig(clip_ppm=0)) - _attacker_payout(clean, y, EnsembleConfig(clip_ppm=0))
    defended = _attacker_payout(attacked, y, EnsembleConfig()) - _attacker_payout(clean, y, EnsembleConfig())
    centre = X[60:80].mean(0)
    nearest = torch.argsort(((X[:HONEST] - centre) ** 2).sum(1))[:4]
    spam_x, spam_y = torch.cat([X[:HONEST], X[nearest] + 1e-3]), torch.cat([Y[:HONEST], Y[nearest]])
    canonical = near_duplicates([" ".join(f"{v:.1f}" for v in r.tolist()).encode() for r in spam_x])
    spam = _attacker_payout(spam_x, spam_y, EnsembleConfig(), canonical)  # the attacker owns only the copies
    print(f"ensemble-v1: outlier gain {undefended:.3f} undefended, {defended:.3f} with clipping; copy spam {spam:.3f} defended")
    assert undefended > 0.05, "the outlier attack should work against the undefended method"
    assert defended <= 0.10
    assert spam <= 0.10
