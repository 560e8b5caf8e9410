"""Native modules: stateful precompiles at system addresses with Solidity ABIs (vm/abi/*.json).

Datanets, ModelFactory (Models), OpenLoRA inference jobs, Proof of Attribution, Staking and OPEN
economics keep their state in their own accounts' storage; `vm.registry` maps their addresses
to them. See docs/native-modules.md for every function, event, storage layout and rule.
"""
from genesis import Account

from vm.modules import attribution, datanets, economics, inference_jobs, models, staking
from vm.modules.abi import NativeModule, load_abi
from vm.modules.storage import Store
from vm.modules.system import ECONOMICS, STAKING, VESTING, Params, params_from_genesis, params_storage

MODULES: tuple[NativeModule, ...] = (
    datanets.MODULE, models.MODULE, inference_jobs.MODULE, attribution.MODULE, staking.MODULE, economics.MODULE,
)


def genesis_accounts(genesis) -> dict[bytes, Account]:
    """Accounts to lay over `genesis.accounts` in the genesis state: module accounts with nonce 1
    (never cleared as empty), the parameters in the economics account, the genesis validators and
    the first validator set in the staking account (which holds their stakes), and the team and
    investor allocations moved into the vesting account with their schedules."""
    vesting, locked = economics.vesting_storage(genesis)
    out = {m.address: Account(0, nonce=1) for m in MODULES}
    out[economics.MODULE.address] = Account(0, nonce=1, storage={**params_storage(params_from_genesis(genesis)),
                                                                  **vesting})
    stakes = genesis.accounts.get(STAKING, Account(0))  # the genesis validators' stakes
    out[STAKING] = Account(stakes.balance, stakes.group, nonce=1, storage=staking.genesis_storage(genesis))
    for addr in locked:
        acct = genesis.accounts[addr]
        out[addr] = Account(0, acct.group, acct.nonce, acct.code, acct.storage)
    out[VESTING] = Account(sum(locked.values()), nonce=1)
    return out


def validator_set(state) -> list[tuple[bytes, int]]:
    """Active validators as (address, total stake in wei), in registration order (the staking
    view; consensus signs with `consensus_set`, derived from it with a delay)."""
    return staking.active_validators(Store(state, STAKING), Store(state, ECONOMICS))


consensus_set = staking.consensus_set

__all__ = ["MODULES", "NativeModule", "Params", "consensus_set", "genesis_accounts", "load_abi", "validator_set"]
