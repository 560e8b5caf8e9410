"""L2 side of the OPEN bridge to the L1 (docs/settlement.md).

The module account's balance is the escrow of the OPEN that lives on the L1 (funded at genesis
with the L1 circulating amount): a relayed L1 deposit is paid out of it and a withdrawal is paid
into it, so no OPEN is minted or burned and the supply identity of `economics` holds (the escrow
counts as circulating, as the L1 tokens it stands for do).

Deposits are relayed by the block's proposer (the coinbase) in L1 order: `relayDeposit` takes
exactly the next deposit id, so none can be skipped or replayed; every node checks the relayed
(id, to, amount) against the L1's `DepositInitiated` logs when it derives the chain.
Withdrawals are recorded as `sent[hash] = 1` in the mapping at slot 0 (hash =
keccak256(abi.encode(id, sender, to, amount))): the L1 bridge proves that slot with an
eth_getProof storage proof against the account's storage root in a posted output root.

Storage: 0 sent[hash]   1 withdrawalCount   2 nextDepositId
"""
import eth_abi
from eth_utils import keccak, to_canonical_address

from vm.modules.abi import Call, NativeModule
from vm.modules.storage import require, slot_of
from vm.modules.system import L2_BRIDGE

SENT, WITHDRAWAL_COUNT, NEXT_DEPOSIT = 0, 1, 2
SYSTEM_ADDRESS_MAX = 2**32 - 1
"""Addresses up to here are precompiles and system accounts (modules, reserve, vesting,
governance): OPEN sent there by a deposit could never be spent. The L1 bridge refuses them too."""


def recipient_problem(to: bytes) -> str | None:
    """Why `to` cannot receive a deposit, or None."""
    if to == b"\x00" * 20:
        return "recipient is the zero address"
    if int.from_bytes(to, "big") <= SYSTEM_ADDRESS_MAX:
        return f"recipient 0x{to.hex()} is a system address"
    return None


def withdrawal_hash(withdrawal_id: int, sender: bytes, to: bytes, amount: int) -> bytes:
    return keccak(eth_abi.encode(["uint256", "address", "address", "uint256"], [withdrawal_id, sender, to, amount]))


def sent_slot(whash: bytes) -> int:
    """The storage slot of `sent[whash]` (what eth_getProof is asked for)."""
    return slot_of(SENT, whash)


def relay_deposit(call: Call, deposit_id, to, amount):
    to = to_canonical_address(to)
    require(call.sender == call.state.coinbase, "relayDeposit: only the block's proposer relays L1 deposits")
    expected = call.store.read(NEXT_DEPOSIT)
    require(deposit_id == expected, f"relayDeposit: deposit #{deposit_id} is not the next one (#{expected})")
    problem = recipient_problem(to)
    require(problem is None, f"relayDeposit: {problem}")
    require(amount > 0, "relayDeposit: zero amount")
    call.store.write(NEXT_DEPOSIT, expected + 1)
    call.store.pay(to, amount)  # "module balance too low" if the escrow cannot cover it
    call.emit("DepositFinalized", depositId=deposit_id, to=to, amount=amount)


def withdraw(call: Call, to):
    to = to_canonical_address(to)
    require(call.value > 0, "withdraw: send the amount to withdraw as value")
    require(to != b"\x00" * 20, "withdraw: recipient is the zero address")
    withdrawal_id = call.store.read(WITHDRAWAL_COUNT)
    whash = withdrawal_hash(withdrawal_id, call.sender, to, call.value)
    call.store.write(WITHDRAWAL_COUNT, withdrawal_id + 1)
    call.store.write(sent_slot(whash), 1)  # the value itself stays here: back in escrow
    call.emit("WithdrawalInitiated", id=withdrawal_id, sender=call.sender, to=to, amount=call.value,
              withdrawalHash=whash)
    return withdrawal_id, whash


MODULE = NativeModule("L2Bridge", L2_BRIDGE, {
    "relayDeposit": relay_deposit,
    "withdraw": withdraw,
    "nextDepositId": lambda call: call.store.read(NEXT_DEPOSIT),
    "withdrawalCount": lambda call: call.store.read(WITHDRAWAL_COUNT),
    "withdrawalSent": lambda call, whash: call.store.read(sent_slot(whash)) == 1,
})
