"""kill -9 under load: transfers from several senders while the node is killed (SIGKILL, no
clean-up) and restarted on its data dir, again and again; then every transaction whose hash the
node returned must end up in a block (#21 case 5: before the journal, 1,790 of 3,710 did not)."""
from __future__ import annotations

import json
import pathlib
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from eth_account import Account

import genesis
from tests.hostile.conftest import start_devnet

GWEI = 10**9
CHAIN_ID = genesis.devnet().chain_id


def _call(url: str, method: str, *params, timeout: float = 5):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


@dataclass
class Result:
    kills: int = 0
    accepted: dict[str, tuple[str, int]] = field(default_factory=dict)  # hash -> (sender, nonce)
    mined: int = 0
    lost: list[str] = field(default_factory=list)
    replaced: int = 0  # accepted, then the same nonce mined under another hash (none expected)
    restart_seconds: list[float] = field(default_factory=list)
    readmitted_lines: list[str] = field(default_factory=list)


def _sender(url: str, key: str, stop: threading.Event, out: Result, lock: threading.Lock, serial: list[int],
            pause: float) -> None:
    """Send transfers one after another; on any failure (the node is down, or died mid-request)
    wait and take the next nonce from the node again ("pending"), as a wallet does."""
    address = Account.from_key(key).address
    nonce = None
    while not stop.is_set():
        try:
            if nonce is None:
                nonce = int(_call(url, "eth_getTransactionCount", address, "pending")["result"], 16)
            with lock:
                serial[0] += 1
                value = serial[0]  # every transaction distinct, so a reused nonce shows as another hash
            raw = Account.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": "0x" + "22" * 20,
                                            "value": value, "gas": 21_000, "maxFeePerGas": 10 * GWEI,
                                            "maxPriorityFeePerGas": GWEI}, key).raw_transaction
            answer = _call(url, "eth_sendRawTransaction", "0x" + bytes(raw).hex())
            if "result" in answer:
                with lock:
                    out.accepted[answer["result"]] = (address, nonce)
                nonce += 1
            else:
                nonce = None
                time.sleep(0.05)
            time.sleep(pause)
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            nonce = None
            time.sleep(0.1)


def run(tmp: pathlib.Path, kills: int, *, senders: int = 4, seed: int = 21, up: tuple[float, float] = (0.5, 3.0),
        pause: float = 0.1, drain_timeout: float = 120.0) -> Result:
    """`kills` SIGKILLs at random moments (`up` seconds of service between them) while `senders`
    accounts each send a transfer every `pause` seconds (a steady load the node can mine)."""
    rng = random.Random(seed)
    node = start_devnet(tmp / "devnet", block_time=1)
    out, lock, stop, serial = Result(), threading.Lock(), threading.Event(), [0]
    keys = [k for _, k in genesis.dev_accounts()[1:1 + senders]]
    threads = [threading.Thread(target=_sender, args=(node.url, k, stop, out, lock, serial, pause), daemon=True)
               for k in keys]
    for t in threads:
        t.start()
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(*up))
            node.kill()
            out.kills += 1
            started = time.monotonic()
            node.start()
            out.restart_seconds.append(time.monotonic() - started)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    try:
        deadline = time.monotonic() + drain_timeout
        pending = dict(out.accepted)
        while pending and time.monotonic() < deadline:
            for tx_hash in list(pending):
                if node.rpc("eth_getTransactionReceipt", tx_hash, timeout=30) is not None:
                    del pending[tx_hash]
            if pending:
                time.sleep(1.0)
        for tx_hash, (sender, nonce) in pending.items():
            used = int(node.rpc("eth_getTransactionCount", sender, "latest"), 16)
            if used > nonce:
                out.replaced += 1  # the nonce went to another transaction (none is sent this way)
            out.lost.append(tx_hash)
        out.mined = len(out.accepted) - len(pending)
        out.readmitted_lines = [line for line in node.log.read_text(errors="replace").splitlines()
                                if line.startswith("txpool journal")]
    finally:
        node.stop()
    return out
