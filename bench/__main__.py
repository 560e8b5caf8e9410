"""Run every benchmark module `bench/bench_*.py` (or those named on the command line).

Each module exposes `main(argv: list[str]) -> None`, prints ours and the peer's figures from
the same run with their ratio, and pins `torch.set_num_threads` where torch is involved.
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
    wanted = [a for a in argv if not a.startswith("-")]
    unknown = [w for w in wanted if f"bench_{w}" not in names and w not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(n[6:] for n in names)}")
        return 2
    selected = [n for n in names if not wanted or n in wanted or n[6:] in wanted]
    for name in selected:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        importlib.import_module(f"bench.{name}").main([a for a in argv if a.startswith("-")])
        print(f"=== {name} done in {time.perf_counter() - t0:.1f}s ===", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
