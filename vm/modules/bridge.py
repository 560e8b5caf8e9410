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

Forced transactions (signed raw L2 transactions queued on the L1 bridge) are relayed by the
proposer the same way, in L1 order (`relayForced` takes exactly the next id). The module decides,
by the checks block import applies to a transaction (signature, chain id, type, gas, fee cap,
nonce, balance), whether the transaction can execute right now: if not, it is consumed as failed
(`ForcedTransactionFailed` with the reason); if so, its hash is recorded as pending and the VM
(vm.chain) refuses any block whose next transaction is not that one, or that ends with one still
pending. Every node checks the relayed bytes against the L1's `TransactionForced` logs when it
derives the chain, so a proposer can neither skip a forced transaction nor make one up.

Storage: 0 sent[hash]   1 withdrawalCount   2 nextDepositId   3 nextForcedId   4 pendingForced
"""
import types

import eth_abi
import rlp
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth_utils import ValidationError, keccak, to_canonical_address

from vm.modules.abi import Call, NativeModule
from vm.modules.storage import require, slot_of
from vm.modules.system import L2_BRIDGE

SENT, WITHDRAWAL_COUNT, NEXT_DEPOSIT, NEXT_FORCED, PENDING_FORCED = 0, 1, 2, 3, 4
MAX_FORCED_TX_BYTES = 16_384
"""As L1Bridge.MAX_FORCED_TX_BYTES: the L1 refuses longer ones."""
FORCED_GAS_MAX = 5_000_000
"""Gas limit a forced transaction may ask for: the proposer puts relays first in its block and
keeps their gas limits within the block's, so a queued forced transaction always fits."""
RELAY_FORCED_SELECTOR = keccak(text="relayForced(uint256,bytes)")[:4]
ZERO_ADDRESS = b"\x00" * 20
PRECOMPILE_MAX = 0xFFFF
"""Ethereum's precompiles and their reserved range: value sent there is never spent."""
FORCED_CHECK_GAS = 3_000
"""Charged to the relay for decoding and recovering the signer (ECRECOVER's price)."""
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


def decode_forced(raw: bytes):
    """(transaction, None) when the forced transaction's bytes decode to a transaction that may
    follow its relay, else (None, reason): the type (legacy EIP-155, EIP-2930, EIP-1559: blob and
    set-code transactions carry more than a raw transaction), a canonical encoding, a valid
    signature, gas within FORCED_GAS_MAX, and no value sent where it would be lost (the zero
    address, a precompile). Stateless: the block builder uses it too (`arrange`)."""
    if not raw or len(raw) > MAX_FORCED_TX_BYTES:
        return None, f"transaction is {len(raw)} bytes (1..{MAX_FORCED_TX_BYTES})"
    if raw[0] <= 0x7F and raw[0] not in (1, 2):
        return None, f"transaction type {raw[0]} cannot be forced (legacy, 1 and 2 only)"
    try:
        tx = PragueTransactionBuilder.decode(raw)
    except (rlp.DecodingError, rlp.DeserializationError, ValidationError, ValueError, TypeError) as e:
        return None, f"not a signed transaction: {str(e)[:120]}"
    if tx.encode() != raw:
        return None, "not a canonical transaction encoding"
    try:
        tx.sender  # noqa: B018 (recovers the signer)
    except Exception:  # eth_keys raises several types for an unrecoverable signature
        return None, "invalid signature"
    if tx.gas > FORCED_GAS_MAX:
        return None, f"gas {tx.gas} above the forced transaction limit {FORCED_GAS_MAX}"
    if tx.to == ZERO_ADDRESS:
        return None, "recipient is the zero address"
    if tx.value and tx.to and int.from_bytes(tx.to, "big") <= PRECOMPILE_MAX:
        return None, f"value sent to precompile 0x{tx.to.hex()} would be lost"
    return tx, None


def forced_problem(state, raw: bytes):
    """(transaction, None) when the forced transaction's bytes can be the next transaction on
    `state`, else (None, reason): `decode_forced`, then block import's own checks by the same code
    on the same state (py-evm's transaction and state validation: chain id, fee cap, nonce,
    balance), the intrinsic gas and a creation's initcode size."""
    tx, problem = decode_forced(raw)
    if problem is not None:
        return None, problem
    try:
        # what the executor's validate_transaction runs (a tracer's replay executor skips it, so
        # it is called here directly: a replay must judge as the block did)
        tx.validate()
        state.validate_transaction(tx)
        if tx.gas < tx.intrinsic_gas:
            raise ValidationError(f"gas {tx.gas} below its intrinsic gas {tx.intrinsic_gas}")
        if not tx.to:
            state.computation_class.validate_create_message(types.SimpleNamespace(code=tx.data))
    except Exception as e:  # ValidationError, or the VMError of an oversized initcode
        return None, str(e)[:200] or type(e).__name__
    return tx, None


