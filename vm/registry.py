"""The single table of system addresses: native modules (stateful precompiles) and block hooks.

The VM subclass in `vm.chain` reads both tables, so native modules plug in by adding entries
here, without touching the VM. Addresses themselves are named in `vm.modules.system`.
"""
from collections.abc import Callable
from typing import Any

from eth_typing import Address

from vm.modules import MODULES, bridge, economics, staking

PRECOMPILES: dict[Address, Callable[[Any], Any]] = {m.address: m for m in MODULES}
"""address -> fn(computation): a stateful precompile (see NOTES.md on py-evm precompiles)."""

BLOCK_HOOKS: tuple[Callable[[Any, Any, Any], None], ...] = (economics.release_block_reward,
                                                            staking.update_validator_set,
                                                            bridge.check_forced_included)
"""fn(state, header, genesis), run in order at block finalisation before the state root is
computed, identically when building and when importing a block. A hook that raises
eth_utils.ValidationError makes the block invalid (a malformed signer bitmap, a queued forced
transaction left out). Rewards first: they
read the set of the parent's height, which the set update (for a later height) never touches."""
