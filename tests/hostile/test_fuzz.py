"""The hostile-input suite's seeded fuzz (#21 item 6): mutated requests for every method of every
namespace, over HTTP to a real devnet. The node must stay up, never answer -32603 (internal
error) for bad input, and keep its memory bounded. Fast: 1,000 requests over HTTP and 300 over
WebSocket (`make test`); slow: 12,000 over HTTP and 2,000 over WebSocket (`make test-all`, its
counts are in BENCHMARKS.md). A failure names the seed and the
index: `fuzz.bodies(seed, n, methods)[i]` is the body to replay."""
from __future__ import annotations

import http.client
import json
import os
import time

import pytest

from tests.hostile import fuzz
from tests.hostile.conftest import start_devnet
from tests.rpc.nodes import call

APIS = "eth,net,web3,debug,txpool,ots,erigon,ol,testing"


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    from tests.conftest import DEV_ACCOUNTS, sign

    node = start_devnet(tmp_path_factory.mktemp("fuzz") / "devnet", "--http.api", APIS, "--blobs.maxsize", "8000000")
    tx_hash = node.rpc("eth_sendRawTransaction", "0x" + sign(DEV_ACCOUNTS[1][1], 0).hex())
    deadline = time.monotonic() + 30
    while (receipt := node.rpc("eth_getTransactionReceipt", tx_hash)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    methods = _methods()
    yield node, methods, [tx_hash, receipt["blockHash"], receipt["blockNumber"], DEV_ACCOUNTS[1][0]]
    alive = node.proc.poll() is None
    node.stop()
    assert alive, "the node exited under fuzzing"


def _methods() -> list[str]:
    import importlib

    from node.rpc.namespaces import NAMESPACE_MODULES, known_namespaces

    for module in NAMESPACE_MODULES:
        importlib.import_module(module)
    assert set(APIS.split(",")) == set(known_namespaces()), "a namespace is missing from the fuzz"
    import genesis  # the method names only: build each namespace over a throw-away node
    import tempfile

    from node.chain import Node
    from node.rpc import RpcConfig
    from node.rpc.namespaces import RpcContext, build_methods

    with tempfile.TemporaryDirectory() as d, Node.init(d, genesis.devnet()) as node:
        return sorted(build_methods(RpcContext(node=node, config=RpcConfig(apis=tuple(APIS.split(",")))),
                                    tuple(APIS.split(","))))


def run_fuzz(node, methods, extra, seed: int, count: int) -> dict:
    """Send `count` fuzzed bodies; the tallies, and every failure with its index."""
    bodies = fuzz.bodies(seed, count, methods, extra)
    conn = None
    tally = {"requests": 0, "answers": 0, "errors": 0, "results": 0, "internal_errors": 0, "http_status": {},
             "dropped": 0, "failures": []}
    rss_start = rss_peak = rss_mib(node.proc.pid)
    started = time.monotonic()
    for i, body in enumerate(bodies):
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
        try:
            conn.request("POST", "/", body=body, headers={"Content-Type": "application/json", "Host": "localhost"})
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as e:
            tally["dropped"] += 1
            tally["failures"].append((i, f"connection failed: {e!r}"))
            conn.close()
            conn = None
            continue
        tally["requests"] += 1
        tally["http_status"][response.status] = tally["http_status"].get(response.status, 0) + 1
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = None
        if response.status >= 500:
            tally["failures"].append((i, f"HTTP {response.status}: {data[:200]!r}"))
            continue
        if response.status != 200 or not data:
            continue
        try:
            answer = json.loads(data)
        except ValueError:
            tally["failures"].append((i, f"not JSON: {data[:200]!r}"))
            continue
        for item in answer if isinstance(answer, list) else [answer]:
            tally["answers"] += 1
            if "error" in item:
                tally["errors"] += 1
                if item["error"].get("code") == -32603:
                    tally["internal_errors"] += 1
                    tally["failures"].append((i, f"-32603 for {body[:300]!r}"))
            else:
                tally["results"] += 1
        if i % 200 == 0:
            rss_peak = max(rss_peak, rss_mib(node.proc.pid))
        if node.proc.poll() is not None:
            tally["failures"].append((i, f"node exited with {node.proc.returncode}"))
            break
    if conn is not None:
        conn.close()
    tally["seconds"] = round(time.monotonic() - started, 1)
    tally["rss_start_mib"], tally["rss_peak_mib"] = round(rss_start), round(max(rss_peak, rss_mib(node.proc.pid)))
    tally["node_exits"] = int(node.proc.poll() is not None)
    return tally


def run_fuzz_ws(node, methods, extra, seed: int, count: int) -> dict:
    """The same over one WebSocket (bodies as binary messages, so damaged UTF-8 goes through
    too); after each body a sentinel request marks where its answers end."""
    from wsproto.events import BytesMessage, TextMessage

    from tests.hostile.conftest import RawWebSocket

    tally = {"requests": 0, "answers": 0, "internal_errors": 0, "reconnects": 0, "failures": []}
    ws = None
    for i, body in enumerate(fuzz.bodies(seed, count, methods, extra)):
        if ws is None:
            ws = RawWebSocket(node.port)
            assert ws.accepted
        sentinel = f'{{"jsonrpc":"2.0","id":"sentinel-{i}","method":"eth_chainId","params":[]}}'
        try:
            ws.sock.sendall(ws.ws.send(BytesMessage(data=body)) + ws.ws.send(TextMessage(data=sentinel)))
            tally["requests"] += 1
            while True:
                message = ws.recv()
                if f'"sentinel-{i}"' in message:
                    break
                for item in (lambda a: a if isinstance(a, list) else [a])(json.loads(message)):
                    tally["answers"] += 1
                    if item.get("error", {}).get("code") == -32603:
                        tally["internal_errors"] += 1
                        tally["failures"].append((i, f"-32603 for {body[:300]!r}"))
        except (ConnectionError, OSError, ValueError) as e:  # the server closed (a 1009 for a big message)
            tally["reconnects"] += 1
            if not isinstance(e, ConnectionError):
                tally["failures"].append((i, repr(e)))
            ws.close()
            ws = None
    if ws is not None:
        ws.close()
    return tally


def _check(node, tally) -> None:
    assert tally["node_exits"] == 0
    assert not tally["failures"], tally["failures"][:10]
    assert tally["internal_errors"] == 0
    assert "result" in call(node.url, "eth_blockNumber")
    assert tally["rss_peak_mib"] < tally["rss_start_mib"] + 400, tally  # bounded, whatever was asked


def test_fuzz_fast(target):
    node, methods, extra = target
    tally = run_fuzz(node, methods, extra, seed=1, count=1000)
    _check(node, tally)
    assert tally["results"] > 50 and tally["errors"] > 500  # both paths were exercised


def test_fuzz_websocket_fast(target):
    node, methods, extra = target
    tally = run_fuzz_ws(node, methods, extra, seed=11, count=300)
    assert not tally["failures"], tally["failures"][:10]
    assert tally["answers"] > 250 and node.proc.poll() is None


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_fuzz_ten_thousand(target):
    node, methods, extra = target
    tally = {}
    ws = run_fuzz_ws(node, methods, extra, seed=12, count=2000)
    assert not ws["failures"], ws["failures"][:10]
    for seed in (2, 3, 4):
        part = run_fuzz(node, methods, extra, seed=seed, count=4000)
        _check(node, part)
        for key in ("requests", "answers", "errors", "results", "internal_errors", "dropped", "seconds"):
            tally[key] = tally.get(key, 0) + part[key]
        tally["rss_start_mib"] = tally.get("rss_start_mib", part["rss_start_mib"])
        tally["rss_peak_mib"] = max(tally.get("rss_peak_mib", 0), part["rss_peak_mib"])
    tally["node_exits"] = int(node.proc.poll() is not None)
    tally["websocket"] = {k: v for k, v in ws.items() if k != "failures"}
    print("fuzz:", json.dumps(tally))
    out = os.environ.get("HOSTILE_REPORT")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps({"fuzz": tally}) + "\n")
    assert tally["requests"] >= 10_000
