"""Fixtures for the attribution tests (helpers live in attr_tiny.py)."""
import pytest
import torch

from tests.attribution.attr_tiny import PLANTED, Tiny, make_tiny, synthetic


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny() -> Tiny:
    torch.set_num_threads(1)
    x, y = synthetic()
    y = y.clone()
    y[PLANTED] = 1 - y[PLANTED]
    return make_tiny(x, y)

