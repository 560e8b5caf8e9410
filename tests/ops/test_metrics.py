"""`--metrics`: the families move as real traffic goes through real sockets, read back with
prometheus_client's own text parser."""
from __future__ import annotations

import socket
import time

import pytest
from eth_account import Account
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

import genesis
from node.chain import Node
from node.metrics import FAMILIES, NodeMetrics
from tests.conftest import DEV_ACCOUNTS, sign
from tests.ops.conftest import get, wait_for
from tests.rpc.nodes import call

RECEIVER = "0x" + "22" * 20


def _delta(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
def node(devnet0):
    return devnet0


def test_rpc_pool_blocks_and_connections_move(node):
    address, key = DEV_ACCOUNTS[3]
    before = node.metrics()
    for _ in range(5):
        node.rpc("eth_getBalance", address, "latest")
    for _ in range(2):
        assert call(node.url, "eth_getBalance", "0xzz")["error"]["code"] == -32602
    assert call(node.url, "no_suchMethod")["error"]["code"] == -32601

    nonce = int(node.rpc("eth_getTransactionCount", address, "pending"), 16)
    first = sign(key, nonce, to=RECEIVER)
    hashes = [node.rpc("eth_sendRawTransaction", "0x" + first.hex()),
              node.rpc("eth_sendRawTransaction", "0x" + sign(key, nonce + 1, to=RECEIVER).hex())]
    wait_for("both transfers mined", lambda: all(node.rpc("eth_getTransactionReceipt", h) for h in hashes))
    refused = {
        "nonce_too_low": first,  # mined by now
        "insufficient_funds": sign(Account.create().key.hex(), 0, to=RECEIVER),
        "chain_id": sign(key, nonce + 2, chain_id=1, to=RECEIVER),
        "malformed": bytes.fromhex("02c0"),
    }
    for reason, raw in refused.items():
        answer = call(node.url, "eth_sendRawTransaction", "0x" + raw.hex())
        assert "error" in answer, (reason, answer)
    with socket.create_connection(("127.0.0.1", node.port)) as s:  # a DNS-rebinding Host: refused, counted
        s.sendall(b"POST / HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 2\r\n\r\n{}")
        assert s.recv(100).startswith(b"HTTP/1.1 403")
    wait_for("the refused connection closed", lambda: _delta(before, node.metrics(), "openledger_rpc_connection_faults_total",
                                                             kind="forbidden_host") == 1)
    after = node.metrics()

    assert _delta(before, after, "openledger_rpc_requests_total", method="eth_getBalance", code="ok") == 5
    assert _delta(before, after, "openledger_rpc_requests_total", method="eth_getBalance", code="-32602") == 2
    assert _delta(before, after, "openledger_rpc_requests_total", method="unknown", code="-32601") == 1
    assert _delta(before, after, "openledger_rpc_requests_total", method="eth_sendRawTransaction", code="ok") == 2
    assert _delta(before, after, "openledger_rpc_request_seconds_count", method="eth_getBalance") == 7
    assert _delta(before, after, "openledger_rpc_request_seconds_bucket", method="eth_getBalance", le="+Inf") == 7
    assert _delta(before, after, "openledger_txpool_admitted_total") == 2
    for reason in refused:
        assert _delta(before, after, "openledger_txpool_refused_total", reason=reason) == 1, reason
    assert _delta(before, after, "openledger_chain_transactions_total") == 2
    assert _delta(before, after, "openledger_chain_block_gas_used_sum") == 2 * 21_000
    assert _delta(before, after, "openledger_chain_blocks_total", origin="built") >= 1
    assert after[("openledger_chain_head_block", ())] == int(node.rpc("eth_blockNumber"), 16)
    assert _delta(before, after, "openledger_rpc_connections_total") >= 5 + 2 + 1 + 2 + 4 + 1
    assert after[("openledger_rpc_connections_open", ())] >= 0
    assert after[("openledger_datadir_bytes", (("part", "chaindata"),))] > 0
    assert after[("openledger_ready", ())] == 1
    assert after[("openledger_info", (("chain_id", str(genesis.devnet().chain_id)), ("version", "0.1.0")))] == 1
    # consensus, through the real process (a lone validator: its own quorum, no p2p families)
    head = int(node.rpc("eth_blockNumber"), 16)
    assert after[("openledger_consensus_height", ())] >= after[("openledger_chain_head_block", ())]  # = in its commit step
    assert _delta(before, after, "openledger_consensus_rounds_count") >= 1
    assert _delta(before, after, "openledger_consensus_step_seconds_count", step="propose") >= 1
    assert after[("openledger_consensus_votes_missed_total", ())] == 0 and head >= 1
    assert ("openledger_p2p_peers", ()) not in after


def test_every_family_is_listed(node):
    """Names a dashboard or alert can rely on: each openledger_ family exposed is in FAMILIES."""
    status, body = get(node.metrics_port, "/metrics")
    names = {f.name for f in text_string_to_metric_families(body.decode()) if f.name.startswith("openledger_")}
    listed = {n.removesuffix("_total") for n in FAMILIES}
    assert names and names <= listed, names - listed


def test_metrics_port_answers_probes_and_refuses_the_rest(node):
    assert get(node.metrics_port, "/health") == (200, b'{"status":"ok"}')
    assert get(node.metrics_port, "/ready")[0] == 200
    assert get(node.metrics_port, "/nothing")[0] == 404
    with socket.create_connection(("127.0.0.1", node.metrics_port)) as s:
        s.sendall(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 405")
    with socket.create_connection(("127.0.0.1", node.metrics_port)) as s:  # garbage, then a half-open client
        s.sendall(b"\x00\xff garbage\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    s = socket.create_connection(("127.0.0.1", node.metrics_port))
    s.sendall(b"GET /metr")  # never finishes its request
    assert get(node.metrics_port, "/metrics")[0] == 200  # others are still served
    s.close()


def test_imported_blocks_are_timed(tmp_path):
    """Block import (as a follower does) is counted and timed apart from building."""
    g = genesis.devnet()
    producer, follower = Node.init(tmp_path / "a", g), Node.init(tmp_path / "b", g)
    with producer, follower:
        telemetry = NodeMetrics(follower)
        address, key = DEV_ACCOUNTS[1]
        producer.mempool.add_raw(sign(key, 0, to=RECEIVER))
        blocks = [producer.produce_block(int(time.time())), producer.produce_block(int(time.time()) + 1)]
        for block in blocks:
            follower.import_block(block)
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(telemetry.exposition().decode()) for s in f.samples}
    assert samples[("openledger_chain_blocks_total", (("origin", "imported"),))] == 2
    assert samples[("openledger_chain_blocks_total", (("origin", "built"),))] == 0
    assert samples[("openledger_chain_block_seconds_count", (("origin", "imported"),))] == 2
    assert samples[("openledger_chain_block_seconds_sum", (("origin", "imported"),))] > 0
    assert samples[("openledger_chain_transactions_total", ())] == 1
    assert samples[("openledger_chain_head_block", ())] == 2


def test_figures_added_later_register_by_their_listed_names():
    """How #13 adds peers, height and votes: by a name listed in FAMILIES; any other is refused."""
    from node.metrics import Metrics

    m = Metrics()
    m.gauge("p2p_peers", "Connected peers").set(3)
    m.counter("p2p_messages_total", "Gossip messages", ["topic"]).labels("blocks").inc(2)
    m.add_collector(lambda: [GaugeMetricFamily("openledger_consensus_round", "Round", value=1)])
    with pytest.raises(ValueError, match="openledger_peers is not listed"):
        m.gauge("peers", "typo")
    samples = {s.name: s.value for f in text_string_to_metric_families(m.exposition().decode()) for s in f.samples}
    assert samples["openledger_p2p_peers"] == 3 and samples["openledger_p2p_messages_total"] == 2
    assert samples["openledger_consensus_round"] == 1
