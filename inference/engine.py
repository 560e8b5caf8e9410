"""Continuous batching over the Executor: requests for any adapters join between decode steps,
leave when done, and each records its activation commitment as it generates.

Sampling is replayable: a request with temperature > 0 draws Gumbel noise from its own
`torch.Generator` seeded with the job's seed (from the chain), one vocabulary-sized draw per
token, so neither batch neighbours nor thread counts change which token is sampled.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import threading
from typing import Callable

import torch

from inference.adapters import AdapterStore, normalize_id
from inference.commitment import ActivationCommitment, CommitmentBuilder
from inference.errors import BadRequest, UnknownAdapter
from inference.executor import Executor, LoraPool

MAX_SEED = 2**64 - 1


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How tokens are chosen. temperature 0 is greedy; `seed` comes from the chain."""

    max_new_tokens: int = 16
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(name: str, value, rule: str) -> BadRequest:
            return BadRequest(f"{name}={value!r}: {rule}")

        if not isinstance(self.max_new_tokens, int) or isinstance(self.max_new_tokens, bool) or self.max_new_tokens < 1:
            raise bad("max_new_tokens", self.max_new_tokens, "must be a positive integer")
        if not isinstance(self.temperature, (int, float)) or isinstance(self.temperature, bool) \
                or not 0.0 <= self.temperature <= 100.0:
            raise bad("temperature", self.temperature, "must be a number in [0, 100]")
        if not isinstance(self.top_p, (int, float)) or isinstance(self.top_p, bool) or not 0.0 < self.top_p <= 1.0:
            raise bad("top_p", self.top_p, "must be a number in (0, 1]")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise bad("seed", self.seed, "must be an integer in [0, 2**64 - 1]")


class SeededNoise:
    """Gumbel noise for Gumbel-max sampling, one vocabulary-sized draw per generated token."""

    def __init__(self, seed: int):
        self._gen = torch.Generator().manual_seed(seed)

    def next(self, vocab: int) -> torch.Tensor:
        u = torch.rand(vocab, generator=self._gen, dtype=torch.float64).clamp_(1e-300, 1.0)
        return -torch.log(-torch.log(u)).float()


def token_scores(logits: torch.Tensor, params: SamplingParams, noise: torch.Tensor | None) -> torch.Tensor:
    """Scores whose argmax is the chosen token: the logits (greedy), or tempered logits plus
    Gumbel noise with tokens outside the top-p nucleus removed."""
    if params.temperature == 0:
        return logits
    scaled = logits / params.temperature
    if params.top_p < 1.0:
        probs, order = torch.softmax(scaled, -1).sort(descending=True)
        outside = (probs.cumsum(-1) - probs) >= params.top_p
        scaled = scaled.clone()
        scaled[order[outside]] = float("-inf")
    return scaled + noise


@dataclasses.dataclass(frozen=True)
class Generation:
    """A finished request: its output tokens and the commitment to the activations behind them."""

    adapter_id: str | None
    prompt: tuple[int, ...]
    tokens: tuple[int, ...]
    finish_reason: str  # "stop" (end-of-sequence token) or "length" (max_new_tokens)
    params: SamplingParams
    commitment: ActivationCommitment


class _Request:
    def __init__(self, adapter_id, prompt, params, on_token, loading):
        self.adapter_id, self.prompt, self.params, self.on_token = adapter_id, prompt, params, on_token
        self.loading: concurrent.futures.Future | None = loading
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.tokens: list[int] = []
        self.builder = CommitmentBuilder()
        self.noise = SeededNoise(params.seed) if params.temperature > 0 else None
        self.slot = 0
        self.cached = 0  # positions in this request's KV cache row
        self.finish_reason: str | None = None


