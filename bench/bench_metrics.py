"""The cost of `--metrics` on the hot paths, on and off in the same run (target: <= 3% slower).

1. eth_getBalance over one keep-alive connection: two `openledger devnet` processes, one with
   --metrics, one without, measured in alternating rounds (off, on, off, on, ...) so load from
   other users of the machine falls on both alike. Two figures per round: requests per second
   (wall clock) and the server's CPU time per request (the kernel's per-thread run time from
   /proc/PID/task/*/schedstat, in ns), which a machine shared by many users disturbs less; the
   figure compared is the median of the on/off ratios of adjacent rounds (each pair ran under the
   same outside load).
2. The same requests through the dispatcher alone, in this process (node.rpc.dispatch with and
   without node.metrics.RpcMetrics, alternating): what the metrics add to a request, isolated
   from HTTP and the kernel, in thread CPU µs.
3. Block import time: blocks of transfers built once by a producer Node, imported by two fresh
   follower Nodes per round (real LevelDB), one with node.metrics.NodeMetrics attached (its block
   listener is what --metrics adds to an import), alternating which goes first; per-block median
   of the importing thread's CPU time (time.thread_time) and of the wall clock.
No torch involved, so no thread pinning applies. Options: --quick (fewer rounds and requests).
"""
from __future__ import annotations

import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from eth_account import Account
from rich.console import Console
from rich.table import Table

import genesis

ROOT = pathlib.Path(__file__).resolve().parent.parent
console = Console()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(datadir: pathlib.Path, metrics: bool) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    cmd = [sys.executable, "-m", "node.cli", "devnet", "--datadir", str(datadir), "--http.port", str(port),
           "--block-time", "0", "--log.level", "warn"]
    if metrics:
        cmd += ["--metrics", "--metrics.port", str(_free_port())]
    log = open(datadir.with_suffix(".log"), "ab")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"the node exited: see {datadir.with_suffix('.log')}") from None
            time.sleep(0.2)
    raise RuntimeError("the node did not start")


