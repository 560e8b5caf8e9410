"""The `eth_` namespace: chain, state, execution, transactions, blocks, logs and filters.

Cheap reads and transaction admission run inline on the event loop (the Node's reads are
lock-free over committed LevelDB data); EVM execution goes to worker threads behind a capacity
limiter and a timeout, so a slow `eth_call` cannot stall other clients.
"""
from __future__ import annotations

import functools
from typing import Annotated

import trio
from eth._utils.calculations import fake_exponential
from eth.exceptions import Revert, VMError
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas

from genesis import geth
from node.chain import CallError, UnknownBlock
from node.mempool import TxPoolError
from node.rpc import format as F
from node.rpc import params as P
from node.rpc.errors import ExecutionReverted, InvalidParams, RpcError
from node.rpc.format import GAS_PER_BLOB
from node.rpc.namespaces import RpcContext, register_namespace
from node.rpc.simulate import apply_state, state_overrides
from vm.tracing import geth_error, revert_reason

DEFAULT_TIP = 10**9  # 1 gwei, what geth's oracle and anvil suggest on an idle chain
MAX_FEE_HISTORY = 1024  # geth's maxBlockCount
STATE_CACHE = 8  # recent state roots kept open for reads
BLOCK_CACHE = 128  # recent decoded blocks and receipt lists, by block hash
MIN_BLOB_BASE_FEE = 1  # EIP-4844
ZERO_ADDRESS = b"\x00" * 20


def _percentiles(value: object) -> list[float]:
    if not isinstance(value, list) or any(isinstance(p, bool) or not isinstance(p, (int, float)) for p in value):
        raise ValueError("rewardPercentiles must be an array of numbers")
    for i, p in enumerate(value):
        if not 0 <= p <= 100 or (i and p < value[i - 1]):
            raise ValueError(f"invalid reward percentile: {p}")
    return [float(p) for p in value]


