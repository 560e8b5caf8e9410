"""Latency of a well-behaved client while others flood the node (#21: p99 eth_blockNumber <= 50 ms)."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time

from tests.rpc.nodes import ROOT

BODY = b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def connect(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/", BODY, {"Content-Type": "application/json", "Host": "localhost"})
    conn.getresponse().read()
    return conn


def victim(port: int, seconds: float, interval: float = 0.01, conn: http.client.HTTPConnection | None = None) -> dict:
    """eth_blockNumber on one keep-alive connection (`conn`, opened before the flood, or a new
    one) every `interval`; latency in ms. A request that fails (connection refused, reset)
    counts as a failure and a 1 s latency, and the next one opens a new connection."""
    latencies, failures = [], 0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/", BODY, {"Content-Type": "application/json", "Host": "localhost"})
            answer = conn.getresponse().read()
            assert b'"result"' in answer
            latencies.append((time.perf_counter() - started) * 1000)
        except (OSError, http.client.HTTPException, AssertionError):
            failures += 1
            latencies.append(1000.0)
            if conn is not None:
                conn.close()
            conn = None
        time.sleep(interval)
    if conn is not None:
        conn.close()
    return {"requests": len(latencies), "failures": failures, "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "max_ms": round(max(latencies), 1)}


def under_attack(port: int, kind: str, seconds: float, *extra: str, warmup: float = 1.5) -> dict:
    """Run one attacker process for `seconds` and measure the victim, connected before it
    started, in its middle part."""
    conn = connect(port)
    attacker = subprocess.Popen([sys.executable, "-m", "tests.hostile.attackers", kind, str(port), str(seconds), *extra],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(warmup)
        measured = victim(port, max(1.0, seconds - warmup - 0.5), conn=conn)
    finally:
        out, _ = attacker.communicate(timeout=seconds + 120)
    measured["attack"] = kind
    try:
        measured["attacker"] = json.loads(out.strip().splitlines()[-1])["sent"]
    except (ValueError, IndexError, KeyError):
        measured["attacker"] = out.strip()[-300:]
    return measured
