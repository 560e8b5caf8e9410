"""Run every benchmark module `bench/bench_*.py`, or those named first on the command line.

`python -m bench [NAME ...] [ARGS ...]`: leading words that name benchmarks select them; every
argument after them (`--data FILE`, `--model=smollm2`, ...) is passed to each selected module.
Each module exposes `main(argv: list[str]) -> None`, prints ours and the peer's figures from the
same run with their ratio, and pins `torch.set_num_threads` where torch is involved.
"""
import importlib
import pkgutil
import sys
import time

import bench


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    names = _modules()
    wanted: list[str] = []
    while argv and not argv[0].startswith("-"):
        word = argv.pop(0)
        name = word if word.startswith("bench_") else f"bench_{word}"
        if name not in names:
            print(f"unknown benchmark {word!r}; known: {', '.join(n[6:] for n in names)}")
            return 2
        wanted.append(name)
    for name in wanted or names:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        importlib.import_module(f"bench.{name}").main(list(argv))
        print(f"=== {name} done in {time.perf_counter() - t0:.1f}s ===", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
