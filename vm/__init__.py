"""The state machine: our py-evm Prague chain (chain-id enforcement, fee sink, native modules)."""
from vm.keccak import use_fastest_backend
from vm.trie_speed import use_fast_trie

use_fastest_backend()
use_fast_trie()

from vm.chain import (
    build_block, build_chain_class, genesis_params, genesis_state, import_block, validate_chain_id,
    validate_lone_transaction,
)
from vm.errors import WrongChainId

__all__ = [
    "WrongChainId", "build_block", "build_chain_class", "genesis_params", "genesis_state", "import_block",
    "validate_chain_id", "validate_lone_transaction",
]
