"""The training loop, read top to bottom like the record it produces: seed, data, config, steps,
checkpoints, metrics, adapter.

Determinism rests on three rules: the LoRA init, each epoch's data order and each step's dropout
draw their randomness from seeds derived from the run seed (never from RNG history), the
optimizer state travels in every checkpoint, and torch runs with deterministic algorithms. So a
run resumed from any checkpoint, or a verifier replaying one segment, repeats the original steps
bit for bit on the same machine and thread count.
"""
import contextlib
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from eth_utils import keccak
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                          get_linear_schedule_with_warmup)

from training.config import ConfigError, TrainingConfig, canonical_json
from training.data import Dataset, Example
from training.models import BaseModel, load_base
from training.record import TrainingRun, adapter_hash, metrics_hash, tensor_hash

_SCHEDULES = {"constant": lambda opt, warm, total, last: get_constant_schedule_with_warmup(opt, warm, last_epoch=last),
              "linear": get_linear_schedule_with_warmup, "cosine": get_cosine_schedule_with_warmup}


@dataclass
class TrainedRun:
    """What an index builder (the attribution engine) gets once training has finished."""

    model: PeftModel
    tokenizer: Any
    dataset: Dataset
    examples: list[Example]
    config: TrainingConfig
    out_dir: Path


def sub_seed(seed: int, purpose: str, index: int = 0) -> int:
    """A seed for one use (LoRA init, epoch order, step dropout) derived from the run seed."""
    return int.from_bytes(keccak(canonical_json([seed, purpose, index]))[:8], "big") >> 1


def checkpoint_steps(config: TrainingConfig, row_count: int) -> tuple[int, ...]:
    """Step 0 (the seeded init), every `checkpoint_every` steps, and the last step."""
    total = config.epochs * math.ceil(row_count / config.batch_size)
    return tuple(sorted(set(range(0, total, config.checkpoint_every)) | {total}))


@contextlib.contextmanager
def deterministic(device: str) -> Iterator[None]:
    """torch.use_deterministic_algorithms(True) for the block. On CUDA (cuBLAS needs its workspace
    pinned) an op with no deterministic kernel warns instead of aborting the run: verification
    then relies on the calibrated tolerance rather than bit equality."""
    cuda = device.startswith("cuda")
    if cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=cuda)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


