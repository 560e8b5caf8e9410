"""A Node on a real LevelDB data dir under pytest's tmp_path."""
import pytest

import genesis
from node.chain import Node


@pytest.fixture
def node(tmp_path):
    n = Node.init(tmp_path / "data", genesis.devnet())
    yield n
    n.close()
