"""AdapterStore: peft LoRA adapters addressed by content hash, in tiers disk -> CPU -> device.

The id of an adapter (the hash a TrainingRun record puts on chain, `training.adapter_hash`) is

    keccak256( "adapter_config.json" 0x00 keccak256(C) || "adapter_model.safetensors" 0x00 keccak256(S) )

where C and S are the exact bytes of the two files (no re-serialisation, so any tool can
recompute it). It is checked every time the files are read from disk, over the very bytes that
are then parsed (so the files cannot change between the check and the load).

The CPU tier keeps parsed adapters (scaling folded into B) in an LRU under a byte budget; the
device tier is the executor's slot pool (`inference.executor.LoraPool`). Loads run on a worker
thread (`prefetch`), so a request for a cold adapter never blocks the batch that is running.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import os
import pathlib
import re
import shutil
import tempfile
import threading

import torch
from eth_utils import keccak
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from inference.errors import AdapterHashMismatch, BadRequest, CorruptAdapter, IncompatibleAdapter, UnknownAdapter

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
_ID = re.compile(r"^0x[0-9a-f]{64}$")
_KEY = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")
# peft options that change the math of a LoRA layer; we serve plain LoRA (and rsLoRA scaling).
_UNSUPPORTED = {"use_dora": False, "modules_to_save": None, "layers_to_transform": None,
                "layer_replication": None, "alpha_pattern": {}, "rank_pattern": {},
                "fan_in_fan_out": False, "lora_bias": False}


def adapter_hash(config_bytes: bytes, weights_bytes: bytes) -> str:
    """The content id of an adapter from its two files' bytes: the same value as
    `training.adapter_hash(folder)` (a test checks it), as 0x-hex."""
    blob = CONFIG_FILE.encode() + b"\x00" + keccak(config_bytes) + WEIGHTS_FILE.encode() + b"\x00" + keccak(weights_bytes)
    return "0x" + keccak(blob).hex()


def adapter_dir_hash(folder: str | os.PathLike) -> str:
    """`adapter_hash` of a peft adapter directory."""
    config, weights = _read_files(pathlib.Path(folder))
    return adapter_hash(config, weights)


def normalize_id(adapter_id: str) -> str:
    """Lower-case 0x-prefixed 32-byte hex, or BadRequest naming the value."""
    if not isinstance(adapter_id, str):
        raise BadRequest(f"adapter id must be a string, got {type(adapter_id).__name__}")
    norm = adapter_id.lower() if adapter_id.startswith(("0x", "0X")) else "0x" + adapter_id.lower()
    if not _ID.match(norm):
        raise BadRequest(f"adapter id {adapter_id[:80]!r} is not a 32-byte hex hash")
    return norm


@dataclasses.dataclass(frozen=True)
class BaseSpec:
    """What an adapter must fit: layer count and (in, out) features of each linear module."""

    num_layers: int
    modules: dict[str, tuple[int, int]]

    @classmethod
    def of(cls, model) -> "BaseSpec":
        """Read the shapes from a Llama-family transformers model."""
        layer = model.model.layers[0]
        linears = {**{n: getattr(layer.self_attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")},
                   **{n: getattr(layer.mlp, n) for n in ("gate_proj", "up_proj", "down_proj")}}
        return cls(len(model.model.layers), {n: (m.in_features, m.out_features) for n, m in linears.items()})


@dataclasses.dataclass(frozen=True)
class LoadedAdapter:
    """A parsed, validated adapter in CPU memory: one flat buffer holding, for each (layer,
    module) of `layout`, A [r, in] then B [out, r] with B already multiplied by the LoRA scaling.
    Only the buffer is kept (no tensor object per matrix), so 1,000s of resident adapters cost
    little more than their weights."""

    adapter_id: str
    rank: int
    scaling: float
    targets: tuple[str, ...]
    layout: tuple[tuple[int, str, int, int, int], ...]  # (layer, module, offset, in, out)
    buffer: torch.Tensor

    @property
    def weights(self) -> dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]]:
        """(layer, module) -> (A, B) as views of the buffer."""
        out, r = {}, self.rank
        for layer, module, offset, fan_in, fan_out in self.layout:
            a = self.buffer[offset:offset + r * fan_in].view(r, fan_in)
            b = self.buffer[offset + r * fan_in:offset + r * (fan_in + fan_out)].view(fan_out, r)
            out[(layer, module)] = (a, b)
        return out

    @property
    def nbytes(self) -> int:
        return self.buffer.numel() * self.buffer.element_size()


def _read_files(folder: pathlib.Path) -> tuple[bytes, bytes]:
    try:
        return (folder / CONFIG_FILE).read_bytes(), (folder / WEIGHTS_FILE).read_bytes()
    except OSError as exc:
        raise CorruptAdapter(f"cannot read adapter files in {folder}: {exc.strerror or exc}") from None


def parse_adapter(adapter_id: str, config_bytes: bytes, weights_bytes: bytes, base: BaseSpec,
                  targets: tuple[str, ...], max_rank: int, dtype: torch.dtype) -> LoadedAdapter:
    """Validate an adapter against the base model and the served targets/rank, and pack it."""
    try:
        config = json.loads(config_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptAdapter(f"{CONFIG_FILE} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise CorruptAdapter(f"{CONFIG_FILE} is not a peft LoRA config (peft_type must be 'LORA')")
    for key, default in _UNSUPPORTED.items():
        if config.get(key, default) not in (default, None, {}, False):
            raise IncompatibleAdapter(f"adapter option {key}={config[key]!r} is not supported")
    rank, alpha = config.get("r"), config.get("lora_alpha")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise CorruptAdapter(f"adapter rank r={rank!r} must be a positive integer")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool):
        raise CorruptAdapter(f"lora_alpha={alpha!r} must be a number")
    if rank > max_rank:
        raise IncompatibleAdapter(f"adapter rank {rank} exceeds this server's max rank {max_rank}")
    scaling = alpha / rank ** 0.5 if config.get("use_rslora") else alpha / rank
    try:
        tensors = load_safetensors(weights_bytes)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CorruptAdapter(f"{WEIGHTS_FILE} is not a valid safetensors file: {exc}") from None
    parts: dict[tuple[int, str], dict[str, torch.Tensor]] = collections.defaultdict(dict)
    for key, tensor in tensors.items():
        match = _KEY.match(key)
        if not match:
            raise IncompatibleAdapter(f"adapter tensor {key!r} is not a LoRA A/B weight of a Llama layer")
        layer, module, which = int(match[1]), match[2], match[3]
        if module not in base.modules:
            raise IncompatibleAdapter(f"adapter targets {module!r}, which the base model does not have")
        if module not in targets:
            raise IncompatibleAdapter(f"adapter targets {module!r}; this server serves {list(targets)}")
        if layer >= base.num_layers:
            raise IncompatibleAdapter(f"adapter has layer {layer}; the base model has {base.num_layers}")
        parts[(layer, module)][which] = tensor
    if not parts:
        raise CorruptAdapter(f"{WEIGHTS_FILE} holds no LoRA weights")
    total = 0
    for (layer, module), ab in sorted(parts.items()):
        fan_in, fan_out = base.modules[module]
        a, b = ab.get("A"), ab.get("B")
        if a is None or b is None:
            raise CorruptAdapter(f"layer {layer} {module}: lora_A and lora_B must both be present")
        if tuple(a.shape) != (rank, fan_in) or tuple(b.shape) != (fan_out, rank):
            raise IncompatibleAdapter(
                f"layer {layer} {module}: shapes A{tuple(a.shape)} B{tuple(b.shape)} do not fit the base "
                f"model's ({fan_out}, {fan_in}) linear with rank {rank}")
        if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
            raise CorruptAdapter(f"layer {layer} {module}: weights contain NaN or infinity")
        total += a.numel() + b.numel()
    buffer = torch.empty(total, dtype=dtype)
    layout, offset = [], 0
    for (layer, module), ab in sorted(parts.items()):
        fan_in, fan_out = base.modules[module]
        buffer[offset:offset + rank * fan_in].copy_(ab["A"].reshape(-1))
        buffer[offset + rank * fan_in:offset + rank * (fan_in + fan_out)].copy_(
            (ab["B"].to(torch.float32) * scaling).reshape(-1))
        layout.append((layer, module, offset, fan_in, fan_out))
        offset += rank * (fan_in + fan_out)
    return LoadedAdapter(adapter_id, rank, scaling, tuple(sorted({m for _, m in parts})), tuple(layout), buffer)


class AdapterStore:
    """Content-addressed adapter files on disk plus an LRU of parsed adapters in CPU memory."""

    def __init__(self, root: str | os.PathLike, base: BaseSpec, targets: tuple[str, ...] = ("q_proj", "v_proj"),
                 max_rank: int = 16, cpu_budget_bytes: int = 256 << 20, dtype: torch.dtype = torch.float32):
        unknown = [t for t in targets if t not in base.modules]
        if unknown:
            raise IncompatibleAdapter(f"served targets {unknown} are not modules of the base model")
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.base, self.targets, self.max_rank, self.dtype = base, tuple(targets), max_rank, dtype
        self.cpu_budget_bytes = cpu_budget_bytes
        self._cpu: collections.OrderedDict[str, LoadedAdapter] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[str, concurrent.futures.Future] = {}
        self._loader = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="adapter-loader")
        self.loads = 0  # disk -> CPU loads so far (cold loads), for metrics and tests

    # -- disk tier -------------------------------------------------------------------------
    def add(self, folder: str | os.PathLike) -> str:
        """Validate a peft adapter directory and copy it in under its content hash."""
        config, weights = _read_files(pathlib.Path(folder))
        adapter_id = adapter_hash(config, weights)
        parse_adapter(adapter_id, config, weights, self.base, self.targets, self.max_rank, self.dtype)
        dest = self.root / adapter_id
        if not dest.exists():
            tmp = pathlib.Path(tempfile.mkdtemp(dir=self.root, prefix=".incoming-"))
            (tmp / CONFIG_FILE).write_bytes(config)
            (tmp / WEIGHTS_FILE).write_bytes(weights)
            try:
                os.rename(tmp, dest)
            except OSError:  # another writer stored the same content first
                shutil.rmtree(tmp, ignore_errors=True)
        return adapter_id

    def has(self, adapter_id: str) -> bool:
        return (self.root / normalize_id(adapter_id)).is_dir()

    def ids(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if _ID.match(p.name))

    # -- CPU tier --------------------------------------------------------------------------
    def get(self, adapter_id: str) -> LoadedAdapter:
        """The parsed adapter, loading it from disk (and checking its hash) if it is cold."""
        adapter_id = normalize_id(adapter_id)
        with self._lock:
            hit = self._cpu.get(adapter_id)
            if hit is not None:
                self._cpu.move_to_end(adapter_id)
                return hit
        return self._load(adapter_id)

    def prefetch(self, adapter_id: str) -> concurrent.futures.Future:
        """Start loading on the loader thread; the future yields the LoadedAdapter or raises."""
        adapter_id = normalize_id(adapter_id)
        with self._lock:
            if adapter_id in self._cpu:
                self._cpu.move_to_end(adapter_id)
                done: concurrent.futures.Future = concurrent.futures.Future()
                done.set_result(self._cpu[adapter_id])
                return done
            future = self._pending.get(adapter_id)
            if future is None:
                future = self._pending[adapter_id] = self._loader.submit(self._load, adapter_id)
            return future

    def _load(self, adapter_id: str) -> LoadedAdapter:
        try:
            folder = self.root / adapter_id
            if not folder.is_dir():
                raise UnknownAdapter(f"adapter {adapter_id} is not in the store")
            config, weights = _read_files(folder)
            actual = adapter_hash(config, weights)
            if actual != adapter_id:
                raise AdapterHashMismatch(f"adapter files stored as {adapter_id} hash to {actual}")
            loaded = parse_adapter(adapter_id, config, weights, self.base, self.targets, self.max_rank, self.dtype)
            with self._lock:
                self.loads += 1
                self._cpu[adapter_id] = loaded
                self._cpu.move_to_end(adapter_id)
                self._evict()
            return loaded
        finally:
            with self._lock:
                self._pending.pop(adapter_id, None)

    def _evict(self) -> None:
        size = sum(a.nbytes for a in self._cpu.values())
        while size > self.cpu_budget_bytes and len(self._cpu) > 1:
            _, old = self._cpu.popitem(last=False)
            size -= old.nbytes

    def resident(self) -> list[str]:
        """Ids in the CPU tier, least recently used first."""
        with self._lock:
            return list(self._cpu)

    @property
    def resident_bytes(self) -> int:
        with self._lock:
            return sum(a.nbytes for a in self._cpu.values())

    def close(self) -> None:
        self._loader.shutdown(wait=True, cancel_futures=True)