def forced_relay(tx) -> bytes | None:
    """The forced transaction's bytes a transaction relays (a relayForced call), or None."""
    if tx.to != L2_BRIDGE or tx.data[:4] != RELAY_FORCED_SELECTOR:
        return None
    try:
        return eth_abi.decode(["uint256", "bytes"], tx.data[4:])[1]
    except eth_abi.exceptions.DecodingError:
        return None


def arrange(candidates, gas_limit: int, proposer: bytes) -> tuple[list, set[bytes]]:
    """A block's transactions in build order (vm.chain.build_block), and the hashes of the forced
    ones among them. Without a forced relay of the proposer's among them, `candidates` as they
    are. With one: the proposer's own (its deposit and forced relays, in nonce order) first, each
    forced relay followed by the transaction it carries, as long as their gas limits fit the
    block together; then the rest. The builder runs a forced one only where its relay queued it
    (`pending_forced`). The gas bound makes sure a queued one always fits (a block that leaves
    one out is invalid). When the bound cuts the proposer's list, its later transactions wait for
    the next block (their nonces could not come first)."""
    own = [tx for tx in candidates if tx.sender == proposer]
    if not any(forced_relay(tx) is not None for tx in own):
        return list(candidates), set()
    front: list = []
    placed: set[bytes] = set()
    budget = gas_limit
    for tx in own:
        raw = forced_relay(tx)
        forced = decode_forced(raw)[0] if raw is not None else None
        need = tx.gas + (forced.gas if forced is not None else 0)
        if need > budget:
            break
        budget -= need
        front.append(tx)
        if forced is not None and forced.hash not in placed:
            front.append(forced)
            placed.add(forced.hash)
    forced_hashes = set(placed)
    placed.update(tx.hash for tx in front)
    return front + [tx for tx in candidates if tx.hash not in placed and tx.sender != proposer], forced_hashes


def relay_forced(call: Call, forced_id, raw):
    require(call.sender == call.state.coinbase, "relayForced: only the block's proposer relays forced transactions")
    expected = call.store.read(NEXT_FORCED)
    require(forced_id == expected, f"relayForced: forced transaction #{forced_id} is not the next one (#{expected})")
    call.store.write(NEXT_FORCED, expected + 1)
    call.computation.consume_gas(FORCED_CHECK_GAS + 6 * ((len(raw) + 31) // 32), "native forced check")
    tx_hash = keccak(raw)
    tx, problem = forced_problem(call.state, raw)
    if problem is not None:
        call.emit("ForcedTransactionFailed", forcedId=forced_id, txHash=tx_hash, reason=problem)
        return
    call.store.write(PENDING_FORCED, int.from_bytes(tx_hash, "big"))
    call.emit("ForcedTransactionQueued", forcedId=forced_id, txHash=tx_hash, sender=tx.sender, nonce=tx.nonce)


def pending_forced(state) -> bytes | None:
    """The hash of the forced transaction that must come next in the block, if any."""
    word = state.get_storage(L2_BRIDGE, PENDING_FORCED)
    return word.to_bytes(32, "big") if word else None


def clear_pending_forced(state) -> None:
    """The queued forced transaction is about to execute (vm.chain)."""
    state.set_storage(L2_BRIDGE, PENDING_FORCED, 0)


def check_forced_included(state, header, genesis) -> None:
    """Block hook: a block cannot end with a queued forced transaction left out."""
    pending = pending_forced(state)
    if pending is not None:
        raise ValidationError(f"block #{header.block_number}: forced transaction 0x{pending.hex()} was queued by "
                              "relayForced but is not the transaction after it")


MODULE = NativeModule("L2Bridge", L2_BRIDGE, {
    "relayDeposit": relay_deposit,
    "relayForced": relay_forced,
    "nextForcedId": lambda call: call.store.read(NEXT_FORCED),
    "withdraw": withdraw,
    "nextDepositId": lambda call: call.store.read(NEXT_DEPOSIT),
    "withdrawalCount": lambda call: call.store.read(WITHDRAWAL_COUNT),
    "withdrawalSent": lambda call, whash: call.store.read(sent_slot(whash)) == 1,
})
