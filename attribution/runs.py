"""Attribution for ModelFactory runs: the index-builder hook `training.run` calls, and `open_run`,
which loads a finished run's committed index (checked against its TrainingRun record) for queries.

A run directory gains `attribution/`: the index (manifest + vectors, or the infini-gram files)
and `run.json`, the training config the queries must encode with (its hash is in the record).
"""
import copy
import json
import pathlib
from collections.abc import Callable, Sequence

import torch
from safetensors.torch import load_file
from eth_utils import keccak, to_canonical_address

from attribution.errors import AttributionError, UnknownRun
from attribution.gradient import CONFIGS, EnsembleConfig, GradientAttributor, GradientIndex, build_gradient_index
from attribution.proof import Contribution
from attribution.robust import near_duplicates
from attribution.semantic import EMBEDDERS, MINILM, SemanticAttributor, SemanticConfig, SemanticIndex
from attribution.spans import SpanAttributor, SpanConfig, SpanIndex

INDEX_DIR = "attribution"
RUN_META = "run.json"


def projection_seed(run_seed: int) -> int:
    """The projection seed follows from the run's chain-derived seed, so nobody picks it."""
    return int.from_bytes(keccak(b"attribution-projection" + run_seed.to_bytes(32, "big"))[:8], "big") >> 1


def per_example_loss(task: str) -> Callable[[torch.nn.Module, dict], torch.Tensor]:
    """Each row's training loss: cross-entropy for seq_cls, mean token cross-entropy for causal_lm."""

    def seq_cls(model, batch):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="none")

    def causal_lm(model, batch):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        tokens = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none", ignore_index=-100)
        return tokens.sum(1) / (labels != -100).sum(1).clamp(min=1)

    return seq_cls if task == "seq_cls" else causal_lm


