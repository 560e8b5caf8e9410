"""Tiny random Llama, a store of random peft adapters, threads pinned to 1."""
import pathlib

import pytest
import torch

from inference import AdapterStore, BaseSpec
from inference.models import random_adapter, tiny_llama


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def model():
    return tiny_llama(seed=0)


@pytest.fixture(scope="session")
def adapter_dirs(tmp_path_factory, model) -> list[pathlib.Path]:
    """Six adapters: ranks 4..8 (different ranks in one batch), q/v targets, one also on o/up."""
    root = tmp_path_factory.mktemp("adapters")
    dirs = [random_adapter(model, root / f"a{i}", rank=4 + i % 5, seed=100 + i) for i in range(5)]
    dirs.append(random_adapter(model, root / "a5", rank=8, seed=105, targets=("q_proj", "v_proj", "o_proj", "up_proj")))
    return dirs


@pytest.fixture(scope="session")
def store(tmp_path_factory, model, adapter_dirs) -> AdapterStore:
    s = AdapterStore(tmp_path_factory.mktemp("store"), BaseSpec.of(model),
                     targets=("q_proj", "v_proj", "o_proj", "up_proj"), max_rank=8)
    yield s
    s.close()


@pytest.fixture(scope="session")
def ids(store, adapter_dirs) -> list[str]:
    return [store.add(d) for d in adapter_dirs]
