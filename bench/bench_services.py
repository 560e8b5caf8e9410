"""Validator services benchmark (#14): paid jobs end to end on a devnet with the three services.

    .venv/bin/python -m bench services [--jobs 6] [--repeats 3] [--block-time 1] [--dispute-window 4]
                                       [--tokens 24,64,128]

A devnet (blocks on a clock, --block-time s; a dispute window of --dispute-window s, the genesis
parameter dispute_window_s) is set up as `openledger demo` sets it up (Datanet of 12 rows by 3
contributors, tiny-llama, an adapter trained with its attribution index, 3 GPU validators run by
one services process); then:
1. end to end: one job alone (the services' first: it loads the model and opens the attribution
   run), then --jobs paid jobs requested at once (signed first, sent together: one block) ->
   every one finalised, attributed and paid; jobs/s over that wall time, and each job's blocks
   from request to payout (max and p50; target <= 10 for every job), with the block of each
   step; then one job alone again;
2. cost shares, for outputs of each --tokens length: the work of one job, timed in this process
   on the same chain with the services' own code: serving (generation), verification (one prefill
   re-check, times the `attestation_quorum` verifiers, times the sampled share `verify_sample_ppm`)
   and attribution (the proof); verification + attribution against serving (target <= 25%). Each
   is also shown as its core (the prefill, the gradient pass) and the rest (reading the job, its
   prompt, result and proof from the node, encoding): the fixed costs. Also the gas per step.
No peer: the issue names none for the services. torch is pinned to 1 thread (the services' default).
"""
from __future__ import annotations

import argparse
import json
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


def _cost(fn, repeats: int) -> tuple[float, float]:
    """(median CPU seconds of this process, median wall seconds) of `fn()`: the CPU figure is the
    work itself (every thread of this process: the OpenLoRA engine's loop, torch pinned to one
    thread), little moved by the other processes of a shared machine, and leaves out the node's
    side of an RPC; the wall figure adds waiting, for the CPU and for the node."""
    cpu, wall = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return statistics.median(cpu), statistics.median(wall)


def _step_blocks(reader, job_id: int) -> dict[str, int]:
    """The block of each step of a job: result, quorum (JobFinalised), proof posted, fee split."""
    from node.sdk import ADDRESSES, decode_events

    out = {}
    for module in ("InferenceJobs", "Attribution"):
        logs = reader.rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES[module],
                                          "topics": [None, "0x%064x" % job_id]})
        for ev in decode_events(logs):
            name = {"InferenceRequested": "request", "ResultSubmitted": "result", "JobFinalised": "quorum",
                    "ProofPosted": "proof", "FeeSplit": "paid"}.get(ev["event"])
            if name:
                out.setdefault(name, ev["block"])
    return out


