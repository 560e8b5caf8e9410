"""ModelFactory: deterministic LoRA training runs on Datanet versions, with records anyone can check.

The stable public API (the attribution and inference engines build on it):
- `TrainingConfig` (frozen, validated; `config_hash()`), `ConfigError`, `derive_seed(block_hash, run_id)`;
- `Dataset` (`from_file`, `from_blobs`, `from_rows`: verified rows of a Datanet version), `DataError`;
- `load_base(name, task, num_labels)` -> `BaseModel(name, model, tokenizer)`: offline models;
  `pang_lee_rows()`: 200 labelled sentences (gensim test data) as JSON rows;
- `run(config, data, base, out_dir, ...)` -> `TrainingRun`; its `attribution` hook gets a `TrainedRun`
  and returns the attribution index root;
- `evaluate(model, tokenizer, examples, config)`: held-out loss (and accuracy);
- `verify_run(record, data, out_dir, k, config=...)` -> `Verdict`;
- `tensor_hash`, `adapter_hash`: the hashes records commit to.
"""
from training.config import ConfigError, TrainingConfig, derive_seed
from training.data import DataError, Dataset, pang_lee_rows
from training.models import BaseModel, load_base
from training.record import TrainingRun, adapter_hash, tensor_hash
from training.trainer import TrainedRun, evaluate, run
from training.verify import Verdict, verify_run

__all__ = ["BaseModel", "ConfigError", "DataError", "Dataset", "TrainedRun", "TrainingConfig", "TrainingRun",
           "Verdict", "adapter_hash", "derive_seed", "evaluate", "load_base", "pang_lee_rows", "run", "tensor_hash",
           "verify_run"]
