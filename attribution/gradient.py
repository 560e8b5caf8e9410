"""Gradient influence on LoRA parameters: Grad-Dot/TracIn and DataInf over a quantised index.

Built once per training run: each row's LoRA gradient is projected (per LoRA block, with a
Rademacher matrix seeded from the chain), norm-clipped against outliers, optionally
preconditioned by DataInf's closed-form inverse Hessian (Kwon et al., arXiv 2310.00902, eq. 5,
applied block by block in the projected space), and quantised to int16 with one shared scale.
A query then costs one backward pass, one projection, and integer dot products; the quantised
query vector travels in the proof so verifiers redo the integer stages exactly.
"""
import functools
import json
import math
import pathlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import ClassVar

import numpy as np
import rlp
import torch
from eth_utils import keccak

from attribution.errors import AttributionError, EmptyOutput, IndexRootMismatch, UnknownRun
from attribution.grads import LoRABlock, LossFn, lora_blocks, per_example_grads
from attribution.proof import AttributionProof, Contribution, query_hash
from attribution.ranking import Verdict, check_common, shares_from_scores
from vm.merkle import merkle_root

QMAX = 32767  # int16: vectors and query quantised to [-QMAX, QMAX]
MANIFEST = "manifest.json"
VECTORS = "vectors.npy"


@dataclass(frozen=True)
class GradDotConfig:
    """Grad-Dot (TracIn at the final checkpoint): score = <g_train, g_query> in projected space."""

    method: ClassVar[str] = "graddot-v1"
    proj_dim: int = 64  # projected dimensions per LoRA block
    clip_ppm: int = 3_000_000  # clip train gradients at 3.0 x the median norm (0: no clipping)
    top_k: int = 10
    contributor_cap_ppm: int = 1_000_000  # no contributor gets more than this share of one output
    tolerance: int = 64  # verifier: max |difference| per quantised query coordinate (of 32767)

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 0 or (f.name in ("proj_dim", "top_k") and getattr(self, f.name) == 0):
                raise AttributionError(f"{type(self).__name__}.{f.name} must be positive, got {getattr(self, f.name)}")

    def params(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(asdict(self).items()))


@dataclass(frozen=True)
class DataInfConfig(GradDotConfig):
    """DataInf: score = <g_query, H^-1 g_train> with the closed-form per-block inverse."""

    method: ClassVar[str] = "datainf-v1"
    damping_ppm: int = 100_000  # lambda_l = 0.1 x mean squared gradient norm of block l (paper's choice)


@dataclass(frozen=True)
class EnsembleConfig(GradDotConfig):
    """ensemble-v1: the run's own checkpoints (TracIn-CP) with a damped inverse per block.

    score = sum over checkpoints c and LoRA blocks l of <q_cl, (G_cl^T G_cl / n + lambda_cl I)^-1 g_cl>,
    the exact inverse of the block's gradient second moment (empirical Fisher) in the projected
    space, damped by lambda_cl = damping x its mean eigenvalue (trace / proj_dim). Measured in
    `bench attribution` against DataInf's rank-one approximation and a single checkpoint."""

    method: ClassVar[str] = "ensemble-v1"
    proj_dim: int = 256  # the dimension measured in `bench attribution` (1,024 gave no consistent gain)
    damping_ppm: int = 3_000_000


CONFIGS: dict[str, type[GradDotConfig]] = {c.method: c for c in (GradDotConfig, DataInfConfig, EnsembleConfig)}


def _block_seed(seed: int, block: int) -> int:
    return int.from_bytes(keccak(seed.to_bytes(32, "big") + block.to_bytes(4, "big"))[:8], "big") >> 1


