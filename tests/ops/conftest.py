"""Real `openledger` processes with the operator's flags, and readers of what they expose:
/metrics parsed by prometheus_client's own parser, /health and /ready over plain sockets."""
from __future__ import annotations

import http.client
import json
import pathlib
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.rpc.nodes import ROOT, NodeProcess, call, free_port, openledger

PASSWORD = "Tr0ub4dor&3-correct-horse"
WRONG_PASSWORD = "battery-staple-9f2c1e"


class OpsNode(NodeProcess):
    """A node process with `--metrics` on a port of its own."""

    def __init__(self, cmd: list[str], port: int, log: pathlib.Path, metrics_port: int | None) -> None:
        super().__init__(cmd, port, log)
        self.metrics_port = metrics_port

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """Every sample of /metrics: (sample name, sorted label items) -> value."""
        status, body = get(self.metrics_port, "/metrics")
        assert status == 200, body
        out = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out


def start(tmp: pathlib.Path, command: str = "devnet", *flags: str, metrics: bool = True) -> OpsNode:
    """`openledger devnet` (or `run` on an initialised data dir) with --metrics on free ports."""
    port, metrics_port = free_port(), free_port() if metrics else None
    extra = ["--metrics", "--metrics.port", str(metrics_port)] if metrics else []
    cmd = openledger(command, "--datadir", str(tmp), "--http.port", str(port), *extra, *flags)
    return OpsNode(cmd, port, tmp.with_name(tmp.name + ".log"), metrics_port).wait_ready()


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    """GET `path` on 127.0.0.1:`port`: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def ready(port: int) -> tuple[int, dict]:
    status, body = get(port, "/ready")
    return status, json.loads(body)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    """Wait for a state (not a time): AssertionError naming it if it never comes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def devnet0(tmp_path_factory) -> Iterator[OpsNode]:
    """One `openledger devnet --block-time 0 --metrics` shared by the tests that only read it or
    send it traffic they account for."""
    n = start(tmp_path_factory.mktemp("ops") / "devnet", "devnet", "--block-time", "0")
    yield n
    n.stop()


@pytest.fixture(scope="session")
def validator_run(tmp_path_factory) -> dict:
    """A validator's start as an operator does it, once for the tests that read it: `keys new`,
    `init`, then `run --config node.toml --http.port P` (the file sets everything else: its own
    http.port, the APIs, metrics, trace-level JSON logs, the services signing with the encrypted
    key), transactions sent, and a wrong password tried on the services. Returns what was seen
    while it ran, all the output, and the secrets used."""
    from eth_account import Account

    import genesis
    from node.keystore import load_key
    from tests.conftest import DEV_ACCOUNTS, sign

    tmp = tmp_path_factory.mktemp("validator")
    pw, wrong = tmp / "password.txt", tmp / "wrong.txt"
    pw.write_text(PASSWORD + "\n")
    wrong.write_text(WRONG_PASSWORD + "\n")
    data = tmp / "data"
    out = []
    made = subprocess.run(openledger("keys", "new", "--datadir", str(data), "--password", str(pw), "--lightkdf"),
                          cwd=ROOT, capture_output=True, text=True, check=True)
    out.append(made.stdout + made.stderr)
    keyfile = made.stdout.split("Path of the secret key file: ")[1].strip()
    spec = tmp / "genesis.json"
    spec.write_text(genesis.to_json(genesis.devnet()))
    subprocess.run(openledger("init", str(spec), "--datadir", str(data)), cwd=ROOT, check=True, capture_output=True)
    file_port, flag_port, metrics_port = free_port(), free_port(), free_port()
    config = tmp / "node.toml"
    config.write_text(f"""datadir = "{data}"
block-time = 0
serve-inference = true
verify-inference = true
service-keyfile = ["{keyfile}"]
service-password = "{pw}"

[http]
port = {file_port}
api = ["eth", "net", "web3", "ol", "txpool", "debug"]

[metrics]
enabled = true
port = {metrics_port}

[log]
level = "trace"
format = "json"
""")
    node = NodeProcess(openledger("run", "--config", str(config), "--http.port", str(flag_port)), flag_port,
                       tmp / "node.log").wait_ready()
    seen: dict = {}
    try:
        signer = DEV_ACCOUNTS[6][1]
        hashes = [node.rpc("eth_sendRawTransaction", "0x" + sign(signer, n).hex()) for n in range(3)]
        call(node.url, "eth_sendRawTransaction", "0x" + sign(signer, 0).hex())  # refused: nonce too low
        call(node.url, "eth_sendRawTransaction", "0x" + sign(Account.create().key.hex(), 0).hex())  # no funds
        wait_for("the transfers mined", lambda: all(node.rpc("eth_getTransactionReceipt", h) for h in hashes))
        wait_for("the services started", lambda: "node.services" in node.log.read_text())
        seen["txpool_status"] = call(node.url, "txpool_status")
        seen["metrics_health"] = get(metrics_port, "/health")[0]
        seen["metrics_ready"] = ready(metrics_port)[0]
        try:
            call(f"http://127.0.0.1:{file_port}", "eth_chainId", timeout=2)
            seen["file_port_answers"] = True
        except OSError:
            seen["file_port_answers"] = False
        bad = subprocess.run(openledger("services", "--rpc", node.url, "--datadir", str(tmp / "other"),
                                        "--serve-inference", "--keyfile", keyfile, "--password", str(wrong),
                                        "--log.level", "debug"), cwd=ROOT, capture_output=True, text=True)
        seen["wrong_password"] = (bad.returncode, bad.stderr)
        out.append(bad.stdout + bad.stderr)
    finally:
        node.stop()
    out.append(node.log.read_text())
    key = load_key(keyfile, PASSWORD)
    return {"seen": seen, "output": "\n".join(out),
            "secrets": [PASSWORD, WRONG_PASSWORD, key.hex(), signer.removeprefix("0x")]}
