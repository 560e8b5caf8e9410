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
from inference.commitment import CHUNK, ActivationCommitment, ChunkStats, compare_chunks
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


@dataclasses.dataclass(frozen=True)
class Claim:
    """A generation someone says they computed: what a verifier needs from the chain and the prover."""

    adapter_id: str | None
    prompt: tuple[int, ...]
    tokens: tuple[int, ...]
    params: SamplingParams
    proof: bytes
    digest: bytes | None = None  # the commitment digest posted on chain, when there is one


class Verifier:
    """Checks claimed generations against this node's own recomputation, up to `max_batch`
    claims per batched prefill."""

    def __init__(self, model, store: AdapterStore, max_seq_len: int = 256, max_batch: int = 8,
                 thresholds: Thresholds | None = None):
        dtype = model.model.embed_tokens.weight.dtype
        device = model.model.embed_tokens.weight.device
        self.store = store
        self.thresholds = thresholds or THRESHOLDS[dtype]
        pool = LoraPool(store.base, store.targets, store.max_rank, max_batch + 1, dtype, device)
        self.executor = Executor(model, pool, max_batch, max_seq_len)
        eos = model.config.eos_token_id
        self.eos = frozenset(eos if isinstance(eos, (list, tuple)) else ([] if eos is None else [eos]))
        self._lock = threading.Lock()

    def verify_generation(self, gen: Generation, digest: bytes | None = None) -> Verdict:
        return self.verify(gen.adapter_id, gen.prompt, gen.tokens, gen.params, gen.commitment.to_bytes(), digest)

    def verify(self, adapter_id: str | None, prompt, tokens, params: SamplingParams, proof: bytes,
               digest: bytes | None = None) -> Verdict:
        return self.verify_many([Claim(adapter_id, tuple(prompt), tuple(tokens), params, bytes(proof), digest)])[0]

    def verify_many(self, claims: list[Claim]) -> list[Verdict]:
        """Verdicts in order; claims that pass the cheap checks share batched prefills."""
        verdicts: list[Verdict | None] = [self._precheck(c) for c in claims]
        todo = [i for i, v in enumerate(verdicts) if v is None]
        for start in range(0, len(todo), self.executor.max_batch):
            group = todo[start:start + self.executor.max_batch]
            batch = [claims[i] for i in group]
            for i, verdict in zip(group, self._check(batch, self._prefill(batch))):
                verdicts[i] = verdict
        return verdicts

    def _precheck(self, c: Claim) -> Verdict | None:
        tokens, ex = list(c.tokens), self.executor
        if not tokens:
            return Verdict(False, "empty output")
        if any(not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < ex.vocab_size for t in c.prompt + c.tokens):
            return Verdict(False, "token id outside the vocabulary")
        try:
            commitment = ActivationCommitment.from_bytes(c.proof, len(tokens))
        except ValueError as exc:
            return Verdict(False, f"proof size: {exc}")
        if c.digest is not None and commitment.digest != c.digest:
            return Verdict(False, "proof does not hash to the committed digest")
        if any(t in self.eos for t in tokens[:-1]):
            return Verdict(False, "output continues past an end-of-sequence token")
        if len(tokens) > c.params.max_new_tokens:
            return Verdict(False, f"output has {len(tokens)} tokens, more than max_new_tokens {c.params.max_new_tokens}")
        if tokens[-1] not in self.eos and len(tokens) != c.params.max_new_tokens:
            return Verdict(False, f"truncated output: {len(tokens)} tokens without end-of-sequence "
                                  f"(max_new_tokens {c.params.max_new_tokens})")
        if not c.prompt:
            return Verdict(False, "empty prompt")
        if len(c.prompt) + len(tokens) - 1 > ex.max_seq_len:
            raise BadRequest(f"prompt + output of {len(c.prompt) + len(tokens) - 1} tokens exceeds the verifier's "
                             f"context {ex.max_seq_len}")
        return None

    def _prefill(self, claims: list[Claim]) -> list[torch.Tensor]:
        """Hidden states [n_i, h] that produced each claim's output tokens, in one batched prefill."""
        ex = self.executor
        seqs = [list(c.prompt) + list(c.tokens[:-1]) for c in claims]
        tokens = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
        for r, seq in enumerate(seqs):
            tokens[r, :len(seq)] = torch.tensor(seq)
        with self._lock:
            slots = []
            try:
                for c in claims:
                    slots.append(ex.pool.acquire(self.store.get(normalize_id(c.adapter_id))
                                                 if c.adapter_id is not None else None))
                hidden = ex.forward(tokens.to(ex.device), 0, torch.zeros(len(seqs), dtype=torch.long, device=ex.device),
                                    torch.tensor(slots, device=ex.device))
            finally:
                for slot in slots:
                    ex.pool.release(slot)
        return [hidden[r, len(c.prompt) - 1:len(seqs[r])] for r, c in enumerate(claims)]

    def _check(self, claims: list[Claim], hidden: list[torch.Tensor]) -> list[Verdict]:
        th = self.thresholds
        chunks, owner = [], []
        for n, (c, h) in enumerate(zip(claims, hidden)):
            for i, chunk in enumerate(ActivationCommitment.from_bytes(c.proof, len(c.tokens)).chunks):
                chunks.append((chunk, h[i * CHUNK:(i + 1) * CHUNK]))
                owner.append((n, i))
        stats = compare_chunks([e for e, _ in chunks], [h for _, h in chunks])
        verdicts: list[Verdict | None] = [None] * len(claims)
        worst: list[ChunkStats | None] = [None] * len(claims)
        for (n, i), st in zip(owner, stats):
            if worst[n] is None or st.mantissa_mean > worst[n].mantissa_mean:
                worst[n] = st
            if verdicts[n] is None and (st.mismatch_fraction > th.max_mismatch_fraction
                                        or st.mantissa_mean > th.max_mantissa_mean
                                        or st.mantissa_median > th.max_mantissa_median):
                verdicts[n] = Verdict(False, f"activations of chunk {i} do not match: {st}", st)
        logits = self.executor.logits(torch.cat(hidden)).cpu().split([len(h) for h in hidden])  # [n_i, V] each
        for n, c in enumerate(claims):
            if verdicts[n] is None:
                verdicts[n] = self._check_tokens(c, logits[n], worst[n])
        return verdicts

    def _check_tokens(self, c: Claim, logits: torch.Tensor, worst: ChunkStats | None) -> Verdict:
        """Each output token must be (within tolerance) the one the sampling rule picks."""
        if c.params.temperature == 0:
            scores = logits
        else:
            noise = SeededNoise(c.params.seed)
            scores = torch.stack([token_scores(row, c.params, noise.next(logits.shape[1])) for row in logits])
        claimed = torch.tensor(c.tokens)
        short = scores.max(-1).values - scores.gather(1, claimed[:, None])[:, 0]
        bad = (short > self.thresholds.score_tolerance).nonzero()
        if len(bad):
            i = int(bad[0, 0])
            return Verdict(False, f"output token {i} ({c.tokens[i]}) is not the one the sampling rule picks", worst)
        return Verdict(True, "ok", worst)
