"""Attribution on Ray: index builds sharded over workers, queries fanned out over index shards.

Why the results equal one machine's, bit for bit:
- a build shards the training batches (contiguous, in their committed order); each worker
  computes the same per-example gradients and projections for its batches as a single process
  would (one torch thread per worker; the projection matrices come from the seed), and the rows
  are concatenated in order before the global stages (outlier clipping against the median norm,
  DataInf preconditioning, int16 quantisation with one scale), which run once on the driver;
- a query's scores are integer dot products, so each shard's rows are scored exactly and the
  merge is a concatenation: neither order nor shard count changes a single score.
Ray retries a task whose worker died (`max_retries`), so a killed worker costs time, not rows.
"""
from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np
import torch

from attribution.errors import AttributionError
from attribution.gradient import VECTORS, GradDotConfig, GradientIndex, index_from_rows, model_blocks, project_rows
from attribution.grads import LossFn
from attribution.proof import Contribution
from training.cluster import gather, shards

TASK_RETRIES = 3


def _project_shard(model: torch.nn.Module, loss_fn: LossFn, batches: list, seed: int, proj_dim: int) -> np.ndarray:
    torch.set_num_threads(1)  # workers share the machine; one thread each, as the bench pins
    return project_rows(model, loss_fn, batches, seed, proj_dim)


def project_rows_ray(model: torch.nn.Module, loss_fn: LossFn, batches: Sequence[object], seed: int, proj_dim: int,
                     workers: int, progress: bool = False) -> np.ndarray:
    """`project_rows` with the batches spread over `workers` Ray tasks; the same rows, in order."""
    import ray

    batches = list(batches)
    if not batches:
        raise AttributionError("no training rows to index")
    task = ray.remote(max_retries=TASK_RETRIES, retry_exceptions=False)(_project_shard)
    model_ref = ray.put(model)
    refs = [task.remote(model_ref, loss_fn, [batches[i] for i in part], seed, proj_dim)
            for part in shards(len(batches), workers)]
    return np.concatenate(gather(refs, f"attribution index: {len(refs)} shards on Ray", progress))


def _shard_class() -> type:
    """The actor class, made inside a function so Ray ships it by value: an actor process then
    imports numpy only, not this package (and torch), and starts in a fraction of the time."""

    class Shard:
        """Rows [lo, hi) of a saved index's vectors, widened once for exact int64 sums."""

        def __init__(self, path: str, lo: int, hi: int) -> None:
            self.vectors = np.array(np.load(path, mmap_mode="r")[lo:hi], dtype=np.int64)

        def dots(self, qvec: np.ndarray) -> np.ndarray:
            return self.vectors @ qvec.astype(np.int64)

    return Shard


def build_gradient_index_ray(
    model: torch.nn.Module, loss_fn: LossFn, batches: Sequence[object], contributions: Sequence[Contribution],
    config: GradDotConfig, seed: int, workers: int, canonical: Sequence[int] | None = None, progress: bool = False,
) -> GradientIndex:
    """`attribution.build_gradient_index` with the gradient pass spread over `workers` Ray tasks
    (Ray connected, see training.cluster): the same index and root, bit for bit."""
    rows = project_rows_ray(model, loss_fn, batches, seed, config.proj_dim, workers, progress)
    return index_from_rows(rows, config, seed, model_blocks(model), contributions, canonical)


class ShardedRows:
    """Row dot products of a saved gradient index, its rows held by `workers` Ray actors (each
    loads only its slice from disk, so the index may exceed one worker's memory). Call it with a
    quantised query vector: the same int64 scores as `vectors @ qvec` on one machine."""

    def __init__(self, directory: str | pathlib.Path, workers: int) -> None:
        import ray

        path = str(pathlib.Path(directory) / VECTORS)
        actor = ray.remote(_shard_class())
        self.actors = [actor.remote(path, part.start, part.stop) for part in shards(np.load(path, mmap_mode="r").shape[0], workers)]
        self._ray = ray

    def __call__(self, qvec: np.ndarray) -> np.ndarray:
        return np.concatenate(self._ray.get([a.dots.remote(qvec) for a in self.actors]))

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a)