def _request(address: str) -> bytes:
    body = ('{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["%s","latest"]}' % address).encode()
    return (b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def _cpu_ns(pid: int) -> int:
    """CPU time all threads of `pid` have run, in ns (Linux schedstat)."""
    total = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
            pass
    return total


def _rate(port: int, request: bytes, n: int, pid: int | None = None) -> tuple[float, float]:
    """(requests per second, server CPU µs per request), one request at a time over one keep-alive
    connection (a wallet's pattern)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cpu0 = _cpu_ns(pid) if pid else 0
        t0 = time.perf_counter()
        for _ in range(n):
            s.sendall(request)
            data = s.recv(65536)
            while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + int(
                    data.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0]):
                data += s.recv(65536)
        wall = time.perf_counter() - t0
        return n / wall, ((_cpu_ns(pid) - cpu0) / n / 1000 if pid else 0.0)


def bench_rpc(tmp: pathlib.Path, rounds: int, n: int) -> dict[bool, list[tuple[float, float]]]:
    off, off_port = _start(tmp / "off", metrics=False)
    on, on_port = _start(tmp / "on", metrics=True)
    request = _request(genesis.dev_accounts()[0][0])
    try:
        for port in (off_port, on_port):  # warm both (caches, the first requests' imports)
            _rate(port, request, n // 4)
        rates: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for i in range(rounds):
            for metrics in ((False, True) if i % 2 == 0 else (True, False)):
                proc, port = (on, on_port) if metrics else (off, off_port)
                rates[metrics].append(_rate(port, request, n, proc.pid))
        return rates
    finally:
        for proc in (off, on):
            proc.terminate()
            proc.wait(30)


def bench_dispatch(tmp: pathlib.Path, rounds: int, n: int) -> dict[bool, list[float]]:
    import trio

    from node.chain import Node
    from node.metrics import RpcMetrics
    from node.rpc import RpcConfig
    from node.rpc.dispatch import Dispatcher, method_table
    from node.rpc.namespaces import RpcContext, build_methods

    body = _request(genesis.dev_accounts()[0][0]).split(b"\r\n\r\n", 1)[1]
    out: dict[bool, list[float]] = {False: [], True: []}
    with Node.init(tmp / "dispatch", genesis.devnet()) as node:
        dispatcher = Dispatcher(method_table(build_methods(RpcContext(node=node, config=RpcConfig()), ("eth",))))
        metrics = RpcMetrics()

        async def run(count: int) -> float:
            t0 = time.thread_time()
            for _ in range(count):
                await dispatcher.handle_body(body)
            return (time.thread_time() - t0) / count * 1e6

        async def rounds_() -> None:
            await run(n)
            for i in range(rounds):
                for on in ((False, True) if i % 2 == 0 else (True, False)):
                    dispatcher.metrics = metrics if on else None
                    out[on].append(await run(n))

        trio.run(rounds_)
    return out


def _blocks(tmp: pathlib.Path, count: int, per_block: int) -> list:
    from node.chain import Node

    g = genesis.devnet()
    keys = [k for _, k in genesis.dev_accounts()]
    with Node.init(tmp / "producer", g) as producer:
        blocks, nonce, ts = [], 0, int(time.time())
        for b in range(count):
            for i in range(per_block):
                key = keys[i % len(keys)]
                tx = Account.sign_transaction({"type": 2, "chainId": g.chain_id, "nonce": nonce + i // len(keys),
                                               "to": "0x" + "22" * 20, "value": 1, "gas": 21_000,
                                               "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}, key)
                producer.mempool.add_raw(bytes(tx.raw_transaction))
            nonce += (per_block + len(keys) - 1) // len(keys)
            blocks.append(producer.produce_block(ts + b + 1))
    return blocks


def bench_import(tmp: pathlib.Path, rounds: int, blocks: list) -> dict[bool, list[tuple[float, float]]]:
    from node.chain import Node
    from node.metrics import NodeMetrics

    times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}  # (cpu s, wall s) per block
    for r in range(rounds):
        for metrics in ((False, True) if r % 2 == 0 else (True, False)):
            with Node.init(tmp / f"follower-{r}-{int(metrics)}", genesis.devnet()) as node:
                if metrics:
                    NodeMetrics(node)
                for block in blocks:
                    c0, t0 = time.thread_time(), time.perf_counter()
                    node.import_block(block)
                    times[metrics].append((time.thread_time() - c0, time.perf_counter() - t0))
    return times


def bench_listener(tmp: pathlib.Path, blocks: list, repeat: int) -> float:
    """Thread CPU seconds of what --metrics adds to one block's import (NodeMetrics' block
    listener), isolated: called `repeat` times over the imported blocks and their receipts."""
    from node.chain import Node
    from node.metrics import NodeMetrics

    with Node.init(tmp / "listener", genesis.devnet()) as node:
        for block in blocks:
            node.import_block(block)
        telemetry = NodeMetrics(node)
        pairs = [(block, node.receipts(block.header)) for block in blocks]
        c0 = time.thread_time()
        for _ in range(repeat):
            for block, receipts in pairs:
                telemetry._on_block(block, receipts)
        return (time.thread_time() - c0) / (repeat * len(pairs))


def _row(table: Table, name: str, off: float, on: float, fmt: str, higher_is_better: bool) -> None:
    ratio = on / off
    slower = (1 - ratio) if higher_is_better else (ratio - 1)
    table.add_row(name, format(off, fmt), format(on, fmt), f"{ratio:.3f}", f"{slower * 100:+.1f}%")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    rounds, n = (4, 1000) if quick else (24, 1500)
    import_rounds, count, per_block = (2, 4, 100) if quick else (6, 8, 200)
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        console.print(f"eth_getBalance: {rounds} alternating rounds of {n} requests per node ...")
        rpc = bench_rpc(tmp, rounds, n)
        console.print("eth_getBalance through the dispatcher alone, alternating ...")
        dispatch = bench_dispatch(tmp, rounds, 5000)
        console.print(f"block import: {import_rounds} rounds of {count} blocks x {per_block} transfers per follower ...")
        blocks = _blocks(tmp, count, per_block)
        imported = bench_import(tmp, import_rounds, blocks)
        listener = bench_listener(tmp, blocks, 50)
    table = Table(title=f"--metrics off vs on (same run; {os.cpu_count()} CPUs, machine shared)")
    for col in ("workload", "metrics off", "metrics on", "on / off", "slower by"):
        table.add_column(col, justify="right")

    def med(rows, i):
        return statistics.median(r[i] for r in rows)

    _row(table, "eth_getBalance server CPU µs/request (median round)", med(rpc[False], 1), med(rpc[True], 1),
         ".1f", higher_is_better=False)
    paired = statistics.median(on[1] / off[1] for off, on in zip(rpc[False], rpc[True]))
    table.add_row("  the same, median of adjacent rounds' on/off ratios", "", "", f"{paired:.3f}",
                  f"{(paired - 1) * 100:+.1f}%")
    _row(table, "eth_getBalance req/s, wall clock (median round)", med(rpc[False], 0), med(rpc[True], 0),
         ",.0f", higher_is_better=True)
    d_off, d_on = statistics.median(dispatch[False]), statistics.median(dispatch[True])
    _row(table, "eth_getBalance in the dispatcher alone, CPU µs/request", d_off, d_on, ".2f", higher_is_better=False)
    added = d_on - d_off
    table.add_row("  what metrics add, as a share of the server's CPU per request", f"{added:+.2f} µs", "",
                  "", f"{added / med(rpc[False], 1) * 100:+.1f}%")
    _row(table, f"block import CPU ms ({per_block} transfers, median block)", med(imported[False], 0) * 1000,
         med(imported[True], 0) * 1000, ".2f", higher_is_better=False)
    _row(table, f"block import wall ms ({per_block} transfers, median block)", med(imported[False], 1) * 1000,
         med(imported[True], 1) * 1000, ".2f", higher_is_better=False)
    table.add_row("  the metrics block listener alone, CPU ms per block", f"+{listener * 1000:.3f}", "", "",
                  f"{listener / med(imported[False], 0) * 100:+.2f}%")
    console.print(table)
    for metrics in (False, True):
        console.print(f"eth_getBalance rounds, metrics {'on ' if metrics else 'off'} (req/s, CPU µs/req): "
                      f"{[(round(r), round(c, 1)) for r, c in rpc[metrics]]}")


if __name__ == "__main__":
    main(sys.argv[1:])
