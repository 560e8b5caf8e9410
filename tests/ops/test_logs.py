"""Logs: levels per component, JSON lines, a line per block and per service action, and no key or
password in any line a real run writes at debug level."""
from __future__ import annotations

import io
import json
import logging
import subprocess

import pytest
from eth_account import Account

import genesis
from node import logs
from node.keystore import load_key
from tests.conftest import DEV_ACCOUNTS, sign
from tests.ops.conftest import wait_for
from tests.rpc.nodes import ROOT, NodeProcess, call, free_port, openledger

PASSWORD = "Tr0ub4dor&3-correct-horse"
WRONG_PASSWORD = "battery-staple-9f2c1e"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = root.level, list(root.handlers), {n: logging.getLogger(n).level for n in ("node.rpc", "node.chain")}
    yield
    if logs._handler is not None:
        root.removeHandler(logs._handler)
        logs._handler = None
    root.setLevel(saved[0])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def test_levels_per_component_and_json_lines(restore_logging):
    out = io.StringIO()
    logs.setup("warn", "node.rpc=debug,node.services=error", "json", stream=out)
    logging.getLogger("node.rpc.server").debug("rpc detail %d", 1)  # under node.rpc: debug is on
    logging.getLogger("node.chain").info("chain info")  # the root level (warn) hides it
    logging.getLogger("node.services").warning("services warning")  # error only for node.services
    logging.getLogger("node.chain").warning("chain warning", extra={"fields": {"number": 7}})
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["logger"], e["lvl"], e["msg"]) for e in lines] == [
        ("node.rpc.server", "debug", "rpc detail 1"), ("node.chain", "warn", "chain warning")]
    assert lines[1]["number"] == 7 and lines[1]["t"].endswith("Z")


@pytest.mark.parametrize("level, vmodule, message", [
    ("loud", "", "invalid log level 'loud'"),
    ("info", "node.rpc", "invalid --log.vmodule entry 'node.rpc'"),
    ("info", "node.rpc=verbose", "invalid log level 'verbose'"),
])
def test_bad_levels_are_named(level, vmodule, message, restore_logging):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        logs.setup(level, vmodule, "terminal", stream=io.StringIO())


def test_registered_secrets_are_redacted(restore_logging):
    out = io.StringIO()
    logs.setup("debug", "", "terminal", stream=out)
    logs.register_secret("s3cret-value-for-redaction")
    logging.getLogger("node.cli").error("oops: %s", "password was s3cret-value-for-redaction")
    assert "s3cret-value-for-redaction" not in out.getvalue() and "<redacted>" in out.getvalue()


def _run_flows(tmp_path) -> tuple[str, list[str]]:
    """A real validator's start: keys new, init, run at debug level with the services signing with
    an encrypted key, transactions sent, a wrong password tried. All output, and the secrets used."""
    pw, wrong = tmp_path / "password.txt", tmp_path / "wrong.txt"
    pw.write_text(PASSWORD + "\n")
    wrong.write_text(WRONG_PASSWORD + "\n")
    data = tmp_path / "data"
    out = []
    made = subprocess.run(openledger("keys", "new", "--datadir", str(data), "--password", str(pw), "--lightkdf"),
                          cwd=ROOT, capture_output=True, text=True, check=True)
    out.append(made.stdout + made.stderr)
    keyfile = made.stdout.split("Path of the secret key file: ")[1].strip()
    key = load_key(keyfile, PASSWORD)
    spec = tmp_path / "genesis.json"
    spec.write_text(genesis.to_json(genesis.devnet()))
    subprocess.run(openledger("init", str(spec), "--datadir", str(data)), cwd=ROOT, check=True, capture_output=True)
    port = free_port()
    node = NodeProcess(openledger("run", "--datadir", str(data), "--http.port", str(port), "--block-time", "0",
                                  "--http.api", "eth,net,web3,ol,txpool,debug", "--log.level", "trace",
                                  "--log.format", "json", "--metrics", "--metrics.port", str(free_port()),
                                  "--serve-inference", "--verify-inference", "--service-keyfile", keyfile,
                                  "--service-password", str(pw)), port, tmp_path / "node.log").wait_ready()
    try:
        signer = DEV_ACCOUNTS[6][1]
        hashes = [node.rpc("eth_sendRawTransaction", "0x" + sign(signer, n).hex()) for n in range(3)]
        call(node.url, "eth_sendRawTransaction", "0x" + sign(signer, 0).hex())  # refused: nonce too low
        call(node.url, "eth_sendRawTransaction", "0x" + sign(Account.create().key.hex(), 0).hex())  # no funds
        wait_for("the transfers mined", lambda: all(node.rpc("eth_getTransactionReceipt", h) for h in hashes))
        wait_for("the services started", lambda: "node.services" in node.log.read_text())
        bad = subprocess.run(openledger("services", "--rpc", node.url, "--datadir", str(tmp_path / "other"),
                                        "--serve-inference", "--keyfile", keyfile, "--password", str(wrong),
                                        "--log.level", "debug"), cwd=ROOT, capture_output=True, text=True)
        assert bad.returncode == 1 and "error:" in bad.stderr, bad.stderr
        out.append(bad.stdout + bad.stderr)
    finally:
        node.stop()
    out.append(node.log.read_text())
    return "\n".join(out), [PASSWORD, WRONG_PASSWORD, key.hex(), signer.removeprefix("0x")]


def test_no_secret_in_any_line(tmp_path):
    text, secrets = _run_flows(tmp_path)
    lines = text.splitlines()
    blocks = [json.loads(line) for line in lines if line.startswith("{") and '"node.chain"' in line]
    assert sum(b["txs"] for b in blocks) == 3 and {"number", "hash", "txs", "gas", "ms"} <= set(blocks[-1]), blocks
    assert any("started (serving, verifying)" in line for line in lines)
    for line in lines:
        for secret in secrets:
            assert secret.lower() not in line.lower(), f"a secret in a log line: {line[:200]}"
