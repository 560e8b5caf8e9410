"""Native modules: gas and execution time per operation, and contributions per second through
JSON-RPC into blocks, against the same Datanet registry written in Solidity
(contracts/DatanetRegistry.sol, compiled with solc-js --optimize) on anvil, in the same run.

1. Gas per operation: each native function once on our node, and the Solidity registry's
   createDatanet / contribute (first and later of a day) / curate on anvil; ratio native/Solidity.
2. Execution time per operation: each native transaction applied in-process on our VM
   (vm.build_chain_class, in memory): a block of K copies built with py-evm's mine_all, minus a
   block of K plain transfers, divided by K; blocks of each kind are built REPEATS times,
   alternating, and the fastest of each is kept (the machine is shared: the minimum is the figure
   least disturbed by other processes).
3. Contributions/s: N pre-signed contribute transactions (8 senders, gas limit = each node's
   eth_estimateGas + 20%) submitted over one keep-alive connection; time from the first
   submission until all are mined, 1 s blocks on both nodes.
No torch involved (no thread pinning applies). Options: --n N (default 400), --quick (N=160, K=10).
"""
from __future__ import annotations

import http.client
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import eth_abi
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from rich.console import Console
from rich.table import Table

import genesis
import vm
from bench.bench_rpc import ANVIL, ROOT, Server, _free_port
from node.sdk import ADDRESSES, encode_call

SOLCJS = ROOT / "node_modules" / ".bin" / "solcjs"
OPEN = 10**18
SENDERS = range(1, 9)
REPEATS = 3
console = Console()
H = lambda n: n.to_bytes(32, "big")  # noqa: E731