class Projector:
    """Per-block Rademacher projections, reproducible by anyone from (seed, block sizes)."""

    def __init__(self, seed: int, sizes: Sequence[int], dim: int):
        self.matrices = []
        for b, size in enumerate(sizes):
            gen = torch.Generator().manual_seed(_block_seed(seed, b))
            signs = torch.randint(0, 2, (size, dim), generator=gen, dtype=torch.int8)
            self.matrices.append((signs.float() * 2 - 1) / math.sqrt(dim))

    def __call__(self, grads: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([g @ p for g, p in zip(grads, self.matrices, strict=True)], dim=1)


Models = torch.nn.Module | Sequence[torch.nn.Module]  # one model, or a run's checkpoints (oldest first)


def _models(model: Models) -> list[torch.nn.Module]:
    models = [model] if isinstance(model, torch.nn.Module) else list(model)
    if not models:
        raise AttributionError("no model to attribute with: pass a model or a non-empty list of checkpoints")
    return models


def model_blocks(model: Models) -> list[LoRABlock]:
    """The LoRA blocks of a model, or of each checkpoint in turn (named `ckpt<c>.<block>`)."""
    models = _models(model)
    if len(models) == 1:
        return lora_blocks(models[0])
    return [replace(b, name=f"ckpt{c}.{b.name}") for c, m in enumerate(models) for b in lora_blocks(m)]


def model_grads(model: Models, loss_fn: LossFn, batch: object) -> list[torch.Tensor]:
    """Per-example gradients of every block of every checkpoint, in `model_blocks` order."""
    return [g for m in _models(model) for g in per_example_grads(m, lora_blocks(m), loss_fn, batch)]


def project_rows(
    model: Models, loss_fn: LossFn, batches: Iterable[object], seed: int, proj_dim: int, progress: bool = False
) -> np.ndarray:
    """Projected per-example LoRA gradients of every row, float64 (n, blocks x proj_dim)."""
    blocks = model_blocks(model)
    projector = Projector(seed, [b.size for b in blocks], proj_dim)
    batches = list(batches)
    if progress:
        from rich.progress import track

        batches = track(batches, description="attribution index: per-example gradients")
    rows = [projector(model_grads(model, loss_fn, batch)).double() for batch in batches]
    if not rows:
        raise AttributionError("no training rows to index")
    return torch.cat(rows).numpy()


def clip_outliers(vectors: np.ndarray, clip_ppm: int) -> np.ndarray:
    """Shrink rows whose norm exceeds clip_ppm/1e6 x the median norm (outlier-inflation defence)."""
    if clip_ppm == 0:
        return vectors
    norms = np.linalg.norm(vectors, axis=1)
    limit = np.median(norms) * clip_ppm / 1_000_000
    return vectors * np.minimum(1.0, limit / np.maximum(norms, 1e-30))[:, None]


def datainf_preconditioner(vectors: np.ndarray, blocks: int, damping_ppm: int) -> list[np.ndarray]:
    """Per block l: M_l = (1/lambda_l)(I - (1/n) sum_i g_i g_i^T / (lambda_l + |g_i|^2)) ~ (H_l + lambda_l I)^-1."""
    n, width = vectors.shape
    dim = width // blocks
    result = []
    for b in range(blocks):
        g = vectors[:, b * dim : (b + 1) * dim]
        sq = (g * g).sum(axis=1)
        lam = max(damping_ppm / 1_000_000 * sq.mean(), 1e-30)
        result.append((np.eye(dim) - (g.T * (1.0 / (lam + sq))) @ g / n) / lam)
    return result


def ridge_preconditioner(vectors: np.ndarray, blocks: int, damping_ppm: int) -> list[np.ndarray]:
    """Per block l: (G_l^T G_l / n + lambda_l I)^-1, lambda_l = damping x trace(G_l^T G_l / n) / dim."""
    n, width = vectors.shape
    dim = width // blocks
    result = []
    for b in range(blocks):
        g = vectors[:, b * dim : (b + 1) * dim]
        second = g.T @ g / n
        lam = max(damping_ppm / 1_000_000 * np.trace(second) / dim, 1e-30)
        result.append(np.linalg.inv(second + lam * np.eye(dim)))
    return result


def _precondition(vectors: np.ndarray, config: GradDotConfig, blocks: int) -> np.ndarray:
    """The index's rows for `config`: DataInf's or the damped inverse per block, or the gradients."""
    if isinstance(config, EnsembleConfig):
        matrices = ridge_preconditioner(vectors, blocks, config.damping_ppm)
    elif isinstance(config, DataInfConfig):
        matrices = datainf_preconditioner(vectors, blocks, config.damping_ppm)
    else:
        return vectors
    dim = matrices[0].shape[0]
    return np.concatenate([vectors[:, b * dim : (b + 1) * dim] @ m for b, m in enumerate(matrices)], axis=1)


def self_influence(vectors: np.ndarray, config: GradDotConfig, blocks: int) -> np.ndarray:
    """Each row's influence on itself (high = likely mislabelled or anomalous); unclipped on purpose."""
    return (vectors * _precondition(vectors, config, blocks)).sum(axis=1)


def quantise(vector: np.ndarray) -> np.ndarray:
    """Scale so the largest |coordinate| is QMAX and round to int16 (the scale cancels in ppm)."""
    top = float(np.abs(vector).max())
    if top == 0.0:
        return np.zeros(vector.shape, dtype=np.int16)
    return np.rint(vector * (QMAX / top)).astype(np.int16)


@dataclass(frozen=True)
class GradientIndex:
    """Quantised projected (and preconditioned) training gradients with their Merkle root."""

    config: GradDotConfig
    seed: int
    block_names: tuple[str, ...]
    block_sizes: tuple[int, ...]
    contributions: tuple[Contribution, ...]
    canonical: tuple[int, ...]  # row i's score is credited to row canonical[i] (near-duplicates)
    vectors: np.ndarray  # int16 (n, blocks x proj_dim)

    def __post_init__(self) -> None:
        n = len(self.contributions)
        if self.vectors.dtype != np.int16 or self.vectors.shape != (n, len(self.block_names) * self.config.proj_dim):
            raise AttributionError(f"index vectors must be int16 of shape ({n}, {len(self.block_names) * self.config.proj_dim})")
        if len(self.canonical) != n or any(not 0 <= c <= i for i, c in enumerate(self.canonical)):
            raise AttributionError("index duplicate map must point each row at itself or an earlier row")

    @property
    def method(self) -> str:
        return self.config.method

    def header(self) -> bytes:
        return rlp.encode(
            [self.method.encode(), [[k.encode(), v] for k, v in self.config.params()], self.seed,
             [n.encode() for n in self.block_names], list(self.block_sizes), len(self.contributions)]
        )

    def leaves(self) -> list[bytes]:
        rows = (
            keccak(rlp.encode([c.contribution_id, c.contributor, dup, self.vectors[i].astype("<i2").tobytes()]))
            for i, (c, dup) in enumerate(zip(self.contributions, self.canonical))
        )
        return [keccak(self.header()), *rows]

    @functools.cached_property
    def root(self) -> bytes:  # frozen, so computed once
        return merkle_root(self.leaves())

    def save(self, directory: str | pathlib.Path) -> bytes:
        """Write the index off chain (manifest + int16 matrix); returns the root to commit on chain."""
        path = pathlib.Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / VECTORS, self.vectors, allow_pickle=False)
        manifest = {
            "method": self.method,
            "config": asdict(self.config),
            "seed": self.seed,
            "blocks": [[n, s] for n, s in zip(self.block_names, self.block_sizes)],
            "contributions": [[c.contribution_id.hex(), c.contributor.hex()] for c in self.contributions],
            "canonical": list(self.canonical),
            "root": self.root.hex(),
        }
        (path / MANIFEST).write_text(json.dumps(manifest, indent=1))
        return self.root

    @classmethod
    def load(cls, directory: str | pathlib.Path, expected_root: bytes | None = None) -> "GradientIndex":
        """Read an index and check it hashes to `expected_root` (the TrainingRun's commitment)."""
        path = pathlib.Path(directory)
        if not (path / MANIFEST).is_file():
            raise UnknownRun(f"no attribution index at {path}")
        try:
            m = json.loads((path / MANIFEST).read_text())
            config = CONFIGS[m["method"]](**m["config"])
            index = cls(
                config=config,
                seed=int(m["seed"]),
                block_names=tuple(str(n) for n, _ in m["blocks"]),
                block_sizes=tuple(int(s) for _, s in m["blocks"]),
                contributions=tuple(Contribution(bytes.fromhex(c), bytes.fromhex(a)) for c, a in m["contributions"]),
                canonical=tuple(int(c) for c in m["canonical"]),
                vectors=np.load(path / VECTORS, allow_pickle=False),
            )
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise AttributionError(f"attribution index at {path} is malformed: {exc!r}") from exc
        if expected_root is not None and index.root != expected_root:
            raise IndexRootMismatch(f"index at {path} has root 0x{index.root.hex()}, run committed 0x{expected_root.hex()}")
        return index


