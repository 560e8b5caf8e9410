"""Block sync's catch-up speed (#13: "catch-up speed (blocks/s) of a node syncing 10,000 blocks",
target >= 500 blocks/s of transfers), and where it goes.

The chain: `--blocks` (default 10,000) blocks of one transfer each, decided by 4 validators
(3 of them sign each commit), built once in-process and kept under
bench/out/sync-chain-<blocks>/ (the source node's data dir; `--rebuild` makes it again).
Each measurement below runs in a fresh spawned process, one after the other:

1. **p2p sync**: two processes on loopback. The server opens the chain's data dir and answers
   fetches as `openledger run` does (`P2PNetwork.handlers`); the syncer, a fresh node
   bootstrapped to it, runs `P2PNetwork.sync_to(blocks)`: range fetches, each commit verified
   against the validator set of its height, each block checked and executed, one write batch
   each. Wall time, and CPU seconds of the syncer and of the server.
2. **import only**: the same blocks handed to `ChainApplication.import_decided` in-process (no
   p2p), with vm.trie_speed on (as the node runs) and off (py-trie as shipped): before/after of
   the trie cache in the same run.
3. **raw py-evm** (the peer): py-evm's `Chain.import_block` of the same Ethereum blocks over
   LevelDB, our VM's rules (so the state roots match) with py-evm's own code for the methods
   we reimplement (bench_node_import's STOCK_METHODS) and py-trie as shipped; no commits
   verified, no indexes, no validator sets.

Blocks/s are printed against the 500/s target and against raw py-evm. CPU seconds are
time.process_time of the process (all its threads). No torch involved: no thread pinning.
The final head of every import is checked against the chain's (py-evm checks each block's
state root against its header on import).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import pathlib
import pickle
import shutil
import tempfile
import time

OUT = pathlib.Path(__file__).resolve().parent / "out"
TARGET = 500
STOCK_METHODS = ("set_block_transactions_and_withdrawals", "validate_block", "process_deposit_request_data")


def _genesis():
    import dataclasses

    from eth_keys import keys as ek
    from eth_utils import keccak

    import genesis

    vkeys = [keccak(b"openledger/bench/validator/%d" % i) for i in range(4)]
    by_address = {ek.PrivateKey(k).public_key.to_canonical_address(): k for k in vkeys}
    g = dataclasses.replace(genesis.devnet(), validators=tuple(genesis.Validator(a, 1) for a in by_address))
    return g, by_address


def build_chain(path: pathlib.Path, blocks: int) -> None:
    """`blocks` decided blocks of one transfer each in a node data dir at `path`."""
    from bench.bench_network import _transfers
    from consensus import Signer, Vote, VoteType, make_commit
    from node.chain import Node
    from node.consensus import ChainApplication

    g, by_address = _genesis()
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    source = Node.init(partial, g)
    app = ChainApplication(source)
    txs = _transfers(blocks)
    started = time.perf_counter()
    for height in range(1, blocks + 1):
        source.mempool.add_raw(txs[height - 1])
        app.address = app.validator_set(height).proposer.address
        block = app.prepare_proposal(height, 0)
        vs = app.validator_set(height)
        vote = Vote(VoteType.PRECOMMIT, height, 0, block.hash)
        commit = make_commit(vs, [(v.address, Signer(by_address[v.address], g.chain_id).sign_vote(vote))
                                  for v in list(vs)[:3]])
        app.finalize(height, block, commit)
        if height % 1000 == 0:
            print(f"  built {height} blocks ({time.perf_counter() - started:.0f} s)", flush=True)
    source.close()
    partial.rename(path)


def _served_blocks(chain_dir: pathlib.Path, blocks: int) -> tuple[list[bytes], bytes]:
    """What a peer serves for heights 1..blocks, and the head hash."""
    from node.chain import Node
    from node.network import sync_bytes

    with Node.open(chain_dir) as node:
        return [sync_bytes(node, h) for h in range(1, blocks + 1)], node.head().hash


# -- the measurements, each in its own process --------------------------------------------------

def _serve(chain_dir: str, workdir: str, address_out, stop, cpu_out) -> None:
    import trio

    from node.chain import Node
    from node.network import P2PNetwork
    from node.p2p import P2PConfig, open_p2p
    from node.validator import ConsensusDriver

    node = Node.open(chain_dir)
    driver = ConsensusDriver(node, None, block_time=1)   # answers fetches; its consensus does not run

    async def main() -> None:
        config = P2PConfig(data_dir=pathlib.Path(workdir) / "p2p-server", chain_id=node.chain_id)
        async with open_p2p(config, P2PNetwork.handlers(lambda: driver)) as p2p:
            address_out.put(str(p2p.address))
            t0 = time.process_time()
            while not stop.is_set():
                await trio.sleep(0.05)
            cpu_out.put(time.process_time() - t0)

    trio.run(main)
    node.close()


def _sync(address: str, workdir: str, blocks: int, head: bytes, out) -> None:
    import trio

    from node.chain import Node
    from node.network import P2PNetwork
    from node.p2p import P2PConfig, open_p2p
    from node.validator import ConsensusDriver

    g, _ = _genesis()
    follower = Node.init(pathlib.Path(workdir) / "follower", g)

    async def main() -> tuple[float, float, int]:
        config = P2PConfig(data_dir=pathlib.Path(workdir) / "p2p-syncer", chain_id=g.chain_id, bootstrap=(address,))
        async with open_p2p(config, P2PNetwork.handlers(lambda: None)) as p2p:
            with trio.fail_after(30):
                while not p2p.connected_peers():
                    await trio.sleep(0.02)
            network = P2PNetwork(p2p)
            network.driver = ConsensusDriver(follower, None, block_time=1, network=network)
            t0, w0 = time.process_time(), time.perf_counter()
            imported = await network.sync_to(blocks)
            return time.perf_counter() - w0, time.process_time() - t0, imported

    wall, cpu, imported = trio.run(main)
    assert imported == blocks and follower.head().hash == head, (imported, follower.head().block_number)
    follower.close()
    out.put((wall, cpu))


def _import(blocks_file: str, workdir: str, fast_trie: bool, head: bytes, out) -> None:
    from node.chain import Node
    from node.consensus import ChainApplication, split_block
    from vm.trie_speed import use_fast_trie

    use_fast_trie(fast_trie)
    served = pickle.loads(pathlib.Path(blocks_file).read_bytes())
    g, _ = _genesis()
    with Node.init(pathlib.Path(workdir) / f"import-{fast_trie}", g) as follower:
        importer = ChainApplication(follower)
        t0, w0 = time.process_time(), time.perf_counter()
        for height, data in enumerate(served, start=1):
            importer.import_decided(height, *split_block(data))
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        assert follower.head().hash == head
    out.put((wall, cpu))


def _raw_pyevm(blocks_file: str, workdir: str, head: bytes, out) -> None:
    import rlp
    from eth.vm.forks.prague import PragueVM

    import vm
    from node.consensus import split_block
    from node.storage import LevelDB
    from vm.trie_speed import use_fast_trie

    use_fast_trie(False)
    served = pickle.loads(pathlib.Path(blocks_file).read_bytes())
    g, _ = _genesis()
    chain_class = vm.build_chain_class(g)
    ours_vm = chain_class.get_vm_class_for_block_number(1)
    stock = {name: getattr(PragueVM, name) for name in STOCK_METHODS}
    chain_class = chain_class.configure(vm_configuration=((0, ours_vm.configure(**stock)),))
    block_class = ours_vm.get_block_class()
    eth_blocks = [split_block(split_block(data)[0])[0] for data in served]   # RLP [[eth block, parent commit], commit]
    db = LevelDB(str(pathlib.Path(workdir) / "raw"))
    chain = chain_class.from_genesis(db, vm.genesis_params(g), vm.genesis_state(g))
    t0, w0 = time.process_time(), time.perf_counter()
    for raw in eth_blocks:
        chain.import_block(rlp.decode(raw, sedes=block_class))
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    assert chain.get_canonical_head().hash == head
    db.close()
    out.put((wall, cpu))


def _run(ctx, target, *args) -> tuple[float, float]:
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"{target.__name__} failed (exit code {proc.exitcode})")
    return result


def _p2p_sync(ctx, chain_dir: pathlib.Path, workdir: str, blocks: int, head: bytes) -> tuple[float, float, float]:
    address_q, cpu_q, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(str(chain_dir), workdir, address_q, stop, cpu_q))
    server.start()
    try:
        address = address_q.get(timeout=120)
        wall, cpu = _run(ctx, _sync, address, workdir, blocks, head)
    finally:
        stop.set()
    server_cpu = cpu_q.get(timeout=60)
    server.join(30)
    return wall, cpu, server_cpu


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench sync", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--rebuild", action="store_true", help="build the chain again (else reuse bench/out)")
    parser.add_argument("--quick", action="store_true", help="1,000 blocks")
    args = parser.parse_args(argv)
    blocks = 1000 if args.quick else args.blocks
    chain_dir = OUT / f"sync-chain-{blocks}"
    if args.rebuild:
        shutil.rmtree(chain_dir, ignore_errors=True)
    if not chain_dir.exists():
        print(f"building {blocks} blocks of one transfer into {chain_dir} (once)...", flush=True)
        OUT.mkdir(exist_ok=True)
        build_chain(chain_dir, blocks)
    ctx = multiprocessing.get_context("spawn")
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        served, head = _served_blocks(chain_dir, blocks)
        blocks_file = pathlib.Path(workdir) / "blocks.pickle"
        blocks_file.write_bytes(pickle.dumps(served))
        print(f"{blocks} blocks, {sum(map(len, served)) / blocks:.0f} bytes each as served (block + commits); "
              f"load average {load[0]:.1f}", flush=True)
        wall, cpu, server_cpu = _p2p_sync(ctx, chain_dir, workdir, blocks, head)
        rows.append(("p2p sync (syncer process; server's CPU %.1f s)" % server_cpu, wall, cpu))
        print("  ", rows[-1], flush=True)
        for fast in (True, False):
            wall, cpu = _run(ctx, _import, str(blocks_file), workdir, fast, head)
            rows.append((f"import only, trie cache {'on' if fast else 'off (before)'}", wall, cpu))
            print("  ", rows[-1], flush=True)
        wall, cpu = _run(ctx, _raw_pyevm, str(blocks_file), workdir, head)
        rows.append(("raw py-evm import_block (peer)", wall, cpu))
        print("  ", rows[-1], flush=True)
    raw_cpu = rows[-1][2]
    print(f"\n{blocks} blocks of one transfer; load average {load[0]:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs)")
    print("| path | wall s | blocks/s wall | CPU s | blocks/s CPU | CPU vs target 500/s | CPU vs raw py-evm |")
    print("|---|---|---|---|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.1f} | {blocks / wall:.0f} | {cpu:.1f} | {blocks / cpu:.0f} | "
              f"{blocks / cpu / TARGET:.2f}x | {raw_cpu / cpu:.2f}x |")


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
