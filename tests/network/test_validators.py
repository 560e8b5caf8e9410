"""Validators as real processes on loopback (issue 13, fault tests): `openledger run` x 4 with
the keys, genesis and boot nodes `openledger testnet` makes, talking over node/p2p, under a
generated transaction load (a thread sending transfers to the validators in turn).

Each test: a fault (kill -9, SIGSTOP, a cut at the socket level through TCP proxies
(tests/network/proxy.py), all four restarted, or a byzantine validator that equivocates
(tests/network/byzantine.py)), then the chain kept finalising while at most one validator was
faulty, the faulty one caught up, every node has the same hash at every height, every
transaction a client saw in a block is still there, and no honest validator signed two different
messages (`_after_fault`). Starting four processes takes a minute or more on a shared machine: all
are marked slow (the fast, in-process four-validator tests are in tests/node/test_consensus_node.py)."""
from __future__ import annotations

import contextlib
import pathlib
import re
import signal
import sys
import threading
import time
import urllib.request

import eth_abi
import pytest
from eth_utils import keccak, to_checksum_address

import genesis as genesis_mod
from consensus import Commit
from node.cli import testnet
from genesis import dev_accounts
from tests.conftest import sign
from tests.network.byzantine import MARK
from tests.network.proxy import Switchboard
from tests.rpc.nodes import NodeProcess, free_port
from vm.modules.system import STAKING

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


def _setup(root: pathlib.Path) -> list[testnet.Member]:
    """Keys, genesis and data dirs of four validators, as `openledger testnet` makes them."""
    return testnet._setup(root, 4, [free_port() for _ in range(4)], [free_port() for _ in range(4)])


def _launch(members, root: pathlib.Path, command=lambda m, cmd: cmd) -> list[NodeProcess]:
    """Start the validators with `openledger testnet`'s command lines; `command(member, cmd)` may
    change one first."""
    return [NodeProcess(command(m, testnet._command(m, members, root, 0.5)), int(m.rpc.rsplit(":", 1)[1]),
                        m.datadir / "node.log") for m in members]


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


@contextlib.contextmanager
def _running(members, nodes, request):
    """Wait for the validators, yield, show their logs if the test failed, stop them."""
    try:
        for n in nodes:
            n.wait_ready(180)
        yield
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:  # shown with the failure, in pytest's summary
            report.sections.append(("validator logs", _report(members, nodes)))
    finally:
        for n in nodes:
            n.stop()


@pytest.fixture
def network(tmp_path, request):
    members = _setup(tmp_path / "net")
    nodes = _launch(members, tmp_path / "net")
    with _running(members, nodes, request):
        yield members, nodes


def _flag(cmd: list[str], flag: str, value: str) -> list[str]:
    """`cmd` with `flag`'s value replaced (or the flag added)."""
    if flag in cmd:
        at = cmd.index(flag) + 1
        return cmd[:at] + [value] + cmd[at + 1:]
    return cmd + [flag, value]


@pytest.fixture
def proxied_network(tmp_path, request):
    """The four validators with a TCP proxy in front of each one's p2p port: each listens where
    only its proxy connects, announces its proxy's address and has the others' proxies as boot
    nodes, so no two validators can talk but through a proxy."""
    nodes: list[NodeProcess] = []
    members = _setup(tmp_path / "net")
    listen_ports = [int(m.p2p.split("/tcp/")[1].split("/")[0]) for m in members]
    board = Switchboard(listen_ports, lambda i: nodes[i].proc.pid if i < len(nodes) and nodes[i].proc.poll() is None
                        else None)

    def proxied(m, cmd):
        others = ",".join(f"/ip4/127.0.0.1/tcp/{board.ports[o.index]}/p2p/{o.p2p.split('/p2p/')[1]}"
                          for o in members if o is not m)
        return _flag(_flag(cmd, "--bootnodes", others), "--p2p.announce", f"/ip4/127.0.0.1/tcp/{board.ports[m.index]}")

    try:
        nodes.extend(_launch(members, tmp_path / "net", proxied))
        with _running(members, nodes, request):
            yield members, nodes, board
    finally:
        board.close()


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
        # The node a receipt came from may be a block ahead of a follower (or of one catching up).
        last = max(int(number, 16) for number, _ in self.seen.values())
        _wait(lambda: min(_heights(nodes)) >= last, 20, f"every node at block {last}, the last a client saw")
        for tx_hash, (number, block_hash) in self.seen.items():
            for n in nodes:
                assert n.rpc("eth_getBlockByNumber", number, False)["hash"] == block_hash, (tx_hash, n.url)


