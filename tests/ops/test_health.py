"""/health and /ready through a node's life: fresh (head = genesis), synced by its first block,
stalled when its head stops advancing; eth_syncing agrees at every step; peers once p2p reports."""
from __future__ import annotations

import socket

import genesis
from node.chain import Node
from node.health import Readiness, ReadinessConfig
from tests.conftest import DEV_ACCOUNTS, sign
from tests.ops.conftest import get, ready, start, wait_for

MAX_AGE = 4  # --ready.maxage: seconds the head may age


def test_fresh_then_ready_then_stalled(tmp_path):
    # block time 0: blocks only for transactions, so the head stops advancing when they stop
    node = start(tmp_path / "devnet", "devnet", "--block-time", "0", "--ready.maxage", str(MAX_AGE))
    try:
        for port in (node.port, node.metrics_port):  # the RPC port and the metrics port alike
            assert get(port, "/health") == (200, b'{"status":"ok"}')
            status, body = ready(port)  # fresh: the head is the genesis, stamped at the chain's creation
            assert status == 503 and body["status"] == "not ready", body
            assert body["checks"]["head_advancing"] == {"ok": False, "age_s": body["checks"]["head_advancing"]["age_s"],
                                                        "max_age_s": MAX_AGE}
            assert body["checks"]["synced"]["ok"]
        syncing = node.rpc("eth_syncing")
        assert syncing["currentBlock"] == "0x0" and int(syncing["highestBlock"], 16) > 0, syncing
        assert node.metrics()[("openledger_ready", ())] == 0

        address, key = DEV_ACCOUNTS[4]
        nonce = [0]

        def send_and_check() -> bool:  # a block now, then ask: the head is at most a moment old
            node.rpc("eth_sendRawTransaction", "0x" + sign(key, nonce[0]).hex())
            nonce[0] += 1
            wait_for("the block", lambda: int(node.rpc("eth_blockNumber"), 16) >= nonce[0])
            return ready(node.port)[0] == 200 and node.rpc("eth_syncing") is False

        wait_for("ready after a block", send_and_check)
        assert ready(node.metrics_port)[0] == 200
        # no more transactions: no more blocks; the head ages past --ready.maxage
        wait_for("not ready once the head stalls", lambda: ready(node.port)[0] == 503, timeout=MAX_AGE + 60)
        status, body = ready(node.port)
        assert not body["checks"]["head_advancing"]["ok"] and body["checks"]["head_advancing"]["age_s"] > MAX_AGE
        syncing = node.rpc("eth_syncing")
        assert syncing is not False and int(syncing["highestBlock"], 16) > int(syncing["currentBlock"], 16)
        assert syncing["currentBlock"] == node.rpc("eth_blockNumber")
    finally:
        node.stop()


def test_probe_paths_and_hostile_requests(devnet0):
    node = devnet0
    assert get(node.port, "/health?verbose=1") == (200, b'{"status":"ok"}')
    assert get(node.port, "/") == (200, b"")  # a bare GET: 200, as geth answers
    assert ready(node.port)[0] == 200  # no block clock and no --ready.maxage: the head's age is not checked
    assert get(node.port, "/ready", {"Host": "evil.example"})[0] == 403  # --http.vhosts applies to probes
    with socket.create_connection(("127.0.0.1", node.port)) as s:  # probes pipelined on a kept-alive connection
        s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\nGET /ready HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200") < 2:
            data += s.recv(4096)


def test_sync_and_peers_as_p2p_reports_them(tmp_path):
    """The hooks the p2p layer fills: behind the best peer is syncing; too few peers is not ready."""
    g = genesis.devnet()
    with Node.init(tmp_path / "n", g) as node:
        node.produce_block()
        readiness = Readiness(node, block_time=2.0, config=ReadinessConfig(min_peers=2))
        assert readiness.status().ready  # no p2p: own head is the best known
        readiness.best_peer_height = lambda: 5
        readiness.peer_count = lambda: 1
        status, body = readiness.probe(b"/ready")
        assert status == 503 and not body.startswith(b'{"status":"ready"')
        assert readiness.syncing() == {"startingBlock": "0x1", "currentBlock": "0x1", "highestBlock": "0x5"}
        readiness.best_peer_height = lambda: 1  # caught up
        assert readiness.syncing() is False
        assert not readiness.status().ready and not readiness.status().checks["peers"]["ok"]
        readiness.peer_count = lambda: 2
        assert readiness.status().ready
