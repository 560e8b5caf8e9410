"""Block import: our Node vs raw py-evm `Chain.import_block` on the same 1,000-transfer block.

The block is built once (by our node, with `mine_all`) and serialised; each measurement decodes
it from RLP afresh (so no sender-recovery cache carries over) and imports it into a fresh chain
that holds only genesis:
- ours: `Node.import_block` on a LevelDB data dir: validation, execution, then state + block +
  receipts + tx index + log index + head in one plyvel write batch;
- py-evm on LevelDB: py-evm's `Chain.import_block` over the same plyvel adapter without our
  batch (every write goes straight to LevelDB), nothing indexed beyond py-evm's own, and
  py-evm's own code for the VM methods we reimplement for speed (STOCK_METHODS: trie building,
  block validation, deposit-request scan); our consensus overrides stay so the block is valid;
- py-evm in memory: the same over py-evm's own in-memory `AtomicDB`.
Times are CPU seconds of the importing process (time.process_time: all its threads, LevelDB's
included), which a busy shared machine distorts far less than wall time. Each import runs in
its own spawned process, variants interleaved round by round, so each peak RSS (ru_maxrss,
includes the interpreter and libraries) is its own. No torch involved: no thread pin needed.
"""
import argparse
import multiprocessing
import resource
import statistics
import tempfile
import time

TRANSFERS = 1000
STOCK_METHODS = ("set_block_transactions_and_withdrawals", "validate_block", "process_deposit_request_data")


def _build_block(workdir: str) -> bytes:
    import rlp
    from eth_account import Account

    import genesis
    from node.chain import Node

    g = genesis.devnet()
    keys = [k for _, k in genesis.dev_accounts()]
    with Node.init(f"{workdir}/builder", g) as node:
        for i in range(TRANSFERS):
            tx = {"type": 2, "chainId": g.chain_id, "nonce": i // len(keys), "to": bytes([0x10 + i % 200]) * 20,
                  "value": 1 + i, "gas": 21_000, "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9}
            node.mempool.add_raw(bytes(Account.sign_transaction(tx, keys[i % len(keys)]).raw_transaction))
        block = node.produce_block()
        assert len(block.transactions) == TRANSFERS, len(block.transactions)
        return rlp.encode(block)


def _measure(variant: str, raw_block: bytes, run: int, workdir: str, out) -> None:
    import rlp
    from eth.db.atomic import AtomicDB
    from eth.vm.forks.prague import PragueVM

    import genesis
    import vm
    from node.chain import Node
    from node.storage import LevelDB

    g = genesis.devnet()
    chain_class = vm.build_chain_class(g)
    ours_vm = chain_class.get_vm_class_for_block_number(1)
    block_class = ours_vm.get_block_class()
    if variant != "ours":
        # py-evm's own code for what our VM reimplements for speed; our consensus rules (chain
        # id, fee sink, block hooks) stay, or py-evm would compute another state root.
        stock = {name: getattr(PragueVM, name) for name in STOCK_METHODS}
        chain_class = chain_class.configure(vm_configuration=((0, ours_vm.configure(**stock)),))
    block = rlp.decode(raw_block, sedes=block_class)
    path = f"{workdir}/{variant}-{run}"
    if variant == "ours":
        with Node.init(path, g) as node:
            t0 = time.process_time()
            node.import_block(block)
            seconds = time.process_time() - t0
            assert node.head() == block.header
    else:
        db = LevelDB(path) if variant == "py-evm leveldb" else AtomicDB()
        chain = chain_class.from_genesis(db, vm.genesis_params(g), vm.genesis_state(g))
        t0 = time.process_time()
        chain.import_block(block)
        seconds = time.process_time() - t0
        assert chain.get_canonical_head() == block.header
        if isinstance(db, LevelDB):
            db.close()
    out.put((seconds, block.header.gas_used, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench node_import", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    console = Console()
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as workdir:
        with console.status(f"building a block of {TRANSFERS} transfers"):
            raw_block = _build_block(workdir)
        variants = ("ours", "py-evm leveldb", "py-evm memory")
        times: dict[str, list[float]] = {v: [] for v in variants}
        rss: dict[str, float] = {v: 0.0 for v in variants}
        gas = 0
        with Progress(console=console) as progress:
            task = progress.add_task("importing", total=args.repeats * len(variants))
            for run in range(args.repeats):
                # interleaved, one fresh process per import: a busy machine's load hits all alike
                for variant in variants[run % len(variants):] + variants[:run % len(variants)]:
                    queue = ctx.Queue()
                    proc = ctx.Process(target=_measure, args=(variant, raw_block, run, workdir, queue))
                    proc.start()
                    proc.join()  # the result is a small tuple: it cannot fill the pipe
                    if proc.exitcode != 0:
                        raise RuntimeError(f"the {variant} import process failed (exit code {proc.exitcode})")
                    seconds, gas, peak = queue.get()
                    times[variant].append(seconds)
                    rss[variant] = max(rss[variant], peak)
                    progress.advance(task)
    best_ours, median_ours = min(times["ours"]), statistics.median(times["ours"])
    table = Table(title=f"Import of one {TRANSFERS}-transfer block ({args.repeats} interleaved runs each)")
    for col in ("variant", "best CPU s", "median CPU s", "tx/s (best)", "Mgas/s (best)", "peak RSS MiB",
                "ours faster by (best)", "(median)"):
        table.add_column(col, justify="right")
    for variant in variants:
        best, median = min(times[variant]), statistics.median(times[variant])
        table.add_row(variant, f"{best:.3f}", f"{median:.3f}", f"{TRANSFERS / best:,.0f}", f"{gas / best / 1e6:.2f}",
                      f"{rss[variant]:.0f}", f"{best / best_ours:.2f}x", f"{median / median_ours:.2f}x")
    console.print(table)


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
