"""Chain parameters, the fixed OPEN supply and its allocations, validators: our genesis format."""
from genesis.devnet import DEVNET_ECONOMICS, TESTNET_STAKE, dev_accounts, dev_validator, devnet, testnet
from genesis.files import load, to_json
from genesis.params import (
    ATTRIBUTION_METHODS, MAX_VALIDATORS, RESERVE_ADDRESS, STAKING_ADDRESS, TOTAL_SUPPLY, Account, Economics, Genesis,
    GenesisError, Validator, from_dict, method_names, param_names, with_params,
)

__all__ = [
    "ATTRIBUTION_METHODS", "Account", "DEVNET_ECONOMICS", "Economics", "Genesis", "GenesisError", "MAX_VALIDATORS",
    "RESERVE_ADDRESS", "STAKING_ADDRESS", "TESTNET_STAKE", "TOTAL_SUPPLY", "Validator", "dev_accounts",
    "dev_validator", "devnet", "from_dict", "load", "method_names", "param_names", "testnet", "to_json",
    "with_params",
]