def index_from_rows(
    vectors: np.ndarray, config: GradDotConfig, seed: int, blocks: Sequence[LoRABlock],
    contributions: Sequence[Contribution], canonical: Sequence[int] | None = None,
) -> GradientIndex:
    """Clip, precondition (DataInf, ensemble-v1) and quantise projected training gradients into an index."""
    if len(contributions) != len(vectors):
        raise AttributionError(f"{len(contributions)} contributions for {len(vectors)} gradient rows")
    clipped = _precondition(clip_outliers(vectors, config.clip_ppm), config, len(blocks))
    return GradientIndex(
        config=config,
        seed=seed,
        block_names=tuple(b.name for b in blocks),
        block_sizes=tuple(b.size for b in blocks),
        contributions=tuple(contributions),
        canonical=tuple(canonical) if canonical is not None else tuple(range(len(vectors))),
        vectors=quantise(clipped),
    )


def build_gradient_index(
    model: Models, loss_fn: LossFn, batches: Iterable[object], contributions: Sequence[Contribution],
    config: GradDotConfig, seed: int, canonical: Sequence[int] | None = None, progress: bool = False,
) -> GradientIndex:
    """One pass over the training rows (in their committed order) -> the attribution index; with a
    list of checkpoints, one pass per checkpoint (ensemble-v1).
    (attribution.distributed.build_gradient_index_ray spreads the pass over Ray workers.)"""
    rows = project_rows(model, loss_fn, batches, seed, config.proj_dim, progress)
    return index_from_rows(rows, config, seed, model_blocks(model), contributions, canonical)


