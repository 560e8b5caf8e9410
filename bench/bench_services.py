"""Validator services benchmark (#14): paid jobs end to end on a devnet with the three services.

    .venv/bin/python -m bench services [--jobs 6] [--repeats 3]

A devnet (automining, the devnet's 10 s dispute window) is set up as `openledger demo` sets it up
(Datanet of 12 rows by 3 contributors, tiny-llama, an adapter trained with its attribution index,
3 GPU validators run by one services process); then:
1. end to end: --jobs paid jobs requested at once -> every one finalised, attributed and paid;
   jobs/s over that wall time, and blocks from each job's request to its payout (target <= 10);
   then one job alone (its blocks and seconds from request to payout);
2. cost shares: the work of one job, timed in this process on the same chain with the services'
   own code: serving (generation, 24 new tokens), verification (one prefill re-check, times the
   `attestation_quorum` verifiers, times the sampled share `verify_sample_ppm`) and attribution
   (the proof); verification + attribution against serving (target <= 25%). Also the gas each
   step's transactions used (submitResult; the attestations; postProof + finaliseProof).
No peer: the issue names none for the services. torch is pinned to 1 thread (the services' default).
"""
from __future__ import annotations

import argparse
import pathlib
import socket
import statistics
import tempfile
import time

import torch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str]) -> None:
    from rich.console import Console

    from node.cli.common import CliError
    from node.cli.demo import USER, Demo, cmd_demo_stop
    from node.sdk import ADDRESSES, decode_events
    from node.services import attribution, model

    p = argparse.ArgumentParser(prog="bench services")
    p.add_argument("--jobs", type=int, default=6, help="paid jobs requested at once (default 6)")
    p.add_argument("--repeats", type=int, default=3, help="timings per cost (median; default 3)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print("torch threads pinned to 1; tiny-llama on CPU; services: 1 process, 3 validator keys, 1 thread")

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-services-"))
    console = Console(quiet=True)
    demo = Demo(argparse.Namespace(datadir=str(tmp / "demo"), port=_free_port()), console)
    try:
        t0 = time.perf_counter()
        for step in (demo.start_devnet, demo.datanet, demo.contribute, demo.curate, demo.base_model, demo.train,
                     demo.stake):
            step()
        print(f"set-up (devnet, Datanet, training, staking): {time.perf_counter() - t0:.1f} s")

        # 1. end to end ---------------------------------------------------------------------------
        user = demo.client(USER)
        prompts = [f"{p} " for p in ("The capital of France is", "Bees carry", "Ice melts at", "Bread rises because",
                                     "The moon orbits", "Water boils at", "Rome is", "Honey is made")]
        t0 = time.perf_counter()
        jobs = [user.request_inference(1, prompts[i % len(prompts)])["jobId"] for i in range(args.jobs)]
        done: dict[int, dict] = {}
        while len(done) < len(jobs):
            for j in jobs:
                if j not in done and (o := user.inference(j))["done"]:
                    done[j] = o
            if time.perf_counter() - t0 > 900:
                raise CliError(f"jobs {sorted(set(jobs) - set(done))} not paid within 15 minutes")
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        failed = [j for j, o in done.items() if o["status"] != "succeeded"]
        blocks = [o["payoutBlock"] - o["requestBlock"] for o in done.values() if o["payoutBlock"] is not None]
        print(f"\n1. end to end: {len(jobs)} paid jobs requested at once, all paid out in {wall:.1f} s: "
              f"{len(jobs) / wall:.3f} jobs/s ({len(failed)} failed)")
        print(f"   blocks from request to payout: max {max(blocks)}, median {statistics.median(blocks):g} "
              f"(target <= 10: {'met' if max(blocks) <= 10 else 'NOT met'}); the devnet automines, its dispute "
              f"window is 10 s of chain time")

        t0 = time.perf_counter()
        alone = user.infer(1, prompts[0], timeout=600)
        print(f"   one job alone: paid out {alone['payoutBlock'] - alone['requestBlock']} blocks after its request, "
              f"in {time.perf_counter() - t0:.1f} s")

        # 2. cost shares --------------------------------------------------------------------------
        reader = demo.client()
        params = reader.ol("getParams")["params"]
        quorum, sample = int(params["attestation_quorum"], 16), int(params["verify_sample_ppm"], 16) / 1e6
        job = model.job_of(reader, jobs[0])
        options = model.ModelOptions(store=str(tmp / "adapters"))
        rt = model.Runtime(reader, options, 1)
        try:
            prompt = model.prompt_of(reader, job)
            serve_s = _median_s(lambda: model.serve(rt, job, prompt, 24), args.repeats)
            verify_s = _median_s(lambda: model.check(reader, job, options, rt), args.repeats)
            form_s = _median_s(lambda: model.check(reader, job, options, rt, prefill=False), args.repeats)
            attribution._attributor.cache_clear()
            cold_s = _median_s(lambda: attribution.prove(reader, job, demo.dir / "run"), 1)  # opens the run
            attribute_s = _median_s(lambda: attribution.prove(reader, job, demo.dir / "run"), args.repeats)
        finally:
            rt.close()
        verification = quorum * (sample * verify_s + (1 - sample) * form_s)
        print(f"\n2. cost of one job (median of {args.repeats}; CPU seconds of one thread):")
        print(f"   serving (24 new tokens):              {serve_s * 1000:8.1f} ms")
        print(f"   verification ({quorum} verifiers x one prefill, sampled share {sample:.0%}): "
              f"{verification * 1000:8.1f} ms  ({verification / serve_s:.1%} of serving)")
        print(f"   attribution (the proof):              {attribute_s * 1000:8.1f} ms  ({attribute_s / serve_s:.1%} of serving; "
              f"the first, opening the run once per process: {cold_s * 1000:.0f} ms)")
        share = (verification + attribute_s) / serve_s
        print(f"   verification + attribution / serving: {share:.1%} (target <= 25%: {'met' if share <= 0.25 else 'NOT met'})")
        for rate in (0.25, 0.1):
            v = quorum * (rate * verify_s + (1 - rate) * form_s)
            print(f"     with verify_sample_ppm at {rate:.0%}: {(v + attribute_s) / serve_s:.1%}")

        gas = {"serving (submitResult)": 0, "verification (attest)": 0, "attribution (postProof, finaliseProof)": 0}
        for o in done.values():
            logs = reader.rpc("eth_getLogs", {"fromBlock": hex(o["requestBlock"]), "toBlock": hex(o["payoutBlock"]),
                                              "address": [ADDRESSES["InferenceJobs"], ADDRESSES["Attribution"]]})
            seen = set()
            for log, ev in zip(logs, decode_events(logs)):
                if ev["args"].get("jobId") != o["jobId"] or log["transactionHash"] in seen:
                    continue
                kind = {"ResultSubmitted": "serving (submitResult)", "Attested": "verification (attest)",
                        "ProofPosted": "attribution (postProof, finaliseProof)",
                        "FeeSplit": "attribution (postProof, finaliseProof)"}.get(ev["event"])
                if kind:
                    seen.add(log["transactionHash"])
                    gas[kind] += int(reader.rpc("eth_getTransactionReceipt", log["transactionHash"])["gasUsed"], 16)
        print("   gas per job (mean):", ", ".join(f"{k} {v / len(done):,.0f}" for k, v in gas.items()))
    finally:
        cmd_demo_stop(argparse.Namespace(datadir=str(demo.dir)))  # the devnet, its services and the files
