"""The single table of system addresses: native modules (stateful precompiles) and block hooks.

The VM subclass merges `PRECOMPILES` into its computation's precompile table and runs every
`BLOCK_HOOKS` entry at block finalisation (the same in building and import), so genesis, RPC,
tests and the state machine all read one list instead of repeating addresses.
"""
from collections.abc import Callable
from typing import Any

PRECOMPILES: dict[bytes, Callable[[Any], None]] = {}
"""address -> fn(computation): each native module, called like any precompile."""

BLOCK_HOOKS: tuple[Callable[[Any, Any, Any], None], ...] = ()
"""fn(state, header, genesis) run once per block at finalisation (OPEN economics)."""
