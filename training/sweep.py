"""Training sweeps: many deterministic runs (configs x seeds) as Ray tasks, each producing the
record a single `training.run` produces, then one table of their metrics.

A sweep file (TOML):
    config = "run.toml"        # the base config (a path relative to this file), or a [config] table
    seeds = [1, 2, 3]          # optional: one run per seed (default: the config's seed)
    [grid]                     # optional: every combination of these config fields
    lr = [0.001, 0.003]
    rank = [4, 8]
Runs are numbered in a fixed order (grid in field order, then seeds), so run k of a sweep is the
same run wherever it executes. Each writes OUT/run-k/ as `openledger train --out` would; a task
retried after its worker died resumes from the run's newest checkpoint (bit-identical).
"""
from __future__ import annotations

import dataclasses
import itertools
import tomllib
from pathlib import Path
from typing import Any

from training.cluster import gather
from training.config import ConfigError, TrainingConfig
from training.data import Dataset
from training.record import TrainingRun

TASK_RETRIES = 2


@dataclasses.dataclass(frozen=True)
class SweepRun:
    run_id: int
    config: TrainingConfig
    changes: tuple[tuple[str, Any], ...]  # what differs from the base config, for the table


def load_sweep(path: str | Path) -> list[SweepRun]:
    """The runs of a sweep file; ConfigError naming the bad key or value."""
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("sweep", f"cannot read {path}: {exc}") from None
    unknown = set(spec) - {"config", "seeds", "grid"}
    if unknown:
        raise ConfigError("sweep", f"unknown key(s) {sorted(unknown)} in {path} (known: config, seeds, grid)")
    base_spec = spec.get("config")
    if isinstance(base_spec, str):
        base = TrainingConfig.from_toml(path.parent / base_spec)
    elif isinstance(base_spec, dict):
        base = TrainingConfig.from_dict(base_spec)
    else:
        raise ConfigError("sweep", f"{path} needs config = \"FILE.toml\" or a [config] table")
    grid = spec.get("grid", {})
    fields = {f.name for f in dataclasses.fields(TrainingConfig)}
    if not isinstance(grid, dict) or any(not isinstance(v, list) or not v for v in grid.values()):
        raise ConfigError("sweep", f"[grid] in {path} must map config fields to non-empty lists")
    if set(grid) - fields:
        raise ConfigError("sweep", f"[grid] names unknown config field(s) {sorted(set(grid) - fields)}")
    seeds = spec.get("seeds", [base.seed])
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError("sweep", f"seeds in {path} must be a non-empty list of integers")
    runs = []
    for values in itertools.product(*grid.values()):
        for seed in seeds:
            changes = (*zip(grid, values), ("seed", seed))
            config = TrainingConfig.from_dict({**base.to_dict(), **dict(changes)})  # validated like any config
            runs.append(SweepRun(len(runs) + 1, config, changes))
    return runs


def _train_one(sweep_run: SweepRun, data: Dataset, base: str, out_dir: str, threads: int) -> TrainingRun:
    import torch

    from training.trainer import run

    torch.set_num_threads(threads)
    out = Path(out_dir)
    resume = any((out / "checkpoints").glob("step-*.safetensors"))  # a retried task picks up where it died
    return run(sweep_run.config, data, base, out, run_id=sweep_run.run_id, resume=resume, progress=False)


def run_sweep(runs: list[SweepRun], data: Dataset, base: str, out_dir: str | Path, *, threads: int = 1,
              progress: bool = True) -> list[TrainingRun]:
    """Train every run as a Ray task (Ray connected, see training.cluster); records in run order."""
    import ray

    task = ray.remote(num_cpus=threads, max_retries=TASK_RETRIES)(_train_one)
    data_ref = ray.put(data)
    refs = [task.remote(r, data_ref, base, str(Path(out_dir) / f"run-{r.run_id}"), threads) for r in runs]
    return gather(refs, f"sweep: {len(refs)} runs on Ray", progress)
