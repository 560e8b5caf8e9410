"""Otterscan's indexes, written in the same atomic batch as the block (`Node.index_writers`):
address -> transactions that touch it, (sender, nonce) -> transaction, contract -> creation.

An address "touches" a transaction when it sends it, receives it, is created by it or emits a
log in it. Calls deeper in the call tree that emit no log are not indexed: finding them needs a
trace of every block at commit time, which would double the cost of block execution."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from eth._utils.address import generate_contract_address

ADDRESS = b"ol:ots-addr:"  # + address(20) + number(8) + tx index(4) -> b""
SENDER_NONCE = b"ol:ots-nonce:"  # + sender(20) + nonce(8) -> tx hash
CREATOR = b"ol:ots-creator:"  # + contract(20) -> tx hash(32) + creator(20)


def _number(n: int) -> bytes:
    return n.to_bytes(8, "big")


def address_key(address: bytes, number: int, index: int) -> bytes:
    return ADDRESS + address + _number(number) + index.to_bytes(4, "big")


def parse_address_key(key: bytes) -> tuple[int, int]:
    """(block number, tx index) of an ADDRESS key."""
    return int.from_bytes(key[-12:-4], "big"), int.from_bytes(key[-4:], "big")


def write(batch: Any, block: Any, receipts: tuple) -> None:
    """The index writer: `Node.index_writers` calls it inside the block's write batch."""
    number = block.header.block_number
    for index, (tx, receipt) in enumerate(zip(block.transactions, receipts)):
        sender = tx.sender
        touched = {sender}
        if tx.to:
            touched.add(tx.to)
        else:
            created = generate_contract_address(sender, tx.nonce)
            touched.add(created)
            batch[CREATOR + created] = tx.hash + sender
        touched.update(log.address for log in receipt.logs)
        for address in touched:
            batch[address_key(address, number, index)] = b""
        batch[SENDER_NONCE + sender + _number(tx.nonce)] = tx.hash


def appearances(db: Any, address: bytes, first: int, last: int, reverse: bool = False) -> Iterator[tuple[int, int]]:
    """(block number, tx index) where `address` appears in blocks first..last, in order."""
    start = ADDRESS + address + _number(first)
    stop = ADDRESS + address + _number(last + 1)
    keys = db.keys_between(start, stop, reverse=reverse)
    return (parse_address_key(key) for key in keys)


def by_sender_and_nonce(db: Any, sender: bytes, nonce: int) -> bytes | None:
    return db.get(SENDER_NONCE + sender + _number(nonce))


def creator(db: Any, contract: bytes) -> tuple[bytes, bytes] | None:
    """(creation tx hash, creator) of a contract created by a top-level transaction."""
    value = db.get(CREATOR + contract)
    return None if value is None else (value[:32], value[32:])
