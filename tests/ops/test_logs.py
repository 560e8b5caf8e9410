"""Logs: levels per component, JSON lines, a line per block and per service action, and no key or
password in any line a real run writes at debug level."""
from __future__ import annotations

import io
import json
import logging

import pytest

from node import logs


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


def test_no_secret_in_any_line(validator_run):
    text, secrets = validator_run["output"], validator_run["secrets"]
    lines = text.splitlines()
    blocks = [json.loads(line) for line in lines if line.startswith("{") and '"node.chain"' in line]
    assert sum(b["txs"] for b in blocks) == 3 and {"number", "hash", "txs", "gas", "ms"} <= set(blocks[-1]), blocks
    assert any("started (serving, verifying)" in line for line in lines)
    code, err = validator_run["seen"]["wrong_password"]
    assert code == 1 and "error:" in err, err
    for line in lines:
        for secret in secrets:
            assert secret.lower() not in line.lower(), f"a secret in a log line: {line[:200]}"
