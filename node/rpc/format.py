"""py-evm objects -> the JSON shapes of go-ethereum / execution-apis (hex quantities, 0x data)."""
from __future__ import annotations

from typing import NamedTuple, Sequence

import rlp
from eth._utils.address import generate_contract_address

GAS_PER_BLOB = 2**17  # EIP-4844


def qty(value: int) -> str:
    return hex(value)


def hexdata(value: bytes) -> str:
    return "0x" + value.hex()


def addr(value: bytes | None) -> str | None:
    return None if not value else "0x" + value.hex()


def tx_type(tx) -> int:
    type_id = getattr(tx, "type_id", None)
    return 0 if type_id is None else type_id


def effective_gas_price(tx, base_fee: int | None) -> int:
    if tx_type(tx) < 2:
        return tx.gas_price
    if base_fee is None:
        return tx.max_fee_per_gas
    return min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)


def _access_list(tx) -> list[dict]:
    return [{"address": addr(a), "storageKeys": ["0x%064x" % k for k in keys]} for a, keys in tx.access_list]


def transaction(tx, header=None, index: int | None = None) -> dict:
    """A transaction, mined (with header and index) or pending."""
    kind = tx_type(tx)
    out = {
        "blockHash": hexdata(header.hash) if header is not None else None,
        "blockNumber": qty(header.block_number) if header is not None else None,
        "blockTimestamp": qty(header.timestamp) if header is not None else None,
        "from": addr(tx.sender),
        "gas": qty(tx.gas),
        "gasPrice": qty(effective_gas_price(tx, getattr(header, "base_fee_per_gas", None))),
        "hash": hexdata(tx.hash),
        "input": hexdata(tx.data),
        "nonce": qty(tx.nonce),
        "to": addr(tx.to),
        "transactionIndex": qty(index) if index is not None else None,
        "value": qty(tx.value),
        "type": qty(kind),
    }
    if kind == 0:
        out["v"] = qty(tx.v)
        if tx.v >= 35:  # EIP-155 protected
            out["chainId"] = qty((tx.v - 35) // 2)
    else:
        out["chainId"] = qty(tx.chain_id)
        out["accessList"] = _access_list(tx)
        out["v"] = qty(tx.y_parity)
        out["yParity"] = qty(tx.y_parity)
    if kind >= 2:
        out["maxFeePerGas"] = qty(tx.max_fee_per_gas)
        out["maxPriorityFeePerGas"] = qty(tx.max_priority_fee_per_gas)
    if kind == 3:  # EIP-4844
        out["maxFeePerBlobGas"] = qty(tx.max_fee_per_blob_gas)
        out["blobVersionedHashes"] = [hexdata(h) for h in tx.blob_versioned_hashes]
    if kind == 4:
        out["authorizationList"] = _authorizations(tx)
    out["r"] = qty(tx.r)
    out["s"] = qty(tx.s)
    return out


def unsigned_transaction(tx) -> dict:
    """A transaction not yet signed, as go-ethereum's Transaction.MarshalJSON writes it
    (eth_fillTransaction): no sender or block fields, the fee fields of other types null."""
    kind = tx_type(tx)
    out = {"type": qty(kind)}
    if kind:
        out["chainId"] = qty(tx.chain_id)
    out.update({"nonce": qty(tx.nonce), "to": addr(tx.to), "gas": qty(tx.gas),
                "gasPrice": qty(tx.gas_price) if kind < 2 else None,
                "maxPriorityFeePerGas": qty(tx.max_priority_fee_per_gas) if kind >= 2 else None,
                "maxFeePerGas": qty(tx.max_fee_per_gas) if kind >= 2 else None,
                "value": qty(tx.value), "input": hexdata(tx.data)})
    if kind:
        out["accessList"] = _access_list(tx)
    if kind == 4:
        out["authorizationList"] = _authorizations(tx)
    signature = tx.y_parity if kind else tx.v
    out.update({"v": qty(signature), "r": qty(tx.r), "s": qty(tx.s)})
    if kind:
        out["yParity"] = qty(tx.y_parity)
    out["hash"] = hexdata(tx.hash)
    return out


def _authorizations(tx) -> list[dict]:
    return [{"chainId": qty(a.chain_id), "address": addr(a.address), "nonce": qty(a.nonce),
             "yParity": qty(a.y_parity), "r": qty(a.r), "s": qty(a.s)} for a in tx.authorization_list]


def log_entry(log, header, tx_hash: bytes, tx_index: int, log_index: int) -> dict:
    return _log(log, _BlockRef.of(header), hexdata(tx_hash), qty(tx_index), log_index)


class _BlockRef(NamedTuple):
    """A block's fields that each receipt and log repeat, encoded once per receipt."""

    hash: str
    number: str
    timestamp: str
    base_fee: int | None
    blob_base_fee: int | None = None  # for receipts of blob transactions

    @classmethod
    def of(cls, header, blob_base_fee: int | None = None) -> "_BlockRef":
        return cls(hexdata(header.hash), qty(header.block_number), qty(header.timestamp),
                   getattr(header, "base_fee_per_gas", None), blob_base_fee)


def _log(log, block: _BlockRef, tx_hash: str, tx_index: str, log_index: int) -> dict:
    return {
        "address": addr(log.address),
        "topics": ["0x%064x" % t if isinstance(t, int) else hexdata(t) for t in log.topics],
        "data": hexdata(log.data),
        "blockNumber": block.number,
        "transactionHash": tx_hash,
        "transactionIndex": tx_index,
        "blockHash": block.hash,
        "blockTimestamp": block.timestamp,
        "logIndex": qty(log_index),
        "removed": False,
    }


def _receipt(block: _BlockRef, tx, receipt, index: int, previous_gas: int, first_log_index: int) -> dict:
    sender, tx_hash, tx_index = tx.sender, hexdata(tx.hash), qty(index)
    logs = [_log(entry, block, tx_hash, tx_index, first_log_index + i) for i, entry in enumerate(receipt.logs)]
    created = getattr(receipt, "contract_address", None)  # recorded at commit (node.records)
    if created is None and not tx.to:
        created = generate_contract_address(sender, tx.nonce)
    out = {
        "blockHash": block.hash,
        "blockNumber": block.number,
        "contractAddress": addr(created),
        "cumulativeGasUsed": qty(receipt.gas_used),
        "effectiveGasPrice": qty(effective_gas_price(tx, block.base_fee)),
        "from": addr(sender),
        "gasUsed": qty(receipt.gas_used - previous_gas),
        "logs": logs,
        "logsBloom": "0x%0512x" % receipt.bloom,
        **_outcome(receipt.state_root),
        "to": addr(tx.to),
        "transactionHash": tx_hash,
        "transactionIndex": tx_index,
        "type": qty(tx_type(tx)),
    }
    if tx_type(tx) == 3:  # EIP-4844, as geth adds them
        out["blobGasUsed"] = qty(GAS_PER_BLOB * len(tx.blob_versioned_hashes))
        out["blobGasPrice"] = qty(block.blob_base_fee or 0)
    return out


def _outcome(state_root: bytes) -> dict:
    """Byzantium and later: `status`; before it receipts carried the post-state `root` (as geth shows)."""
    if len(state_root) == 32:
        return {"root": hexdata(state_root)}
    return {"status": "0x1" if state_root == b"\x01" else "0x0"}


def receipt_at(header, transactions: Sequence, receipt_list: Sequence, index: int,
               blob_base_fee: int | None = None) -> dict:
    """One receipt: its gasUsed and logIndex depend on the receipts before it in the block.
    `blob_base_fee`: the block's, which receipts of blob transactions report."""
    previous_gas = receipt_list[index - 1].gas_used if index else 0
    first_log_index = sum(len(r.logs) for r in receipt_list[:index])
    return _receipt(_BlockRef.of(header, blob_base_fee), transactions[index], receipt_list[index], index,
                    previous_gas, first_log_index)


def receipts(header, transactions: Sequence, receipt_list: Sequence, blob_base_fee: int | None = None) -> list[dict]:
    """All receipts of a block, in one pass."""
    out = []
    previous_gas = log_index = 0
    block = _BlockRef.of(header, blob_base_fee)
    for index, (tx, receipt) in enumerate(zip(transactions, receipt_list)):
        out.append(_receipt(block, tx, receipt, index, previous_gas, log_index))
        previous_gas = receipt.gas_used
        log_index += len(receipt.logs)
    return out


def block(blk, full: bool) -> dict:
    """A block: the header fields plus size, transactions (hashes or full), uncles, withdrawals."""
    header = blk.header
    if full:
        txs = [transaction(tx, header, i) for i, tx in enumerate(blk.transactions)]
    else:
        txs = [hexdata(tx.hash) for tx in blk.transactions]
    out = header_only(header)
    size = getattr(blk, "size", None)  # a node.records.BlockRecord carries it; py-evm's block is encoded
    out["size"] = qty(len(rlp.encode(blk)) if size is None else size)
    out["transactions"] = txs
    out["uncles"] = [hexdata(u.hash) for u in blk.uncles]
    if "withdrawals_root" in header._meta.field_names:
        out["withdrawals"] = [
            {"index": qty(w.index), "validatorIndex": qty(w.validator_index), "address": addr(w.address),
             "amount": qty(w.amount)} for w in blk.withdrawals
        ]
    return out


_HEADER_FIELDS = (  # (JSON name, py-evm attribute, encoder); fields a fork lacks are left out
    ("baseFeePerGas", "base_fee_per_gas", qty),
    ("blobGasUsed", "blob_gas_used", qty),
    ("difficulty", "difficulty", qty),
    ("excessBlobGas", "excess_blob_gas", qty),
    ("extraData", "extra_data", hexdata),
    ("gasLimit", "gas_limit", qty),
    ("gasUsed", "gas_used", qty),
    ("hash", "hash", hexdata),
    ("logsBloom", "bloom", lambda b: "0x%0512x" % b),
    ("miner", "coinbase", addr),
    ("mixHash", "mix_hash", hexdata),
    ("nonce", "nonce", hexdata),
    ("number", "block_number", qty),
    ("parentBeaconBlockRoot", "parent_beacon_block_root", hexdata),
    ("parentHash", "parent_hash", hexdata),
    ("receiptsRoot", "receipt_root", hexdata),
    ("requestsHash", "requests_hash", hexdata),
    ("sha3Uncles", "uncles_hash", hexdata),
    ("stateRoot", "state_root", hexdata),
    ("timestamp", "timestamp", qty),
    ("transactionsRoot", "transaction_root", hexdata),
    ("withdrawalsRoot", "withdrawals_root", hexdata),
)


def header_only(header) -> dict:
    """The header's fields (also the newHeads notification): those its fork defines."""
    out = {}
    fields = header._meta.field_names
    for json_name, attr, encode in _HEADER_FIELDS:
        if attr in fields or attr == "hash":
            out[json_name] = encode(getattr(header, attr))
    return out


def log_record(record, timestamp: int) -> dict:
    """A `node.chain.LogRecord` (the log index's answer) as eth_getLogs returns it."""
    return {
        "address": addr(record.address),
        "topics": [hexdata(t) for t in record.topics],
        "data": hexdata(record.data),
        "blockNumber": qty(record.block_number),
        "transactionHash": hexdata(record.transaction_hash),
        "transactionIndex": qty(record.transaction_index),
        "blockHash": hexdata(record.block_hash),
        "blockTimestamp": qty(timestamp),
        "logIndex": qty(record.log_index),
        "removed": False,
    }
