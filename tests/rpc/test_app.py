"""node/app.py as a process: the block producer's two modes, clean shutdown on SIGINT/SIGTERM,
and a clear failure when the port is taken (the data dir is released either way)."""
import signal
import socket
import sys
import time

from tests.rpc import scenario
from tests.rpc.nodes import RUN_NODE, NodeProcess, call, free_port, start_ours


def wait_for(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_timed_blocks_and_sigint(tmp_path):
    node = start_ours(tmp_path, block_time=1)
    try:
        wait_for(lambda: int(call(node.url, "eth_blockNumber")["result"], 16) >= 2)  # empty blocks too
        raw = scenario.sign(scenario.KEYS[0], type=2, nonce=0, to=scenario.SINK, value=1, gas=21_000,
                            maxFeePerGas=3 * scenario.GWEI, maxPriorityFeePerGas=scenario.GWEI)
        tx_hash = call(node.url, "eth_sendRawTransaction", "0x" + raw.hex())["result"]
        receipt = wait_for(lambda: call(node.url, "eth_getTransactionReceipt", tx_hash)["result"], timeout=10)
        block = call(node.url, "eth_getBlockByNumber", receipt["blockNumber"], False)["result"]
        parent = call(node.url, "eth_getBlockByHash", block["parentHash"], False)["result"]
        assert int(block["timestamp"], 16) > int(parent["timestamp"], 16)
    finally:
        node.proc.send_signal(signal.SIGINT)
        assert node.proc.wait(timeout=30) == 0
    assert "shutting down" in node.log.read_text()


def test_port_in_use_fails_cleanly_and_releases_the_data_dir(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-c", RUN_NODE, str(tmp_path / "d"), str(port), "0", "100"]
        proc = NodeProcess(cmd, port, tmp_path / "log")
        assert proc.proc.wait(timeout=60) != 0
    assert f"cannot listen on 127.0.0.1:{port}" in (tmp_path / "log").read_text()
    port = free_port()  # the same data dir opens again: the LevelDB lock was released
    node = NodeProcess([sys.executable, "-c", RUN_NODE, str(tmp_path / "d"), str(port), "0", "100"],
                       port, tmp_path / "log2").wait_ready()
    assert node.stop() == 0


def test_evm_timeout_answers_in_time(tmp_path):
    port = free_port()
    code = ("import sys, genesis\nfrom node.app import NodeConfig, run_node\nfrom node.rpc import RpcConfig\n"
            "run_node(NodeConfig(sys.argv[1], genesis.devnet(), 0, RpcConfig(port=int(sys.argv[2]), evm_timeout=0.5)))")
    node = NodeProcess([sys.executable, "-c", code, str(tmp_path / "d"), str(port)], port,
                       tmp_path / "log").wait_ready()
    try:
        started = time.monotonic()
        # initcode that loops until its 50M gas run out (JUMPDEST PUSH1 0 JUMP): many seconds of py-evm
        error = call(node.url, "eth_call", {"data": "0x5b600056", "gas": hex(50_000_000)})["error"]
        assert error == {"code": -32000, "message": "execution aborted (timeout = 0.5s)"}
        assert time.monotonic() - started < 10
        assert call(node.url, "eth_blockNumber")["result"] == "0x0"  # the loop keeps serving meanwhile
    finally:
        assert node.stop() == 0
