"""Fixtures for the RPC tests: our node and anvil as real processes (see nodes.py)."""
import shutil

import pytest

from tests.rpc.nodes import ANVIL, start_anvil, start_ours


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """Our node with automine (block time 0), like anvil's default."""
    node = start_ours(tmp_path_factory.mktemp("ours"), logs_block_range=50)
    yield node
    node.stop()


@pytest.fixture(scope="module")
def anvil(tmp_path_factory):
    if not ANVIL.exists() or shutil.which("node") is None:
        pytest.skip("anvil not installed: run `npm install` (make test does)")
    node = start_anvil(tmp_path_factory.mktemp("anvil"))
    yield node
    node.stop()
