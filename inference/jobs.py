"""What the node calls for on-chain inference jobs: run one, or check someone else's."""
from __future__ import annotations

from inference.commitment import ActivationCommitment
from inference.engine import Engine, SamplingParams
from inference.verify import Verdict, Verifier


def run_job(engine: Engine, adapter_hash: str, prompt_tokens, max_new_tokens: int, seed: int,
            temperature: float = 0.0) -> tuple[tuple[int, ...], ActivationCommitment]:
    """Generate for an on-chain InferenceJob; returns the output tokens and the commitment whose
    `digest` the node posts on chain (the seed is derived from the chain by the caller)."""
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    gen = engine.generate(adapter_hash, list(prompt_tokens), params)
    return gen.tokens, gen.commitment


def verify_job(verifier: Verifier, adapter_hash: str, prompt_tokens, output_tokens, max_new_tokens: int,
               seed: int, proof: bytes, digest: bytes, temperature: float = 0.0) -> Verdict:
    """Re-check a job result posted by another validator against the digest on chain."""
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    return verifier.verify(adapter_hash, prompt_tokens, output_tokens, params, proof, digest)
