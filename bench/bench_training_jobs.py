"""Paid training jobs (TrainingJobs, #24): what verification costs next to the training it checks,
and how many blocks a hired run takes from request to registered run.

cost: in this process, a job's training as the training service does it (LoRA run with 30
checkpoint segments plus the datainf-v1 attribution index) against one verifier's check as the
verification service does it (record, checkpoints and adapter checked, the chain's k segments
replayed; k = training_verify_segments, 2 by default), in process CPU seconds with torch pinned to
--threads (the wall clock of a shared machine mostly measures the neighbours; it is printed too).
A job is verified by `attestation_quorum` (2) validators, so its total verification is twice that.
blocks: a devnet (1 s blocks) with three validators' training services; `openledger train request`
of the same config on a Datanet of 40 of those rows; blocks and seconds from the request's block to
the completion's.

    python -m bench training_jobs [--parts=cost,blocks] [--model=tiny-llama] [--device=cpu] [--threads=1]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SEGMENTS = 30
K = 2  # genesis.Economics.training_verify_segments
ROWS_ON_CHAIN = 40  # blocks: 40 contributions (3 epochs of batch 8 = 15 steps, 8 segments)


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start):
    return time.perf_counter() - start[0], time.process_time() - start[1]


def _config(model: str):
    from training import TrainingConfig, derive_seed

    targets = ("query", "value") if model == "minilm" else ("q_proj", "v_proj")
    task = "seq_cls" if model == "minilm" else "causal_lm"
    # 160 rows, batch 8, 3 epochs = 60 steps: a checkpoint every 2 steps gives 30 segments
    return TrainingConfig(task=task, target_modules=targets, batch_size=8, max_length=64, epochs=3,
                          checkpoint_every=2, lr=2e-3, labels=("neg", "pos") if task == "seq_cls" else (),
                          seed=derive_seed(b"\x42" * 32, 1))


def cost(model: str, device: str, threads: int) -> None:
    from attribution.runs import index_hook
    from training import Dataset, pang_lee_rows, run, verify_run
    from training.verify import choose_segments

    config = _config(model)
    rows = [r for i, r in enumerate(pang_lee_rows()) if i % 5]
    data = Dataset.from_rows(rows)
    owners = [bytes([i % 7 + 1]) * 20 for i in range(len(data))]
    with tempfile.TemporaryDirectory(prefix="bench-training-jobs-") as tmp:
        out = Path(tmp) / "run"
        start = _clock()
        record = run(config, data, model, out, run_id=1, device=device, progress=False,
                     attribution=index_hook("datainf-v1", contributors=lambda i, _r: owners[i]))
        train_wall, train_cpu = _since(start)
        print(f"training ({model}, {len(data)} rows x {config.epochs} epochs, {record.step_count} steps, "
              f"{len(record.checkpoint_steps) - 1} segments, with its datainf-v1 index): "
              f"{train_cpu:.1f} CPU s ({train_wall:.1f} s wall)", flush=True)
        figures = []
        for challenge in (b"\x01" * 32, b"\x02" * 32):  # two verifiers' draws
            segments = choose_segments(record, K, challenge)
            start = _clock()
            verdict = verify_run(record, data, out, K, config=config, adapter_dir=out / "adapter", device=device,
                                 segments=segments)
            wall, cpu = _since(start)
            figures.append((wall, cpu))
            print(f"  verifier replaying segments {list(segments)}: {cpu:.1f} CPU s ({wall:.1f} s wall), "
                  f"accepted={verdict.accepted} ({verdict.reason})", flush=True)
        cpu = sum(c for _, c in figures) / len(figures)
        wall = sum(w for w, _ in figures) / len(figures)
        print(f"verification per verifier (k={K} of {SEGMENTS}): {cpu / train_cpu:.1%} of training CPU time "
              f"({wall / train_wall:.1%} by wall clock); target <= 10%: {'met' if cpu / train_cpu <= 0.10 else 'NOT met'}")
        print(f"verification by the quorum of 2: {2 * cpu / train_cpu:.1%} of training CPU time; torch threads pinned "
              f"to {threads}")


def blocks(model: str) -> None:
    from node.sdk import ADDRESSES, Client, decode_events
    from tests.rpc.nodes import devnet_process, openledger
    from training import pang_lee_rows

    with tempfile.TemporaryDirectory(prefix="bench-training-jobs-net-") as tmp:
        tmp = Path(tmp)
        node = devnet_process(tmp / ".devnet", "--block-time", "1", "--serve-training", "--verify-training",
                              *(f for v in ("4", "5", "6") for f in ("--service-account", v))).wait_ready(180)
        try:
            def cli(*args):
                r = subprocess.run(openledger(*args, "--rpc", node.url), cwd=tmp, capture_output=True, text=True,
                                   timeout=1200)
                if r.returncode:
                    raise SystemExit(f"openledger {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
                return r.stdout
            rows = [json.loads(r) for i, r in enumerate(pang_lee_rows()) if i % 5][:ROWS_ON_CHAIN]
            (tmp / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            cli("datanet", "create", "--name", "pang", "--description", "pang", "--license", "MIT", "--dev-account", "0")
            cli("datanet", "import", "1", "rows.jsonl", "--column", "text", "--dev-account", "2")
            cli("datanet", "curate", "1", "accept", "--all-pending", "--dev-account", "0")
            cli("datanet", "publish", "1", "--dev-account", "0")
            cli("datanet", "price", "1", "1", "1OPEN", "--dev-account", "0")
            cli("model", "register-base", model, "--dev-account", "3")
            for v in ("4", "5", "6"):
                cli("stake", "register", "--amount", "200OPEN", "--gpu", "--dev-account", v)
            config = _config(model)
            (tmp / "run.toml").write_text("[training]\n" + "".join(
                f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}\n"
                for k, v in config.to_dict().items() if k not in ("seed", "labels")))
            start = time.perf_counter()
            out = cli("train", "request", "--datanet", "1:1", "--base", model, "--config", "run.toml",
                      "--max-fee", "5OPEN", "--wait", "--dev-account", "7")
            seconds = time.perf_counter() - start
            report = json.loads(out[out.index("\n{") + 1:])
            logs = Client(node.url).rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["TrainingJobs"]})
            at = {decode_events([log])[0]["event"]: int(log["blockNumber"], 16) for log in logs}
            first, last = at["TrainingRequested"], at["TrainingCompleted"]
            print(f"request to registered run ({model}, {report['statusName']}, run {report.get('run', {}).get('id')}): "
                  f"{last - first} blocks of 1 s, {seconds:.0f} s by the builder's clock; "
                  f"data-use paid to {len(report['dataUse'])} contributor(s)")
        finally:
            node.stop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench training_jobs")
    parser.add_argument("--parts", default="cost,blocks")
    parser.add_argument("--model", default="tiny-llama", choices=("tiny-llama", "smollm2", "minilm"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(args.threads)
    print(f"model {args.model} on {args.device}, torch threads pinned to {args.threads}", flush=True)
    parts = args.parts.split(",")
    if "cost" in parts:
        cost(args.model, args.device, args.threads)
    if "blocks" in parts:
        blocks(args.model)


if __name__ == "__main__":
    main(sys.argv[1:])
