"""Shared fixtures: dev accounts, transaction signing, and real `openledger devnet` processes.

`devnet` starts the node as a separate process (the console script, as a user would) on a free
port with a temp data dir, waits until it answers JSON-RPC, yields it, and stops it at the end.
"""
from collections.abc import Callable, Iterator

import pytest
from eth_account import Account

import genesis
from tests.rpc.nodes import NodeProcess, devnet_process

DEV_ACCOUNTS = genesis.dev_accounts()


@pytest.fixture(scope="session")
def dev_accounts() -> tuple[tuple[str, str], ...]:
    """(checksum address, private key) of the ten dev accounts."""
    return DEV_ACCOUNTS


def sign(key: str, nonce: int, chain_id: int = genesis.devnet().chain_id, **fields) -> bytes:
    """A signed raw transaction: an EIP-1559 transfer of 1 wei unless `fields` say otherwise."""
    tx = {"type": 2, "chainId": chain_id, "nonce": nonce, "to": "0x" + "11" * 20, "value": 1, "gas": 21_000,
          "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9}
    if "gasPrice" in fields:  # legacy / access-list transactions carry gasPrice instead
        tx.pop("maxFeePerGas"), tx.pop("maxPriorityFeePerGas")
        tx.pop("type")
    tx.update(fields)
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


@pytest.fixture(scope="session")
def sign_tx() -> Callable[..., bytes]:
    return sign


@pytest.fixture
def devnet_factory(tmp_path) -> Iterator[Callable[..., NodeProcess]]:
    """Launch devnet processes on fresh data dirs (`start()` waits for one); all are stopped at the end."""
    made: list[NodeProcess] = []

    def make(block_time: float = 1, name: str = "devnet") -> NodeProcess:
        d = devnet_process(tmp_path / name, "--block-time", str(block_time))
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


@pytest.fixture
def devnet(devnet_factory) -> NodeProcess:
    """A running `openledger devnet` (1 s blocks) with the ten dev accounts funded."""
    return devnet_factory().start()


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance with 2 CPUs for the whole session (starting one takes 10-20 s)."""
    pytest.importorskip("ray")
    from training.cluster import connect

    ray = connect("auto", num_cpus=2)
    yield ray
    ray.shutdown()
