"""The TrainingRun record and the hashes it commits to.

Every field is an integer, a string or a 32-byte hash, so the record's canonical JSON (sorted keys,
hashes as 0x-hex) and its keccak256 are the same in every process and on every machine.
"""
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from eth_hash.auto import keccak as _keccak
from eth_utils import keccak

from training.config import canonical_json

ZERO_HASH = bytes(32)
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")  # peft's fixed names


def tensor_hash(tensors: Mapping[str, torch.Tensor]) -> bytes:
    """keccak256 over tensors sorted by name, each as a length-prefixed canonical JSON header
    [name, dtype, shape] followed by its raw little-endian bytes. Written by hand because
    safetensors leaves its header order and metadata layout to the implementation."""
    digest = _keccak.new(b"")
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        header = canonical_json([name, str(tensor.dtype).removeprefix("torch."), list(tensor.shape)])
        digest.update(len(header).to_bytes(4, "big") + header)
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.digest()


def adapter_hash(adapter_dir: str | Path) -> bytes:
    """keccak256 over peft's two adapter files: for each, its name and the keccak256 of its bytes."""
    adapter_dir = Path(adapter_dir)
    parts = []
    for name in ADAPTER_FILES:
        path = adapter_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"adapter directory {adapter_dir} lacks {name}")
        parts.append(name.encode() + b"\x00" + keccak(path.read_bytes()))
    return keccak(b"".join(parts))


def metrics_hash(metrics: list[dict[str, Any]]) -> bytes:
    return keccak(canonical_json(metrics))


_HASH_FIELDS = ("base_model_hash", "datanet_root", "config_hash", "metrics_hash", "adapter_hash",
                "attribution_index_root")


@dataclass(frozen=True)
class TrainingRun:
    """What a ModelFactory run trained, on what, and what came out; `record_hash()` goes on chain."""

    run_id: int
    base_model: str
    base_model_hash: bytes
    datanet_root: bytes
    row_count: int
    config_hash: bytes
    seed: int
    step_count: int
    checkpoint_steps: tuple[int, ...]
    checkpoint_hashes: tuple[bytes, ...]
    metrics_hash: bytes
    adapter_hash: bytes
    attribution_index_root: bytes = ZERO_HASH

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint_steps", tuple(self.checkpoint_steps))
        object.__setattr__(self, "checkpoint_hashes", tuple(bytes(h) for h in self.checkpoint_hashes))
        for name in _HASH_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
                raise ValueError(f"{name}: must be 32 bytes, got {value!r}")
        if any(len(h) != 32 for h in self.checkpoint_hashes):
            raise ValueError("checkpoint_hashes: every hash must be 32 bytes")
        if len(self.checkpoint_steps) != len(self.checkpoint_hashes):
            raise ValueError("checkpoint_steps and checkpoint_hashes must have the same length")
        for name in ("run_id", "row_count", "seed", "step_count"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}: must be a non-negative integer, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for name in _HASH_FIELDS:
            out[name] = "0x" + getattr(self, name).hex()
        out["checkpoint_steps"] = list(self.checkpoint_steps)
        out["checkpoint_hashes"] = ["0x" + h.hex() for h in self.checkpoint_hashes]
        return out

    def canonical_json(self) -> bytes:
        return canonical_json(self.to_dict())

    def record_hash(self) -> bytes:
        return keccak(self.canonical_json())

    def with_attribution_root(self, root: bytes) -> "TrainingRun":
        return dataclasses.replace(self, attribution_index_root=bytes(root))

    @classmethod
    def from_json(cls, text: str | bytes) -> "TrainingRun":
        """Parse a record written by `canonical_json` (malformed input raises ValueError)."""
        try:
            data = json.loads(text)
            known = {f.name for f in dataclasses.fields(cls)}
            if not isinstance(data, dict) or set(data) - known:
                raise ValueError(f"unexpected fields {sorted(set(data) - known) if isinstance(data, dict) else data!r}")
            for name in _HASH_FIELDS:
                if name in data:
                    data[name] = _hex32(name, data[name])
            data["checkpoint_hashes"] = [_hex32("checkpoint_hashes", h) for h in data.get("checkpoint_hashes", [])]
            return cls(**data)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"malformed TrainingRun record: {exc}") from exc


def _hex32(name: str, value: object) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise ValueError(f"{name}: expected a 0x-prefixed 32-byte hex string, got {value!r}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise ValueError(f"{name}: not hex: {value!r}") from exc