class Rpc:
    """One keep-alive JSON-RPC connection (as a wallet or an importer would use)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.id = 0

    def __call__(self, method: str, *params):
        self.id += 1
        self.conn.request("POST", "/", json.dumps({"jsonrpc": "2.0", "id": self.id, "method": method,
                                                   "params": list(params)}), {"Content-Type": "application/json"})
        answer = json.loads(self.conn.getresponse().read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]


class Sender:
    def __init__(self, rpc: Rpc, chain_id: int, index: int) -> None:
        self.rpc, self.chain_id = rpc, chain_id
        self.address, self.key = genesis.dev_accounts()[index]
        self.nonce = int(rpc("eth_getTransactionCount", self.address, "pending"), 16)

    def raw(self, to: str | None, data: bytes, value: int = 0, gas: int = 400_000) -> str:
        tx = {"type": 2, "chainId": self.chain_id, "nonce": self.nonce, "value": value, "gas": gas if to else 3_000_000,
              "maxFeePerGas": 50 * 10**9, "maxPriorityFeePerGas": 10**9, "data": data}
        if to is not None:
            tx["to"] = to
        self.nonce += 1
        return "0x" + bytes(Account.sign_transaction(tx, self.key).raw_transaction).hex()

    def send(self, to: str, data: bytes, value: int = 0) -> dict:
        tx_hash = self.rpc("eth_sendRawTransaction", self.raw(to, data, value))
        while (receipt := self.rpc("eth_getTransactionReceipt", tx_hash)) is None:
            time.sleep(0.05)
        if receipt["status"] != "0x1":
            raise RuntimeError(f"transaction to {to} reverted")
        return receipt


def _gas(receipt: dict) -> int:
    return int(receipt["gasUsed"], 16)


def compile_registry(out: pathlib.Path) -> tuple[bytes, list]:
    subprocess.run([str(SOLCJS), "--bin", "--abi", "--optimize", "-o", str(out), "contracts/DatanetRegistry.sol"],
                   cwd=ROOT, check=True, capture_output=True)
    stem = out / "contracts_DatanetRegistry_sol_DatanetRegistry"
    return bytes.fromhex(stem.with_suffix(".bin").read_text()), json.loads(stem.with_suffix(".abi").read_text())


def _registry_call(abi: list, fn: str, *args) -> bytes:
    entry = next(e for e in abi if e.get("name") == fn)
    types = [i["type"] for i in entry["inputs"]]
    return keccak(text=f"{fn}({','.join(types)})")[:4] + eth_abi.encode(types, list(args))


CREATE_ARGS = ("bench", H(100), 0, "CC-BY-4.0", 0, 0, 2**62, [])


def native_ops(rpc: Rpc, chain_id: int) -> dict[str, int]:
    """Every native function once, in flow order; returns gas per operation."""
    s = {i: Sender(rpc, chain_id, i) for i in range(8)}
    D, M, S, J, A = (ADDRESSES[n] for n in ("Datanets", "Models", "Staking", "InferenceJobs", "Attribution"))
    steps = [
        ("createDatanet", 0, D, encode_call("Datanets", "createDatanet", *CREATE_ARGS[:-1], [s[1].address]), 0),
        ("contribute (first of the day)", 2, D, encode_call("Datanets", "contribute", 1, H(1), 1000), 0),
        ("contribute", 2, D, encode_call("Datanets", "contribute", 1, H(2), 1000), 0),
        ("curate (accept)", 1, D, encode_call("Datanets", "curate", 1, H(1), True, 90), 0),
        ("curate (accept) 2", 1, D, encode_call("Datanets", "curate", 1, H(2), True, 90), 0),
        ("publishVersion (2 rows)", 0, D, encode_call("Datanets", "publishVersion", 1), 0),
        ("registerBaseModel", 0, M, encode_call("Models", "registerBaseModel", "tiny-gpt2", H(200)), 0),
        ("commitTrainingRun", 3, M, encode_call("Models", "commitTrainingRun", 1, 1, 1, H(201), 7, H(202), H(203), H(204)), 0),
        ("registerAdapter", 3, M, encode_call("Models", "registerAdapter", 1, OPEN), 0),
        ("registerValidator", 4, S, encode_call("Staking", "registerValidator", 50_000, 1), 200 * OPEN),
        ("registerValidator 2", 5, S, encode_call("Staking", "registerValidator", 50_000, 1), 200 * OPEN),
        ("registerValidator 3", 6, S, encode_call("Staking", "registerValidator", 50_000, 1), 200 * OPEN),
        ("delegate", 7, S, encode_call("Staking", "delegate", s[4].address), 10 * OPEN),
        ("requestInference", 7, J, encode_call("InferenceJobs", "requestInference", 1, H(301), 2 * OPEN), 2 * OPEN),
        ("submitResult", 4, J, encode_call("InferenceJobs", "submitResult", 1, H(302), H(303)), 0),
        ("attest", 5, J, encode_call("InferenceJobs", "attest", 1, True), 0),
        ("attest (reaches quorum)", 6, J, encode_call("InferenceJobs", "attest", 1, True), 0),
        ("postProof (2 entries)", 4, A, encode_call("Attribution", "postProof", 1, H(302), H(400), 1, [H(1), H(2)],
                                                    [600_000, 400_000]), 0),
    ]
    out = {}
    for name, who, to, data, value in steps:
        out[name] = _gas(s[who].send(to, data, value))
    return out


def solidity_ops(rpc: Rpc, chain_id: int, registry: str, abi: list) -> dict[str, int]:
    s = {i: Sender(rpc, chain_id, i) for i in range(3)}
    return {
        "createDatanet": _gas(s[0].send(registry, _registry_call(abi, "createDatanet", *CREATE_ARGS[:-1], [s[1].address]))),
        "contribute (first of the day)": _gas(s[2].send(registry, _registry_call(abi, "contribute", 1, H(1), 1000))),
        "contribute": _gas(s[2].send(registry, _registry_call(abi, "contribute", 1, H(2), 1000))),
        "curate (accept)": _gas(s[1].send(registry, _registry_call(abi, "curate", 1, H(1), True, 90))),
    }


def throughput(rpc: Rpc, chain_id: int, to: str, calldata, n: int) -> tuple[float, float, int]:
    """(submitted/s, mined/s, gas limit per tx) for n contributions from 8 senders, pre-signed.

    Each tx's gas limit is what a wallet would set: the node's eth_estimateGas for the costliest
    case (a sender's first contribution of the day) plus 20%. A fixed generous limit would
    understate ours: our block builder packs transactions by their declared gas limit (node/chain
    + node/mempool `select`), anvil by the gas they use."""
    senders = [Sender(rpc, chain_id, i) for i in SENDERS]
    estimate = int(rpc("eth_estimateGas", {"from": senders[0].address, "to": to, "data": "0x" + calldata(0).hex()}), 16)
    gas = estimate * 6 // 5
    raws = [senders[i % len(senders)].raw(to, calldata(i), gas=gas) for i in range(n)]
    t0 = time.perf_counter()
    for raw in raws:
        rpc("eth_sendRawTransaction", raw)
    t_submit = time.perf_counter() - t0
    while any(int(rpc("eth_getTransactionCount", s.address, "latest"), 16) < s.nonce for s in senders):
        time.sleep(0.02)
    return n / t_submit, n / (time.perf_counter() - t0), gas


def exec_times(k: int) -> dict[str, float]:
    """Microseconds per native transaction applied in-process (K per block, minus K transfers)."""
    g = genesis.devnet()
    chain = vm.build_chain_class(g).from_genesis(AtomicDB(), vm.genesis_params(g), vm.genesis_state(g))
    keys = [k_ for _, k_ in genesis.dev_accounts()]
    nonces = [0] * len(keys)
    now = [int(time.time())]

    def tx(who: int, module: str | None, data: bytes = b"", value: int = 0, to: str | None = None):
        target = ADDRESSES[module] if module else to
        signed = Account.sign_transaction({"type": 2, "chainId": g.chain_id, "nonce": nonces[who], "to": target,
                                           "value": value, "gas": 1_000_000, "maxFeePerGas": 50 * 10**9,
                                           "maxPriorityFeePerGas": 10**9, "data": data}, keys[who])
        nonces[who] += 1
        return PragueTransactionBuilder.decode(bytes(signed.raw_transaction))

    def block(txs) -> float:
        now[0] += 12
        chain.set_header_timestamp(now[0])
        t0 = time.perf_counter()
        _, receipts, computations = chain.mine_all(txs)
        elapsed = time.perf_counter() - t0
        assert all(c.is_success for c in computations), [c.error for c in computations if c.is_error]
        return elapsed

    def transfers() -> float:
        return block([tx(9, None, to=to_checksum_address(b"\x11" * 20), value=1) for _ in range(k)])

    transfers()  # warm caches
    base = transfers()
    results = {}
    block([tx(0, "Datanets", encode_call("Datanets", "createDatanet", *CREATE_ARGS))])
    plans = [
        ("createDatanet", lambda i: tx(0, "Datanets", encode_call("Datanets", "createDatanet", *CREATE_ARGS))),
        ("contribute", lambda i: tx(2, "Datanets", encode_call("Datanets", "contribute", 1, H(1000 + i), 100))),
        ("curate (accept)", lambda i: tx(0, "Datanets", encode_call("Datanets", "curate", 1, H(1000 + i), True, 80))),
        ("registerBaseModel", lambda i: tx(3, "Models", encode_call("Models", "registerBaseModel", "m", H(5)))),
        ("registerValidator", lambda i: tx(i, "Staking", encode_call("Staking", "registerValidator", 0, 1),
                                           value=200 * OPEN) if i < 9 else None),  # one per account
    ]
    for r in range(REPEATS):
        for name, make in plans:
            txs = [t for t in (make(r * k + i) for i in range(k)) if t is not None]
            if txs:
                results[name] = min(results.get(name, float("inf")), block(txs) / len(txs))
            base = min(base, transfers())
    results = {name: max(0.0, (per_tx - base / k) * 1e6) for name, per_tx in results.items()}
    results["(transfer, for scale)"] = base / k * 1e6
    return results


def main(argv: list[str]) -> None:
    n = 160 if "--quick" in argv else 400
    k = 10 if "--quick" in argv else 40
    if "--n" in argv:
        n = int(argv[argv.index("--n") + 1])
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-native-"))
    servers: list[Server] = []
    try:
        (tmp / "genesis.json").write_text(genesis.to_json(genesis.devnet()))
        subprocess.run([sys.executable, "-m", "node.cli", "init", str(tmp / "genesis.json"), "--datadir", str(tmp / "ours")],
                       cwd=ROOT, check=True, capture_output=True)
        ours_port, anvil_port = _free_port(), _free_port()
        servers.append(Server("ours", [sys.executable, "-m", "node.cli", "run", "--datadir", str(tmp / "ours"),
                                       "--http.port", str(ours_port), "--block-time", "1"], ours_port, tmp / "ours.log"))
        servers.append(Server("anvil", [str(ANVIL), "--port", str(anvil_port), "--block-time", "1", "--silent"],
                              anvil_port, tmp / "anvil.log"))
        ours, anvil = Rpc(ours_port), Rpc(anvil_port)
        ours_chain, anvil_chain = int(ours("eth_chainId"), 16), int(anvil("eth_chainId"), 16)
        code, abi = compile_registry(tmp / "solc")
        deployer = Sender(anvil, anvil_chain, 9)
        receipt = deployer.send(None, code)
        registry = to_checksum_address(receipt["contractAddress"])

        console.print("[bold]gas per operation[/bold] (1 s blocks on both)")
        native_gas = native_ops(ours, ours_chain)
        sol_gas = solidity_ops(anvil, anvil_chain, registry, abi)
        t = Table("operation", "native gas", "Solidity gas (anvil)", "native / Solidity")
        for op, gas in native_gas.items():
            peer = sol_gas.get(op)
            t.add_row(op, f"{gas:,}", f"{peer:,}" if peer else "-", f"{gas / peer:.2f}x" if peer else "-")
        console.print(t)

        console.print(f"[bold]execution time per operation[/bold] (in-process, blocks of {k}, transfers subtracted)")
        t = Table("operation", "µs per tx")
        for op, us in exec_times(k).items():
            t.add_row(op, f"{us:,.0f}")
        console.print(t)

        console.print(f"[bold]contributions per second[/bold] ({n} pre-signed txs, 8 senders, one keep-alive connection)")
        anvil_reg = Sender(anvil, anvil_chain, 0)
        anvil_reg.send(registry, _registry_call(abi, "createDatanet", *CREATE_ARGS))
        Sender(ours, ours_chain, 0).send(ADDRESSES["Datanets"], encode_call("Datanets", "createDatanet", *CREATE_ARGS))
        ours_id = int(ours("eth_call", {"to": ADDRESSES["Datanets"], "data": "0x" + encode_call("Datanets", "datanetCount").hex()},
                           "latest"), 16)
        o_sub, o_mined, o_gas = throughput(ours, ours_chain, ADDRESSES["Datanets"],
                                    lambda i: encode_call("Datanets", "contribute", ours_id, H(10_000 + i), 100), n)
        a_sub, a_mined, a_gas = throughput(anvil, anvil_chain, registry,
                                    lambda i: _registry_call(abi, "contribute", 2, H(10_000 + i), 100), n)
        t = Table("", "ours (native)", "anvil (Solidity)", "ours / anvil")
        t.add_row("submitted / s", f"{o_sub:,.0f}", f"{a_sub:,.0f}", f"{o_sub / a_sub:.2f}x")
        t.add_row("mined / s", f"{o_mined:,.0f}", f"{a_mined:,.0f}", f"{o_mined / a_mined:.2f}x")
        t.add_row("gas limit per tx (estimate + 20%)", f"{o_gas:,}", f"{a_gas:,}", "")
        console.print(t)
        contrib = native_gas["contribute"] / sol_gas["contribute"]
        console.print(f"targets: native gas <= 0.5x Solidity (contribute {contrib:.2f}x: "
                      f"{'met' if contrib <= 0.5 else 'NOT met'}); >= 0.3x anvil contributions/s "
                      f"({o_mined / a_mined:.2f}x: {'met' if o_mined / a_mined >= 0.3 else 'NOT met'})")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
