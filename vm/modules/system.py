"""System addresses of the native modules and the parameters they read from chain state.

Parameters live in the economics account's storage (written at genesis by
`vm.modules.genesis_accounts`), so every node executes with the values the state root commits
to; a chain whose genesis did not write them runs on `Params()` defaults.
"""
import dataclasses

from eth_utils import to_canonical_address

from genesis import L2_BRIDGE_ADDRESS, STAKING_ADDRESS, Economics
from vm.modules.storage import Store, slot_of

DATANETS = to_canonical_address("0x00000000000000000000000000000000004f4c01")
MODELS = to_canonical_address("0x00000000000000000000000000000000004f4c02")
INFERENCE_JOBS = to_canonical_address("0x00000000000000000000000000000000004f4c03")
ATTRIBUTION = to_canonical_address("0x00000000000000000000000000000000004f4c04")
STAKING = STAKING_ADDRESS  # named in genesis: genesis stakes sit in its balance
ECONOMICS = to_canonical_address("0x00000000000000000000000000000000004f4c06")
L2_BRIDGE = L2_BRIDGE_ADDRESS
"""The OPEN bridge's L2 side (vm.modules.bridge); its balance escrows the OPEN living on the L1."""
TRAINING_JOBS = to_canonical_address("0x00000000000000000000000000000000004f4c08")
VESTING = to_canonical_address("0x00000000000000000000000000000000000e0001")
"""Keyless account holding the locked team and investor allocations until they vest."""

PPM = 1_000_000
MONTH_S = 30 * 24 * 3600
"""A schedule month: 30 days (documented in docs/native-modules.md)."""

OPEN = 10**18


AFTER_CHAIN_FACTS = ("attribution_slash_ppm", "proof_timeout_s")
"""`genesis.Economics` fields added once chains were running: their slots follow the chain facts, so
every earlier parameter keeps the slot such a chain wrote it in, and that chain reads 0 for these
(their modules treat 0 as "off": the rules it was started with)."""

Params = dataclasses.make_dataclass(
    "Params",
    [(f.name, int, dataclasses.field(default=f.default)) for f in dataclasses.fields(Economics)
     if f.name not in AFTER_CHAIN_FACTS]
    + [("treasury", int, 0), ("block_time_ms", int, 1000), ("reserve_initial", int, 0), ("genesis_timestamp", int, 0)]
    + [(f.name, int, dataclasses.field(default=f.default)) for f in dataclasses.fields(Economics)
       if f.name in AFTER_CHAIN_FACTS],
    frozen=True,
)
Params.__module__ = __name__
Params.__doc__ = """Integers every module reads: `genesis.Economics` field for field (same order, so the
same slots), then the treasury (address as an integer), block time, initial reserve and genesis
timestamp, then the AFTER_CHAIN_FACTS fields. Derived, not restated, so defaults cannot drift apart."""


PARAM_FIELDS = tuple(f.name for f in dataclasses.fields(Params))
PARAMS_CONFIGURED_SLOT = 0
PARAMS_BASE_SLOT = 1  # field i of Params at slot PARAMS_BASE_SLOT + i of the economics account


def params_from_genesis(genesis) -> Params:
    """Params for a `genesis.Genesis`: its economics plus the chain facts the modules need."""
    econ = genesis.economics
    known = dataclasses.asdict(econ)
    reserve = sum(a.balance for a in genesis.accounts.values() if a.group == "reserve")
    return Params(**known, treasury=int.from_bytes(genesis.treasury, "big"),
                  block_time_ms=max(1, int(genesis.block_time * 1000)), reserve_initial=reserve,
                  genesis_timestamp=genesis.timestamp)


def params_storage(params: Params) -> dict[int, int]:
    out = {PARAMS_CONFIGURED_SLOT: 1}
    out.update({PARAMS_BASE_SLOT + i: getattr(params, f) for i, f in enumerate(PARAM_FIELDS)})
    return out


REWARDS_SLOT = 104
"""Economics account: rewards[address] -> cumulative OPEN paid as rewards (fee splits, block
releases, delegation rewards); written by several modules, so its slot is named here."""


def credit_reward(econ: Store, account: bytes, amount: int) -> None:
    """Add to `account`'s cumulative rewards (the ledger `rewardsOf` and `ol_getRewards` read)."""
    if amount:
        econ.add(slot_of(REWARDS_SLOT, account), amount)


def read_param(store: Store, name: str) -> int:
    """One parameter from the economics account (`store` must be that account's Store)."""
    if store.read(PARAMS_CONFIGURED_SLOT) == 0:
        return getattr(Params(), name)
    return store.read(PARAMS_BASE_SLOT + PARAM_FIELDS.index(name))
