"""Per-block records written in the block's commit batch, for the explorer read path.

py-evm keeps a block's transactions and receipts in tries: reading them walks the trie and
decodes every item through rlp's Serializable classes (pure Python), and a transaction's sender
costs an ECDSA recovery. An explorer reads every block once, so caches do not help it. Each block
therefore also commits two flat records, each read with one database get and one msgpack decode
(C code) into the tuples below:

- the body record: the block's RLP size and, per transaction, the fields the JSON-RPC shows,
  with its hash and the sender recovered while executing;
- the receipt record: per receipt, status/root, cumulative gas, bloom, logs and the address a
  creation made.

The cost is disk: the transactions' fields are stored twice (here and in py-evm's trie).
The decoded forms duck-type py-evm's objects for `node.rpc.format`, so one formatter serves the
records and the py-evm fallback (blocks committed before records were written). A damaged record
decodes to None and the caller falls back to py-evm.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgpack
import rlp
from eth._utils.address import generate_contract_address
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI
from eth.rlp.headers import BlockHeader
from eth.vm.forks.cancun.blocks import CancunBlockHeader
from eth.vm.forks.london.blocks import LondonBlockHeader
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth.vm.forks.shanghai.blocks import ShanghaiBlockHeader

_BIG_INT = 1  # msgpack extension type: an integer of more than 64 bits, big-endian bytes


class RecordedAuthorization(NamedTuple):
    chain_id: int
    address: bytes
    nonce: int
    y_parity: int
    r: int
    s: int


class RecordedTransaction(NamedTuple):
    """A mined transaction as the JSON-RPC shows it (fields a type lacks are 0 or empty)."""

    type_id: int
    hash: bytes
    sender: bytes
    chain_id: int | None  # None: a legacy transaction without EIP-155 replay protection
    nonce: int
    gas_price: int  # types 0 and 1
    max_priority_fee_per_gas: int  # type 2 and later
    max_fee_per_gas: int
    gas: int
    to: bytes  # b"" for a contract creation, as in py-evm
    value: int
    data: bytes
    access_list: tuple[tuple[bytes, tuple[int, ...]], ...]
    max_fee_per_blob_gas: int
    blob_versioned_hashes: tuple[bytes, ...]
    authorization_list: tuple[RecordedAuthorization, ...]
    v: int
    y_parity: int
    r: int
    s: int


class BlockRecord(NamedTuple):
    """A block read from its header and body record (duck-types py-evm's block for the formatter)."""

    header: Any
    size: int
    transactions: tuple[RecordedTransaction, ...]
    uncles: tuple[Any, ...]
    withdrawals: tuple[Any, ...]


class RecordedLog(NamedTuple):
    address: bytes
    topics: tuple[bytes, ...]  # 32 bytes each
    data: bytes


class RecordedReceipt(NamedTuple):
    """A receipt as py-evm decodes it (gas_used is cumulative, as in py-evm's receipts), plus the
    address a creation made (b"" for a call): hashing it at read time cost a tenth of a receipt."""

    state_root: bytes
    gas_used: int
    bloom: int
    logs: tuple[RecordedLog, ...]
    contract_address: bytes


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, default=_pack_big_int)


def _pack_big_int(value: Any) -> msgpack.ExtType:
    if isinstance(value, int) and value >= 0:
        return msgpack.ExtType(_BIG_INT, value.to_bytes((value.bit_length() + 7) // 8, "big"))
    raise TypeError(f"cannot record {type(value).__name__}")


def _unpack(packed: bytes) -> Any:
    return msgpack.unpackb(packed, use_list=False, ext_hook=_unpack_big_int)


def _unpack_big_int(code: int, data: bytes) -> int:
    if code != _BIG_INT:
        raise ValueError(f"unknown record extension {code}")
    return int.from_bytes(data, "big")


def _transaction_fields(tx: Any) -> tuple:
    """A py-evm signed transaction as RecordedTransaction's fields (sender already recovered)."""
    type_id = getattr(tx, "type_id", None) or 0
    typed = type_id > 0
    dynamic = type_id >= 2
    return (
        type_id, tx.hash, bytes(tx.sender), tx.chain_id, tx.nonce, 0 if dynamic else tx.gas_price,
        tx.max_priority_fee_per_gas if dynamic else 0, tx.max_fee_per_gas if dynamic else 0, tx.gas, tx.to,
        tx.value, tx.data,
        tuple((address, tuple(keys)) for address, keys in tx.access_list) if typed else (),
        tx.max_fee_per_blob_gas if type_id == 3 else 0,
        tuple(tx.blob_versioned_hashes) if type_id == 3 else (),
        tuple((a.chain_id, a.address, a.nonce, a.y_parity, a.r, a.s) for a in tx.authorization_list)
        if type_id == 4 else (),
        tx.y_parity if typed else tx.v, tx.y_parity if typed else (tx.v - 35) % 2 if tx.v >= 35 else tx.v - 27,
        tx.r, tx.s,
    )


def encode_body(block: BlockAPI) -> bytes:
    return _pack((len(rlp.encode(block)), tuple(_transaction_fields(tx) for tx in block.transactions)))


def decode_body(packed: bytes) -> tuple[int, tuple[RecordedTransaction, ...]]:
    """(block size, transactions); raises ValueError or TypeError (msgpack's errors are
    ValueError subclasses) on a damaged record."""
    size, items = _unpack(packed)
    transactions = []
    for fields in items:
        tx = RecordedTransaction(*fields)
        if len(tx.hash) != 32 or len(tx.sender) != 20:
            raise ValueError("damaged body record")
        if tx.authorization_list:
            tx = tx._replace(authorization_list=tuple(RecordedAuthorization(*a) for a in tx.authorization_list))
        transactions.append(tx)
    return size, tuple(transactions)


def encode_receipts(block: BlockAPI, receipts: Sequence[ReceiptAPI]) -> bytes:
    return _pack(tuple((r.state_root, r.gas_used, r.bloom,
                        tuple((log.address, tuple(topic_bytes(t) for t in log.topics), log.data) for log in r.logs),
                        b"" if tx.to else generate_contract_address(bytes(tx.sender), tx.nonce))
                       for tx, r in zip(block.transactions, receipts)))


def decode_receipts(packed: bytes) -> tuple[RecordedReceipt, ...]:
    """Raises ValueError or TypeError on a damaged record."""
    return tuple(RecordedReceipt(root, cumulative, bloom, tuple(RecordedLog(*log) for log in logs), created)
                 for root, cumulative, bloom, logs, created in _unpack(packed))


# Header shapes by field count, as py-evm's PragueBackwardsHeader tells them apart.
_HEADER_CLASSES = {len(c._meta.field_names): c for c in (
    BlockHeader, LondonBlockHeader, ShanghaiBlockHeader, CancunBlockHeader, PragueBlockHeader)}


def decode_header(encoded: bytes, block_hash: bytes) -> BlockHeaderAPI | None:
    """A committed header from its RLP, without pyrlp's per-object argument validation (it was
    validated when committed): 45 us instead of 190 us, and an explorer reads each once.
    None for a shape not listed here (the caller asks py-evm then)."""
    values = rlp.decode(encoded)
    header_class = _HEADER_CLASSES.get(len(values))
    if header_class is None:
        return None
    header = object.__new__(header_class)
    for value, attr in zip(header_class._meta.sedes.deserialize(values), header_class._meta.field_attrs):
        setattr(header, attr, value)
    header._hash = block_hash  # py-evm's lazy hash: read under it, so no re-encoding to hash it
    return header


def topic_bytes(topic: int) -> bytes:
    return topic.to_bytes(32, "big")
