"""Verifier of activation commitments: one prefill of prompt + output with the registered adapter.

A claim passes when (1) the proof has the size its output length implies (and hashes to the
digest on chain, when given), (2) the output ends the way the job says it must (an
end-of-sequence token, or exactly max_new_tokens tokens), (3) every chunk's recomputed top-k
hidden entries agree with the encoded ones within the dtype's thresholds, and (4) every output
token is the one the sampling rule picks from the recomputed logits, up to a small tolerance
(so near-ties do not reject honest work). Thresholds were calibrated with bench/bench_inference.py
(false-accept / false-reject figures in BENCHMARKS.md).
"""
from __future__ import annotations

import dataclasses
import threading

import torch

from inference.adapters import AdapterStore, normalize_id
from inference.commitment import CHUNK, ActivationCommitment, ChunkStats, compare_chunk
from inference.engine import Generation, SamplingParams, SeededNoise, token_scores
from inference.errors import BadRequest
from inference.executor import Executor, LoraPool


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Per-chunk acceptance bounds (TOPLOC's three statistics) and the token-score tolerance."""

    max_mismatch_fraction: float
    max_mantissa_mean: float
    max_mantissa_median: float
    score_tolerance: float


# fp32 (CPU): honest recomputation (other batch, position, thread count) differs by a few fp32
# ulps, which almost never moves a bf16-rounded value: measured per-chunk mantissa mean 0.0, while
# a bf16 generation checked against fp32 gave 0.28-0.90 (bench/bench_inference.py calibrates).
# bf16 (GPU): kernels and batch shapes move values by about one bf16 ulp; these are TOPLOC's
# published bounds, to be recalibrated from the GPU run of the benchmark.
THRESHOLDS = {
    torch.float32: Thresholds(max_mismatch_fraction=0.05, max_mantissa_mean=0.1, max_mantissa_median=0.5,
                              score_tolerance=1e-3),
    torch.bfloat16: Thresholds(max_mismatch_fraction=0.30, max_mantissa_mean=10.0, max_mantissa_median=8.0,
                               score_tolerance=0.25),
}


@dataclasses.dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    worst: ChunkStats | None = None


class Verifier:
    """Checks claimed generations against this node's own recomputation."""

    def __init__(self, model, store: AdapterStore, max_seq_len: int = 256, thresholds: Thresholds | None = None):
        dtype = model.model.embed_tokens.weight.dtype
        device = model.model.embed_tokens.weight.device
        self.store = store
        self.thresholds = thresholds or THRESHOLDS[dtype]
        pool = LoraPool(store.base, store.targets, store.max_rank, 3, dtype, device)
        self.executor = Executor(model, pool, 1, max_seq_len)
        eos = model.config.eos_token_id
        self.eos = frozenset(eos if isinstance(eos, (list, tuple)) else ([] if eos is None else [eos]))
        self._lock = threading.Lock()

    def verify_generation(self, gen: Generation, digest: bytes | None = None) -> Verdict:
        return self.verify(gen.adapter_id, gen.prompt, gen.tokens, gen.params, gen.commitment.to_bytes(), digest)

    def verify(self, adapter_id: str | None, prompt, tokens, params: SamplingParams, proof: bytes,
               digest: bytes | None = None) -> Verdict:
        prompt, tokens = list(prompt), list(tokens)
        if not tokens:
            return Verdict(False, "empty output")
        try:
            commitment = ActivationCommitment.from_bytes(proof, len(tokens))
        except ValueError as exc:
            return Verdict(False, f"proof size: {exc}")
        if digest is not None and commitment.digest != digest:
            return Verdict(False, "proof does not hash to the committed digest")
        if any(t in self.eos for t in tokens[:-1]):
            return Verdict(False, "output continues past an end-of-sequence token")
        if len(tokens) > params.max_new_tokens:
            return Verdict(False, f"output has {len(tokens)} tokens, more than max_new_tokens {params.max_new_tokens}")
        if tokens[-1] not in self.eos and len(tokens) != params.max_new_tokens:
            return Verdict(False, f"truncated output: {len(tokens)} tokens without end-of-sequence "
                                  f"(max_new_tokens {params.max_new_tokens})")
        seq = prompt + tokens[:-1]
        ex = self.executor
        if len(seq) > ex.max_seq_len:
            raise BadRequest(f"prompt + output of {len(seq)} tokens exceeds the verifier's context {ex.max_seq_len}")
        if any(not isinstance(t, int) or not 0 <= t < ex.vocab_size for t in prompt + tokens):
            return Verdict(False, "token id outside the vocabulary")
        with self._lock:
            adapter = self.store.get(normalize_id(adapter_id)) if adapter_id is not None else None
            slot = ex.pool.acquire(adapter)
            try:
                hidden = ex.forward(torch.tensor([seq], device=ex.device), 0,
                                    torch.zeros(1, dtype=torch.long, device=ex.device),
                                    torch.tensor([slot], device=ex.device))[0, len(prompt) - 1:]  # [n, h]
                logits = ex.logits(hidden).cpu()
            finally:
                ex.pool.release(slot)
        th, worst = self.thresholds, None
        for i, chunk in enumerate(commitment.chunks):
            stats = compare_chunk(chunk, hidden[i * CHUNK:(i + 1) * CHUNK])
            if worst is None or stats.mantissa_mean > worst.mantissa_mean:
                worst = stats
            if (stats.mismatch_fraction > th.max_mismatch_fraction or stats.mantissa_mean > th.max_mantissa_mean
                    or stats.mantissa_median > th.max_mantissa_median):
                return Verdict(False, f"activations of chunk {i} do not match: {stats}", stats)
        noise = SeededNoise(params.seed) if params.temperature > 0 else None
        for i, token in enumerate(tokens):
            scores = token_scores(logits[i], params, noise.next(logits.shape[1]) if noise else None)
            if scores[token] < scores.max() - th.score_tolerance:
                return Verdict(False, f"output token {i} ({token}) is not the one the sampling rule picks", worst)
        return Verdict(True, "ok", worst)
