"""Gradient attribution on a tiny LoRA classifier: mislabel detection, index, proofs, verification."""
import dataclasses

import numpy as np
import pytest
import torch

from attribution import (
    AttributionProof, DataInfConfig, EmptyOutput, GradDotConfig, GradientAttributor, GradientIndex,
    IndexRootMismatch, PPM, Share, UnknownRun, build_gradient_index, chain_seed, project_rows,
    self_influence, verify,
)
from attribution.grads import lora_blocks

from tests.attribution.attr_tiny import PLANTED, encode, per_example_loss

SEED = chain_seed(b"\x11" * 32, 7)


@pytest.mark.parametrize("config", [GradDotConfig(), DataInfConfig()], ids=["graddot", "datainf"])
def test_planted_mislabel_ranks_in_top_ten_percent(tiny, config):
    rows = project_rows(tiny.model, per_example_loss, tiny.batches, SEED, config.proj_dim)
    scores = self_influence(rows, config, len(lora_blocks(tiny.model)))
    rank = int((scores > scores[PLANTED]).sum())
    assert rank < 0.1 * len(scores), f"planted mislabel ranked {rank} of {len(scores)}"


@pytest.fixture(scope="module", params=[GradDotConfig(top_k=5), DataInfConfig(top_k=5)], ids=["graddot", "datainf"])
def attributor(tiny, request):
    index = build_gradient_index(tiny.model, per_example_loss, tiny.batches, tiny.contributions, request.param, SEED)
    return GradientAttributor(index, tiny.model, per_example_loss, encode)


def test_query_credits_similar_rows_and_pays_exactly_one_million(tiny, attributor):
    prompt, output = tiny.query(3)
    proof = attributor.attribute(prompt, output)
    assert sum(s.ppm for s in proof.shares) == PPM
    assert 1 <= len(proof.shares) <= 5
    top_rows = [next(i for i, c in enumerate(tiny.contributions) if c.contribution_id == s.contribution_id) for s in proof.shares]
    assert all(tiny.y[r] == tiny.y[3] for r in top_rows), "influential rows should share the query's label"
    assert AttributionProof.decode(proof.encode()) == proof


@pytest.mark.parametrize("threads", [1, 2])
def test_honest_proof_accepted_across_thread_counts(tiny, attributor, threads):
    prompt, output = tiny.query(8)
    proof = attributor.attribute(prompt, output)
    torch.set_num_threads(threads)
    try:
        verdict = verify(proof.encode(), attributor, prompt, output)
    finally:
        torch.set_num_threads(1)
    assert verdict.accepted, verdict.reason


def _tamper(proof: AttributionProof, kind: str) -> AttributionProof:
    shares = list(proof.shares)
    if kind == "weights":
        a, b = shares[0], shares[1]
        shares[0], shares[1] = dataclasses.replace(a, ppm=a.ppm - 1000), dataclasses.replace(b, ppm=b.ppm + 1000)
        return dataclasses.replace(proof, shares=tuple(shares))
    if kind == "swapped":
        a, b = shares[0], shares[1]
        shares[0], shares[1] = Share(b.contribution_id, b.contributor, a.ppm), Share(a.contribution_id, a.contributor, b.ppm)
        return dataclasses.replace(proof, shares=tuple(shares))
    if kind == "root":
        return dataclasses.replace(proof, index_root=b"\x22" * 32)
    if kind == "seed":
        return dataclasses.replace(proof, seed=proof.seed + 1)
    if kind == "query":
        return dataclasses.replace(proof, query_hash=b"\x33" * 32)
    if kind == "evidence":
        vec = np.frombuffer(proof.evidence, dtype="<i2").copy()
        vec[: len(vec) // 2] = -vec[: len(vec) // 2]
        return dataclasses.replace(proof, evidence=vec.astype("<i2").tobytes())
    if kind == "sum":
        return dataclasses.replace(proof, shares=(dataclasses.replace(shares[0], ppm=shares[0].ppm + 1), *shares[1:]))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind,reason", [
    ("weights", "weights differ"), ("swapped", "differ"), ("root", "index root"), ("seed", "seed"),
    ("query", "query hash"), ("evidence", "query gradient differs"), ("sum", "sum to"),
])
def test_each_tampering_is_rejected_with_a_reason(tiny, attributor, kind, reason):
    prompt, output = tiny.query(8)
    proof = attributor.attribute(prompt, output)
    assert len(proof.shares) >= 2
    verdict = verify(_tamper(proof, kind), attributor, prompt, output)
    assert not verdict.accepted
    assert reason in verdict.reason


def test_unknown_method_and_garbage_bytes_rejected(tiny, attributor):
    prompt, output = tiny.query(8)
    proof = attributor.attribute(prompt, output)
    assert "unknown attribution method" in verify(dataclasses.replace(proof, method="magic-v9"), attributor, prompt, output).reason
    assert not verify(b"\xc0\x01garbage", attributor, prompt, output).accepted
    assert not verify(proof.encode()[:-3], attributor, prompt, output).accepted


def test_empty_output_is_an_error(tiny, attributor):
    with pytest.raises(EmptyOutput):
        attributor.attribute(tiny.query(0)[0], b"")


def test_index_round_trips_and_checks_its_root(tiny, attributor, tmp_path):
    index = attributor.index
    root = index.save(tmp_path / "idx")
    loaded = GradientIndex.load(tmp_path / "idx", expected_root=root)
    assert loaded.root == root and np.array_equal(loaded.vectors, index.vectors)
    with pytest.raises(IndexRootMismatch, match="0x" + root.hex()):
        GradientIndex.load(tmp_path / "idx", expected_root=b"\x00" * 32)
    with pytest.raises(UnknownRun):
        GradientIndex.load(tmp_path / "no-such-run")
    # a flipped vector byte on disk changes the root
    vec = np.load(tmp_path / "idx" / "vectors.npy")
    vec[0, 0] += 1
    np.save(tmp_path / "idx" / "vectors.npy", vec)
    with pytest.raises(IndexRootMismatch):
        GradientIndex.load(tmp_path / "idx", expected_root=root)


def test_index_depends_on_seed(tiny):
    a = build_gradient_index(tiny.model, per_example_loss, tiny.batches, tiny.contributions, GradDotConfig(), 1)
    b = build_gradient_index(tiny.model, per_example_loss, tiny.batches, tiny.contributions, GradDotConfig(), 2)
    again = build_gradient_index(tiny.model, per_example_loss, tiny.batches, tiny.contributions, GradDotConfig(), 1)
    assert a.root != b.root and a.root == again.root


def test_onchain_args_fit_the_attribution_contract(tiny, attributor):
    from attribution import METHODS, onchain_args
    from vm.modules.attribution import MAX_ENTRIES

    proof = attributor.attribute(*tiny.query(8))
    proof_hash, code, content_hashes, weights = onchain_args(proof)
    assert proof_hash == proof.hash() and code == METHODS[proof.method].code
    assert 0 < len(content_hashes) <= MAX_ENTRIES and len(set(content_hashes)) == len(content_hashes)
    assert all(w > 0 for w in weights) and sum(weights) == PPM
    assert len({m.code for m in METHODS.values()}) == len(METHODS)