class Session:
    """A LoRA model, its optimizer and the run's batches: the state a checkpoint captures.

    Shared by `run` (training, resume) and `verify_run` (segment replay) so both take the same path.
    """

    def __init__(self, config: TrainingConfig, base: BaseModel, examples: list[Example], device: str = "cpu"):
        self.config, self.device, self.tokenizer = config, device, base.tokenizer
        self.base_hash = tensor_hash(base.model.state_dict())
        _check_targets(base.model, config)
        lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                          target_modules=list(config.target_modules),
                          task_type=TaskType.CAUSAL_LM if config.task == "causal_lm" else TaskType.SEQ_CLS)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sub_seed(config.seed, "lora-init"))
            self.model = get_peft_model(base.model, lora)
        self.model.peft_config["default"].base_model_name_or_path = base.name
        self.named = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        self.optimizer = torch.optim.AdamW(list(self.named.values()), lr=config.lr, weight_decay=config.weight_decay)
        self.encoded = [base.tokenizer(e.text, truncation=True, max_length=config.max_length)["input_ids"]
                        for e in examples]
        self.labels = [e.label for e in examples]
        self.steps_per_epoch = math.ceil(len(examples) / config.batch_size)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.step = 0
        self.losses: list[float] = []  # per step, for per-epoch metrics (kept in checkpoints)
        self.correct: list[int] = []
        self._orders: dict[int, list[int]] = {}
        self.scheduler = self._scheduler()

    def _scheduler(self) -> torch.optim.lr_scheduler.LambdaLR:
        for group in self.optimizer.param_groups:
            group["initial_lr"] = self.config.lr
        return _SCHEDULES[self.config.schedule](self.optimizer, self.config.warmup_steps, self.total_steps,
                                                self.step - 1)

    def batch_rows(self, step: int) -> list[int]:
        """Row indices of `step`'s batch: epoch order is a permutation seeded by (seed, epoch)."""
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch not in self._orders:
            gen = torch.Generator().manual_seed(sub_seed(self.config.seed, "epoch-order", epoch))
            self._orders[epoch] = torch.randperm(len(self.encoded), generator=gen).tolist()
        size = self.config.batch_size
        return self._orders[epoch][index * size:(index + 1) * size]

    def collate(self, rows: list[int]) -> dict[str, torch.Tensor]:
        return collate([self.encoded[r] for r in rows], [self.labels[r] for r in rows],
                       self.tokenizer.pad_token_id, self.config.task, self.device)

    def train_step(self) -> float:
        """One optimizer step on the current step's batch; returns its loss."""
        self.model.train()
        batch = self.collate(self.batch_rows(self.step))
        torch.manual_seed(sub_seed(self.config.seed, "step", self.step))  # dropout draws
        out = self.model(**batch)
        out.loss.backward()
        if self.config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(list(self.named.values()), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss = float(out.loss.detach())
        self.losses.append(loss)
        if self.config.task == "seq_cls":
            self.correct.append(int((out.logits.argmax(-1) == batch["labels"]).sum()))
        self.step += 1
        return loss

    def state(self) -> dict[str, torch.Tensor]:
        """Everything the next steps depend on: adapter weights, AdamW moments, step, loss log."""
        tensors = {f"adapter.{n}": p.detach().to("cpu").clone() for n, p in self.named.items()}
        for n, p in self.named.items():
            for key, value in self.optimizer.state.get(p, {}).items():
                tensors[f"optim.{n}.{key}"] = value.detach().to("cpu").clone()
        tensors["step"] = torch.tensor([self.step], dtype=torch.int64)
        tensors["losses"] = torch.tensor(self.losses, dtype=torch.float64)
        tensors["correct"] = torch.tensor(self.correct, dtype=torch.int64)
        return tensors

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint's state; one that does not fit this model and config is a ConfigError."""
        self.check_fits(tensors)
        with torch.no_grad():
            for n, p in self.named.items():
                p.copy_(tensors[f"adapter.{n}"])
        self.optimizer.state.clear()
        for n, p in self.named.items():
            if f"optim.{n}.step" in tensors:
                self.optimizer.state[p] = {"step": tensors[f"optim.{n}.step"].clone(),  # AdamW keeps it on the CPU
                                           "exp_avg": tensors[f"optim.{n}.exp_avg"].to(self.device),
                                           "exp_avg_sq": tensors[f"optim.{n}.exp_avg_sq"].to(self.device)}
        self.step = int(tensors["step"][0])
        self.losses = tensors["losses"].tolist()
        self.correct = [int(c) for c in tensors["correct"].tolist()]
        self.scheduler = self._scheduler()

    def check_fits(self, tensors: dict[str, torch.Tensor]) -> None:
        """Raise ConfigError unless `tensors` has exactly the names, shapes and dtypes `state()` writes."""
        step = tensors.get("step")
        if step is None or step.shape != (1,) or step.dtype != torch.int64 or not 0 <= int(step[0]) <= self.total_steps:
            raise ConfigError("checkpoint", f"step must be one int64 in [0, {self.total_steps}]")
        step = int(step[0])
        shapes = {"step": ((1,), torch.int64), "losses": ((step,), torch.float64),
                  "correct": ((step if self.config.task == "seq_cls" else 0,), torch.int64)}
        for n, p in self.named.items():
            shapes[f"adapter.{n}"] = (tuple(p.shape), p.dtype)
            if step:
                shapes.update({f"optim.{n}.step": ((), torch.float32), f"optim.{n}.exp_avg": (tuple(p.shape), p.dtype),
                               f"optim.{n}.exp_avg_sq": (tuple(p.shape), p.dtype)})
        found = {k: (tuple(v.shape), v.dtype) for k, v in tensors.items()}
        if found != shapes:
            wrong = sorted(k for k in found.keys() | shapes.keys() if found.get(k) != shapes.get(k))
            raise ConfigError("checkpoint", f"does not fit this model and config: {wrong[:3]} missing, extra or "
                                            "mis-shaped")

    def epoch_metrics(self, count: int) -> list[dict[str, Any]]:
        out = []
        for epoch in range(self.config.epochs):
            losses = self.losses[epoch * self.steps_per_epoch:(epoch + 1) * self.steps_per_epoch]
            entry: dict[str, Any] = {"epoch": epoch, "steps": len(losses),
                                     "train_loss": sum(losses) / len(losses) if losses else None}
            if self.config.task == "seq_cls":
                hits = self.correct[epoch * self.steps_per_epoch:(epoch + 1) * self.steps_per_epoch]
                entry["train_accuracy"] = sum(hits) / count if len(hits) == self.steps_per_epoch else None
            out.append(entry)
        return out


def collate(encoded: list[list[int]], labels: list[int | None], pad_id: int, task: str,
            device: str) -> dict[str, torch.Tensor]:
    """Right-pad token ids into a batch; causal LM labels are the ids with padding ignored (-100)."""
    width = max(len(ids) for ids in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, row in enumerate(encoded):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    batch["labels"] = ids.masked_fill(mask == 0, -100) if task == "causal_lm" else torch.tensor(labels)
    return {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def evaluate(model: torch.nn.Module, tokenizer: Any, examples: list[Example], config: TrainingConfig,
             device: str = "cpu") -> dict[str, float]:
    """Mean loss (and accuracy for seq_cls) of `model` on held-out `examples`, batched like training."""
    model.eval()
    total_loss, hits = 0.0, 0
    for start in range(0, len(examples), config.batch_size):
        chunk = examples[start:start + config.batch_size]
        encoded = [tokenizer(e.text, truncation=True, max_length=config.max_length)["input_ids"] for e in chunk]
        batch = collate(encoded, [e.label for e in chunk], tokenizer.pad_token_id, config.task, device)
        out = model(**batch)
        total_loss += float(out.loss) * len(chunk)
        if config.task == "seq_cls":
            hits += int((out.logits.argmax(-1) == batch["labels"]).sum())
    result = {"loss": total_loss / len(examples)}
    if config.task == "seq_cls":
        result["accuracy"] = hits / len(examples)
    return result


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], config: TrainingConfig, data_root: bytes) -> bytes:
    """Write one checkpoint (safetensors, with the config and data root it belongs to) and return its hash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"config_hash": "0x" + config.config_hash().hex(),
                                           "datanet_root": "0x" + data_root.hex()})
    os.replace(tmp, path)  # a crash mid-write never leaves a truncated checkpoint under the real name
    return tensor_hash(tensors)


def checkpoint_path(out_dir: Path, step: int) -> Path:
    return out_dir / "checkpoints" / f"step-{step:08d}.safetensors"


def load_checkpoint(path: Path, config: TrainingConfig, data_root: bytes) -> dict[str, torch.Tensor]:
    """Read a checkpoint, refusing one written for another config or another Datanet version."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ConfigError("checkpoint", f"{path} is not a readable checkpoint ({exc})") from exc
    if meta.get("config_hash") != "0x" + config.config_hash().hex():
        raise ConfigError("checkpoint", f"{path} was written for another config ({meta.get('config_hash')})")
    if meta.get("datanet_root") != "0x" + data_root.hex():
        raise ConfigError("checkpoint", f"{path} was written for another Datanet version ({meta.get('datanet_root')})")
    return tensors


def run(config: TrainingConfig, data: Dataset, base: str, out_dir: str | Path, *, run_id: int = 0,
        device: str = "cpu", resume: bool = False, progress: bool = True,
        on_checkpoint: Callable[[int, bytes], None] | None = None,
        attribution: Callable[[TrainedRun], bytes] | None = None) -> TrainingRun:
    """Train a LoRA adapter on `data`; write out_dir/{config.json, adapter/, checkpoints/, metrics.json, record.json}.

    `resume=True` continues from the newest checkpoint in out_dir (the result is bit-identical to
    an uninterrupted run). `on_checkpoint(step, hash)` is called after each checkpoint is written.
    `attribution(trained)` may build the attribution index and return its 32-byte Merkle root,
    which fills the record's `attribution_index_root`.
    """
    out_dir = Path(out_dir)
    examples = data.examples(config)
    steps = checkpoint_steps(config, len(examples))
    existing = sorted((out_dir / "checkpoints").glob("step-*.safetensors"))
    if existing and not resume:
        raise ConfigError("out", f"{out_dir} already holds checkpoints: pass resume=True (--resume) or use a new directory")
    base_model = load_base(base, config.task, len(config.labels), device)
    with deterministic(device):
        session = Session(config, base_model, examples, device)
        hashes: dict[int, bytes] = {}
        for path in existing:
            tensors = load_checkpoint(path, config, data.root)
            step = int(tensors["step"][0])
            if step not in steps:
                raise ConfigError("checkpoint", f"{path} is at step {step}, not a checkpoint step of this run")
            hashes[step] = tensor_hash(tensors)
        if existing:
            session.restore(tensors)
        else:
            hashes[0] = save_checkpoint(checkpoint_path(out_dir, 0), session.state(), config, data.root)
            if on_checkpoint:
                on_checkpoint(0, hashes[0])
        with _progress(progress, session.total_steps, session.step) as (bar, task):
            while session.step < session.total_steps:
                loss = session.train_step()
                bar.update(task, advance=1, loss=f"{loss:.4f}")
                if session.step in steps:
                    hashes[session.step] = save_checkpoint(checkpoint_path(out_dir, session.step), session.state(),
                                                           config, data.root)
                    if on_checkpoint:
                        on_checkpoint(session.step, hashes[session.step])
        metrics = session.epoch_metrics(len(examples))
        (out_dir / "config.json").write_bytes(config.canonical_json())  # what verifiers need beside the record
        (out_dir / "metrics.json").write_bytes(canonical_json(metrics))
        session.model.save_pretrained(out_dir / "adapter", save_embedding_layers=False)  # no hub lookup
        _canonical_adapter_config(out_dir / "adapter" / "adapter_config.json")
        root = bytes(32)
        if attribution is not None:
            session.model.eval()
            root = bytes(attribution(TrainedRun(session.model, session.tokenizer, data, examples, config, out_dir)))
    record = TrainingRun(run_id=run_id, base_model=base, base_model_hash=session.base_hash, datanet_root=data.root,
                         row_count=len(examples), config_hash=config.config_hash(), seed=config.seed,
                         step_count=session.total_steps, checkpoint_steps=steps,
                         checkpoint_hashes=tuple(hashes[s] for s in steps), metrics_hash=metrics_hash(metrics),
                         adapter_hash=adapter_hash(out_dir / "adapter"), attribution_index_root=root)
    (out_dir / "record.json").write_bytes(record.canonical_json())
    return record


@contextlib.contextmanager
def _progress(enabled: bool, total: int, done: int) -> Iterator[tuple[Progress, Any]]:
    bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                   TimeRemainingColumn(), disable=not enabled)
    with bar:
        yield bar, bar.add_task("train", total=total, completed=done, loss="-")


def _canonical_adapter_config(path: Path) -> None:
    """peft writes target_modules from a Python set, in hash-seed order: sort it so the adapter hash
    is the same in every process."""
    values = json.loads(path.read_text())
    for key in ("target_modules", "modules_to_save"):
        if isinstance(values.get(key), list):
            values[key] = sorted(values[key])
    path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")


def _check_targets(model: torch.nn.Module, config: TrainingConfig) -> None:
    """Name unknown target modules before peft does (its error does not list what exists)."""
    linear = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"}
    unknown = [m for m in config.target_modules if m not in linear]
    if unknown:
        raise ConfigError("target_modules", f"{unknown} not found in the base model; its linear modules are "
                                            f"{sorted(linear)}")