def _others_finalise(nodes, faulty, blocks: int = 3, seconds: float = 60) -> None:
    live = [n for n in nodes if n is not faulty]
    before = min(_height(n) for n in live)
    _wait(lambda: min(_height(n) for n in live) >= before + blocks, seconds,
          "three validators finalising without the fourth")


def _caught_up(nodes, faulty, seconds: float = 20) -> None:
    """Wait for the faulty one to reach the others' height; prints how long it took (for
    BENCHMARKS.md's fault runs, with -s)."""
    live, start = [n for n in nodes if n is not faulty], time.monotonic()
    _wait(lambda: _height(faulty) >= min(_height(n) for n in live), seconds, "the faulty one caught up")
    print(f"caught up in {time.monotonic() - start:.1f} s", flush=True)


def _after_fault(members, nodes, load: Load) -> int:
    """What every fault test ends with: no transaction a client saw mined is lost, every node
    has the same hash at every height, no validator of `members` signed twice. The height checked."""
    load.check(nodes)
    top = min(_heights(nodes))
    _same_chain(nodes, top)
    _no_double_sign(members)
    return top


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
    _after_fault(members, nodes, load)


@pytest.mark.slow
def test_restart_all_four(network):
    members, nodes = network
    _wait(lambda: min(_heights(nodes)) >= 3, 120, "four validators at height 3")
    load = Load(nodes)
    load.start()
    time.sleep(3)
    for n in nodes:
        n.kill()
    for n in nodes:
        n.start(180)
    before = min(_heights(nodes))
    _wait(lambda: min(_heights(nodes)) >= before + 3, 120, "finalising again after all four restarted")
    _after_fault(members, nodes, load)


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
    top = _after_fault(members, nodes, load)
    for height in range(1, top + 1):
        commit = nodes[0].rpc("ol_getCommit", hex(height))
        assert len(Commit.decode(bytes.fromhex(commit["rlp"][2:])).signatures) >= 3


@pytest.mark.slow
def test_cut_off_at_the_socket_level_for_ten_seconds(proxied_network):
    """One validator's connections are closed at the proxies and its new ones refused, both
    ways, for 10 s: it has no peer and decides nothing new, the other three keep finalising;
    healed, it re-dials (and is re-dialled) through the proxies and catches up."""
    members, nodes, board = proxied_network
    _wait(lambda: min(_heights(nodes)) >= 3, 120, "four validators at height 3")
    _wait(lambda: all(int(n.rpc("net_peerCount"), 16) == 3 for n in nodes), 30, "every validator with three peers")
    load = Load(nodes)
    load.start()
    index = 2
    victim = nodes[index]
    board.cut(index)
    cut_at, height_at_cut = time.monotonic(), _height(victim)
    try:
        _wait(lambda: int(victim.rpc("net_peerCount"), 16) == 0, 5, "the cut validator without peers")
        _others_finalise(nodes, victim)
        time.sleep(max(0.0, 10 - (time.monotonic() - cut_at)))
        assert int(victim.rpc("net_peerCount"), 16) == 0, "a connection got around the proxies"
        assert _height(victim) <= height_at_cut + 1, "the cut validator decided heights on its own"
        assert all(int(n.rpc("net_peerCount"), 16) == 2 for n in nodes if n is not victim)
    finally:
        board.heal(index)
    # Both sides kept re-dialling while cut, each way, and the proxies refused them.
    others = [i for i in range(4) if i != index]
    assert all(board.refused[(index, i)] > 0 and board.refused[(i, index)] > 0 for i in others), board.refused
    _caught_up(nodes, victim)
    _after_fault(members, nodes, load)


def _staking_call(node: NodeProcess, signature: str, types: list[str], args: list, out: list[str]):
    data = keccak(text=signature)[:4] + eth_abi.encode(types, args)
    result = node.rpc("eth_call", {"to": to_checksum_address(STAKING), "data": "0x" + data.hex()}, "latest")
    return eth_abi.decode(out, bytes.fromhex(result[2:]))