class Engine:
    """Serves many adapters on one base model with continuous batching.

    Use `submit` from any thread; either call `step`/`run_until_idle` yourself or `start()` a
    background thread that steps whenever there is work."""

    def __init__(self, model, store: AdapterStore, max_batch: int = 16, max_seq_len: int = 256,
                 pool_slots: int = 64):
        dtype = model.model.embed_tokens.weight.dtype
        device = model.model.embed_tokens.weight.device
        self.store = store
        self.pool = LoraPool(store.base, store.targets, store.max_rank, pool_slots, dtype, device)
        self.executor = Executor(model, self.pool, max_batch, max_seq_len)
        eos = model.config.eos_token_id
        self.eos: frozenset[int] = frozenset(eos if isinstance(eos, (list, tuple)) else ([] if eos is None else [eos]))
        self._waiting: collections.deque[_Request] = collections.deque()
        self._active: list[_Request] = []  # index = KV cache row
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.steps = 0

    # -- requests ------------------------------------------------------------------------
    def check(self, adapter_id: str | None, prompt, params: SamplingParams) -> tuple[str | None, tuple[int, ...]]:
        """Validate a request without queueing it (UnknownAdapter / BadRequest name the value)."""
        if adapter_id is not None:
            adapter_id = normalize_id(adapter_id)
            if not self.store.has(adapter_id):
                raise UnknownAdapter(f"adapter {adapter_id} is not in the store")
        if not isinstance(params, SamplingParams):
            raise BadRequest("params must be SamplingParams")
        if isinstance(prompt, (str, bytes)) or not hasattr(prompt, "__len__") or len(prompt) == 0:
            raise BadRequest("prompt must be a non-empty list of token ids")
        vocab = self.executor.vocab_size
        bad = next((t for t in prompt if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < vocab), None)
        if bad is not None:
            raise BadRequest(f"prompt token {bad!r} is not an id in [0, {vocab})")
        needed = len(prompt) + params.max_new_tokens - 1
        if needed > self.executor.max_seq_len:
            raise BadRequest(f"prompt of {len(prompt)} tokens + max_new_tokens {params.max_new_tokens} "
                             f"exceeds the context of {self.executor.max_seq_len} tokens")
        return adapter_id, tuple(prompt)

    def submit(self, adapter_id: str | None, prompt, params: SamplingParams = SamplingParams(),
               on_token: Callable[[int], None] | None = None) -> concurrent.futures.Future:
        """Queue a request; the future yields a Generation. `adapter_id` None = base model.
        `on_token` is called from the engine thread with each new token (for streaming)."""
        adapter_id, prompt = self.check(adapter_id, prompt, params)
        loading = self.store.prefetch(adapter_id) if adapter_id else None
        req = _Request(adapter_id, prompt, params, on_token, loading)
        with self._cond:
            if self._closed:
                raise RuntimeError("engine is closed")
            self._waiting.append(req)
            self._cond.notify_all()
        if loading is not None:
            loading.add_done_callback(lambda _: self._wake())
        return req.future

    def generate(self, adapter_id: str | None, prompt, params: SamplingParams = SamplingParams()) -> Generation:
        """Submit and wait (stepping in this thread unless a background thread runs)."""
        future = self.submit(adapter_id, prompt, params)
        if self._thread is None:
            while not future.done():
                self.step()
        return future.result()

    # -- scheduling ----------------------------------------------------------------------
    def step(self) -> bool:
        """Admit ready requests (one batched prefill), then decode one token for every running
        request. Returns whether any work was done."""
        admitted = self._admit()
        try:
            if admitted:
                self._prefill(admitted)
            if self._active:
                self._decode()
        except Exception as exc:  # a failed forward fails the requests in it, not the engine
            for req in self._active:
                self.pool.release(req.slot)
                if not req.future.done():
                    req.future.set_exception(exc)
            self._active = []
            raise
        self.steps += 1
        return bool(admitted or self._active)

    def _admit(self) -> list[_Request]:
        admitted: list[_Request] = []
        with self._cond:
            for req in list(self._waiting):
                if len(self._active) + len(admitted) >= self.executor.max_batch:
                    break
                if req.loading is not None and not req.loading.done():
                    continue  # still loading on the loader thread: never block the batch on it
                if req.loading is not None and req.loading.exception() is not None:
                    self._waiting.remove(req)
                    req.future.set_exception(req.loading.exception())
                    continue
                if not self.pool.can_acquire(req.adapter_id):
                    continue
                self._waiting.remove(req)
                req.slot = self.pool.acquire(req.loading.result() if req.loading is not None else None)
                admitted.append(req)
        return admitted

    def _prefill(self, reqs: list[_Request]) -> None:
        ex = self.executor
        lengths = torch.tensor([len(r.prompt) for r in reqs])
        tokens = torch.zeros(len(reqs), int(lengths.max()), dtype=torch.long)
        for i, r in enumerate(reqs):
            tokens[i, :len(r.prompt)] = torch.tensor(r.prompt)
        row0 = len(self._active)
        self._active.extend(reqs)
        hidden = ex.forward(tokens.to(ex.device), row0, torch.zeros(len(reqs), dtype=torch.long, device=ex.device),
                            torch.tensor([r.slot for r in reqs], device=ex.device))
        last = hidden[torch.arange(len(reqs)), (lengths - 1).to(ex.device)]  # [m, h]
        for r in reqs:
            r.cached = len(r.prompt)
        self._emit(reqs, last)

    def _decode(self) -> None:
        ex, reqs = self.executor, list(self._active)
        tokens = torch.tensor([[r.tokens[-1]] for r in reqs], device=ex.device)
        start = torch.tensor([r.cached for r in reqs], device=ex.device)
        hidden = ex.forward(tokens, 0, start, torch.tensor([r.slot for r in reqs], device=ex.device))
        for r in reqs:
            r.cached += 1
        self._emit(reqs, hidden[:, 0])

    def _emit(self, reqs: list[_Request], hidden: torch.Tensor) -> None:
        """Choose each request's next token from its hidden state, record it, retire finished ones."""
        logits = self.executor.logits(hidden)  # [m, V] float32
        choice = logits.argmax(-1).tolist()
        hidden = hidden.float().cpu()  # one device -> host copy per step for the commitments
        for i, r in enumerate(reqs):
            if r.noise is not None:
                choice[i] = int(token_scores(logits[i].cpu(), r.params, r.noise.next(logits.shape[1])).argmax())
            r.builder.add(hidden[i])
            r.tokens.append(choice[i])
            if r.on_token is not None:
                r.on_token(choice[i])
            if choice[i] in self.eos:
                r.finish_reason = "stop"
            elif len(r.tokens) >= r.params.max_new_tokens:
                r.finish_reason = "length"
        for row in range(len(self._active) - 1, -1, -1):
            if self._active[row].finish_reason is not None:
                self._retire(row)

    def _retire(self, row: int) -> None:
        req, last = self._active[row], len(self._active) - 1
        if row != last:  # keep running rows contiguous: move the last one into the gap
            self.executor.move_row(last, row, self._active[last].cached)
            self._active[row] = self._active[last]
        self._active.pop()
        self.pool.release(req.slot)
        req.future.set_result(Generation(req.adapter_id, req.prompt, tuple(req.tokens), req.finish_reason,
                                         req.params, req.builder.finish()))

    def run_until_idle(self) -> None:
        while self._waiting or self._active:
            if not self.step():
                with self._cond:  # only requests still loading: wait for the loader
                    self._cond.wait(0.01)

    # -- background thread ---------------------------------------------------------------
    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def start(self) -> "Engine":
        self._thread = threading.Thread(target=self._loop, name="openlora-engine", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._active and not self._ready():
                    self._cond.wait(0.5)
                if self._closed:
                    return
            try:
                if not self.step():
                    with self._cond:
                        self._cond.wait(0.01)
            except Exception:  # already delivered to the failed requests' futures
                continue

    def _ready(self) -> bool:
        return any(r.loading is None or r.loading.done() for r in self._waiting)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        for req in list(self._waiting) + self._active:
            if not req.future.done():
                req.future.set_exception(RuntimeError("engine closed"))