def _block_count(value: object) -> int:
    """geth accepts the count as a hex quantity or a plain JSON number."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("block count must not be negative")
        return value
    return P.uint64(value)


def blob_fees(genesis, header) -> tuple[int, int, float]:
    """EIP-4844 for eth_feeHistory and eth_blobBaseFee: (the blob base fee of `header`'s block,
    that of the block after it, the block's blob gas used / its maximum); 0 where a block's fork
    has no blobs (before Cancun)."""
    here = geth.PY_EVM_BLOB_SCHEDULE.get(genesis.fork_at(header.block_number))
    after = geth.PY_EVM_BLOB_SCHEDULE.get(genesis.fork_at(header.block_number + 1))
    excess = getattr(header, "excess_blob_gas", 0) or 0
    used = getattr(header, "blob_gas_used", 0) or 0
    fee = fake_exponential(MIN_BLOB_BASE_FEE, excess, here[2]) if here else 0
    ratio = used / (here[1] * GAS_PER_BLOB) if here else 0.0
    if after is None:
        return fee, 0, ratio
    target = after[0] * GAS_PER_BLOB  # the next block's fork sets the target, as in geth
    next_excess = max(0, excess + used - target)
    return fee, fake_exponential(MIN_BLOB_BASE_FEE, next_excess, after[2]), ratio


def overriding(overrides: dict | None):
    """eth_call's and eth_estimateGas's state overrides (geth's third argument) as a function that
    applies them to the throw-away state the call runs on; None without overrides."""
    if not overrides:
        return None
    if any(o.move_to is not None for o in overrides.values()):
        raise InvalidParams("movePrecompileToAddress is supported by eth_simulateV1 only")
    return functools.partial(apply_state, overrides=overrides)


def _cached(cache: dict, key: bytes, load, limit: int = 128):
    """`cache[key]`, loading it on a miss; the oldest entry goes when `limit` is reached."""
    value = cache.get(key)
    if value is None:
        value = load()
        if value is not None:
            if len(cache) >= limit:
                cache.pop(next(iter(cache)))
            cache[key] = value
    return value


class Eth:
    def __init__(self, ctx: RpcContext) -> None:
        self.ctx = ctx
        self.node = ctx.node
        self.config = ctx.config

    # -- helpers -------------------------------------------------------------------
    def _resolve(self, ref) -> object | None:
        """The header a block reference names, or None when unknown."""
        target = ref.hash if isinstance(ref, P.BlockHash) else ref
        try:
            header = self.node.resolve_block(target)
        except UnknownBlock:
            return None
        if isinstance(ref, P.BlockHash) and ref.require_canonical:
            canonical = self.node.header_by_number(header.block_number)
            if canonical is None or canonical.hash != header.hash:
                raise RpcError(f"hash {F.hexdata(ref.hash)} is not currently canonical")
        return header

    def _header(self, ref) -> object:
        """Like `_resolve`, but an unknown block is an error (state reads), in geth's words."""
        header = self._resolve(ref)
        if header is None:
            if isinstance(ref, P.BlockHash):
                raise RpcError("header for hash not found")
            raise RpcError("header not found")
        return header

    def _state(self, header):
        """A read-only state at `header`, shared by requests for the same state root.

        State under a root never changes (archive trie), so one py-evm AccountDB per recent root
        keeps its decoded-account cache warm across requests: a wallet polling balances hits it."""
        return _cached(self.ctx.states, header.state_root, lambda: self.node.state_at(header), STATE_CACHE)

    def _block(self, header):
        """The block of a known header, decoded once: blocks are immutable, and receipt and
        transaction lookups (wallets polling, explorers indexing) ask for the same few blocks.
        Read from the body record written at commit when there is one (`node.records`)."""
        return _cached(self.ctx.blocks, header.hash,
                       lambda: self.node.block_record(header) or self.node.block_by_hash(header.hash), BLOCK_CACHE)

    def _block_by_hash(self, block_hash: bytes):
        header = self.node.header_by_hash(block_hash)
        return None if header is None else self._block(header)

    def _receipts(self, header):
        """The block's receipts: the record written at commit, else py-evm's receipt trie."""
        return _cached(self.ctx.receipts, header.hash,
                       lambda: self.node.receipt_record(header) or self.node.receipts(header), BLOCK_CACHE)

    def _receipt_view(self, header):
        """(transactions, receipts) of a block, for the receipt methods."""
        block = self._block(header)
        return None if block is None else (block.transactions, self._receipts(header))

    async def _run_heavy(self, fn, *args):
        """EVM work in a worker thread, at most `heavy_calls` at once, answered within
        `evm_timeout` (geth's --rpc.evmtimeout): py-evm cannot be interrupted, so a call past
        the deadline is abandoned and runs out its (capped) gas in the background."""
        timeout = self.config.evm_timeout
        with trio.move_on_after(timeout):
            return await trio.to_thread.run_sync(functools.partial(fn, *args), limiter=self.ctx.call_limiter,
                                                 abandon_on_cancel=True)
        raise RpcError(f"execution aborted (timeout = {timeout:g}s)")

    # -- chain ----------------------------------------------------------------------
    def chain_id(self) -> str:
        return F.qty(self.node.chain_id)

    def block_number(self) -> str:
        return F.qty(self.node.head().block_number)

    def syncing(self) -> bool | dict:
        """False when synced with a head that advances (what /ready checks; node.health, whose best
        peer height is the highest height this node has seen its peers at), else geth's progress
        object (startingBlock, currentBlock, highestBlock)."""
        readiness = self.ctx.readiness
        if readiness is not None:
            return readiness.syncing()
        head, target = self.node.head().block_number, self.node.sync_target
        if target is None or target <= head:
            return False
        return {"startingBlock": F.qty(self.node.sync_start if self.node.sync_start is not None else head),
                "currentBlock": F.qty(head), "highestBlock": F.qty(target)}

    def accounts(self) -> list:
        return []  # the node holds no unlocked keys (as geth without --unlock); wallets sign

    def gas_price(self) -> str:
        return F.qty(self._next_base_fee() + DEFAULT_TIP)

    def max_priority_fee(self) -> str:
        return F.qty(DEFAULT_TIP)

    def _next_base_fee(self) -> int:
        return calculate_expected_base_fee_per_gas(self.node.head())

    def fee_history(self, count: Annotated[int, _block_count], newest: Annotated[object, P.block_number],
                    percentiles: Annotated[list, _percentiles] = None) -> dict:
        newest_header = self._header(newest)
        count = min(count, MAX_FEE_HISTORY, newest_header.block_number + 1)
        oldest = newest_header.block_number - count + 1
        base_fees, ratios, blob_base_fees, blob_ratios, rewards = [], [], [], [], []
        for number in range(oldest, newest_header.block_number + 1):
            header = self.node.header_by_number(number)
            base_fees.append(F.qty(getattr(header, "base_fee_per_gas", 0)))  # 0 before London
            ratios.append(header.gas_used / header.gas_limit if header.gas_limit else 0.0)
            fee, _, ratio = blob_fees(self.node.genesis, header)
            blob_base_fees.append(F.qty(fee))
            blob_ratios.append(ratio)
            if percentiles:
                rewards.append(self._rewards(header, percentiles))
        london = "base_fee_per_gas" in newest_header._meta.field_names
        base_fees.append(F.qty(calculate_expected_base_fee_per_gas(newest_header) if london else 0))
        blob_base_fees.append(F.qty(blob_fees(self.node.genesis, newest_header)[1]))
        out = {"oldestBlock": F.qty(oldest), "baseFeePerGas": base_fees, "gasUsedRatio": ratios,
               "baseFeePerBlobGas": blob_base_fees, "blobGasUsedRatio": blob_ratios}
        if percentiles:
            out["reward"] = rewards
        return out

    def _rewards(self, header, percentiles: list[float]) -> list[str]:
        """Effective tips at gas-weighted percentiles, as geth's oracle computes them."""
        block = self._block(header)
        if block is None or not block.transactions:
            return ["0x0"] * len(percentiles)
        receipts = self._receipts(header)
        used, previous = [], 0
        for receipt in receipts:
            used.append(receipt.gas_used - previous)
            previous = receipt.gas_used
        base = getattr(header, "base_fee_per_gas", 0)
        tips = sorted((F.effective_gas_price(tx, base) - base, gas) for tx, gas in zip(block.transactions, used))
        out, index, cumulative = [], 0, tips[0][1]
        for p in percentiles:
            threshold = header.gas_used * p / 100
            while cumulative < threshold and index < len(tips) - 1:
                index += 1
                cumulative += tips[index][1]
            out.append(F.qty(tips[index][0]))
        return out

    # -- state ----------------------------------------------------------------------
    def get_balance(self, address: Annotated[bytes, P.address], block: Annotated[object, P.block_id] = "latest") -> str:
        return F.qty(self._state(self._header(block)).get_balance(address))

    def get_code(self, address: Annotated[bytes, P.address], block: Annotated[object, P.block_id] = "latest") -> str:
        return F.hexdata(self._state(self._header(block)).get_code(address))

    def get_storage_at(self, address: Annotated[bytes, P.address], slot: Annotated[int, P.storage_slot],
                       block: Annotated[object, P.block_id] = "latest") -> str:
        value = self._state(self._header(block)).get_storage(address, slot)
        return "0x%064x" % value

    def get_transaction_count(self, address: Annotated[bytes, P.address],
                              block: Annotated[object, P.block_id] = "latest") -> str:
        if block == "pending":
            return F.qty(self.node.mempool.pending_nonce(address))
        return F.qty(self._state(self._header(block)).get_nonce(address))

    # -- execution ----------------------------------------------------------------------
    def _call_args(self, tx: dict) -> dict:
        gas = tx.get("gas")
        if gas is not None and gas > self.config.call_gas_cap:
            tx = dict(tx, gas=self.config.call_gas_cap)
        return tx

    async def call(self, tx: Annotated[dict, P.call_request], block: Annotated[object, P.block_id] = "latest",
                   overrides: Annotated[dict, state_overrides] = None) -> str:
        header = self._header(block)
        computation = await self._run_heavy(self._execute, self._call_args(tx), header, overriding(overrides))
        return F.hexdata(computation.output)

    def _execute(self, tx: dict, header, prepare=None):
        try:
            computation = self.node.call(tx, header, prepare)
        except CallError as exc:  # bad call object (e.g. gas below intrinsic, insufficient funds)
            raise RpcError(str(exc)) from None
        if computation.is_error:
            if isinstance(computation.error, Revert):
                raise ExecutionReverted(revert_reason(computation.output), computation.output)
            raise RpcError(geth_error(computation.error))
        return computation

    async def estimate_gas(self, tx: Annotated[dict, P.call_request], block: Annotated[object, P.block_id] = "latest",
                           overrides: Annotated[dict, state_overrides] = None) -> str:
        header = self._header(block)
        return F.qty(await self._run_heavy(self._estimate, self._call_args(tx), header, overriding(overrides)))

    def _estimate(self, tx: dict, header, prepare=None) -> int:
        try:
            return self.node.estimate_gas(tx, header, prepare)
        except Revert as exc:
            data = exc.args[0] if exc.args and isinstance(exc.args[0], bytes) else b""
            raise ExecutionReverted(revert_reason(data), data) from None
        except VMError:  # fails even with all the gas allowed
            raise RpcError(f"gas required exceeds allowance ({tx.get('gas') or header.gas_limit})") from None
        except CallError as exc:
            raise RpcError(str(exc)) from None

    async def fill_transaction(self, tx: Annotated[dict, P.call_request]) -> dict:
        """go-ethereum's eth_fillTransaction: the transaction with what is missing filled in (fees,
        value, the sender's pending nonce, gas by estimate, chain id), unsigned, as `{raw, tx}`
        for a wallet to sign. Type 2 unless `gasPrice` makes it legacy (an access list then goes,
        as in geth) or an authorization list makes it type 4 (geth's setDefaults and
        ToTransaction)."""
        head = self.node.head()
        tx = dict(tx)
        self._fill_fees(tx, head)
        tx.setdefault("value", 0)
        sender = tx.get("from") or ZERO_ADDRESS
        if not tx.get("to"):
            if tx["data"] == b"":
                raise RpcError("contract creation without any data provided")
            if tx.get("authorizationList"):
                raise RpcError('authorizationList provided for contract creation, but "to" field is missing')
        if "gas" not in tx:  # estimated without the nonce, as geth does
            call = {key: value for key, value in tx.items() if key != "nonce"}
            tx["gas"] = await self._run_heavy(self._estimate, self._call_args(call), head)
        if tx.get("chainId", self.node.chain_id) != self.node.chain_id:
            raise RpcError(f"chainId does not match node's (have={tx['chainId']}, want={self.node.chain_id})")
        if "nonce" not in tx:
            tx["nonce"] = self.node.mempool.pending_nonce(sender)
        unsigned = self._unsigned(tx, head)
        return {"raw": F.hexdata(unsigned.encode()), "tx": F.unsigned_transaction(unsigned)}

    def _fill_fees(self, tx: dict, head) -> None:
        """geth's setFeeDefaults: a tip of DEFAULT_TIP and a fee cap of tip + 2 x the head's base
        fee where the call names neither gasPrice nor both EIP-1559 fields."""
        if "gasPrice" in tx and "authorizationList" in tx:
            raise RpcError("both gasPrice and authorizationList specified")
        london = hasattr(head, "base_fee_per_gas")
        if "gasPrice" in tx:
            if tx["gasPrice"] == 0 and london:
                raise RpcError("gasPrice must be non-zero after london fork")
            return
        if not london:
            tx["gasPrice"] = DEFAULT_TIP
            return
        if "maxFeePerGas" in tx and tx["maxFeePerGas"] == 0 and "maxPriorityFeePerGas" in tx:
            raise RpcError("maxFeePerGas must be non-zero")
        tx.setdefault("maxPriorityFeePerGas", DEFAULT_TIP)
        tx.setdefault("maxFeePerGas", tx["maxPriorityFeePerGas"] + 2 * head.base_fee_per_gas)
        if tx["maxFeePerGas"] < tx["maxPriorityFeePerGas"]:
            raise RpcError(f"maxFeePerGas ({F.qty(tx['maxFeePerGas'])}) < maxPriorityFeePerGas "
                           f"({F.qty(tx['maxPriorityFeePerGas'])})")

    def _unsigned(self, tx: dict, head):
        """The filled call as a transaction of the next block's fork, signature zero."""
        builder = self.node.evm_chain().get_vm_class_for_block_number(head.block_number + 1).get_transaction_builder()
        to, access = tx.get("to") or b"", [(a, tuple(keys)) for a, keys in tx.get("accessList", ())]
        common = (tx["gas"], to, tx["value"], tx["data"])
        if "gasPrice" in tx:
            return builder.new_transaction(tx["nonce"], tx["gasPrice"], *common, 0, 0, 0)
        fees = (self.node.chain_id, tx["nonce"], tx["maxPriorityFeePerGas"], tx["maxFeePerGas"])
        if "authorizationList" in tx:
            return builder.new_set_code_transaction(*fees, *common, access, tx["authorizationList"], 0, 0, 0)
        return builder.new_dynamic_fee_transaction(*fees, *common, access, 0, 0, 0)

    def send_raw_transaction(self, raw: Annotated[bytes, P.data]) -> str:
        # Admitted on the loop, not in a worker thread: the checks are pure Python and hold the
        # GIL either way, and the two thread hand-offs cost more than the checks (measured 255 vs
        # 179 tx/s on one connection). The pool's lock is only ever held for short sections.
        if not raw:
            raise InvalidParams("typed transaction too short")
        try:
            tx_hash = self.node.mempool.add_raw(raw)
        except TxPoolError as exc:
            raise RpcError(exc.message, code=exc.code) from None
        if self.ctx.hub is not None:
            self.ctx.hub.on_pending(tx_hash)
        if self.ctx.on_transaction is not None:
            self.ctx.on_transaction(tx_hash)
        return F.hexdata(tx_hash)

    # -- transactions and receipts --------------------------------------------------------
    def _located(self, tx_hash: bytes):
        location = self.node.tx_location(tx_hash)
        if location is None:
            return None
        number, index = location
        header = self.node.header_by_number(number)
        block = None if header is None else self._block(header)
        if block is None or index >= len(block.transactions):
            return None
        return block, index

    def get_transaction_by_hash(self, tx_hash: Annotated[bytes, P.hash32]) -> dict | None:
        found = self._located(tx_hash)
        if found is None:
            pending = self.node.mempool.get(tx_hash)
            return None if pending is None else F.transaction(pending)
        block, index = found
        return F.transaction(block.transactions[index], block.header, index)

    def get_transaction_receipt(self, tx_hash: Annotated[bytes, P.hash32]) -> dict | None:
        location = self.node.tx_location(tx_hash)
        if location is None:
            return None
        number, index = location
        header = self.node.header_by_number(number)
        view = None if header is None else self._receipt_view(header)
        if view is None or index >= len(view[0]):
            return None
        return F.receipt_at(header, *view, index, self._blob_base_fee(header, view[0][index:index + 1]))

    def get_raw_transaction_by_hash(self, tx_hash: Annotated[bytes, P.hash32]) -> str | None:
        """The transaction's canonical encoding (typed envelope included), mined or pooled."""
        raw = self.node.raw_transaction(tx_hash)
        return None if raw is None else F.hexdata(raw)

    @staticmethod
    def _raw_in(block, index: int) -> str:
        """geth's answer by block and index: the encoding, or "0x" where there is no such block
        or transaction (its nil bytes)."""
        if block is None or index >= len(block.transactions):
            return "0x"
        return F.hexdata(block.transactions[index].encode())

    def raw_tx_by_number_and_index(self, number: Annotated[object, P.block_number],
                                   index: Annotated[int, P.uint64]) -> str:
        header = self._resolve(number)
        return self._raw_in(None if header is None else self.node.block_by_hash(header.hash), index)

    def raw_tx_by_hash_and_index(self, block_hash: Annotated[bytes, P.hash32],
                                 index: Annotated[int, P.uint64]) -> str:
        return self._raw_in(self.node.block_by_hash(block_hash), index)

    # -- blocks --------------------------------------------------------------------------
    def _block_or_none(self, ref):
        header = self._resolve(ref)
        return None if header is None else self._block(header)

    def get_block_by_number(self, number: Annotated[object, P.block_number], full: Annotated[bool, P.boolean]) -> dict | None:
        block = self._block_or_none(number)
        return None if block is None else F.block(block, full)

    def get_block_by_hash(self, block_hash: Annotated[bytes, P.hash32], full: Annotated[bool, P.boolean]) -> dict | None:
        block = self._block_by_hash(block_hash)
        return None if block is None else F.block(block, full)

    def count_by_number(self, number: Annotated[object, P.block_number]) -> str | None:
        block = self._block_or_none(number)
        return None if block is None else F.qty(len(block.transactions))

    def count_by_hash(self, block_hash: Annotated[bytes, P.hash32]) -> str | None:
        block = self._block_by_hash(block_hash)
        return None if block is None else F.qty(len(block.transactions))

    @staticmethod
    def _tx_in(block, index: int) -> dict | None:
        if block is None or index >= len(block.transactions):
            return None
        return F.transaction(block.transactions[index], block.header, index)

    def tx_by_number_and_index(self, number: Annotated[object, P.block_number],
                               index: Annotated[int, P.uint64]) -> dict | None:
        return self._tx_in(self._block_or_none(number), index)

    def tx_by_hash_and_index(self, block_hash: Annotated[bytes, P.hash32],
                             index: Annotated[int, P.uint64]) -> dict | None:
        return self._tx_in(self._block_by_hash(block_hash), index)

    def get_block_receipts(self, block: Annotated[object, P.block_id]) -> list | None:
        header = self._resolve(block)
        view = None if header is None else self._receipt_view(header)
        return None if view is None else F.receipts(header, *view, self._blob_base_fee(header, view[0]))

    def _blob_base_fee(self, header, transactions) -> int | None:
        """The block's blob base fee where `transactions` hold a blob transaction (their receipts
        report it), else None."""
        if any(F.tx_type(tx) == 3 for tx in transactions):
            return blob_fees(self.node.genesis, header)[0]
        return None

    # -- logs and filters --------------------------------------------------------------------
    def _range(self, criteria: P.LogFilter) -> tuple[int, int]:
        if criteria.block_hash is not None:
            header = self.node.header_by_hash(criteria.block_hash)
            if header is None:
                raise RpcError("unknown block")
            return header.block_number, header.block_number
        # go-ethereum's checks, in its order and words (eth/filters: GetLogs, then the range
        # filter once the tags are resolved against the head)
        head = self.node.head().block_number
        lo = self._number(criteria.from_block, head)
        hi = self._number(criteria.to_block, head)
        if lo > hi:
            raise InvalidParams("invalid block range params")
        cap = self.config.logs_block_range
        if cap and hi - lo + 1 > cap:
            raise InvalidParams(f"exceed maximum block range {cap}")
        if hi > head:
            raise InvalidParams("block range extends beyond current head block")
        return lo, hi

    def _number(self, ref, head: int) -> int:
        if ref is None or ref in ("latest", "pending"):
            return head
        if isinstance(ref, int):
            return ref
        header = self._resolve(ref)
        return head if header is None else header.block_number

    def logs_in(self, lo: int, hi: int, criteria: P.LogFilter) -> list[dict]:
        timestamps: dict[int, int] = {}

        def timestamp(number: int) -> int:
            if number not in timestamps:
                timestamps[number] = self.node.header_by_number(number).timestamp
            return timestamps[number]

        records = self.node.logs(lo, hi, list(criteria.addresses), list(criteria.topics))
        return [F.log_record(r, timestamp(r.block_number)) for r in records]

    def get_logs(self, criteria: Annotated[P.LogFilter, P.log_filter]) -> list[dict]:
        return self.logs_in(*self._range(criteria), criteria)

    def new_filter(self, criteria: Annotated[P.LogFilter, P.log_filter]) -> str:
        return self.ctx.hub.install("logs", criteria)

    def new_block_filter(self) -> str:
        return self.ctx.hub.install("blocks")

    def new_pending_filter(self) -> str:
        return self.ctx.hub.install("pending")

    def get_filter_changes(self, fid: Annotated[str, P.filter_id]) -> list:
        return self.ctx.hub.changes(fid)

    def get_filter_logs(self, fid: Annotated[str, P.filter_id]) -> list:
        flt = self.ctx.hub.get(fid)
        if flt.kind != "logs":
            raise RpcError("filter not found")
        return self.get_logs(flt.criteria)

    def uninstall_filter(self, fid: Annotated[str, P.filter_id]) -> bool:
        return self.ctx.hub.uninstall(fid)

    def methods(self) -> dict:
        return {
            "eth_chainId": self.chain_id,
            "eth_blockNumber": self.block_number,
            "eth_syncing": self.syncing,
            "eth_accounts": self.accounts,
            "eth_gasPrice": self.gas_price,
            "eth_maxPriorityFeePerGas": self.max_priority_fee,
            "eth_feeHistory": self.fee_history,
            "eth_getBalance": self.get_balance,
            "eth_getCode": self.get_code,
            "eth_getStorageAt": self.get_storage_at,
            "eth_getTransactionCount": self.get_transaction_count,
            "eth_call": self.call,
            "eth_estimateGas": self.estimate_gas,
            "eth_sendRawTransaction": self.send_raw_transaction,
            "eth_fillTransaction": self.fill_transaction,
            "eth_getTransactionByHash": self.get_transaction_by_hash,
            "eth_getTransactionReceipt": self.get_transaction_receipt,
            "eth_getBlockByNumber": self.get_block_by_number,
            "eth_getBlockByHash": self.get_block_by_hash,
            "eth_getBlockTransactionCountByNumber": self.count_by_number,
            "eth_getBlockTransactionCountByHash": self.count_by_hash,
            "eth_getTransactionByBlockNumberAndIndex": self.tx_by_number_and_index,
            "eth_getTransactionByBlockHashAndIndex": self.tx_by_hash_and_index,
            "eth_getRawTransactionByHash": self.get_raw_transaction_by_hash,
            "eth_getRawTransactionByBlockNumberAndIndex": self.raw_tx_by_number_and_index,
            "eth_getRawTransactionByBlockHashAndIndex": self.raw_tx_by_hash_and_index,
            "eth_getBlockReceipts": self.get_block_receipts,
            "eth_getLogs": self.get_logs,
            "eth_newFilter": self.new_filter,
            "eth_newBlockFilter": self.new_block_filter,
            "eth_newPendingTransactionFilter": self.new_pending_filter,
            "eth_getFilterChanges": self.get_filter_changes,
            "eth_getFilterLogs": self.get_filter_logs,
            "eth_uninstallFilter": self.uninstall_filter,
        }


register_namespace("eth", lambda ctx: Eth(ctx).methods())
