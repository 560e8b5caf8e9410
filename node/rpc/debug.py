"""The `debug_` namespace (go-ethereum's): raw RLP of blocks, headers, receipts and transactions,
and transaction/block traces with the struct logger or `callTracer` (see `vm.tracing`).

Off unless `--http.api` names `debug`, as in geth. Traces replay blocks in a worker thread behind
its own capacity limiter, each under `vm.tracing.TraceLimits`, reading state through one
shared `ContentCache` (an indexer traces block after block over mostly the same trie nodes)."""
from __future__ import annotations

import functools
from typing import Annotated

import rlp
import trio

from node.chain import UnknownBlock
from node.readcache import ContentCache
from node.rpc import format as F
from node.rpc import params as P
from node.rpc.errors import RpcError
from node.rpc.namespaces import RpcContext, register_namespace
from vm.tracing import TraceConfig, TraceError, TraceLimits, trace_block, trace_transaction

TRACE_THREADS = 1
"""A replay holds the GIL except while LevelDB reads, so a second trace thread adds no
throughput: it only trades the GIL back and forth at every read (same-load A/B over 300 blocks
of the indexing bench: 8-13 ms of CPU per traceBlock request with one thread, 11-14 ms with two)."""


def _trace_config(value: object) -> TraceConfig:
    try:
        return TraceConfig.from_json(value)
    except TraceError as exc:
        raise ValueError(str(exc)) from None


class Debug:
    def __init__(self, ctx: RpcContext, limits: TraceLimits = TraceLimits()) -> None:
        self.node = ctx.node
        self.limits = limits
        self.limiter = trio.CapacityLimiter(TRACE_THREADS)
        self._chain = None

    def _evm_chain(self):
        """The py-evm chain traces replay on: built once (building one costs a header), over a
        read cache of the node's database shared by every trace."""
        if self._chain is None:
            chain_class = type(self.node.evm_chain())
            self._chain = chain_class(ContentCache(self.node.db))
        return self._chain

    # -- raw RLP ---------------------------------------------------------------------------
    def _header(self, ref) -> object:
        target = ref.hash if isinstance(ref, P.BlockHash) else ref
        try:
            return self.node.resolve_block(target)
        except UnknownBlock:
            if isinstance(ref, P.BlockHash):
                raise RpcError(f"block {F.hexdata(ref.hash)} not found") from None
            raise RpcError(f"block #{ref} not found" if isinstance(ref, int) else "block not found") from None

    def raw_header(self, block: Annotated[object, P.block_id]) -> str:
        return F.hexdata(rlp.encode(self._header(block)))

    def raw_block(self, block: Annotated[object, P.block_id]) -> str:
        return F.hexdata(rlp.encode(self.node.block_by_hash(self._header(block).hash)))

    def raw_receipts(self, block: Annotated[object, P.block_id]) -> list[str]:
        return [F.hexdata(r.encode()) for r in self.node.receipts(self._header(block))]

    def raw_transaction(self, tx_hash: Annotated[bytes, P.hash32]) -> str | None:
        raw = self.node.raw_transaction(tx_hash)
        return None if raw is None else F.hexdata(raw)

    # -- traces ----------------------------------------------------------------------------
    # Everything runs in the trace thread, block lookups included: a LevelDB read releases the
    # GIL, and the event loop would then wait a whole switch interval behind a replay to get it
    # back for each read.
    async def _run(self, fn, *args):
        try:
            return await trio.to_thread.run_sync(functools.partial(fn, *args), limiter=self.limiter)
        except TraceError as exc:
            raise RpcError(str(exc)) from None

    def _trace_block(self, block, config: TraceConfig) -> list[dict]:
        results = trace_block(self._evm_chain(), block, config, self.limits)
        return [{"txHash": F.hexdata(tx.hash), "result": r} for tx, r in zip(block.transactions, results)]

    def _trace_block_number(self, number: object, config: TraceConfig) -> list[dict]:
        try:
            header = self.node.resolve_block(number)
        except UnknownBlock:
            raise RpcError(f"block #{number} not found") from None
        return self._trace_block(self.node.block_by_hash(header.hash), config)

    def _trace_block_hash(self, block_hash: bytes, config: TraceConfig) -> list[dict]:
        block = self.node.block_by_hash(block_hash)
        if block is None:
            raise RpcError(f"block {F.hexdata(block_hash)} not found")
        return self._trace_block(block, config)

    def _trace_transaction(self, tx_hash: bytes, config: TraceConfig) -> object:
        location = self.node.tx_location(tx_hash)
        if location is None:
            raise RpcError("transaction not found")
        number, index = location
        return trace_transaction(self._evm_chain(), self.node.block_by_number(number), index, config, self.limits)

    async def trace_transaction(self, tx_hash: Annotated[bytes, P.hash32],
                                config: Annotated[TraceConfig, _trace_config] = TraceConfig()) -> object:
        return await self._run(self._trace_transaction, tx_hash, config)

    async def trace_block_by_number(self, number: Annotated[object, P.block_number],
                                    config: Annotated[TraceConfig, _trace_config] = TraceConfig()) -> list:
        return await self._run(self._trace_block_number, number, config)

    async def trace_block_by_hash(self, block_hash: Annotated[bytes, P.hash32],
                                  config: Annotated[TraceConfig, _trace_config] = TraceConfig()) -> list:
        return await self._run(self._trace_block_hash, block_hash, config)

    def methods(self) -> dict:
        return {
            "debug_getRawHeader": self.raw_header,
            "debug_getRawBlock": self.raw_block,
            "debug_getRawReceipts": self.raw_receipts,
            "debug_getRawTransaction": self.raw_transaction,
            "debug_traceTransaction": self.trace_transaction,
            "debug_traceBlockByNumber": self.trace_block_by_number,
            "debug_traceBlockByHash": self.trace_block_by_hash,
        }


register_namespace("debug", lambda ctx: Debug(ctx).methods())
