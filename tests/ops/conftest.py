"""Real `openledger` processes with the operator's flags, and readers of what they expose:
/metrics parsed by prometheus_client's own parser, /health and /ready over plain sockets."""
from __future__ import annotations

import http.client
import json
import pathlib
import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from tests.rpc.nodes import NodeProcess, free_port, openledger


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
