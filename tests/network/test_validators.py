"""Validators as real processes on loopback (issue 13, fault tests): `openledger run` x 4 with
the keys, genesis and boot nodes `openledger testnet` makes, talking over node/p2p.

Fast: four validators produce and agree on blocks; a transaction sent to one validator's RPC is
mined (it reaches whichever validator proposes); one validator killed with SIGKILL and restarted
catches up (block sync) and the network keeps finalising while it is down. Every node then has
the same hash at every height and no validator signed two different messages."""
from __future__ import annotations

import pathlib
import time

import pytest

from consensus import Commit
from node.cli import testnet
from genesis import dev_accounts
from tests.conftest import sign
from tests.rpc.nodes import NodeProcess, free_port

DEV_KEYS = [k for _, k in dev_accounts()]


def _height(node: NodeProcess) -> int:
    return int(node.rpc("eth_blockNumber"), 16)


def _wait(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"not within {seconds}s: {what}"
        time.sleep(0.2)


def _heights(nodes) -> list[int]:
    out = []
    for n in nodes:
        try:
            out.append(_height(n))
        except OSError:
            out.append(-1)
    return out


@pytest.fixture
def network(tmp_path):
    root = tmp_path / "net"
    members = testnet._setup(root, 4, [free_port() for _ in range(4)], [free_port() for _ in range(4)])
    nodes = []
    for m in members:
        cmd = testnet._command(m, members, root, 0.5)
        nodes.append(NodeProcess(cmd, int(m.rpc.rsplit(":", 1)[1]), m.datadir / "node.log"))
    try:
        for n in nodes:
            n.wait_ready(180)
        yield members, nodes
    finally:
        for n in nodes:
            n.stop()


def _same_chain(nodes, upto: int) -> None:
    for height in range(1, upto + 1):
        hashes = {n.rpc("eth_getBlockByNumber", hex(height), False)["hash"] for n in nodes}
        assert len(hashes) == 1, f"nodes disagree at height {height}"


def _no_double_sign(members) -> None:
    """Every commit a node stores verifies; signer state files name one message per step."""
    from node.validator import SignerStateFile

    for m in members:
        state = SignerStateFile(pathlib.Path(m.datadir) / "consensus" / "signer_state.rlp").load()
        steps = {}
        for vote in state.votes:
            key = (vote.vote.height, vote.vote.round, vote.vote.type)
            assert steps.setdefault(key, vote) == vote, f"validator {m.index} signed twice at {key}"


@pytest.mark.slow
def test_four_validators_agree_and_survive_a_kill(network):
    members, nodes = network
    _wait(lambda: min(_heights(nodes)) >= 5, 120, "four validators at height 5")
    raw = sign(DEV_KEYS[0], 0, to=b"\x42" * 20, value=7, gas=21_000)
    tx_hash = nodes[3].rpc("eth_sendRawTransaction", "0x" + raw.hex())
    _wait(lambda: all(n.rpc("eth_getTransactionReceipt", tx_hash) for n in nodes), 60, "the transaction mined")

    victim = nodes[1]
    victim.kill()
    before = min(_height(n) for n in nodes if n is not victim)
    _wait(lambda: min(_height(n) for n in nodes if n is not victim) >= before + 3, 60,
          "three validators finalising without the fourth")
    victim.start(180)
    _wait(lambda: _height(victim) >= min(_height(n) for n in nodes if n is not victim), 60, "the restarted one caught up")
    top = min(_heights(nodes))
    _same_chain(nodes, top)
    for height in range(1, top + 1):
        commit = nodes[0].rpc("ol_getCommit", hex(height))
        assert len(Commit.decode(bytes.fromhex(commit["rlp"][2:])).signatures) >= 3
    _no_double_sign(members)
