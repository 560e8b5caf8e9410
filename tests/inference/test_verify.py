"""Verification: honest generations pass whatever the batch, position or thread count; wrong
adapter, base model, other precision, edited or truncated outputs and bad proofs fail."""
import dataclasses

import pytest
import torch

from inference import ActivationCommitment, Claim, Engine, SamplingParams, Verifier, run_job, verify_job
from inference.commitment import CommitmentBuilder
from inference.models import tiny_llama

PROMPTS = [[1, 17, 33, 5], [1, 200, 3], [1, 9, 9, 9, 9, 9, 9, 42], [1, 77]]


@pytest.fixture(scope="module")
def verifier(model, store):
    return Verifier(model, store, max_seq_len=256)


@pytest.fixture(scope="module")
def honest(model, store, ids):
    """Generations from a busy mixed batch (4 adapters + base, greedy and sampled)."""
    engine = Engine(model, store, max_batch=5, max_seq_len=256, pool_slots=8)
    futures = []
    for i in range(10):
        params = SamplingParams(max_new_tokens=70, temperature=0.8 if i % 2 else 0.0, seed=i)
        futures.append(engine.submit(ids[i % 4] if i % 5 else None, PROMPTS[i % 4], params))
        if i % 3 == 0:
            engine.step()
    engine.run_until_idle()
    return [f.result() for f in futures]


def test_honest_results_pass(verifier, honest):
    assert {len(g.commitment.chunks) for g in honest} >= {3}
    for g in honest[:5]:  # one by one, generated with 1 thread, verified with 1
        verdict = verifier.verify_generation(g, g.commitment.digest)
        assert verdict.ok, verdict.reason
    torch.set_num_threads(2)  # another thread count (and one batched prefill at other batch positions)
    verdicts = verifier.verify_many([Claim(g.adapter_id, g.prompt, g.tokens, g.params, g.commitment.to_bytes(),
                                           g.commitment.digest) for g in reversed(honest)])
    torch.set_num_threads(1)
    assert all(v.ok for v in verdicts), [v.reason for v in verdicts]


def test_run_job_and_verify_job(model, store, ids, verifier):
    engine = Engine(model, store, max_batch=2, max_seq_len=256)
    tokens, commitment = run_job(engine, ids[3], [1, 5, 6], max_new_tokens=40, seed=12345)
    assert len(commitment.to_bytes()) / len(tokens) <= 16
    args = (verifier, ids[3], [1, 5, 6], tokens, 40, 12345)
    assert verify_job(*args, commitment.to_bytes(), commitment.digest).ok
    assert not verify_job(*args, commitment.to_bytes(), b"\x00" * 32).ok
    assert not verify_job(*args[:5], 54321, commitment.to_bytes(), commitment.digest, temperature=1.0).ok


def test_wrong_adapter_and_base_model_fail(verifier, honest, ids):
    for g in honest:
        wrong = ids[(ids.index(g.adapter_id) + 1) % 4] if g.adapter_id else ids[0]
        assert not verifier.verify(wrong, g.prompt, g.tokens, g.params, g.commitment.to_bytes()).ok
        if g.adapter_id:
            assert not verifier.verify(None, g.prompt, g.tokens, g.params, g.commitment.to_bytes()).ok


def test_other_precision_fails(store, ids, verifier):
    engine = Engine(tiny_llama(seed=0, dtype=torch.bfloat16), store, max_batch=4, max_seq_len=256)
    futures = [engine.submit(ids[i], PROMPTS[i], SamplingParams(max_new_tokens=64)) for i in range(4)]
    engine.run_until_idle()
    for f in futures:
        assert not verifier.verify_generation(f.result()).ok


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_edited_token_fails(verifier, honest, where):
    for g in honest:
        i = {"first": 0, "middle": len(g.tokens) // 2, "last": len(g.tokens) - 1}[where]
        tokens = list(g.tokens)
        tokens[i] = (tokens[i] + 1) % 256 or 3
        if tokens[i] == 2:  # keep the end-of-sequence rule out of the way
            tokens[i] = 4
        assert not verifier.verify(g.adapter_id, g.prompt, tokens, g.params, g.commitment.to_bytes()).ok


def test_truncated_output_fails(model, store, verifier, honest):
    for g in honest:
        cut = g.tokens[:len(g.tokens) - 5]
        # with the original proof the sizes disagree; with an honest proof of the cut the length rule fails
        assert "proof size" in verifier.verify(g.adapter_id, g.prompt, cut, g.params, g.commitment.to_bytes()).reason
        proof = _recommit(model, store, g, cut)
        verdict = verifier.verify(g.adapter_id, g.prompt, cut, g.params, proof)
        assert not verdict.ok and "truncated" in verdict.reason
        shorter = dataclasses.replace(g.params, max_new_tokens=len(cut))
        assert verifier.verify(g.adapter_id, g.prompt, cut, shorter, proof).ok  # the same proof is fine for a shorter job


def _recommit(model, store, g, tokens) -> bytes:
    v = Verifier(model, store)
    ex = v.executor
    slot = ex.pool.acquire(store.get(g.adapter_id) if g.adapter_id else None)
    hidden = ex.forward(torch.tensor([list(g.prompt) + list(tokens[:-1])]), 0, torch.zeros(1, dtype=torch.long),
                        torch.tensor([slot]))[0, len(g.prompt) - 1:]
    builder = CommitmentBuilder()
    for h in hidden:
        builder.add(h)
    return builder.finish().to_bytes()


def test_malformed_proofs_fail(verifier, honest):
    g = honest[0]
    proof = g.commitment.to_bytes()
    for bad in (b"", proof[:-1], proof + b"\x00", bytes(len(proof)), b"\xff" * len(proof),
                proof[:2] + bytes(reversed(proof[2:]))):
        assert not verifier.verify(g.adapter_id, g.prompt, g.tokens, g.params, bad).ok
    assert not verifier.verify(g.adapter_id, g.prompt, [], g.params, proof).ok
    assert not verifier.verify(g.adapter_id, g.prompt, list(g.tokens[:-1]) + [9999], g.params, proof).ok


def test_proof_size_per_token(honest):
    full = [g for g in honest if len(g.tokens) >= 64]
    assert full
    for g in full:
        assert len(g.commitment.to_bytes()) / len(g.tokens) <= 16
    assert ActivationCommitment.from_bytes(full[0].commitment.to_bytes(), len(full[0].tokens)) == full[0].commitment
    with pytest.raises(ValueError):
        ActivationCommitment.from_bytes(full[0].commitment.to_bytes(), len(full[0].tokens) + 1)


def test_batched_verification_gives_the_same_verdicts(verifier, honest, ids):
    claims = []
    for g in honest[:6]:
        wrong = ids[1] if g.adapter_id == ids[0] else ids[0]
        claims.append(Claim(g.adapter_id, g.prompt, g.tokens, g.params, g.commitment.to_bytes()))
        claims.append(Claim(wrong, g.prompt, g.tokens, g.params, g.commitment.to_bytes()))
    claims.append(Claim(ids[0], (1, 2), (5, 6), SamplingParams(max_new_tokens=2), b""))
    verdicts = verifier.verify_many(claims)  # 13 claims: two batched prefills of different lengths
    assert [v.ok for v in verdicts] == [True, False] * 6 + [False]
    assert "proof size" in verdicts[-1].reason
