"""Shared fixtures: dev accounts, transaction signing, and real `openledger devnet` processes.

`devnet` starts the node as a separate process (the console script, as a user would) on a free
port with a temp data dir, waits until it answers JSON-RPC, yields it, and stops it at the end.
"""
import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from eth_account import Account

import genesis
from tests.rpc.nodes import call as rpc, free_port  # one copy of the JSON-RPC test client

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEV_ACCOUNTS = genesis.dev_accounts()


@pytest.fixture(scope="session")
def dev_accounts() -> tuple[tuple[str, str], ...]:
    """(checksum address, private key) of the ten dev accounts."""
    return DEV_ACCOUNTS


def sign(key: str, nonce: int, chain_id: int = genesis.devnet().chain_id, **fields) -> bytes:
    """A signed raw transaction: an EIP-1559 transfer of 1 wei unless `fields` say otherwise."""
    tx = {"type": 2, "chainId": chain_id, "nonce": nonce, "to": "0x" + "11" * 20, "value": 1, "gas": 21_000,
          "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9}
    if "gasPrice" in fields:  # legacy / access-list transactions carry gasPrice instead
        tx.pop("maxFeePerGas"), tx.pop("maxPriorityFeePerGas")
        tx.pop("type")
    tx.update(fields)
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


@pytest.fixture(scope="session")
def sign_tx() -> Callable[..., bytes]:
    return sign


@dataclasses.dataclass
class DevnetProcess:
    datadir: pathlib.Path
    port: int
    block_time: float
    proc: subprocess.Popen | None = None
    log: pathlib.Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rpc(self, method: str, *params, timeout: float = 10):
        """The result of one JSON-RPC call (AssertionError on a JSON-RPC error)."""
        response = rpc(self.url, method, *params, timeout=timeout)
        assert "error" not in response, response
        return response["result"]

    def start(self, timeout: float = 60) -> "DevnetProcess":
        self.log = self.datadir.parent / f"{self.datadir.name}.log"
        cmd = [sys.executable, "-m", "node.cli", "devnet", "--datadir", str(self.datadir),
               "--http.port", str(self.port), "--block-time", str(self.block_time)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"devnet exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if "result" in rpc(self.url, "eth_chainId", timeout=2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"devnet did not answer within {timeout}s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind (crash tests)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def devnet_factory(tmp_path) -> Iterator[Callable[..., DevnetProcess]]:
    """Make (not yet started) devnet processes on fresh data dirs; all are stopped at the end."""
    made: list[DevnetProcess] = []

    def make(block_time: float = 1, name: str = "devnet") -> DevnetProcess:
        d = DevnetProcess(tmp_path / name, free_port(), block_time)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


@pytest.fixture
def devnet(devnet_factory) -> DevnetProcess:
    """A running `openledger devnet` (1 s blocks) with the ten dev accounts funded."""
    return devnet_factory().start()
