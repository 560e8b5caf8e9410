"""The `ots_` namespace (Otterscan's API, level 8) and `erigon_getHeaderByNumber`, which
Otterscan calls on start. Address history comes from `node.indexes_ots`, written in the block's
own atomic commit; internal operations and traces replay the transaction with `vm.tracing`'s
callTracer in a worker thread."""
from __future__ import annotations

import functools
from typing import Annotated

import trio

from node import indexes_ots
from node.chain import UnknownBlock
from node.rpc import format as F
from node.rpc import params as P
from node.rpc.errors import RpcError
from node.rpc.namespaces import RpcContext, register_namespace
from vm.tracing import TraceConfig, TraceError, TraceLimits, trace_transaction

API_LEVEL = 8
MAX_PAGE_SIZE = 1000
OPERATION_TYPES = {"CALL": 0, "SELFDESTRUCT": 1, "CREATE": 2, "CREATE2": 3}
CALL_TRACER = TraceConfig(tracer="callTracer")


def _page_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        value = P.uint64(value)
    if not 0 < value <= MAX_PAGE_SIZE:
        raise ValueError(f"page size {value} out of range 1..{MAX_PAGE_SIZE}")
    return value


def _plain_number(value: object) -> int:
    """Otterscan sends block numbers and page numbers as JSON numbers; geth-style hex too."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("want a block number")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("negative number")
        return value
    return P.uint64(value)


def _frames(frame: dict, depth: int = 0):
    """Pre-order walk of a callTracer tree: (frame, depth)."""
    yield frame, depth
    for child in frame.get("calls", ()):
        yield from _frames(child, depth + 1)


class Ots:
    def __init__(self, ctx: RpcContext, limits: TraceLimits = TraceLimits()) -> None:
        self.node = ctx.node
        self.limits = limits
        self.limiter = trio.CapacityLimiter(2)

    # -- helpers ----------------------------------------------------------------------------
    def _located(self, tx_hash: bytes):
        location = self.node.tx_location(tx_hash)
        if location is None:
            raise RpcError("transaction not found")
        number, index = location
        return self.node.block_by_number(number), index

    async def _call_tree(self, tx_hash: bytes) -> dict:
        block, index = self._located(tx_hash)
        fn = functools.partial(trace_transaction, self.node.evm_chain(), block, index, CALL_TRACER, self.limits)
        try:
            return await trio.to_thread.run_sync(fn, limiter=self.limiter)
        except TraceError as exc:
            raise RpcError(str(exc)) from None

    def _block(self, number: int):
        block = self.node.block_by_number(number)
        if block is None:
            raise RpcError(f"block #{number} not found")
        return block

    def _details(self, block) -> dict:
        receipts = self.node.receipts(block.header)
        out = F.block(block, False)
        del out["transactions"]
        out["transactionCount"] = len(block.transactions)
        out["logsBloom"] = None
        fees, previous = 0, 0
        for tx, receipt in zip(block.transactions, receipts):
            fees += (receipt.gas_used - previous) * F.effective_gas_price(tx, block.header.base_fee_per_gas)
            previous = receipt.gas_used
        return {"block": out, "issuance": {"blockReward": "0x0", "uncleReward": "0x0", "issuance": "0x0"},
                "totalFees": F.qty(fees)}

    # -- methods ----------------------------------------------------------------------------
    def api_level(self) -> int:
        return API_LEVEL

    def has_code(self, address: Annotated[bytes, P.address], block: Annotated[object, P.block_id] = "latest") -> bool:
        target = block.hash if isinstance(block, P.BlockHash) else block
        try:
            header = self.node.resolve_block(target)
        except UnknownBlock:
            raise RpcError("header not found") from None
        return bool(self.node.state_at(header).get_code(address))

    async def transaction_error(self, tx_hash: Annotated[bytes, P.hash32]) -> str:
        root = await self._call_tree(tx_hash)
        return root.get("output", "0x") if root.get("error") else "0x"

    async def internal_operations(self, tx_hash: Annotated[bytes, P.hash32]) -> list[dict]:
        root = await self._call_tree(tx_hash)
        operations = []
        for frame, _ in _frames(root):
            kind = OPERATION_TYPES.get(frame["type"])
            value = int(frame.get("value", "0x0"), 16)
            if kind is None or (kind == 0 and value == 0):
                continue  # plain calls move no value; as Erigon and anvil, reverted frames still count
            operations.append({"type": kind, "from": frame["from"], "to": frame.get("to"), "value": F.qty(value)})
        return operations

    async def trace_transaction(self, tx_hash: Annotated[bytes, P.hash32]) -> list[dict]:
        root = await self._call_tree(tx_hash)
        return [{"type": frame["type"], "depth": depth, "from": frame["from"], "to": frame.get("to"),
                 "value": frame.get("value", "0x0"), "input": frame.get("input", "0x"),
                 "output": frame.get("output", "0x")}
                for frame, depth in _frames(root)]

    def block_details(self, number: Annotated[int, _plain_number]) -> dict:
        return self._details(self._block(number))

    def block_details_by_hash(self, block_hash: Annotated[bytes, P.hash32]) -> dict:
        block = self.node.block_by_hash(block_hash)
        if block is None:
            raise RpcError(f"block {F.hexdata(block_hash)} not found")
        return self._details(block)

    def block_transactions(self, number: Annotated[int, _plain_number], page: Annotated[int, _plain_number],
                           page_size: Annotated[int, _page_size]) -> dict:
        block = self._block(number)
        receipts = self.node.receipts(block.header)
        first, last = page * page_size, min((page + 1) * page_size, len(block.transactions))
        full = F.block(block, True)
        full["transactionCount"] = len(block.transactions)
        full["logsBloom"] = None
        txs = full["transactions"][first:last]
        for tx in txs:
            tx["input"] = tx["input"][:10]  # the 4-byte selector only
        full["transactions"] = txs
        out_receipts = []
        for index in range(first, last):
            receipt = F.receipt_at(block.header, block.transactions, receipts, index)
            receipt["logs"] = None
            receipt["logsBloom"] = None
            receipt["timestamp"] = F.qty(block.header.timestamp)
            out_receipts.append(receipt)
        return {"fullblock": full, "receipts": out_receipts}

    def _search(self, address: bytes, lo: int, hi: int, page_size: int, reverse: bool) -> tuple[list, list, bool]:
        """Matches in blocks lo..hi, walking backwards (reverse) or forwards; stops after the
        block where page_size is reached. Returns (txs, receipts, reached_the_end)."""
        txs, receipts, block_cache, stopped_at = [], [], {}, None
        for number, index in indexes_ots.appearances(self.node.db, address, lo, hi, reverse=reverse):
            if stopped_at is not None and number != stopped_at:
                return txs, receipts, False
            block = block_cache.get(number) or block_cache.setdefault(number, self.node.block_by_number(number))
            block_receipts = block_cache.get(("r", number)) or block_cache.setdefault(
                ("r", number), self.node.receipts(block.header))
            txs.append(F.transaction(block.transactions[index], block.header, index))
            receipt = F.receipt_at(block.header, block.transactions, block_receipts, index)
            receipt["timestamp"] = F.qty(block.header.timestamp)
            receipts.append(receipt)
            if len(txs) >= page_size and stopped_at is None:
                stopped_at = number
        return txs, receipts, True

    def search_before(self, address: Annotated[bytes, P.address], number: Annotated[int, _plain_number],
                      page_size: Annotated[int, _page_size]) -> dict:
        head = self.node.head().block_number
        hi = head if number == 0 else min(number - 1, head)
        txs, receipts, done = self._search(address, 0, hi, page_size, reverse=True) if hi >= 0 else ([], [], True)
        return {"txs": txs, "receipts": receipts, "firstPage": number == 0, "lastPage": done}

    def search_after(self, address: Annotated[bytes, P.address], number: Annotated[int, _plain_number],
                     page_size: Annotated[int, _page_size]) -> dict:
        head = self.node.head().block_number
        txs, receipts, done = self._search(address, number + 1 if number else 0, head, page_size, reverse=False)
        txs.reverse()
        receipts.reverse()
        return {"txs": txs, "receipts": receipts, "firstPage": done, "lastPage": number == 0}

    def by_sender_and_nonce(self, sender: Annotated[bytes, P.address],
                            nonce: Annotated[int, _plain_number]) -> str | None:
        tx_hash = indexes_ots.by_sender_and_nonce(self.node.db, sender, nonce)
        return None if tx_hash is None else F.hexdata(tx_hash)

    def contract_creator(self, address: Annotated[bytes, P.address]) -> dict | None:
        found = indexes_ots.creator(self.node.db, address)
        if found is None:
            return None
        tx_hash, creator = found
        return {"hash": F.hexdata(tx_hash), "creator": F.addr(creator)}

    def header_by_number(self, number: Annotated[int, _plain_number]) -> dict | None:
        header = self.node.header_by_number(number)
        return None if header is None else F.header_only(header)

    def methods(self) -> dict:
        return {
            "ots_getApiLevel": self.api_level,
            "ots_hasCode": self.has_code,
            "ots_getTransactionError": self.transaction_error,
            "ots_getInternalOperations": self.internal_operations,
            "ots_traceTransaction": self.trace_transaction,
            "ots_getBlockDetails": self.block_details,
            "ots_getBlockDetailsByHash": self.block_details_by_hash,
            "ots_getBlockTransactions": self.block_transactions,
            "ots_searchTransactionsBefore": self.search_before,
            "ots_searchTransactionsAfter": self.search_after,
            "ots_getTransactionBySenderAndNonce": self.by_sender_and_nonce,
            "ots_getContractCreator": self.contract_creator,
        }


register_namespace("ots", lambda ctx: Ots(ctx).methods())
register_namespace("erigon", lambda ctx: {"erigon_getHeaderByNumber": Ots(ctx).header_by_number})