def collate(pad_id: int, rows: list[list[int]], labels: list) -> dict[str, torch.Tensor]:
    """Right-padded batch; `labels` are class ids (seq_cls) or per-token targets with -100 (causal_lm)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), 1
    if labels and isinstance(labels[0], list):
        targets = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, t in enumerate(labels):
            targets[i, : len(t)] = torch.tensor(t)
        return {"input_ids": ids, "attention_mask": mask, "labels": targets}
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor(labels)}


class QueryEncoder:
    """(prompt, output) -> a batch of one, encoded exactly as training encoded its rows."""

    def __init__(self, tokenizer, config: dict):
        self.tokenizer, self.config = tokenizer, config

    def rows(self, texts: list[str], labels: list) -> dict[str, torch.Tensor]:
        encoded = [self.tokenizer(t, truncation=True, max_length=self.config["max_length"])["input_ids"] for t in texts]
        if self.config["task"] == "causal_lm":
            labels = [list(e) for e in encoded]
        return collate(self.tokenizer.pad_token_id, encoded, labels)

    def __call__(self, prompt: bytes, output: bytes) -> dict[str, torch.Tensor]:
        try:
            prompt_text, output_text = prompt.decode("utf-8"), output.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AttributionError(f"prompt and output must be UTF-8: {exc}") from exc
        if self.config["task"] == "seq_cls":
            labels = list(self.config["labels"])
            if output_text not in labels:
                raise AttributionError(f"output {output_text!r} is not one of the run's labels {labels}")
            return self.rows([prompt_text], [labels.index(output_text)])
        head = self.tokenizer(prompt_text)["input_ids"] if prompt_text else []
        tail = self.tokenizer(output_text, add_special_tokens=False)["input_ids"]
        ids = (head + tail)[: self.config["max_length"]]
        if len(ids) <= len(head):
            raise AttributionError(f"the prompt is {len(head)} tokens and the run reads at most max_length "
                                   f"{self.config['max_length']} tokens of prompt + output: no output token is left "
                                   "to attribute (shorten the prompt)")
        return collate(self.tokenizer.pad_token_id, [ids], [[-100] * len(head) + ids[len(head):]])


def ensemble_steps(steps: Sequence[int], count: int) -> list[int]:
    """`count` of a run's checkpoint steps, evenly spread and ending at the last (the final model);
    step 0 (the untrained init, whose LoRA B = 0 gives the A matrices no gradient) never."""
    trained = [s for s in steps if s > 0]
    if count <= 0 or not trained:
        raise AttributionError(f"ensemble-v1 needs a positive checkpoint count and a trained checkpoint, got {count} of {list(steps)}")
    return sorted({trained[-(-(i + 1) * len(trained) // count) - 1] for i in range(count)})


def checkpoint_models(model: torch.nn.Module, run_dir: pathlib.Path, steps: Sequence[int],
                      expected: dict[int, bytes] | None = None) -> list[torch.nn.Module]:
    """Copies of the trained model carrying the adapter weights of each checkpoint in `steps`
    (read from RUN_DIR/checkpoints; with `expected`, each must hash to the record's hash)."""
    from training.record import tensor_hash
    from training.trainer import checkpoint_path

    models = []
    for step in steps:
        path = checkpoint_path(run_dir, step)
        try:
            tensors = load_file(str(path))
        except (OSError, ValueError) as exc:
            raise AttributionError(f"checkpoint {path} is missing or unreadable: {exc}") from exc
        if expected is not None and tensor_hash(tensors) != expected.get(step):
            raise AttributionError(f"checkpoint {path} does not hash to the run record's checkpoint hash for step {step}")
        clone = copy.deepcopy(model).eval()
        with torch.no_grad():
            for name, param in clone.named_parameters():
                if f"adapter.{name}" in tensors:
                    param.copy_(tensors[f"adapter.{name}"])
        models.append(clone)
    return models


def row_contributor(index: int, row: bytes) -> bytes:
    """Default: the row's JSON carries its contributor address (the Datanet knows it on chain)."""
    try:
        return to_canonical_address(json.loads(row)["contributor"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AttributionError(f"row {index} names no valid 'contributor' address; pass contributors=") from exc


def index_hook(method: str = "datainf-v1", contributors: Callable[[int, bytes], bytes] = row_contributor,
               seed: int | None = None, batch_size: int = 16, progress: bool = True, workers: int | None = None,
               checkpoints: int = 4, **config: int):
    """A `training.run(..., attribution=...)` hook: builds `method`'s index, returns its root
    (gradient indexes over `workers` Ray tasks when given: the same root). ensemble-v1 uses
    `checkpoints` of the run's recorded checkpoints (`ensemble_steps`), listed in run.json."""
    text_methods = (SpanConfig.method, SemanticConfig.method)
    if method not in text_methods and method not in CONFIGS:
        raise AttributionError(f"unknown attribution method {method!r}; known: {sorted(CONFIGS) + list(text_methods)}")

    def build(trained) -> bytes:
        from training.trainer import checkpoint_steps

        out = pathlib.Path(trained.out_dir) / INDEX_DIR
        meta: dict = {"method": method, "training_config": trained.config.to_dict()}
        rows = trained.dataset.rows
        contributions = [Contribution(h, contributors(i, r)) for i, (h, r) in enumerate(zip(trained.dataset.hashes, rows))]
        texts = [e.text.encode() for e in trained.examples]
        canonical = near_duplicates(texts)
        if method == SpanConfig.method:
            root = SpanIndex.build(texts, contributions, out, SpanConfig(**config), canonical, workers).root
        elif method == SemanticConfig.method:
            root = SemanticIndex.build(texts, contributions, EMBEDDERS[MINILM](), SemanticConfig(**config), canonical).save(out)
        else:
            encoder = QueryEncoder(trained.tokenizer, trained.config.to_dict())
            labels = [e.label for e in trained.examples]
            batches = [encoder.rows([e.text for e in trained.examples[i : i + batch_size]], labels[i : i + batch_size])
                       for i in range(0, len(texts), batch_size)]
            model = trained.model
            if method == EnsembleConfig.method:
                meta["checkpoint_steps"] = ensemble_steps(checkpoint_steps(trained.config, len(trained.examples)), checkpoints)
                model = checkpoint_models(trained.model, pathlib.Path(trained.out_dir), meta["checkpoint_steps"])
            args = (model, per_example_loss(trained.config.task), batches, contributions,
                    CONFIGS[method](**config), seed if seed is not None else projection_seed(trained.config.seed))
            if workers:
                from attribution.distributed import build_gradient_index_ray
                index = build_gradient_index_ray(*args, workers, canonical, progress)
            else:
                index = build_gradient_index(*args, canonical, progress)
            root = index.save(out)
        (out / RUN_META).write_text(json.dumps(meta, indent=1))
        return root

    return build


def open_run(run_dir: str | pathlib.Path, workers: int | None = None):
    """Load a finished run's attributor; its index must hash to the record's attribution root.
    With `workers`, a gradient index's rows are held and scored by that many Ray actors."""
    from peft import PeftModel

    from training import TrainingConfig, TrainingRun, load_base

    run_dir = pathlib.Path(run_dir)
    if not (run_dir / "record.json").is_file():
        raise UnknownRun(f"{run_dir} is not a training run directory (no record.json)")
    record = TrainingRun.from_json((run_dir / "record.json").read_bytes())
    if record.attribution_index_root == bytes(32) or not (run_dir / INDEX_DIR / RUN_META).is_file():
        raise UnknownRun(f"run {record.run_id} in {run_dir} has no attribution index")
    meta = json.loads((run_dir / INDEX_DIR / RUN_META).read_text())
    if meta["method"] == SpanConfig.method:
        return SpanAttributor(SpanIndex.load(run_dir / INDEX_DIR, record.attribution_index_root))
    if meta["method"] == SemanticConfig.method:
        index = SemanticIndex.load(run_dir / INDEX_DIR, record.attribution_index_root)
        if index.model_name not in EMBEDDERS:
            raise AttributionError(f"semantic index names embedding model {index.model_name!r}; known: {sorted(EMBEDDERS)}")
        return SemanticAttributor(index, EMBEDDERS[index.model_name]())
    index = GradientIndex.load(run_dir / INDEX_DIR, record.attribution_index_root)
    config = TrainingConfig.from_dict(meta["training_config"])
    if config.config_hash() != record.config_hash:
        raise AttributionError(f"{run_dir / INDEX_DIR / RUN_META} holds a config whose hash is not the record's")
    base = load_base(record.base_model, config.task, len(config.labels))
    model = PeftModel.from_pretrained(base.model, run_dir / "adapter").eval()
    if meta["method"] == EnsembleConfig.method:  # the checkpoints, each checked against the record
        steps = [int(s) for s in meta.get("checkpoint_steps", [])]
        if not steps or steps != ensemble_steps(record.checkpoint_steps, len(steps)):
            raise AttributionError(f"{run_dir / INDEX_DIR / RUN_META} lists checkpoint steps {steps}, not an "
                                   f"even spread of the record's {list(record.checkpoint_steps)}")
        model = checkpoint_models(model, run_dir, steps, dict(zip(record.checkpoint_steps, record.checkpoint_hashes)))
    rows = None
    if workers:
        from attribution.distributed import ShardedRows
        rows = ShardedRows(run_dir / INDEX_DIR, workers)
    return GradientAttributor(index, model, per_example_loss(config.task), QueryEncoder(base.tokenizer, config.to_dict()),
                              rows=rows)
