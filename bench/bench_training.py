"""ModelFactory training: our deterministic, checkpointed, recorded loop vs a plain peft + transformers
`Trainer` loop on the same model, data and LoRA config, in the same run.

Reports examples per second for both (end to end: model load, LoRA wrap, tokenising, training,
saving the adapter; ours also writes 31 hashed checkpoints and the record), per process CPU second
on the CPU (the wall clock of a shared machine mostly measures the neighbours; it is printed too)
and per wall second on a GPU, verification cost (k = 3 of 30
segments) as a fraction of our training time, the replay deviation with 2 threads against a run
trained with 1 (the tolerance calibration), and held-out accuracy on pang_lee for seq_cls models.

    python -m bench training [--model=minilm|smollm2|tiny-llama] [--device=cpu|cuda] [--threads=1]
(bench/__main__ passes only dash-prefixed arguments on, so use the --name=value form.)
"""
import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from training import Dataset, TrainingConfig, derive_seed, evaluate, load_base, pang_lee_rows, run, verify_run

# model -> (task, LoRA targets, batch size, max length, lr, epochs); epochs * steps/epoch = 30 * checkpoint_every
SETUPS = {
    "minilm": ("seq_cls", ("query", "value"), 8, 64, 2e-3, 6),
    "smollm2": ("causal_lm", ("q_proj", "v_proj"), 8, 64, 2e-4, 3),
    "tiny-llama": ("causal_lm", ("q_proj", "v_proj"), 8, 64, 2e-3, 3),
}
SEGMENTS = 30
K = 3


def _split() -> tuple[list[bytes], list[bytes]]:
    """pang_lee: every fifth sentence held out (40 of 200, balanced), the other 160 train."""
    rows = pang_lee_rows()
    return [r for i, r in enumerate(rows) if i % 5], [r for i, r in enumerate(rows) if i % 5 == 0]


def _config(model: str) -> TrainingConfig:
    task, targets, batch, length, lr, epochs = SETUPS[model]
    steps = epochs * math.ceil(160 / batch)
    assert steps % SEGMENTS == 0, "the setup must give 30 equal segments"
    return TrainingConfig(task=task, target_modules=targets, rank=8, alpha=16, dropout=0.0, lr=lr, schedule="linear",
                          batch_size=batch, max_length=length, epochs=epochs, checkpoint_every=steps // SEGMENTS,
                          labels=("neg", "pos") if task == "seq_cls" else (),
                          seed=derive_seed(b"\x42" * 32, 1))


class _Clock:
    """Wall and process CPU seconds of a block. On a shared, busy CPU the wall clock mostly measures
    the neighbours, so CPU ratios are the comparable figure there; on a GPU only wall time counts."""

    def __init__(self, device: str):
        self.device = device

    def __enter__(self) -> "_Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        _sync(self.device)
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    @property
    def seconds(self) -> float:
        """The headline figure: CPU seconds on the CPU, wall seconds on an accelerator."""
        return self.cpu if self.device == "cpu" else self.wall


def _ours(config: TrainingConfig, data: Dataset, model: str, device: str, out: Path) -> _Clock:
    with _Clock(device) as clock:
        run(config, data, model, out, device=device, progress=False)
    return clock


