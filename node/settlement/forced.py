"""Forced transactions (OP Stack's OptimismPortal.depositTransaction, Arbitrum's delayed inbox): a
signed raw L2 transaction queued on the L1 bridge (`forceTransaction`) and relayed into an L2 block
by the proposer after F confirmations, like a deposit (docs/settlement.md).

On the L2 a forced transaction takes two transactions of the block: the proposer's
`L2Bridge.relayForced(id, raw)`, which consumes the id and either fails the forced transaction with
the reason or queues its hash, and then the forced transaction itself, which the VM requires to be
the very next one. The block builder puts them there (`vm.modules.bridge.arrange`); the user's
transaction then has its own hash and receipt, as if it had been sent to the L2 directly.
"""
from __future__ import annotations

import eth_abi
from eth.abc import SignedTransactionAPI

from node.sdk import encode_call
from vm.modules.bridge import RELAY_FORCED_SELECTOR
from vm.modules.system import L2_BRIDGE

RELAY_BASE_GAS = 200_000


def relay_gas(raw: bytes) -> int:
    """Gas limit of a relayForced call carrying `raw`: the module's work, and its calldata at
    Prague's floor price (EIP-7623: 40 gas a non-zero byte), so even the largest one is covered."""
    return RELAY_BASE_GAS + 40 * len(relay_data(0, raw))


def relay_data(forced_id: int, raw: bytes) -> bytes:
    return encode_call("L2Bridge", "relayForced", forced_id, raw)


def relayed(tx: SignedTransactionAPI) -> tuple[int, bytes] | None:
    """(id, raw) of a relayForced call, or None for any other transaction."""
    if tx.to != L2_BRIDGE or tx.data[:4] != RELAY_FORCED_SELECTOR:
        return None
    try:
        forced_id, raw = eth_abi.decode(["uint256", "bytes"], tx.data[4:])
    except eth_abi.exceptions.DecodingError:
        return None
    return forced_id, raw
