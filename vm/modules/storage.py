"""Storage of native modules: Solidity-style slots in the module account, charged like SSTORE/SLOAD.

Slots are derived exactly as Solidity lays out mappings (`keccak256(key . slot)`, nested keys
applied left to right), so a module's state is ordinary account storage: the state root covers
it and `eth_getProof` proves any entry. Gas follows EIP-2929/2200 (cold 2100, warm 100; a
zero -> non-zero write 20000, a clean non-zero change 2900, anything else 100), without refunds.
"""
from collections.abc import Iterable

from eth.exceptions import Revert
from eth_abi import encode as abi_encode
from eth_utils import keccak

COLD_SLOAD_GAS = 2100
WARM_ACCESS_GAS = 100
SSTORE_SET_GAS = 20000
SSTORE_RESET_GAS = 2900
TRANSFER_GAS = 9000  # like a CALL carrying value: each payout a module makes
LOG_GAS, LOG_TOPIC_GAS, LOG_DATA_GAS = 375, 375, 8

ERROR_SELECTOR = keccak(b"Error(string)")[:4]
UINT256_MAX = 2**256 - 1


def revert(reason: str) -> Revert:
    """A revert carrying Solidity's `Error(string)` data (raise the result)."""
    return Revert(ERROR_SELECTOR + abi_encode(["string"], [reason]))


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise revert(reason)


def _word(key: int | bytes) -> bytes:
    if isinstance(key, bytes):
        return key.rjust(32, b"\x00")  # addresses left-padded, bytes32 as is (Solidity)
    return key.to_bytes(32, "big")


def slot_of(base: int, *keys: int | bytes) -> int:
    """Slot of `mapping[k1][k2]...` declared at `base`, as Solidity computes it."""
    slot = base
    for key in keys:
        slot = int.from_bytes(keccak(_word(key) + slot.to_bytes(32, "big")), "big")
    return slot


def _data_slot(slot: int) -> int:
    return int.from_bytes(keccak(slot.to_bytes(32, "big")), "big")


class Store:
    """Read and write one module account's storage, charging `computation` (None: a block hook,
    which runs outside any transaction and pays nothing)."""

    def __init__(self, state, address: bytes, computation=None) -> None:
        self.state, self.address, self.computation = state, address, computation

    def _charge(self, gas: int, reason: str) -> None:
        if self.computation is not None:
            self.computation.consume_gas(gas, reason)

    def _warm(self, slot: int) -> int:
        if self.state.is_storage_warm(self.address, slot):
            return WARM_ACCESS_GAS
        self.state.mark_storage_warm(self.address, slot)
        return COLD_SLOAD_GAS

    def read(self, slot: int) -> int:
        self._charge(self._warm(slot), "native SLOAD")
        return self.state.get_storage(self.address, slot)

    def write(self, slot: int, value: int) -> None:
        """Charge as SSTORE would (before writing), then write."""
        if self.computation is not None and self.computation.msg.is_static:
            raise revert("state change in a static call")
        cold = 0 if self.state.is_storage_warm(self.address, slot) else COLD_SLOAD_GAS
        self.state.mark_storage_warm(self.address, slot)
        current = self.state.get_storage(self.address, slot)
        original = self.state.get_storage(self.address, slot, from_journal=False)
        if value == current or original != current:
            gas = WARM_ACCESS_GAS
        else:
            gas = SSTORE_SET_GAS if original == 0 else SSTORE_RESET_GAS
        self._charge(cold + gas, "native SSTORE")
        if self.state.get_nonce(self.address) == 0:
            self.state.set_nonce(self.address, 1)  # never "empty": EIP-161 would clear its storage
        self.state.set_storage(self.address, slot, value)

    def add(self, slot: int, delta: int) -> int:
        """`slot += delta` with overflow and underflow checks; returns the new value."""
        value = self.read(slot) + delta
        require(0 <= value <= UINT256_MAX, "arithmetic overflow")
        self.write(slot, value)
        return value

    def read_bytes(self, slot: int) -> bytes:
        """A `bytes`/`string` in Solidity's layout: up to 31 bytes inline (data left-aligned,
        lowest byte = 2 * length), longer ones as 2 * length + 1 with data from keccak(slot)."""
        word = self.read(slot)
        if word & 1 == 0:
            length = (word & 0xFF) // 2
            return word.to_bytes(32, "big")[:length]
        length = (word - 1) // 2
        first = _data_slot(slot)
        words = b"".join(self.read(first + i).to_bytes(32, "big") for i in range((length + 31) // 32))
        return words[:length]

    def write_bytes(self, slot: int, data: bytes) -> None:
        """Store `data` at `slot` in Solidity's layout (see read_bytes); the slot must be fresh."""
        if len(data) < 32:
            self.write(slot, int.from_bytes(data.ljust(31, b"\x00") + bytes([2 * len(data)]), "big"))
            return
        self.write(slot, 2 * len(data) + 1)
        first = _data_slot(slot)
        for i in range(0, len(data), 32):
            self.write(first + i // 32, int.from_bytes(data[i:i + 32].ljust(32, b"\x00"), "big"))

    def pay(self, to: bytes, amount: int) -> None:
        """Move `amount` wei of OPEN from this module's balance to `to` (charged like a value CALL)."""
        if amount == 0:
            return
        self._charge(TRANSFER_GAS, "native transfer")
        require(self.state.get_balance(self.address) >= amount, "module balance too low")
        self.state.delta_balance(self.address, -amount)
        self.state.delta_balance(to, amount)


def pack(fields: Iterable[tuple[int, int]]) -> int:
    """Pack (value, bits) pairs into one word, first pair in the lowest bits."""
    word, shift = 0, 0
    for value, bits in fields:
        if not 0 <= value < 1 << bits:
            raise ValueError(f"{value} does not fit in {bits} bits")
        word |= value << shift
        shift += bits
    if shift > 256:
        raise ValueError("packed fields exceed one word")
    return word


def unpack(word: int, widths: Iterable[int]) -> list[int]:
    """Inverse of `pack` for the given bit widths."""
    out, shift = [], 0
    for bits in widths:
        out.append((word >> shift) & ((1 << bits) - 1))
        shift += bits
    return out
