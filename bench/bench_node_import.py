"""Block import: our Node vs raw py-evm `Chain.import_block` on the same 1,000-transfer block.

The block is built once (by our node, with `mine_all`) and serialised; each measurement decodes
it from RLP afresh (so no sender-recovery cache carries over) and imports it into a fresh chain
that holds only genesis:
- ours: `Node.import_block` on a LevelDB data dir: validation, execution, then state + block +
  receipts + tx index + log index + head in one plyvel write batch;
- py-evm on LevelDB: the same chain class over the same plyvel adapter without our batch
  (every write goes straight to LevelDB), nothing indexed beyond py-evm's own;
- py-evm in memory: the same chain class over py-evm's own in-memory `AtomicDB`.
Each variant runs in its own spawned process so its peak RSS (ru_maxrss, includes the
interpreter and libraries) is its own. No torch involved, so no thread pin is needed.
"""
import argparse
import multiprocessing
import resource
import statistics
import tempfile
import time

TRANSFERS = 1000


def _build_block(workdir: str) -> bytes:
    import rlp
    from eth_account import Account

    import genesis
    from node.chain import Node

    g = genesis.devnet()
    keys = [k for _, k in genesis.dev_accounts()]
    with Node.init(f"{workdir}/builder", g) as node:
        node.mempool.max_per_sender = TRANSFERS
        for i in range(TRANSFERS):
            tx = {"type": 2, "chainId": g.chain_id, "nonce": i // len(keys), "to": bytes([0x10 + i % 200]) * 20,
                  "value": 1 + i, "gas": 21_000, "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9}
            node.mempool.add_raw(bytes(Account.sign_transaction(tx, keys[i % len(keys)]).raw_transaction))
        block = node.produce_block()
        assert len(block.transactions) == TRANSFERS, len(block.transactions)
        return rlp.encode(block)


def _measure(variant: str, raw_block: bytes, repeats: int, workdir: str, out) -> None:
    import rlp
    from eth.db.atomic import AtomicDB

    import genesis
    import vm
    from node.chain import Node
    from node.storage import LevelDB

    g = genesis.devnet()
    chain_class = vm.build_chain_class(g)
    block_class = chain_class.get_vm_class_for_block_number(1).get_block_class()
    times = []
    for r in range(repeats):
        block = rlp.decode(raw_block, sedes=block_class)
        path = f"{workdir}/{variant}-{r}"
        if variant == "ours":
            with Node.init(path, g) as node:
                t0 = time.perf_counter()
                node.import_block(block)
                times.append(time.perf_counter() - t0)
                assert node.head() == block.header
        else:
            db = LevelDB(path) if variant == "py-evm leveldb" else AtomicDB()
            chain = chain_class.from_genesis(db, vm.genesis_params(g), vm.genesis_state(g))
            t0 = time.perf_counter()
            chain.import_block(block)
            times.append(time.perf_counter() - t0)
            assert chain.get_canonical_head() == block.header
            if isinstance(db, LevelDB):
                db.close()
    out.put((variant, times, block.header.gas_used, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench node_import", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as workdir:
        with console.status(f"building a block of {TRANSFERS} transfers"):
            raw_block = _build_block(workdir)
        results = {}
        for variant in ("ours", "py-evm leveldb", "py-evm memory"):
            with console.status(f"importing with {variant} ({args.repeats} runs)"):
                queue = ctx.Queue()
                proc = ctx.Process(target=_measure, args=(variant, raw_block, args.repeats, workdir, queue))
                proc.start()
                variant_, times, gas, rss = queue.get()
                proc.join()
                results[variant_] = (statistics.median(times), gas, rss)
    ours = results["ours"][0]
    table = Table(title=f"Import of one {TRANSFERS}-transfer block (median of {args.repeats})")
    for col in ("variant", "seconds", "tx/s", "Mgas/s", "peak RSS MiB", "ours vs this (speed ratio)"):
        table.add_column(col, justify="right")
    for variant, (seconds, gas, rss) in results.items():
        table.add_row(variant, f"{seconds:.3f}", f"{TRANSFERS / seconds:,.0f}", f"{gas / seconds / 1e6:.2f}",
                      f"{rss:.0f}", f"{seconds / ours:.2f}x")
    console.print(table)


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
