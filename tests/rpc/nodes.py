"""Nodes as real processes on free ports: ours (`openledger ...` or `node.app.run_node`) and anvil.

Our node runs in its own process (no GIL shared with the test client); anvil comes from npm
(`node_modules/@foundry-rs/anvil`) with our chain id, so the same signed transactions are valid
on both and their answers can be compared field by field.
"""
import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

import genesis

ROOT = pathlib.Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
CHAIN_ID = genesis.devnet().chain_id

RUN_NODE = """
import sys
from node.app import NodeConfig, run_node
from node.rpc import RpcConfig
import genesis
chain = genesis.devnet(chain_id=int(sys.argv[5])) if len(sys.argv) > 5 else genesis.devnet()
run_node(NodeConfig(sys.argv[1], chain, float(sys.argv[3]),
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


def openledger(*args: str) -> list[str]:
    """`openledger ARGS` as a user runs it: the installed console script (`python -m node.cli` without one)."""
    script = pathlib.Path(sys.executable).with_name("openledger")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "node.cli", *args]


class NodeProcess:
    """A node process answering JSON-RPC on 127.0.0.1:`port`, launched by the constructor.

    Its output is appended to `log`, whose tail every startup failure shows; `start` runs the same
    command again after `stop` or `kill` (a restart on the same data dir).
    """

    def __init__(self, cmd: list[str], port: int, log: pathlib.Path) -> None:
        self.cmd, self.port, self.log = cmd, port, log
        self.url = f"http://127.0.0.1:{port}"
        self._conn: http.client.HTTPConnection | None = None
        self._launch()

    def _launch(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def start(self, timeout: float = 180) -> "NodeProcess":
        """Launch it again if it was stopped or killed, then wait until it answers."""
        if self.proc.poll() is not None:
            self._launch()
        return self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 180) -> "NodeProcess":
        """Wait until it answers eth_chainId; RuntimeError with the log's tail if it exits or stays silent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the node for {self.url} exited with {self.proc.returncode}: {self._log_tail()}")
            try:
                if "result" in call(self.url, "eth_chainId", timeout=2):
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the node for {self.url} did not answer within {timeout}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def rpc(self, method: str, *params, timeout: float = 10) -> Any:
        """The result of one JSON-RPC call (AssertionError on a JSON-RPC error)."""
        response = call(self.url, method, *params, timeout=timeout)
        assert "error" not in response, response
        return response["result"]

    def post(self, body: str) -> Any:
        """POST a raw request body over one kept-alive connection (as fixture replays need: any
        text, batches); the parsed answer, or the HTTP status and body when it is not JSON."""
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            self._conn.request("POST", "/", body=body.encode(), headers={"Content-Type": "application/json"})
            response = self._conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self._conn.close()
            self._conn = None
            raise
        try:
            return json.loads(data)
        except json.JSONDecodeError:
            return {"http_status": response.status, "body": data[:200].decode(errors="replace")}

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind (crash tests)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int | None:
        """SIGTERM (a clean shutdown), SIGKILL if it takes over 20 s; the exit status."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


def devnet_process(datadir: pathlib.Path, *flags: str) -> NodeProcess:
    """`openledger devnet` on `datadir` and a free port, logging to `<datadir>.log` (launched, not yet waited for)."""
    port = free_port()
    cmd = openledger("devnet", "--datadir", str(datadir), "--http.port", str(port), *flags)
    return NodeProcess(cmd, port, datadir.with_name(datadir.name + ".log"))


def start_ours(tmp: pathlib.Path, block_time: float = 0, logs_block_range: int = 10_000,
               chain_id: int = CHAIN_ID) -> NodeProcess:
    port = free_port()
    datadir = tmp / f"node-{port}"
    cmd = [sys.executable, "-c", RUN_NODE, str(datadir), str(port), str(block_time), str(logs_block_range),
           str(chain_id)]
    return NodeProcess(cmd, port, tmp / f"node-{port}.log").wait_ready()


def start_anvil(tmp: pathlib.Path, *args: str) -> NodeProcess:
    port = free_port()
    cmd = [str(ANVIL), "--port", str(port), "--chain-id", str(CHAIN_ID), "--silent", *args]
    return NodeProcess(cmd, port, tmp / f"anvil-{port}.log").wait_ready()