class GradientAttributor:
    """Answers and verifies queries against a GradientIndex for the model it was built from."""

    def __init__(self, index: GradientIndex, model: Models, loss_fn: LossFn, encode: Callable[[bytes, bytes], object],
                 rows: Callable[[np.ndarray], np.ndarray] | None = None):
        """`model`: the trained model, or (ensemble-v1) the checkpoints the index was built from,
        in the same order. `rows(qvec)`: the int64 dot product of every index row with a query
        vector, when the rows are held elsewhere (attribution.distributed.ShardedRows)."""
        self.index, self.model, self.loss_fn, self.encode = index, model, loss_fn, encode
        self.blocks = model_blocks(model)
        sizes = tuple(b.size for b in self.blocks)
        if sizes != index.block_sizes:
            raise AttributionError(f"model LoRA blocks {sizes} do not match the index's {index.block_sizes}")
        self.projector = Projector(index.seed, sizes, index.config.proj_dim)
        self.rows = rows
        self.vectors = None if rows else index.vectors.astype(np.int64)  # widened once: int16 x int16 sums need 64 bits

    @property
    def method(self) -> str:
        return self.index.method

    def query_vector(self, prompt: bytes, output: bytes) -> np.ndarray:
        """One backward pass on the query, projected and quantised (the proof's evidence)."""
        if not output:
            raise EmptyOutput("output is empty: nothing to attribute")
        grads = model_grads(self.model, self.loss_fn, self.encode(prompt, output))
        return quantise(self.projector(grads).double().numpy()[0])

    def scores(self, qvec: np.ndarray) -> dict[int, int]:
        """Integer dot products, duplicates credited to their first occurrence, by row."""
        totals = np.zeros(len(self.index.canonical), dtype=np.int64)
        dots = self.rows(qvec) if self.rows else self.vectors @ qvec.astype(np.int64)
        np.add.at(totals, np.asarray(self.index.canonical), dots)
        return dict(enumerate(totals.tolist()))

    def attribute(self, prompt: bytes, output: bytes) -> AttributionProof:
        qvec = self.query_vector(prompt, output)
        return self._proof(prompt, output, qvec)

    def _proof(self, prompt: bytes, output: bytes, qvec: np.ndarray) -> AttributionProof:
        cfg = self.index.config
        return AttributionProof(
            method=self.method, params=cfg.params(), seed=self.index.seed, index_root=self.index.root,
            query_hash=query_hash(prompt, output), evidence=qvec.astype("<i2").tobytes(),
            shares=shares_from_scores(self.scores(qvec), self.index.contributions, cfg.top_k, cfg.contributor_cap_ppm),
        )

    def verify(self, proof: AttributionProof, prompt: bytes, output: bytes) -> Verdict:
        """Recompute the query gradient (within tolerance), then every integer stage exactly."""
        common = check_common(proof, self.method, self.index.config.params(), self.index.seed, self.index.root, prompt, output)
        if not common.accepted:
            return common
        width = len(self.index.block_names) * self.index.config.proj_dim
        if len(proof.evidence) != 2 * width:
            return Verdict(False, f"evidence must hold {width} int16 coordinates, has {len(proof.evidence)} bytes")
        claimed = np.frombuffer(proof.evidence, dtype="<i2")
        drift = int(np.abs(claimed.astype(np.int64) - self.query_vector(prompt, output).astype(np.int64)).max())
        if drift > self.index.config.tolerance:
            return Verdict(False, f"query gradient differs from the recomputed one by {drift} > tolerance {self.index.config.tolerance}")
        expected = self._proof(prompt, output, claimed)
        if expected.shares != proof.shares:
            return Verdict(False, "contributions or weights differ from those recomputed from the evidence")
        return Verdict(True, f"accepted (query gradient within {drift} of {self.index.config.tolerance})")
