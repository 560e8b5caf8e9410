"""Ray, only when asked for: `--ray auto` starts a local instance, `--ray ADDRESS` joins a running
cluster (`ray start --head` prints the address). Without the flag nothing imports Ray.

Attribution index builds, sharded attribution queries and training sweeps run as Ray tasks and
actors; Ray retries a task whose worker died, which is the fault tolerance they rely on.
"""
from __future__ import annotations

from typing import Any


def connect(address: str, num_cpus: int | None = None) -> Any:
    """The `ray` module, initialised once per process: a local instance for "auto" (with
    `num_cpus` CPUs, default all), else the cluster at `address`."""
    import ray

    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address == "auto":
            ray.init(num_cpus=num_cpus, **options)
        else:
            ray.init(address=address, **options)
    return ray


def shards(count: int, parts: int) -> list[range]:
    """`range(count)` cut into `parts` contiguous, nearly equal, non-empty slices (fewer if count < parts)."""
    parts = max(1, min(parts, count))
    bounds = [count * i // parts for i in range(parts + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]


def gather(refs: list, description: str, progress: bool = True) -> list:
    """`ray.get(refs)` in order, with a progress bar over the tasks as they finish."""
    import ray

    if progress:
        from rich.progress import Progress

        with Progress() as bar:
            job = bar.add_task(description, total=len(refs))
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                bar.advance(job, len(done))
    return ray.get(refs)
