"""Shared inputs for the training tests: tiny random-init models, small JSON-row datasets, one thread."""
import pytest
import torch

from training import Dataset, TrainingConfig
from tests.training.training_testdata import make_rows

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data() -> Dataset:
    return Dataset.from_rows(make_rows(24))


@pytest.fixture(scope="session")
def config() -> TrainingConfig:
    return TrainingConfig(rank=4, alpha=8, dropout=0.1, lr=5e-3, batch_size=4, max_length=32, epochs=2,
                          checkpoint_every=3, seed=7)
