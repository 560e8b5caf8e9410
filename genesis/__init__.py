"""Chain parameters, the fixed OPEN supply and its allocations, validators: our genesis format."""
from genesis.devnet import dev_accounts, devnet
from genesis.files import load, to_json
from genesis.params import RESERVE_ADDRESS, TOTAL_SUPPLY, Account, Economics, Genesis, GenesisError, Validator, from_dict

__all__ = [
    "Account", "Economics", "Genesis", "GenesisError", "RESERVE_ADDRESS", "TOTAL_SUPPLY", "Validator",
    "dev_accounts", "devnet", "from_dict", "load", "to_json",
]
