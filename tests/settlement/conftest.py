"""Settlement fixtures: anvil (npm) as the L1 with its own chain id, our L2 node in-process over a
real LevelDB, and the L1 contracts deployed from the committed artifact."""
import shutil

import pytest

import genesis
from node.chain import Node
from node.settlement import Deployment, L1, deploy_all
from tests.rpc.nodes import ANVIL, NodeProcess, free_port

L1_CHAIN_ID = 31337
ESCROW = genesis.DEVNET_BRIDGE_ESCROW
DEPLOYER, BATCHER, USER = (key for _, key in genesis.dev_accounts()[:3])
VALIDATOR_KEY = genesis.dev_validator()[1]
FINALIZATION_S = 100


def start_l1(tmp, *args: str) -> NodeProcess:
    port = free_port()
    cmd = [str(ANVIL), "--port", str(port), "--chain-id", str(L1_CHAIN_ID), "--silent", *args]
    return NodeProcess(cmd, port, tmp / f"anvil-{port}.log").wait_ready()


@pytest.fixture
def anvil(tmp_path):
    if not ANVIL.exists() or shutil.which("node") is None:
        pytest.skip("anvil comes from npm: run `npm install` (make test does)")
    proc = start_l1(tmp_path)
    yield proc
    proc.stop()


@pytest.fixture
def l2_genesis():
    return genesis.devnet(bridge_escrow=ESCROW)


@pytest.fixture
def l2(tmp_path, l2_genesis):
    with Node.init(tmp_path / "l2", l2_genesis) as node:
        yield node


@pytest.fixture
def deployment(anvil, l2, l2_genesis) -> Deployment:
    deployer = L1(anvil.url, DEPLOYER)
    batcher = L1(anvil.url, BATCHER).address
    return deploy_all(deployer, l2_chain_id=l2_genesis.chain_id, l2_genesis_hash=l2.header_by_number(0).hash,
                      validators=[(v.address, v.power) for v in l2_genesis.validators], batcher=batcher,
                      escrow=ESCROW, finalization_period=FINALIZATION_S)


@pytest.fixture
def l2_rpc(l2):
    """The in-process L2 node's JSON-RPC on a real socket (served by a trio loop in a thread), for
    what users read over RPC: eth_getProof, receipts. The test itself produces the blocks."""
    import functools
    import threading

    import trio

    from node.rpc import RpcConfig, serve
    from node.sdk import Client

    ready, holder = threading.Event(), {}

    async def main():
        with trio.CancelScope() as scope:
            holder["scope"], holder["token"] = scope, trio.lowlevel.current_trio_token()
            async with trio.open_nursery() as nursery:
                holder["urls"] = await nursery.start(functools.partial(serve, l2, RpcConfig(port=free_port())))
                ready.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert ready.wait(60), "the L2 RPC did not start"
    yield Client(holder["urls"][0])
    trio.from_thread.run_sync(holder["scope"].cancel, trio_token=holder["token"])
    thread.join(30)


def total_supply(node) -> int:
    """Every balance in the head state (walked from the trie) plus the base fees burned: the OPEN
    supply identity of vm.modules.economics says this is always TOTAL_SUPPLY."""
    import rlp
    from eth.rlp.accounts import Account as RlpAccount
    from trie import HexaryTrie
    from trie.iter import NodeIterator

    from vm.modules.economics import BURNED
    from vm.modules.system import ECONOMICS

    head = node.head()
    trie = HexaryTrie(node.evm_chain().chaindb.db, head.state_root)
    it, key, held = NodeIterator(trie), None, 0
    key = it.next()
    while key is not None:
        held += rlp.decode(trie[key], sedes=RlpAccount).balance
        key = it.next(key)
    return held + node.state_at(head).get_storage(ECONOMICS, BURNED)