def main(argv: list[str]) -> None:
    from rich.console import Console

    from node.cli.common import CliError
    from node.cli.demo import USER, Demo, cmd_demo_stop
    from node.sdk import ADDRESSES, decode_events
    from node.services import attribution, model

    p = argparse.ArgumentParser(prog="bench services")
    p.add_argument("--jobs", type=int, default=6, help="paid jobs requested at once (default 6)")
    p.add_argument("--repeats", type=int, default=3, help="timings per cost (median; default 3)")
    p.add_argument("--block-time", type=float, default=1.0, help="seconds between blocks (default 1)")
    p.add_argument("--dispute-window", type=int, default=4,
                   help="the devnet's dispute_window_s (default 4: four block times; the devnet's own is 10)")
    p.add_argument("--tokens", default="24,64,128", help="new tokens per output for the cost shares (default 24,64,128)")
    args = p.parse_args(argv)
    lengths = [int(t) for t in args.tokens.split(",")]
    torch.set_num_threads(1)
    print("torch threads pinned to 1; tiny-llama on CPU; services: 1 process, 3 validator keys, 1 thread")
    print(f"devnet: --block-time {args.block_time:g}, dispute_window_s {args.dispute_window}")

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-services-"))
    console = Console(quiet=True)
    flags = ("--block-time", f"{args.block_time:g}", "--param", f"dispute_window_s={args.dispute_window}")
    demo = Demo(argparse.Namespace(datadir=str(tmp / "demo"), port=_free_port(), devnet_flags=flags), console)
    try:
        t0 = time.perf_counter()
        for step in (demo.start_devnet, demo.datanet, demo.contribute, demo.curate, demo.base_model, demo.train,
                     demo.stake):
            step()
        print(f"set-up (devnet, Datanet, training, staking): {time.perf_counter() - t0:.1f} s")

        # 1. end to end ---------------------------------------------------------------------------
        user, reader = demo.client(USER), demo.client()
        prompts = [f"{p} " for p in ("The capital of France is", "Bees carry", "Ice melts at", "Bread rises because",
                                     "The moon orbits", "Water boils at", "Rome is", "Honey is made")]
        # one job alone first: the services' first job loads the model and opens the attribution run
        t0 = time.perf_counter()
        alone = user.infer(1, prompts[0], timeout=600)
        print(f"\n1. end to end: one job alone (the services' first: loading the model and the run): paid out "
              f"{alone['payoutBlock'] - alone['requestBlock']} blocks after its request, in {time.perf_counter() - t0:.1f} s")
        nonce = int(user.rpc("eth_getTransactionCount", user.address, "pending"), 16)
        signed = []  # every request signed first, then all sent at once: one block
        for i in range(args.jobs):
            prompt_hash = user.put_blob(prompts[i % len(prompts)].encode(), public=True)
            signed.append(user.build("InferenceJobs", "requestInference", 1, prompt_hash, 10**18, value=10**18,
                                     nonce=nonce + i)[0])
        t0 = time.perf_counter()
        sent = [user.rpc("eth_sendRawTransaction", "0x" + raw.hex()) for raw in signed]
        jobs = [next(e["args"]["jobId"] for e in user.wait(h)["events"] if e["event"] == "InferenceRequested")
                for h in sent]
        first = user.inference(jobs[0])["requestBlock"]
        settled: set[int] = set()  # paid out (FeeSplit) or refused (JobFinalised, failed): one getLogs a look,
        while not set(jobs) <= settled:  # so the bench's own polling hardly loads the node the services use
            logs = reader.rpc("eth_getLogs", {"fromBlock": hex(first), "address": [ADDRESSES["InferenceJobs"],
                                                                               ADDRESSES["Attribution"]]})
            settled = {ev["args"]["jobId"] for ev in decode_events(logs)
                       if ev["event"] == "FeeSplit" or (ev["event"] == "JobFinalised" and not ev["args"]["success"])}
            if time.perf_counter() - t0 > 900:
                raise CliError(f"jobs {sorted(set(jobs) - settled)} not paid within 15 minutes")
            time.sleep(0.5)
        wall = time.perf_counter() - t0
        done = {j: user.inference(j) for j in jobs}
        failed = [j for j, o in done.items() if o["status"] != "succeeded"]
        blocks = {j: o["payoutBlock"] - o["requestBlock"] for j, o in done.items() if o["payoutBlock"] is not None}
        print(f"   {len(jobs)} paid jobs requested at once (blocks {sorted({done[j]['requestBlock'] for j in jobs})}), "
              f"all paid out in {wall:.1f} s: "
              f"{len(jobs) / wall:.3f} jobs/s ({len(failed)} failed)")
        print(f"   blocks from request to payout per job: {[blocks[j] for j in jobs]}: max {max(blocks.values())}, "
              f"p50 {statistics.median(blocks.values()):g} (target <= 10 for every job: "
              f"{'met' if max(blocks.values()) <= 10 else 'NOT met'})")
        for j in jobs:
            steps = _step_blocks(reader, j)
            print(f"   job {j}: " + ", ".join(f"{k} +{v - steps['request']}" for k, v in steps.items() if k != "request"))

        t0 = time.perf_counter()
        alone = user.infer(1, prompts[1], timeout=600)
        print(f"   one job alone, after them: paid out {alone['payoutBlock'] - alone['requestBlock']} blocks after its "
              f"request, in {time.perf_counter() - t0:.1f} s")

        # 2. cost shares --------------------------------------------------------------------------
        from inference import SamplingParams
        from node.services.peers import PeerClient

        params = reader.ol("getParams")["params"]
        quorum, sample = int(params["attestation_quorum"], 16), int(params["verify_sample_ppm"], 16) / 1e6
        job = model.job_of(reader, jobs[0])
        options = model.ModelOptions(store=str(tmp / "adapters"))
        rt = model.Runtime(reader, options, 1)
        run = demo.dir / "run"
        services_reader = PeerClient(demo.url)  # the services' own: it keeps the objects it read or stored
        chain = model.lineage(services_reader, 1)  # and an adapter's lineage, read once
        try:
            prompt = model.prompt_of(reader, job)
            attribution._attributor.cache_clear()
            cold_s = _median_s(lambda: attribution.prove(reader, job, run), 1)  # opens the run
            attributor = attribution._attributor(str(run.resolve()))
            print(f"\n2. cost of one job, median of {args.repeats}: CPU ms of this process (wall ms); opening "
                  f"the run, once per process: {cold_s * 1000:.0f} ms wall")
            for n in lengths:
                served = model.serve(rt, job, prompt, n)
                result = json.loads(served.result)
                output_hash, commitment = model.store_served(services_reader, served)  # as the server does
                services_reader.get_object(model.h(job["promptHash"]))  # the server read the prompt to serve
                job_n = {**job, "outputHash": "0x" + output_hash.hex(), "activationCommitment": "0x" + commitment.hex()}
                claim = (rt.adapter_hash, result["promptTokens"], result["tokens"], SamplingParams(max_new_tokens=n),
                         served.proof, commitment)
                assert rt.verifier().verify(*claim).ok and model.check(reader, job_n, options, rt)[0]
                serve = _cost(lambda: model.serve(rt, job, prompt, n), args.repeats)
                verify = _cost(lambda: model.check(reader, job_n, options, rt), args.repeats)
                form = _cost(lambda: model.check(reader, job_n, options, rt, prefill=False), args.repeats)
                prefill = _cost(lambda: rt.verifier().verify(*claim), args.repeats)
                attribute = _cost(lambda: attribution.prove(reader, job_n, run), args.repeats)
                attribute_held = _cost(lambda: attribution.prove(services_reader, job_n, run, chain), args.repeats)
                gradient = _cost(lambda: attributor.attribute(prompt.encode(), result["text"].encode()), args.repeats)

                def ms(c: tuple[float, float]) -> str:
                    return f"{c[0] * 1000:.1f} ({c[1] * 1000:.1f})"

                def share(v, a, i: int) -> float:
                    return (quorum * (sample * v[i] + (1 - sample) * form[i]) + a[i]) / serve[i]

                print(f"   {len(result['tokens'])} new tokens (asked {n}):")
                print(f"     serving:                      {ms(serve)}")
                print(f"     verification, one verifier:   {ms(verify)}; its prefill {ms(prefill)}, form check only "
                      f"{ms(form)}; x {quorum} verifiers, sampled share {sample:.0%}")
                print(f"     attribution, objects fetched: {ms(attribute)}; kept by the services: {ms(attribute_held)}; "
                      f"its gradient pass and scoring {ms(gradient)}")
                for i, what in ((0, "CPU"), (1, "wall")):
                    total = share(verify, attribute_held, i)
                    print(f"     verification + attribution / serving ({what}): {total:.1%} (target <= 25%: "
                          f"{'met' if total <= 0.25 else 'NOT met'}); verification {quorum * verify[i] / serve[i]:.1%}, "
                          f"attribution {attribute_held[i] / serve[i]:.1%}; with verify_sample_ppm at 25%: "
                          f"{(quorum * (0.25 * verify[i] + 0.75 * form[i]) + attribute_held[i]) / serve[i]:.1%}")
        finally:
            rt.close()

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
