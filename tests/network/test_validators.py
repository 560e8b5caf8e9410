"""Validators as real processes on loopback (issue 13, fault tests): `openledger run` x 4 with
the keys, genesis and boot nodes `openledger testnet` makes, talking over node/p2p, under a
generated transaction load (a thread sending transfers to the validators in turn).

Each test: a fault, then the chain kept finalising while at most one validator was faulty, the
faulty one caught up, every node has the same hash at every height, every transaction a client
saw in a block is still there, and no validator signed two different messages. Starting four
processes takes a minute or more on a shared machine: all are marked slow (the fast, in-process
four-validator tests are in tests/node/test_consensus_node.py)."""
from __future__ import annotations

import pathlib
import signal
import threading
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


def _start_network(root: pathlib.Path):
    members = testnet._setup(root, 4, [free_port() for _ in range(4)], [free_port() for _ in range(4)])
    nodes = [NodeProcess(testnet._command(m, members, root, 0.5), int(m.rpc.rsplit(":", 1)[1]), m.datadir / "node.log")
             for m in members]
    return members, nodes


LOG_TAIL = 4000  # characters of each node's log shown when a test fails


def _report(members, nodes) -> str:
    """What each node was doing: its consensus state, if it answers, and its log's tail (the log
    itself stays in the test's tmp dir, `<datadir>/node.log`, appended across restarts)."""
    out = []
    for m, n in zip(members, nodes):
        out.append(f"===== validator {m.index}: {testnet.status(m)} log {n.log}")
        try:
            out.append(n.log.read_text(errors="replace")[-LOG_TAIL:])
        except OSError as exc:
            out.append(f"(no log: {exc})")
    return "\n".join(out)


@pytest.fixture
def network(tmp_path, request):
    members, nodes = _start_network(tmp_path / "net")
    try:
        for n in nodes:
            n.wait_ready(180)
        yield members, nodes
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:  # shown with the failure, in pytest's summary
            report.sections.append(("validator logs", _report(members, nodes)))
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


class Load(threading.Thread):
    """Transfers from dev account 9, one at a time, to the validators in turn; remembers the
    receipts it saw (block number and hash) to check none is lost."""

    def __init__(self, nodes) -> None:
        super().__init__(daemon=True)
        self.nodes, self.seen, self.stop_flag, self.nonce = nodes, {}, threading.Event(), 0

    def run(self) -> None:
        i = 0
        while not self.stop_flag.is_set():
            node = self.nodes[i % len(self.nodes)]
            i += 1
            raw = sign(DEV_KEYS[9], self.nonce, to=b"\x43" * 20, value=1, gas=21_000)
            try:
                tx_hash = node.rpc("eth_sendRawTransaction", "0x" + raw.hex(), timeout=5)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not self.stop_flag.is_set():
                    receipt = node.rpc("eth_getTransactionReceipt", tx_hash, timeout=5)
                    if receipt:
                        self.seen[tx_hash] = (receipt["blockNumber"], receipt["blockHash"])
                        self.nonce += 1
                        break
                    time.sleep(0.1)
            except (OSError, AssertionError):
                time.sleep(0.5)  # that validator is down: the next one

    def check(self, nodes) -> None:
        self.stop_flag.set()
        self.join(30)
        assert self.seen, "the load generator saw no transaction mined"
        for tx_hash, (number, block_hash) in self.seen.items():
            for n in nodes:
                assert n.rpc("eth_getBlockByNumber", number, False)["hash"] == block_hash, (tx_hash, n.url)


def _others_finalise(nodes, faulty, blocks: int = 3, seconds: float = 60) -> None:
    live = [n for n in nodes if n is not faulty]
    before = min(_height(n) for n in live)
    _wait(lambda: min(_height(n) for n in live) >= before + blocks, seconds,
          "three validators finalising without the fourth")


def _caught_up(nodes, faulty, seconds: float = 20) -> None:
    live = [n for n in nodes if n is not faulty]
    _wait(lambda: _height(faulty) >= min(_height(n) for n in live), seconds, "the faulty one caught up")


@pytest.mark.slow
def test_sigstop_for_ten_seconds(network):
    members, nodes = network
    _wait(lambda: min(_heights(nodes)) >= 3, 120, "four validators at height 3")
    load = Load(nodes)
    load.start()
    victim = nodes[2]
    victim.proc.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        _others_finalise(nodes, victim)
        time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
    finally:
        victim.proc.send_signal(signal.SIGCONT)
    _caught_up(nodes, victim)
    load.check(nodes)
    _same_chain(nodes, min(_heights(nodes)))
    _no_double_sign(members)


@pytest.mark.slow
def test_restart_all_four(network):
    members, nodes = network
    _wait(lambda: min(_heights(nodes)) >= 3, 120, "four validators at height 3")
    load = Load(nodes)
    load.start()
    time.sleep(3)
    for n in nodes:
        n.kill()
    top = max(len(load.seen), 0)
    for n in nodes:
        n.start(180)
    before = min(_heights(nodes))
    _wait(lambda: min(_heights(nodes)) >= before + 3, 120, "finalising again after all four restarted")
    load.check(nodes)
    assert len(load.seen) >= top
    _same_chain(nodes, min(_heights(nodes)))
    _no_double_sign(members)


@pytest.mark.slow
def test_four_validators_agree_and_survive_a_kill(network):
    members, nodes = network
    _wait(lambda: min(_heights(nodes)) >= 5, 120, "four validators at height 5")
    raw = sign(DEV_KEYS[0], 0, to=b"\x42" * 20, value=7, gas=21_000)
    tx_hash = nodes[3].rpc("eth_sendRawTransaction", "0x" + raw.hex())
    _wait(lambda: all(n.rpc("eth_getTransactionReceipt", tx_hash) for n in nodes), 60, "the transaction mined")

    load = Load(nodes)
    load.start()
    victim = nodes[1]
    victim.kill()
    _others_finalise(nodes, victim)
    victim.start(180)  # a process start takes most of a minute here; the catch-up itself is timed
    _caught_up(nodes, victim)
    load.check(nodes)
    top = min(_heights(nodes))
    _same_chain(nodes, top)
    for height in range(1, top + 1):
        commit = nodes[0].rpc("ol_getCommit", hex(height))
        assert len(Commit.decode(bytes.fromhex(commit["rlp"][2:])).signatures) >= 3
    _no_double_sign(members)
