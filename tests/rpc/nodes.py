"""Our node and anvil as real processes on free ports, for the RPC tests and their fixtures.

Our node runs `node.app.run_node` in its own process (no GIL shared with the test client);
anvil comes from npm (`node_modules/@foundry-rs/anvil`) with our chain id, so the same signed
transactions are valid on both and their answers can be compared field by field.
"""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import genesis

ROOT = pathlib.Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
CHAIN_ID = genesis.devnet().chain_id

RUN_NODE = """
import sys
from node.app import NodeConfig, run_node
from node.rpc import RpcConfig
import genesis
run_node(NodeConfig(sys.argv[1], genesis.devnet(), float(sys.argv[3]),
                    RpcConfig(port=int(sys.argv[2]), logs_block_range=int(sys.argv[4]))))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, method: str, *params, timeout: float = 30) -> dict:
    """One JSON-RPC request over a fresh HTTP connection; the whole response object."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


class Process:
    """A node process that answers JSON-RPC at `url`; stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, cmd: list[str], port: int, log: pathlib.Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_ready(self, timeout: float = 180) -> "Process":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                if "result" in call(self.url, "eth_chainId", timeout=2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"no answer within {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_ours(tmp: pathlib.Path, block_time: float = 0, logs_block_range: int = 10_000) -> Process:
    port = free_port()
    datadir = tmp / f"node-{port}"
    cmd = [sys.executable, "-c", RUN_NODE, str(datadir), str(port), str(block_time), str(logs_block_range)]
    return Process(cmd, port, tmp / f"node-{port}.log").wait_ready()


def start_anvil(tmp: pathlib.Path, *args: str) -> Process:
    port = free_port()
    cmd = [str(ANVIL), "--port", str(port), "--chain-id", str(CHAIN_ID), "--silent", *args]
    return Process(cmd, port, tmp / f"anvil-{port}.log").wait_ready()