def _metric(node_metrics_port: int, line: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{node_metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search("^" + re.escape(line) + r" (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


EQUIVOCATE_AT = 4  # the byzantine validator's prevotes from this height on have twins


@pytest.fixture
def network_with_a_byzantine_validator(tmp_path, request):
    """Validator 3 runs tests/network/byzantine.py (conflicting prevotes); every validator
    serves --metrics on a port of its own."""
    root = tmp_path / "net"
    members = _setup(root)
    metrics = [free_port() for _ in members]

    def command(m, cmd):
        cmd = cmd + ["--metrics", "--metrics.port", str(metrics[m.index])]
        if m.index != 3:
            return cmd
        return [sys.executable, "-m", "tests.network.byzantine", str(EQUIVOCATE_AT), *cmd[cmd.index("run") + 1:]]

    nodes = _launch(members, root, command)
    with _running(members, nodes, request):
        yield members, nodes, metrics


@pytest.mark.slow
def test_a_byzantine_validator_that_equivocates_is_slashed_and_jailed(network_with_a_byzantine_validator, tmp_path):
    """Item 8 with real processes: validator 3 signs two prevotes at one (height, round); the
    others see it, gossip the evidence, and a Staking.submitEvidence is mined: 5% of the
    offender's stake (the genesis parameter) is slashed, once, though it equivocated until it was
    out, it is jailed and leaves the set at the scheduled height, and the three honest
    validators keep finalising without it."""
    members, nodes, metrics = network_with_a_byzantine_validator
    g = genesis_mod.load(tmp_path / "net" / testnet.GENESIS_FILE)
    offender = members[3].address
    honest = [n for n in nodes if n is not nodes[3]]
    load = Load(honest)
    load.start()
    jailed = [0]

    def jailed_at() -> int:
        jailed[0] = _staking_call(nodes[0], "jailedAt(address)", ["address"], [offender], ["uint256"])[0]
        return jailed[0]

    def equivocated() -> set[int]:
        found = re.findall(re.escape(MARK) + r" at height (\d+)", nodes[3].log.read_text(errors="replace"))
        return {int(h) for h in found}

    _wait(lambda: equivocated(), 120, "the byzantine validator sending a conflicting prevote")
    _wait(lambda: jailed_at() > 0, 120, "the equivocating validator jailed")
    # Every node saw the evidence; it travelled as gossip (the evidence topic), not only as votes.
    for port in metrics:
        assert _metric(port, "openledger_consensus_evidence_total") >= 1
    assert sum(_metric(port, 'openledger_p2p_messages_total{direction="in",topic="evidence"}') for port in metrics) >= 1

    # Included in a block: the Jailed event of a Staking.submitEvidence transaction (which any
    # validator that holds the evidence sends, the offender's own node included).
    topic = "0x" + keccak(text="Jailed(address,uint256,bytes32)").hex()
    logs = nodes[0].rpc("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest", "address": to_checksum_address(STAKING),
                                        "topics": [topic, "0x" + bytes(12).hex() + offender[2:].lower()]})
    assert len(logs) == 1 and int(logs[0]["blockNumber"], 16) == jailed[0]
    evidence_height = eth_abi.decode(["uint256", "bytes32"], bytes.fromhex(logs[0]["data"][2:]))[0]
    assert evidence_height in equivocated()
    tx = nodes[0].rpc("eth_getTransactionByHash", logs[0]["transactionHash"])
    assert tx["input"].startswith("0x" + keccak(text="submitEvidence(bytes)")[:4].hex())
    assert tx["from"].lower() in {m.address.lower() for m in members}

    # Slashed by the genesis share of its self stake, and out of the set from the scheduled height.
    stake = g.validators[3].stake
    cut = stake * g.economics.evidence_slash_ppm // 1_000_000
    assert g.economics.evidence_slash_ppm == 50_000  # the 5% default the issue names
    self_stake, _, _, _, _, slashed = _staking_call(nodes[1], "getValidator(address)", ["address"], [offender],
                                                    ["uint256", "uint256", "uint32", "uint8", "bool", "uint256"])
    assert (self_stake, slashed) == (stake - cut, cut)
    leaves = jailed[0] + g.economics.validator_set_delay_blocks
    print(f"equivocation at height {evidence_height}, jailed in block {jailed[0]}, out of the set from {leaves}",
          flush=True)
    signers, _ = _staking_call(nodes[2], "consensusSet(uint256)", ["uint256"], [leaves], ["address[]", "uint256[]"])
    assert {a.lower() for a in signers} == {m.address.lower() for m in members[:3]}

    # The three honest validators finalise without it, and every node agrees.
    _wait(lambda: min(_heights(honest)) >= leaves + 3, 60, "three validators finalising after the offender left")
    _caught_up(nodes, nodes[3])
    _after_fault(members[:3], nodes, load)
