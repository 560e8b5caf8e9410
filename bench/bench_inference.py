"""OpenLoRA benchmark: our gathered multi-adapter engine vs peft on the same model, prompts, adapters.

    .venv/bin/python -m bench inference                       # CPU, tiny Llama, 1 thread
    .venv/bin/python -m bench.bench_inference --model smollm2 --device cuda --dtype bf16   # lent GPU

Sections (each prints ours, the peer's and the ratio):
1. throughput (new tokens/s) and p50/p99 latency with 8, 64, 512 distinct adapters in a stream of
   requests that all arrive at t=0: ours (continuous batching, mixed adapters) vs peft mixed
   batch (`generate(adapter_names=...)`), peft grouped by `set_adapter`, and single-adapter
   batches of the same size (ours and peft's: the ceilings);
2. adapters resident: 1,000+ adapters in the CPU tier and in the device slot pool, memory against
   the adapters' own weights, and the cold-load cost (disk -> ready) vs peft's `load_adapter`;
3. verification cost / generation cost and proof bytes per token;
4. false-accept / false-reject rates of the verifier over >= 500 trials each;
5. (--fit) how many distinct adapters keep throughput within 0.8x of the single-adapter ceiling.
Every request generates exactly --new-tokens tokens (end-of-sequence is disabled on both sides).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

import psutil
import torch
from rich.progress import track
from safetensors.torch import save_file

from inference import AdapterStore, BaseSpec, Claim, Engine, SamplingParams, Verifier
from inference.adapters import CONFIG_FILE, WEIGHTS_FILE
from inference.commitment import CommitmentBuilder
from inference.executor import LoraPool
from inference.models import tiny_llama

TARGETS = ("q_proj", "v_proj")


def _load_model(args):
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    if args.model == "tiny":
        model = tiny_llama(seed=0, vocab_size=512, hidden_size=128, layers=4)
    else:
        import training

        model = training.load_base("smollm2").model
    model = model.to(device=args.device, dtype=dtype).eval()
    model.config.eos_token_id = None  # fixed-length generations on both sides
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def _write_adapters(model, root: pathlib.Path, n: int, rank: int, scale: float = 1.0, seed0: int = 0) -> list[pathlib.Path]:
    """n peft-format LoRA adapters with random A and B (peft's config file, peft's tensor names)."""
    from peft import LoraConfig

    spec = BaseSpec.of(model)
    root.mkdir(parents=True, exist_ok=True)
    cfg_dir = root / "_config"
    LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(TARGETS), lora_dropout=0.0).save_pretrained(cfg_dir)
    cfg = (cfg_dir / CONFIG_FILE).read_bytes()
    dirs = []
    for i in track(range(n), description=f"writing {n} adapters", transient=True):
        gen = torch.Generator().manual_seed(seed0 + i)
        sd = {}
        for layer in range(spec.num_layers):
            for m in TARGETS:
                fan_in, fan_out = spec.modules[m]
                key = f"base_model.model.model.layers.{layer}.self_attn.{m}.lora_"
                sd[key + "A.weight"] = torch.randn(rank, fan_in, generator=gen) * scale / fan_in ** 0.5
                sd[key + "B.weight"] = torch.randn(fan_out, rank, generator=gen) * scale / rank ** 0.5
        d = root / f"a{seed0 + i}"
        d.mkdir(exist_ok=True)
        (d / CONFIG_FILE).write_bytes(cfg)
        save_file(sd, d / WEIGHTS_FILE)
        dirs.append(d)
    return dirs


def _requests(n: int, n_adapters: int, vocab: int, seed: int = 0):
    rng = random.Random(seed)
    order = list(range(n_adapters)) * (n // n_adapters + 1)
    rng.shuffle(order)
    prompts = [[rng.randrange(3, vocab) for _ in range(rng.randint(8, 24))] for _ in range(n)]
    return [(order[i], prompts[i]) for i in range(n)]


def _pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


@dataclasses.dataclass
class Run:
    name: str
    tokens: int
    seconds: float
    latencies: list[float]

    @property
    def tps(self) -> float:
        return self.tokens / self.seconds

    def row(self, ref: "Run | None" = None) -> str:
        ratio = f"{self.tps / ref.tps:6.2f}x" if ref else "      "
        return (f"  {self.name:<34} {self.tps:10.1f} tok/s  p50 {_pct(self.latencies, .5):7.3f}s  "
                f"p99 {_pct(self.latencies, .99):7.3f}s  {ratio}")


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def run_ours(model, store, ids, reqs, args, single: bool = False) -> Run:
    engine = Engine(model, store, max_batch=args.batch, max_seq_len=64 + args.new_tokens,
                    pool_slots=len(set(i for i, _ in reqs)) + 1)
    for i in set(i for i, _ in reqs):  # warm the CPU tier: measure serving, not disk
        store.get(ids[0 if single else i])
    params = SamplingParams(max_new_tokens=args.new_tokens)
    engine.generate(ids[0], reqs[0][1], SamplingParams(max_new_tokens=2))  # warm-up
    done = {}
    _sync(args.device)
    t0 = time.perf_counter()
    futures = []
    for k, (i, prompt) in enumerate(reqs):
        f = engine.submit(ids[0 if single else i], prompt, params)
        f.add_done_callback(lambda _f, k=k: done.__setitem__(k, time.perf_counter()))
        futures.append(f)
    engine.run_until_idle()
    _sync(args.device)
    elapsed = time.perf_counter() - t0
    tokens = sum(len(f.result().tokens) for f in futures)
    return Run("ours single adapter (ceiling)" if single else "ours mixed (gathered LoRA)", tokens, elapsed,
               [done[k] - t0 for k in range(len(reqs))])


def _peft_generate(pm, batch, args, names=None):
    width = max(len(p) for _, p in batch)
    ids = torch.zeros(len(batch), width, dtype=torch.long)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    for r, (_, p) in enumerate(batch):
        ids[r, width - len(p):] = torch.tensor(p)
        mask[r, width - len(p):] = 1
    kw = {"adapter_names": names} if names is not None else {}
    with torch.inference_mode():
        out = pm.generate(input_ids=ids.to(args.device), attention_mask=mask.to(args.device), do_sample=False,
                          max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, pad_token_id=0, **kw)
    return out.shape[1] - width


def run_peft(pm, reqs, args, mode: str) -> Run:
    """mode: 'mixed' (adapter_names), 'grouped' (set_adapter per adapter), 'single' (one adapter)."""
    pm.set_adapter("a0")
    _peft_generate(pm, reqs[:1], args)  # warm-up
    latencies, tokens = [0.0] * len(reqs), 0
    _sync(args.device)
    t0 = time.perf_counter()
    if mode == "grouped":
        groups: dict[int, list[int]] = {}
        for k, (i, _) in enumerate(reqs):
            groups.setdefault(i, []).append(k)
        batches = []
        for i, ks in groups.items():
            batches += [(i, ks[s:s + args.batch]) for s in range(0, len(ks), args.batch)]
    else:
        batches = [(None, list(range(s, min(s + args.batch, len(reqs))))) for s in range(0, len(reqs), args.batch)]
    for adapter, ks in batches:
        batch = [reqs[k] for k in ks]
        if mode == "grouped":
            pm.set_adapter(f"a{adapter}")
            new = _peft_generate(pm, batch, args)
        elif mode == "mixed":
            new = _peft_generate(pm, batch, args, names=[f"a{i}" for i, _ in batch])
        else:
            new = _peft_generate(pm, batch, args)
        _sync(args.device)
        now = time.perf_counter() - t0
        for k in ks:
            latencies[k] = now
        tokens += new * len(batch)
    elapsed = time.perf_counter() - t0
    label = {"mixed": "peft mixed (adapter_names=)", "grouped": "peft grouped (set_adapter)",
             "single": "peft single adapter (ceiling)"}[mode]
    return Run(label, tokens, elapsed, latencies)


def _peft_model(model, dirs):
    from peft import PeftModel

    pm = PeftModel.from_pretrained(copy.deepcopy(model), str(dirs[0]), adapter_name="a0")
    for i, d in enumerate(track(dirs[1:], description=f"peft: loading {len(dirs)} adapters", transient=True), 1):
        pm.load_adapter(str(d), adapter_name=f"a{i}")
    return pm.eval()


def section_throughput(model, store, ids, dirs, args, results):
    print(f"\n[1] throughput: {args.requests} requests x {args.new_tokens} new tokens, batch {args.batch}, "
          f"prompts 8-24 tokens, all arriving at t=0 (latency = time to completion)")
    vocab = model.config.vocab_size
    for n_adapters in args.adapters:
        reqs = _requests(max(args.requests, n_adapters), n_adapters, vocab)
        print(f" {n_adapters} distinct adapters ({len(reqs)} requests):")
        ours = run_ours(model, store, ids, reqs, args)
        ceiling = run_ours(model, store, ids, reqs, args, single=True)
        print(ceiling.row())
        print(ours.row(ceiling) + "  (vs our ceiling)", flush=True)
        peft_runs = {}
        if n_adapters <= args.peft_max_adapters:
            pm = _peft_model(model, dirs[:n_adapters])
            modes = ("mixed", "grouped", "single") if n_adapters <= args.grouped_max_adapters else ("mixed", "single")
            for mode in modes:
                peft_runs[mode] = run_peft(pm, reqs, args, mode)
            del pm
        for run in peft_runs.values():
            print(run.row())
        summary = {"adapters": n_adapters, "ours_tps": ours.tps, "ours_single_tps": ceiling.tps,
                   "ours_p50": _pct(ours.latencies, .5), "ours_p99": _pct(ours.latencies, .99),
                   "ratio_vs_our_ceiling": ours.tps / ceiling.tps}
        for mode, run in peft_runs.items():
            summary[f"peft_{mode}_tps"] = run.tps
            summary[f"peft_{mode}_p50"] = _pct(run.latencies, .5)
            summary[f"peft_{mode}_p99"] = _pct(run.latencies, .99)
            print(f"  ours / {run.name}: {ours.tps / run.tps:.2f}x", flush=True)
        results.setdefault("throughput", []).append(summary)


def section_resident(model, args, root, results):
    n = args.resident
    print(f"\n[2] adapters resident: {n} adapters of rank {args.rank} on {TARGETS}")
    dirs = _write_adapters(model, root / "resident", n, args.rank, seed0=10_000)
    own = sum(sum(t.numel() * t.element_size() for t in _st(d).values()) for d in dirs)
    store = AdapterStore(root / "resident-store", BaseSpec.of(model), targets=TARGETS, max_rank=args.rank,
                         cpu_budget_bytes=int(1.2 * own))
    ids = [store.add(d) for d in track(dirs, description="adding to store", transient=True)]
    tracemalloc.start()
    for i in track(ids, description="loading disk -> CPU", transient=True):
        store.get(i)
    python_overhead = tracemalloc.get_traced_memory()[0]  # dicts, LoadedAdapter and tensor objects
    tracemalloc.stop()
    held = store.resident_bytes + python_overhead
    rss_delta = _rss_of_loading(root / "resident-store", store.base, ids, args.rank)
    timing = AdapterStore(root / "resident-store", store.base, targets=TARGETS, max_rank=args.rank)
    cold = []
    t0 = time.perf_counter()
    for i in ids:
        t = time.perf_counter()
        timing.get(i)
        cold.append(time.perf_counter() - t)
    load_all = time.perf_counter() - t0
    timing.close()
    resident = len(store.resident())
    pool = LoraPool(store.base, TARGETS, args.rank, n + 1, model.model.embed_tokens.weight.dtype, args.device)
    t0 = time.perf_counter()
    for i in ids:
        pool.acquire(store.get(i))
    _sync(args.device)
    upload = (time.perf_counter() - t0) / n
    # the peer: peft's load_adapter for the same adapters (first 100: disk -> ready in peft)
    from peft import PeftModel

    pm = PeftModel.from_pretrained(copy.deepcopy(model), str(dirs[0]), adapter_name="p0")
    k = min(100, n - 1)
    t0 = time.perf_counter()
    for j, d in enumerate(dirs[1:k + 1], 1):
        pm.load_adapter(str(d), adapter_name=f"p{j}")
    peft_load = (time.perf_counter() - t0) / k
    del pm
    cold_ms = statistics.median(cold) * 1e3
    print(f"  adapters' own weights             {own / 2**20:10.2f} MiB ({own / n / 1024:.1f} KiB each)")
    print(f"  CPU tier resident                 {resident:10d} adapters in a budget of 1.2x: tensors "
          f"{store.resident_bytes / 2**20:.2f} MiB + Python objects {python_overhead / 2**20:.2f} MiB = "
          f"{held / own:.3f}x own weights; a fresh process loading them grew its RSS by {rss_delta / 2**20:.2f} MiB = "
          f"{rss_delta / own:.3f}x")
    print(f"  device slot pool ({args.device})            {n:10d} adapters, {pool.nbytes / 2**20:.2f} MiB "
          f"= {pool.nbytes / own:.3f}x own weights")
    print(f"  cold load disk -> CPU (ours)      {cold_ms:10.3f} ms median (hash check + parse), all {n} in "
          f"{load_all:.2f}s; CPU -> slot {upload * 1e3:.3f} ms")
    print(f"  cold load (peft load_adapter)     {peft_load * 1e3:10.3f} ms   ours/peft time {cold_ms / 1e3 / peft_load:.3f}x")
    results["resident"] = {"adapters": resident, "own_mib": own / 2**20, "cpu_tier_x": held / own,
                           "rss_x": rss_delta / own, "pool_x": pool.nbytes / own, "cold_load_ms": cold_ms,
                           "upload_ms": upload * 1e3, "peft_load_ms": peft_load * 1e3}
    store.close()


def _rss_of_loading(root, spec, ids, rank) -> int:
    """RSS growth of a fresh process that loads every adapter into its CPU tier (all overheads)."""
    code = (
        "import gc, json, sys, psutil, torch\n"
        "from inference import AdapterStore, BaseSpec\n"
        "a = json.loads(sys.argv[1])\n"
        "spec = BaseSpec(a['layers'], {k: tuple(v) for k, v in a['modules'].items()})\n"
        "store = AdapterStore(a['root'], spec, targets=tuple(a['targets']), max_rank=a['rank'], cpu_budget_bytes=1 << 40)\n"
        "store.get(a['ids'][0]); gc.collect(); before = psutil.Process().memory_info().rss\n"
        "[store.get(i) for i in a['ids']]; gc.collect()\n"
        "print(psutil.Process().memory_info().rss - before)\n")
    arg = json.dumps({"layers": spec.num_layers, "modules": spec.modules, "root": str(root), "targets": TARGETS,
                      "rank": rank, "ids": ids})
    out = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1])})
    return int(out.stdout.split()[-1])


def _st(d):
    from safetensors.torch import load_file

    return load_file(d / WEIGHTS_FILE)


def section_verify_cost(model, store, ids, args, results):
    n = args.verify_tokens
    print(f"\n[3] verification cost: {n}-token generations, one prefill to verify")
    verifier = Verifier(model, store, max_seq_len=64 + n)
    engine = Engine(model, store, max_batch=args.batch, max_seq_len=64 + n, pool_slots=args.batch + 1)
    params = SamplingParams(max_new_tokens=n)
    prompt = list(range(3, 19))
    engine.generate(ids[0], prompt, SamplingParams(max_new_tokens=2))
    verifier.verify(ids[0], prompt, [5, 6], SamplingParams(max_new_tokens=2), CommitmentBuilder().finish().to_bytes())
    alone, verify, sizes = [], [], []
    for r in range(5):
        _sync(args.device)
        t = time.perf_counter()
        g = engine.generate(ids[r], prompt, params)
        _sync(args.device)
        alone.append(time.perf_counter() - t)
        t = time.perf_counter()
        verdict = verifier.verify_generation(g)
        _sync(args.device)
        verify.append(time.perf_counter() - t)
        assert verdict.ok, verdict.reason
        sizes.append(len(g.commitment.to_bytes()) / len(g.tokens))
    futures = [engine.submit(ids[i % len(ids)], prompt, params) for i in range(args.batch)]
    t = time.perf_counter()
    engine.run_until_idle()
    _sync(args.device)
    batched = (time.perf_counter() - t) / args.batch
    claims = [Claim(g.adapter_id, g.prompt, g.tokens, g.params, g.commitment.to_bytes())
              for g in (f.result() for f in futures)]
    batch_verifier = Verifier(model, store, max_seq_len=64 + n, max_batch=args.batch)
    batch_verifier.verify_many(claims[:1])
    t = time.perf_counter()
    verdicts = batch_verifier.verify_many(claims)
    _sync(args.device)
    verify_batched = (time.perf_counter() - t) / len(claims)
    assert all(v.ok for v in verdicts)
    v, a = statistics.median(verify), statistics.median(alone)
    print(f"  generation:   alone {a * 1e3:9.1f} ms/request; in a batch of {args.batch} {batched * 1e3:9.1f} ms/request")
    print(f"  verification: alone {v * 1e3:9.1f} ms/request; in a batch of {args.batch} {verify_batched * 1e3:9.1f} "
          f"ms/request (one batched prefill)")
    print(f"  cost ratio:   alone {v / a:.3f}x; batched {verify_batched / batched:.3f}x (target <= 0.1)")
    print(f"  proof size    {statistics.mean(sizes):9.2f} bytes/token (target <= 16)")
    results["verify_cost"] = {"tokens": n, "gen_alone_ms": a * 1e3, "gen_batched_ms": batched * 1e3,
                              "verify_ms": v * 1e3, "verify_batched_ms": verify_batched * 1e3,
                              "ratio_alone": v / a, "ratio_batched": verify_batched / batched,
                              "bytes_per_token": statistics.mean(sizes)}


def section_rates(model, args, root, results):
    """>= trials honest claims (mixed batches, both thread counts, greedy and sampled) and >=
    trials dishonest ones spread over five kinds of cheating; strong and weak adapters."""
    trials, n_tok = args.trials, 48
    print(f"\n[4] verifier error rates: {trials} honest and {trials} dishonest claims, {n_tok}-token outputs")
    dirs = _write_adapters(model, root / "rates", 8, args.rank, scale=1.0, seed0=20_000)
    dirs += _write_adapters(model, root / "rates-weak", 8, args.rank, scale=0.1, seed0=30_000)
    store = AdapterStore(root / "rates-store", BaseSpec.of(model), targets=TARGETS, max_rank=args.rank)
    ids = [store.add(d) for d in dirs]
    verifier = Verifier(model, store, max_seq_len=64 + n_tok, max_batch=args.batch)
    rng = random.Random(1)
    vocab = model.config.vocab_size

    def generate(m, count, threads):
        torch.set_num_threads(threads)
        engine = Engine(m, store, max_batch=args.batch, max_seq_len=64 + n_tok, pool_slots=len(ids) + 1)
        futures = []
        for _ in range(count):
            params = SamplingParams(max_new_tokens=n_tok, temperature=rng.choice([0.0, 0.8]), seed=rng.randrange(2**63))
            prompt = [rng.randrange(3, vocab) for _ in range(rng.randint(4, 16))]
            futures.append(engine.submit(ids[rng.randrange(len(ids))], prompt, params))
            if rng.random() < 0.3:
                engine.step()  # vary batch composition and positions
        engine.run_until_idle()
        torch.set_num_threads(args.threads)
        return [f.result() for f in futures]

    two = min(args.two_thread_trials, trials)
    honest = generate(model, trials - two, args.threads) + generate(model, two, 2)
    honest_verdicts = verifier.verify_many(
        [Claim(g.adapter_id, g.prompt, g.tokens, g.params, g.commitment.to_bytes()) for g in honest])
    false_reject = sum(not v.ok for v in honest_verdicts)
    other = copy.deepcopy(model).to(torch.bfloat16 if args.dtype == "fp32" else torch.float32)
    per_kind = trials // 5 + 1
    kinds = {"wrong adapter": [], "base model": [], "other precision": [], "edited token": [], "truncated": []}
    for g in honest[:per_kind]:
        wrong = ids[(ids.index(g.adapter_id) + 1 + rng.randrange(len(ids) - 1)) % len(ids)]
        kinds["wrong adapter"].append(Claim(wrong, g.prompt, g.tokens, g.params, g.commitment.to_bytes()))
        kinds["base model"].append(Claim(None, g.prompt, g.tokens, g.params, g.commitment.to_bytes()))
    for g in generate(other, per_kind, args.threads):
        kinds["other precision"].append(Claim(g.adapter_id, g.prompt, g.tokens, g.params, g.commitment.to_bytes()))
    for g in honest[per_kind:2 * per_kind]:
        tokens = list(g.tokens)
        i = rng.randrange(len(tokens))
        tokens[i] = (tokens[i] + rng.randrange(1, vocab - 3)) % vocab
        kinds["edited token"].append(Claim(g.adapter_id, g.prompt, tuple(tokens), g.params, g.commitment.to_bytes()))
    for g in honest[2 * per_kind:3 * per_kind]:
        cut = g.tokens[:rng.randrange(1, len(g.tokens))]
        kinds["truncated"].append(Claim(g.adapter_id, g.prompt, cut, g.params, _recommit(verifier, g, cut)))
    accepted, total = {}, 0
    calibration = {"honest": [v.worst for v in honest_verdicts if v.worst]}
    for kind, claims in kinds.items():
        verdicts = verifier.verify_many(claims)
        accepted[kind] = sum(v.ok for v in verdicts)
        calibration[kind] = [v.worst for v in verdicts if v.worst]
        total += len(claims)
    fa = sum(accepted.values())
    print(f"  false rejects: {false_reject}/{len(honest)} honest claims ({false_reject / len(honest):.2%}); "
          f"{len(honest) - two} generated with {args.threads} thread(s), {two} with 2; greedy and T=0.8, mixed batches, strong and weak (0.1x) adapters")
    print(f"  false accepts: {fa}/{total} dishonest claims ({fa / total:.2%}): "
          + ", ".join(f"{k} {v}/{len(kinds[k])}" for k, v in accepted.items()))
    print(f"  thresholds in use ({args.dtype}): {verifier.thresholds}")
    print("  per-claim worst chunk (max over claims for honest, min for the others), to calibrate thresholds:")
    for kind, stats in calibration.items():
        pick = max if kind == "honest" else min
        if stats:
            print(f"    {kind:<16} mismatch {pick(s.mismatch_fraction for s in stats):.4f}  mantissa mean "
                  f"{pick(s.mantissa_mean for s in stats):.4f}  median {pick(s.mantissa_median for s in stats):.4f}"
                  f"  ({len(stats)} claims reached the activation check)")
    results["rates"] = {"honest": len(honest), "false_reject": false_reject, "dishonest": total,
                        "false_accept": fa, "by_kind": {k: [v, len(kinds[k])] for k, v in accepted.items()}}
    store.close()


def _recommit(verifier, g, tokens) -> bytes:
    """An honest commitment to a cut output: a cheater who stops early can build one."""
    ex = verifier.executor
    slot = ex.pool.acquire(verifier.store.get(g.adapter_id))
    seq = list(g.prompt) + list(tokens[:-1])
    hidden = ex.forward(torch.tensor([seq], device=ex.device), 0, torch.zeros(1, dtype=torch.long, device=ex.device),
                        torch.tensor([slot], device=ex.device))[0, len(g.prompt) - 1:]
    ex.pool.release(slot)
    builder = CommitmentBuilder()
    for h in hidden:
        builder.add(h)
    return builder.finish().to_bytes()


def section_fit(model, args, root, results):
    """The largest number of distinct adapters whose mixed throughput stays >= 0.8x the ceiling."""
    print(f"\n[5] adapters that fit within 0.8x of the single-adapter ceiling (batch {args.batch})")
    top = max(args.fit)
    dirs = _write_adapters(model, root / "fit", top, args.rank, seed0=40_000)
    store = AdapterStore(root / "fit-store", BaseSpec.of(model), targets=TARGETS, max_rank=args.rank,
                         cpu_budget_bytes=1 << 40)
    ids = [store.add(d) for d in track(dirs, description="adding", transient=True)]
    best = 0
    for n in sorted(args.fit):
        reqs = _requests(max(args.requests, n), n, model.config.vocab_size, seed=n)
        ours, ceiling = run_ours(model, store, ids, reqs, args), run_ours(model, store, ids, reqs, args, single=True)
        ratio = ours.tps / ceiling.tps
        best = n if ratio >= 0.8 else best
        print(f"  {n:6d} adapters: {ours.tps:10.1f} tok/s vs ceiling {ceiling.tps:10.1f} -> {ratio:.2f}x")
    print(f"  largest tested count within 0.8x: {best}")
    results["fit"] = {"largest_within_0.8x": best}
    store.close()


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench inference")
    p.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="default: fp32 on CPU, bf16 on cuda")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int)
    p.add_argument("--requests", type=int)
    p.add_argument("--new-tokens", type=int)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--adapters", type=_ints, default=[8, 64, 512])
    p.add_argument("--peft-max-adapters", type=int, help="skip peft runs above this many adapters")
    p.add_argument("--grouped-max-adapters", type=int,
                   help="skip peft grouped above this many adapters (512 adapters = 512 batch-1 generate calls)")
    p.add_argument("--resident", type=int, default=1000)
    p.add_argument("--verify-tokens", type=int, default=128)
    p.add_argument("--trials", type=int, default=500)
    p.add_argument("--two-thread-trials", type=int, default=100, help="honest generations made with 2 threads")
    p.add_argument("--fit", type=_ints, help="adapter counts to try for the 0.8x-of-ceiling fit")
    p.add_argument("--sections", default="throughput,resident,verify,rates,fit")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    # Presets: the CPU run (tiny model) and the one-shot GPU run (SmolLM2 in bf16 on a lent card).
    gpu = args.device.startswith("cuda")
    preset = (dict(dtype="bf16", batch=64, requests=512, new_tokens=32, peft_max_adapters=64, grouped_max_adapters=64,
                   fit=[256, 1024, 2048]) if gpu else
              dict(dtype=args.dtype, batch=32, requests=256, new_tokens=16, peft_max_adapters=512,
                   grouped_max_adapters=64, fit=[1024]))
    for key, value in preset.items():
        if getattr(args, key) is None or (key == "dtype" and "--dtype" not in argv):
            setattr(args, key, value)
    torch.set_num_threads(args.threads)
    print(f"model {args.model} ({args.dtype}) on {args.device}; torch.set_num_threads({args.threads}); "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    torch.manual_seed(0)
    model = _load_model(args)
    sections = set(args.sections.split(","))
    results: dict = {"args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        root = pathlib.Path(tmp)
        if sections & {"throughput", "verify"}:
            top = max(args.adapters)
            dirs = _write_adapters(model, root / "main", top, args.rank)
            store = AdapterStore(root / "main-store", BaseSpec.of(model), targets=TARGETS, max_rank=args.rank,
                                 cpu_budget_bytes=1 << 40)
            ids = [store.add(d) for d in track(dirs, description="adding to store", transient=True)]
            if "throughput" in sections:
                section_throughput(model, store, ids, dirs, args, results)
            if "verify" in sections:
                section_verify_cost(model, store, ids, args, results)
            store.close()
        if "resident" in sections:
            section_resident(model, args, root, results)
        if "rates" in sections:
            section_rates(model, args, root, results)
        if "fit" in sections:
            section_fit(model, args, root, results)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