def _trainer(config: TrainingConfig, data: Dataset, model: str, device: str, out: Path):
    """The peer: peft + transformers Trainer with the same LoRA, optimiser, schedule and clipping."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import DataCollatorForLanguageModeling, DataCollatorWithPadding, Trainer, TrainingArguments

    with _Clock(device) as clock:
        base = load_base(model, config.task, len(config.labels), device)
        lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                          target_modules=list(config.target_modules),
                          task_type=TaskType.CAUSAL_LM if config.task == "causal_lm" else TaskType.SEQ_CLS)
        peft_model = get_peft_model(base.model, lora)
        rows = []
        for example in data.examples(config):
            enc = base.tokenizer(example.text, truncation=True, max_length=config.max_length)
            item = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
            if config.task == "seq_cls":
                item["labels"] = example.label
            rows.append(item)
        collator = (DataCollatorWithPadding(base.tokenizer) if config.task == "seq_cls"
                    else DataCollatorForLanguageModeling(base.tokenizer, mlm=False))
        args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=config.batch_size,
                                 num_train_epochs=config.epochs, learning_rate=config.lr,
                                 lr_scheduler_type=config.schedule,
                                 warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
                                 max_grad_norm=config.max_grad_norm, save_strategy="no", logging_strategy="no",
                                 report_to="none", disable_tqdm=True, use_cpu=device == "cpu", seed=config.seed % 2**32,
                                 dataloader_pin_memory=False)
        Trainer(model=peft_model, args=args, train_dataset=rows, data_collator=collator).train()
        peft_model.save_pretrained(out / "adapter", save_embedding_layers=False)
    return clock, peft_model, base.tokenizer


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _accuracy_of_adapter(config: TrainingConfig, model: str, adapter: Path, held: Dataset, device: str) -> dict:
    from peft import PeftModel
    base = load_base(model, config.task, len(config.labels), device)
    return evaluate(PeftModel.from_pretrained(base.model, adapter).to(device), base.tokenizer, held.examples(config),
                    config, device)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench training")
    parser.add_argument("--model", choices=sorted(SETUPS), default="minilm")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts (deterministic mode)
    torch.set_num_threads(args.threads)
    config = _config(args.model)
    train_rows, held_rows = _split()
    data, held = Dataset.from_rows(train_rows), Dataset.from_rows(held_rows)
    examples = config.epochs * len(data)
    print(f"model {args.model} on {args.device}, torch threads {args.threads}; {len(data)} pang_lee rows x "
          f"{config.epochs} epochs = {examples} examples, batch {config.batch_size}, LoRA r={config.rank} "
          f"{list(config.target_modules)}; {SEGMENTS} checkpoint segments", flush=True)
    ours_runs, peer_runs = [], []
    unit = "CPU s" if args.device == "cpu" else "s"
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        for i in range(args.repeats):  # interleaved, so machine load hits both alike
            ours_runs.append(_ours(config, data, args.model, args.device, Path(tmp) / f"ours{i}"))
            clock, peer_model, peer_tok = _trainer(config, data, args.model, args.device, Path(tmp) / f"peer{i}")
            peer_runs.append(clock)
            print(f"  repeat {i}: ours {ours_runs[-1].wall:.1f}s wall / {ours_runs[-1].cpu:.1f}s CPU, "
                  f"Trainer {clock.wall:.1f}s wall / {clock.cpu:.1f}s CPU", flush=True)
        ours_t = statistics.median(c.seconds for c in ours_runs)
        peer_t = statistics.median(c.seconds for c in peer_runs)
        print(f"throughput (examples per {unit}, median of {args.repeats}): ours {examples / ours_t:.1f}, "
              f"Trainer {examples / peer_t:.1f}, ratio {peer_t / ours_t:.2f}x (target >= 0.9x)")
        wall_ratio = statistics.median(c.wall for c in peer_runs) / statistics.median(c.wall for c in ours_runs)
        print(f"  wall-clock ratio {wall_ratio:.2f}x")

        out = Path(tmp) / "ours0"
        from training import TrainingRun
        record = TrainingRun.from_json((out / "record.json").read_bytes())
        with _Clock(args.device) as clock:
            verdict = verify_run(record, data, out, k=K, config=config, adapter_dir=out / "adapter", tolerance=0,
                                 device=args.device)
        print(f"verification k={K} of {SEGMENTS}: {clock.seconds:.1f} {unit} = {clock.seconds / ours_t:.1%} of "
              f"training (target <= 10%; wall {clock.wall:.1f}s); bit-exact replay accepted={verdict.accepted} "
              f"({verdict.reason})")
        if not verdict.accepted:  # e.g. a CUDA op without a deterministic kernel: the calibrated tolerance applies
            relaxed = verify_run(record, data, out, k=K, config=config, device=args.device)
            print(f"  with the calibrated tolerance 1e-3: accepted={relaxed.accepted}, "
                  f"deviation {relaxed.max_deviation:.3g} ({relaxed.reason})")
        if args.device == "cpu":
            torch.set_num_threads(2)
            calib = verify_run(record, data, out, k=K, config=config, device=args.device)
            torch.set_num_threads(args.threads)
            print(f"replay with 2 threads vs trained with {args.threads}: deviation {calib.max_deviation:.3g} "
                  f"(tolerance 1e-3), accepted={calib.accepted}")

        ours_eval = _accuracy_of_adapter(config, args.model, out / "adapter", held, args.device)
        peer_eval = evaluate(peer_model, peer_tok, held.examples(config), config, args.device)
        metric = "accuracy" if config.task == "seq_cls" else "loss"
        print(f"held-out pang_lee {metric} (40 sentences): ours {ours_eval[metric]:.3f}, "
              f"Trainer {peer_eval[metric]:.3f}")
