"""TrainingConfig: every knob of a LoRA run, frozen and checked on construction (peft style).

The run record commits to `config_hash()`, the keccak256 of `canonical_json()`, so two parties
holding the same config agree on its hash byte for byte.
"""
import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import keccak

TASKS = ("causal_lm", "seq_cls")
SCHEDULES = ("constant", "linear", "cosine")


class ConfigError(ValueError):
    """A bad training setting; `field` names the offending config field (or input)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the byte form every hash in a run record covers."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@dataclass(frozen=True)
class TrainingConfig:
    task: str = field(default="causal_lm", metadata={"help": "causal_lm or seq_cls"})
    rank: int = field(default=8, metadata={"help": "LoRA rank r (> 0)"})
    alpha: int = field(default=16, metadata={"help": "LoRA alpha (> 0)"})
    dropout: float = field(default=0.0, metadata={"help": "LoRA dropout in [0, 1)"})
    target_modules: tuple[str, ...] = field(default=("q_proj", "v_proj"), metadata={"help": "module names LoRA wraps"})
    lr: float = field(default=1e-3, metadata={"help": "peak AdamW learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    schedule: str = field(default="linear", metadata={"help": "constant, linear or cosine decay"})
    warmup_steps: int = field(default=0, metadata={"help": "linear warm-up steps"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm (0 = off)"})
    epochs: int = field(default=1, metadata={"help": "passes over the dataset"})
    batch_size: int = field(default=8, metadata={"help": "examples per optimizer step"})
    max_length: int = field(default=128, metadata={"help": "tokens per example after truncation"})
    checkpoint_every: int = field(default=10, metadata={"help": "optimizer steps between checkpoints"})
    labels: tuple[str, ...] = field(default=(), metadata={"help": "class names (seq_cls only)"})
    seed: int = field(default=0, metadata={"help": "run seed; derive it from the chain with derive_seed"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        object.__setattr__(self, "labels", tuple(self.labels))
        _check(self.task in TASKS, "task", f"must be one of {TASKS}, got {self.task!r}")
        for name in ("rank", "alpha", "epochs", "batch_size", "max_length", "checkpoint_every"):
            value = getattr(self, name)
            _check(_is_int(value) and value > 0, name, f"must be a positive integer, got {value!r}")
        _check(_is_int(self.warmup_steps) and self.warmup_steps >= 0, "warmup_steps",
               f"must be a non-negative integer, got {self.warmup_steps!r}")
        _check(_is_int(self.seed) and 0 <= self.seed < 2**63, "seed",
               f"must be an integer in [0, 2**63), got {self.seed!r}")
        _check(_is_real(self.dropout) and 0 <= self.dropout < 1, "dropout", f"must be in [0, 1), got {self.dropout!r}")
        _check(_is_real(self.lr) and self.lr > 0, "lr", f"must be > 0, got {self.lr!r}")
        _check(_is_real(self.weight_decay) and self.weight_decay >= 0, "weight_decay",
               f"must be >= 0, got {self.weight_decay!r}")
        _check(_is_real(self.max_grad_norm) and self.max_grad_norm >= 0, "max_grad_norm",
               f"must be >= 0, got {self.max_grad_norm!r}")
        for name in ("dropout", "lr", "weight_decay", "max_grad_norm"):  # 1 and 1.0 must hash alike
            object.__setattr__(self, name, float(getattr(self, name)))
        _check(self.schedule in SCHEDULES, "schedule", f"must be one of {SCHEDULES}, got {self.schedule!r}")
        _check(bool(self.target_modules) and all(isinstance(m, str) and m for m in self.target_modules),
               "target_modules", f"must be a non-empty list of module names, got {list(self.target_modules)!r}")
        if self.task == "seq_cls":
            _check(len(self.labels) >= 2 and len(set(self.labels)) == len(self.labels)
                   and all(isinstance(x, str) and x for x in self.labels),
                   "labels", f"seq_cls needs at least two distinct class names, got {list(self.labels)!r}")
        else:
            _check(not self.labels, "labels", "only seq_cls runs take labels")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["target_modules"] = list(self.target_modules)
        out["labels"] = list(self.labels)
        return out

    def canonical_json(self) -> bytes:
        return canonical_json(self.to_dict())

    def config_hash(self) -> bytes:
        return keccak(self.canonical_json())

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainingConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown config field; known fields: {', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path) -> "TrainingConfig":
        """Read a config file; a `[training]` table is used when present, else the top level."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError("config", f"cannot read {path}: {exc}") from exc
        return cls.from_dict(data.get("training", data))


def derive_seed(block_hash: bytes, run_id: int) -> int:
    """Run seed from the chain: keccak256(block_hash || run_id as uint256), first 8 bytes, top bit clear."""
    if len(block_hash) != 32:
        raise ConfigError("block_hash", f"must be 32 bytes, got {len(block_hash)}")
    if not _is_int(run_id) or not 0 <= run_id < 2**256:
        raise ConfigError("run_id", f"must be an integer in [0, 2**256), got {run_id!r}")
    return int.from_bytes(keccak(block_hash + run_id.to_bytes(32, "big"))[:8], "big") >> 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _check(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise ConfigError(field_name, message)
