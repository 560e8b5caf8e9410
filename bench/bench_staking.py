"""The per-block cost of paying signers (issue 13 items 4 and 9): the block hooks
(`vm.registry.BLOCK_HOOKS`: the reserve release and the validator-set update) with 1, 4, 64 and 256
staked validators, in the same run:

- no bitmap: a header without commit information, paid by today's rule (every active validator by
  stake: main's hook, plus the bitmap check and the set-change flag, one read each);
- all signed / 2/3+ signed: a header whose extraData names the signers of the parent's commit;
- set change: the set update after a block that moved stake (derive the set again, compare,
  schedule it).

Each figure is the fastest of REPEATS calls, each on a fresh state of the same parent block (the
machine is shared: the minimum is the figure least disturbed by other processes). In-memory
database (AtomicDB), as `bench_native` uses; no torch (no thread pinning applies).
Options: --repeats N (default 7), --sizes 1,4,64,256.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

from eth.db.atomic import AtomicDB
from eth_account import Account
from eth_utils import keccak
from rich.console import Console
from rich.table import Table

import genesis
import vm
from vm import registry
from vm.modules import consensus_set
from vm.modules.staking import SET_CHANGED, signer_bitmap, update_validator_set, validator_slot
from vm.modules.system import STAKING

console = Console()


def _chain(n: int):
    """A `genesis.testnet` chain of n validators with stakes 1000..1000+n-1 OPEN, at block 1."""
    addresses = [Account.from_key(keccak(b"bench staking %d" % i)).address for i in range(n)]
    econ = dataclasses.replace(genesis.Economics(), max_validators=max(n, 1))
    g = genesis.testnet(addresses, stake=[(1000 + i) * 10**18 for i in range(n)], economics=econ)
    chain = vm.build_chain_class(g).from_genesis(AtomicDB(), vm.genesis_params(g), vm.genesis_state(g))
    chain.mine_all([])
    return chain, g


def _best(chain, g, extra_data: bytes, hooks, repeats: int, prepare=None) -> float:
    """Fastest time of `hooks` on a fresh state of the next block, in microseconds."""
    head = chain.get_canonical_head()
    header = chain.create_header_from_parent(head, timestamp=head.timestamp + 1, extra_data=extra_data)
    best = float("inf")
    for _ in range(repeats):
        state = chain.get_vm(header).state
        if prepare:
            prepare(state)
        t0 = time.perf_counter()
        for hook in hooks:
            hook(state, header, g)
        best = min(best, time.perf_counter() - t0)
    return best * 1e6


def _stake_moved(member: bytes):
    def prepare(state) -> None:  # what a delegate transaction leaves for the hook
        slot = validator_slot(member)
        state.set_storage(STAKING, slot, state.get_storage(STAKING, slot) + 5000 * 10**18)
        state.set_storage(STAKING, SET_CHANGED, 1)
    return prepare


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench staking")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--sizes", default="1,4,64,256")
    args = p.parse_args(argv)
    table = Table(title="block hooks per block (µs, fastest of %d)" % args.repeats)
    for column in ("validators", "no bitmap (today's rule)", "all signed", "ratio", "2/3+ signed", "set change"):
        table.add_column(column, justify="right")
    for n in (int(s) for s in args.sizes.split(",")):
        chain, g = _chain(n)
        members = [a for a, _ in consensus_set(chain.get_vm().state, 1)]
        quorum = members[:len(members) * 2 // 3 + 1]
        today = _best(chain, g, b"", registry.BLOCK_HOOKS, args.repeats)
        everyone = _best(chain, g, signer_bitmap(members, members), registry.BLOCK_HOOKS, args.repeats)
        some = _best(chain, g, signer_bitmap(members, quorum), registry.BLOCK_HOOKS, args.repeats)
        change = _best(chain, g, b"", (update_validator_set,), args.repeats, _stake_moved(members[-1]))
        table.add_row(str(n), f"{today:,.0f}", f"{everyone:,.0f}", f"{everyone / today:.2f}x", f"{some:,.0f}",
                      f"{change:,.0f}")
    console.print(table)
    console.print("ratio: all signed / no bitmap, same run. 'set change' is the set update alone after a "
                  "block that moved one validator's stake (derive, compare, schedule n words).")
