"""eth_simulateV1: run calls in simulated blocks on top of a real block, as go-ethereum does.

Each simulated block is built by py-evm exactly as a real one (system calls before and after the
transactions, state root, receipts and transactions roots), over a write overlay of the node's
database, so nothing is stored and the answers (block hashes included) equal go-ethereum's.
Calls become unsigned transactions (zero signature, sender given): type 2 unless the call names
`gasPrice`, type 3 with `blobVersionedHashes`. Without `validation`, the base fee is 0 unless
overridden, nonces are not checked and calls with fee caps of 0 are free; with it, nonces,
balances and fees are checked and failures are the spec's -380xx errors. Where geth's rules
differ from py-evm's, the simulated VM's state and executor say so (`_SimulatedState`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from eth.abc import ChainAPI
from eth.constants import DEFAULT_SPOOF_R, DEFAULT_SPOOF_S, UINT_64_MAX
from eth.db.atomic import AtomicDB
from eth.db.batch import BatchDB
from eth.exceptions import Revert
from eth.vm.chain_context import ChainContext
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth.vm.forks.cancun.state import get_total_blob_gas
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth.vm.spoof import SpoofTransaction
from eth_hash.auto import keccak
from eth_utils import ValidationError

from node.rpc import format as F
from node.rpc import params as P
from node.rpc.errors import RpcError
from vm.tracing import Budget, CallTracer, TraceConfig, TraceLimits, geth_error, instrument_state, revert_reason

MAX_BLOCKS = 256
TRANSFER_LOG_ADDRESS = "0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"  # ERC-7528: the native token
TRANSFER_TOPIC = "0x" + keccak(b"Transfer(address,address,uint256)").hex()
BLOCK_TIME = 12  # seconds between simulated blocks unless overridden (geth's default)
ZERO_ADDRESS = b"\x00" * 20
ZERO_HASH = b"\x00" * 32


class SimulateError(RpcError):
    """An eth_simulateV1 failure with the spec's code (execution-apis, -38xxx)."""


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object")
    return value


@dataclass(frozen=True)
class StateOverride:
    balance: int | None = None
    nonce: int | None = None
    code: bytes | None = None
    state: dict[int, int] | None = None
    state_diff: dict[int, int] | None = None
    move_to: bytes | None = None  # movePrecompileToAddress


def _slots(value: Any, what: str) -> dict[int, int]:
    return {int.from_bytes(P.hash32(k), "big"): int.from_bytes(P.hash32(v), "big")
            for k, v in _object(value, what).items()}


def state_overrides(value: Any) -> dict[bytes, StateOverride]:
    out = {}
    for address, fields in _object(value or {}, "stateOverrides").items():
        fields = _object(fields, f"stateOverrides[{address}]")
        unknown = set(fields) - {"balance", "nonce", "code", "state", "stateDiff", "movePrecompileToAddress"}
        if unknown:
            raise ValueError(f"unknown state override field(s) {sorted(unknown)}")
        if fields.get("state") is not None and fields.get("stateDiff") is not None:
            raise ValueError(f"account {address} has both 'state' and 'stateDiff'")
        out[P.address(address)] = StateOverride(
            balance=None if fields.get("balance") is None else P.quantity(fields["balance"]),
            nonce=None if fields.get("nonce") is None else P.uint64(fields["nonce"]),
            code=None if fields.get("code") is None else P.data(fields["code"]),
            state=None if fields.get("state") is None else _slots(fields["state"], "state"),
            state_diff=None if fields.get("stateDiff") is None else _slots(fields["stateDiff"], "stateDiff"),
            move_to=None if fields.get("movePrecompileToAddress") is None
            else P.address(fields["movePrecompileToAddress"]),
        )
    return out


def simulate_options(value: Any) -> dict:
    """Parse the first eth_simulateV1 argument (the dispatcher names a ValueError's argument)."""
    opts = _object(value, "simulation options")
    calls = opts.get("blockStateCalls")
    if not isinstance(calls, list):
        raise ValueError("blockStateCalls must be an array")
    blocks = []
    for i, block in enumerate(calls):
        block = _object(block, f"blockStateCalls[{i}]")
        overrides = _object(block.get("blockOverrides") or {}, "blockOverrides")
        unknown = set(overrides) - {"number", "time", "gasLimit", "feeRecipient", "prevRandao", "baseFeePerGas",
                                    "blobBaseFee", "withdrawals"}
        if unknown:
            raise ValueError(f"unknown block override field(s) {sorted(unknown)}")
        parsed = {
            "number": None if overrides.get("number") is None else P.uint64(overrides["number"]),
            "time": None if overrides.get("time") is None else P.uint64(overrides["time"]),
            "gas_limit": None if overrides.get("gasLimit") is None else P.uint64(overrides["gasLimit"]),
            "coinbase": None if overrides.get("feeRecipient") is None else P.address(overrides["feeRecipient"]),
            "prev_randao": None if overrides.get("prevRandao") is None else P.hash32(overrides["prevRandao"]),
            "base_fee": None if overrides.get("baseFeePerGas") is None else P.quantity(overrides["baseFeePerGas"]),
            "blob_base_fee": None if overrides.get("blobBaseFee") is None else P.quantity(overrides["blobBaseFee"]),
        }
        raw_calls = block.get("calls") or []
        if not isinstance(raw_calls, list):
            raise ValueError("calls must be an array")
        blocks.append({"overrides": parsed, "state": state_overrides(block.get("stateOverrides")),
                       "calls": [_call(c) for c in raw_calls]})
    return {"blocks": blocks, "validation": bool(opts.get("validation", False)),
            "full": bool(opts.get("returnFullTransactions", False)),
            "trace_transfers": bool(opts.get("traceTransfers", False))}


def _call(value: Any) -> dict:
    """A call object; blob fields (EIP-4844) make it a blob transaction, as in geth."""
    call = P.call_request(value)
    if value.get("maxFeePerBlobGas") is not None:
        call["maxFeePerBlobGas"] = P.quantity(value["maxFeePerBlobGas"])
    hashes = value.get("blobVersionedHashes")
    if hashes is not None:
        if not isinstance(hashes, list):
            raise ValueError("blobVersionedHashes must be an array")
        if "gasPrice" in call:
            raise ValueError("a blob transaction takes maxFeePerGas, not gasPrice")
        call["blobVersionedHashes"] = [P.hash32(h) for h in hashes]
    return call


def apply_state(state, overrides: dict[bytes, StateOverride]) -> None:
    for address, o in overrides.items():
        if o.balance is not None:
            state.set_balance(address, o.balance)
        if o.nonce is not None:
            state.set_nonce(address, o.nonce)
        if o.code is not None:
            state.set_code(address, o.code)
        if o.state is not None:
            state.delete_storage(address)
            for slot, value in o.state.items():
                state.set_storage(address, slot, value)
        for slot, value in (o.state_diff or {}).items():
            state.set_storage(address, slot, value)


def _error_code(message: str) -> int:
    """The spec's codes for invalid transactions (execution-apis error groups)."""
    text = message.lower()
    for needle, code in (("nonce too low", -38010), ("nonce too high", -38011), ("nonce", -38010),
                         ("base fee", -38012), ("intrinsic gas", -38013), ("insufficient", -38014),
                         ("funds", -38014), ("afford", -38014), ("balance", -38014), ("gas limit", -38015)):
        if needle in text:
            return code
    return -32000


@dataclass(frozen=True)
class _Log:
    address: bytes
    topics: tuple[int, ...]
    data: bytes


# A call's logs in execution order, None where a log was emitted by a frame that then failed.
# The go-ethereum that recorded the execution-apis fixtures numbers every log its simulation
# tracer captures, so a dropped log still uses up its logIndex within the block.
Logs = list[_Log | None]


class _TransferTracer(CallTracer):
    """callTracer frames with logs, remembering how many logs a failed frame dropped."""

    def __init__(self) -> None:
        super().__init__(TraceConfig(tracer="callTracer", with_log=True), Budget(TraceLimits(), None))

    def exit(self, computation) -> None:
        if self.stack and self.stack[-1] and computation.is_error:
            self.stack[-1]["droppedLogs"] = len(self.stack[-1].get("logs", ()))
        super().exit(computation)


def _logs_with_transfers(frame: dict) -> Logs:
    """A call's logs with an ERC-7528 Transfer log where ETH moves, in execution order, as geth's
    simulation tracer emits them: at each frame's entry (DELEGATECALL moves nothing); a failed
    frame's logs, its transfer included, become None."""
    if not frame:
        return []
    out: Logs = []
    value = int(frame.get("value", "0x0"), 16)
    if value and frame["type"] != "DELEGATECALL":
        out.append(_Log(bytes.fromhex(TRANSFER_LOG_ADDRESS[2:]),
                        (int(TRANSFER_TOPIC, 16), int(frame["from"], 16), int(frame["to"], 16)),
                        value.to_bytes(32, "big")))
    calls, logs = frame.get("calls", []), frame.get("logs", [])

    def own(position: int) -> Logs:
        return [_Log(bytes.fromhex(log["address"][2:]), tuple(int(t, 16) for t in log["topics"]),
                     bytes.fromhex(log["data"][2:])) for log in logs if int(log["position"], 16) == position]

    for position, child in enumerate(calls):
        out.extend(own(position))
        out.extend(_logs_with_transfers(child))
    out.extend(own(len(calls)))
    if frame.get("error"):
        return [None] * (len(out) + frame.get("droppedLogs", 0))
    return out


def _receipt_logs(computation) -> Logs:
    """A call's logs without transfers: py-evm numbers every LOG of the transaction in execution
    order, kept or not (`_log_entries` and the counter are py-evm's; it has no public view of
    the dropped ones)."""
    kept = {counter: _Log(address, tuple(topics), data)
            for counter, address, topics, data in computation.get_raw_log_entries()}

    def emitted(c) -> int:
        return len(c._log_entries) + sum(emitted(child) for child in c.children)

    return [kept.get(counter) for counter in range(emitted(computation))]


class _SimulatedExecutor:
    """Mixed into the fork's transaction executor, for simulated blocks only."""

    def validate_transaction(self, transaction) -> None:
        # Not py-evm's `transaction.validate()`: it checks signatures (geth simulates unsigned
        # transactions) and refuses a nonce of 2^64-1 (EIP-2681), which geth's simulation runs
        # without validation. The fields were range-checked when the call was parsed.
        if transaction.gas < transaction.intrinsic_gas:
            raise ValidationError(f"intrinsic gas too low: have {transaction.gas}, want {transaction.intrinsic_gas}")
        self.vm_state.validate_transaction(transaction)


class _SimulatedState:
    """Mixed into the fork's state, for simulated blocks only (never block import or the pool):
    without `validation` geth skips the nonce checks, and the base-fee and blob-fee checks (and
    the coinbase's tip) of a call whose fee caps are 0; a `blobBaseFee` override replaces the
    blob base fee the header implies."""

    validation = True
    blob_base_fee_override: int | None = None

    def fee_free(self, transaction) -> bool:
        return not self.validation and transaction.max_fee_per_gas == 0 and transaction.max_priority_fee_per_gas == 0

    def validate_transaction(self, transaction) -> None:
        if self.validation:
            return super().validate_transaction(transaction)
        transaction = SpoofTransaction(transaction, nonce=self.get_nonce(transaction.sender))
        blobs = getattr(transaction, "type_id", None) == BLOB_TX_TYPE
        skip_blob_fee = blobs and transaction.max_fee_per_blob_gas == 0
        context = self.execution_context
        saved = context._base_fee_per_gas, self.blob_base_fee_override
        # py-evm has no switch for these checks: the limits they compare with read 0 meanwhile
        if self.fee_free(transaction):
            context._base_fee_per_gas = 0
        if skip_blob_fee:
            self.blob_base_fee_override = 0
        try:
            super().validate_transaction(transaction)
        finally:
            context._base_fee_per_gas, self.blob_base_fee_override = saved
        if skip_blob_fee:  # the blob fee is still paid, at the real blob base fee
            cost = transaction.value + get_total_blob_gas(transaction) * self.blob_base_fee
            if self.get_balance(transaction.sender) < cost + transaction.gas * self.get_gas_price(transaction):
                raise ValidationError(f"insufficient funds for gas * price + value + blob fee: "
                                      f"address {F.addr(transaction.sender)}")

    def get_tip(self, transaction) -> int:
        return 0 if self.fee_free(transaction) else super().get_tip(transaction)

    @property
    def blob_base_fee(self) -> int:
        if self.blob_base_fee_override is not None:
            return self.blob_base_fee_override
        return super().blob_base_fee

    def increment_nonce(self, address: bytes) -> None:
        self.set_nonce(address, (self.get_nonce(address) + 1) % 2**64)  # geth's uint64 wraps to 0


@functools.lru_cache(maxsize=32)
def _simulated_state_class(state_class: type, computation_class: type) -> type:
    executor = type("SimulatedExecutor", (_SimulatedExecutor, state_class.transaction_executor_class), {})
    return type("SimulatedState", (_SimulatedState, state_class),
                {"transaction_executor_class": executor, "computation_class": computation_class})


class Simulator:
    def __init__(self, chain: ChainAPI, gas_cap: int, chain_id: int) -> None:
        # A chain over a throw-away overlay: simulated blocks are stored there, never in the node.
        self.chain = type(chain)(AtomicDB(BatchDB(chain.chaindb.db)))
        self.gas_cap = gas_cap
        self.chain_id = chain_id

    def run(self, opts: dict, parent) -> list[dict]:
        if len(opts["blocks"]) > MAX_BLOCKS:
            raise SimulateError(f"too many blocks (max {MAX_BLOCKS})", code=-38026)
        results = []
        gas_left = self.gas_cap
        for spec in opts["blocks"]:
            overrides = spec["overrides"]
            number = overrides["number"] if overrides["number"] is not None else parent.block_number + 1
            if number <= parent.block_number:
                raise SimulateError(f"block numbers must be in order: {number} <= {parent.block_number}",
                                    code=-38020)
            while parent.block_number + 1 < number:  # geth fills the gap with empty blocks, and returns them
                parent, filler, gas_left = self._block(parent, {}, {}, [], opts, gas_left, filler=True)
                results.append(filler)
            parent, result, gas_left = self._block(parent, overrides, spec["state"], spec["calls"], opts, gas_left)
            results.append(result)
        return results

    def _header(self, parent, overrides: dict, validation: bool, filler: bool):
        vm_class = self.chain.get_vm_class_for_block_number(parent.block_number + 1)
        time = parent.timestamp + BLOCK_TIME if filler or overrides.get("time") is None else overrides["time"]
        if time <= parent.timestamp:
            raise SimulateError(f"block timestamps must be in order: {time} <= {parent.timestamp}", code=-38021)
        gas_limit = overrides.get("gas_limit") or parent.gas_limit
        # geth builds each header from the one before: a feeRecipient override carries on to the
        # blocks after it, and the first block takes the base block's coinbase.
        header = vm_class.create_header_from_parent(parent, timestamp=time, gas_limit=gas_limit,
                                                    coinbase=overrides.get("coinbase") or parent.coinbase)
        fields: dict[str, Any] = {"mix_hash": overrides.get("prev_randao") or ZERO_HASH, "extra_data": b""}
        if hasattr(header, "base_fee_per_gas"):
            if overrides.get("base_fee") is not None:
                fields["base_fee_per_gas"] = overrides["base_fee"]
            elif not validation:
                fields["base_fee_per_gas"] = 0
            else:
                fields["base_fee_per_gas"] = calculate_expected_base_fee_per_gas(parent)
        if hasattr(header, "parent_beacon_block_root"):
            fields["parent_beacon_block_root"] = ZERO_HASH
        return header.copy(**fields)

    def _transaction(self, vm, call: dict, header, gas_left: int, validation: bool):
        sender = call.get("from") or ZERO_ADDRESS
        nonce = call.get("nonce", vm.state.get_nonce(sender))
        if validation and nonce == vm.state.get_nonce(sender) == UINT_64_MAX:  # geth's ErrNonceMax: -32603
            raise SimulateError(f"err: nonce has max value: address {F.addr(sender)}, nonce: {nonce}", code=-32603)
        gas = call.get("gas")
        if gas is None:
            gas = min(gas_left, header.gas_limit - header.gas_used)
        builder = vm.get_transaction_builder()
        to = call.get("to") or b""
        if not to and vm.state.get_nonce(sender) == UINT_64_MAX:
            # geth answers a failed call ("nonce uint64 overflow"); py-evm would derive the new
            # contract's address from a wrapped nonce, so it is refused here instead.
            raise SimulateError(f"err: contract creation by {F.addr(sender)} with nonce 2^64-1: nonce uint64 overflow")
        value, data = call.get("value", 0), call.get("data", b"")
        access = [(a, tuple(keys)) for a, keys in call.get("accessList", [])]
        if "gasPrice" in call:
            tx = builder.new_access_list_transaction(self.chain_id, nonce, call["gasPrice"], gas, to, value, data,
                                                     access, 0, 0, 0) if access else \
                builder.new_transaction(nonce, call["gasPrice"], gas, to, value, data, 0, 0, 0)
        else:
            max_fee = call.get("maxFeePerGas", 0)  # geth's default; with validation it fails the base fee
            tip = call.get("maxPriorityFeePerGas", 0)
            if "maxFeePerGas" in call and "maxPriorityFeePerGas" not in call:
                tip = 0
            if "blobVersionedHashes" in call:
                if not to:
                    raise SimulateError("missing \"to\" in blob transaction")
                if not hasattr(builder, "new_blob_transaction"):
                    raise SimulateError("blob transactions are not active before Cancun")
                tx = builder.new_blob_transaction(self.chain_id, nonce, tip, max_fee, gas, to, value, data, access,
                                                  call.get("maxFeePerBlobGas", 0), call["blobVersionedHashes"],
                                                  0, 0, 0)
            else:
                tx = builder.new_dynamic_fee_transaction(self.chain_id, nonce, tip, max_fee, gas, to, value, data,
                                                         access, 0, 0, 0)
        tx = builder.decode(tx.encode())  # the fork's own transaction class (block encoding)
        tx.__dict__["sender"] = sender  # py-evm's cached `sender`: there is no signature to recover
        # py-evm checks signature ranges before running; geth simulates unsigned transactions.
        return tx, SpoofTransaction(tx, sender=sender, get_sender=lambda: sender, r=DEFAULT_SPOOF_R,
                                    s=DEFAULT_SPOOF_S, y_parity=0)

    def _block(self, parent, overrides, state_overrides, calls, opts, gas_left, filler: bool = False):
        validation = opts["validation"]
        header = self._header(parent, overrides, validation, filler)
        vm = self._vm(header, state_overrides, validation, overrides.get("blob_base_fee"))
        apply_state(vm.state, state_overrides)
        vm.block_preprocessing(vm.get_block())
        current = header.copy(gas_used=0)
        untraced = vm.state.computation_class
        txs, receipts, outcomes = [], [], []
        for index, call in enumerate(calls):
            tx, spoof = self._transaction(vm, call, current, gas_left, validation)
            fee_cap = tx.gas_price if F.tx_type(tx) < 2 else tx.max_fee_per_gas
            if validation and fee_cap < current.base_fee_per_gas:
                raise SimulateError(f"err: max fee per gas less than block base fee: address "
                                    f"{F.addr(spoof.sender)}, maxFeePerGas: {fee_cap}, baseFee: "
                                    f"{current.base_fee_per_gas} (supplied gas {tx.gas})", code=-38012)
            if current.gas_used + tx.gas > current.gas_limit:
                raise SimulateError(f"block gas limit reached: {current.gas_used + tx.gas} > {current.gas_limit}",
                                    code=-38015)
            tracer = None
            if opts["trace_transfers"]:
                tracer = _TransferTracer()
                vm.state.computation_class = untraced  # instrument_state wraps the class it finds
                instrument_state(vm.state, tracer)
            try:
                receipt, computation = vm.apply_transaction(current, spoof)
            except ValidationError as exc:
                raise SimulateError(f"err: {exc} (supplied gas {tx.gas})", code=_error_code(str(exc))) from None
            used = receipt.gas_used - current.gas_used
            gas_left -= used
            current = vm.increment_blob_gas_used(vm.add_receipt_to_header(current, receipt), tx)
            txs.append(tx)
            receipts.append(receipt)
            logs = _receipt_logs(computation) if tracer is None else _logs_with_transfers(tracer.root or {})
            # maxUsedGas: the most the call consumed before refunds (EIP-7623's floor can exceed it)
            outcomes.append((computation, used, max(tx.gas - computation.get_gas_remaining(), used), logs))
        block = vm.set_block_transactions_and_withdrawals(vm.get_block(), current, txs, receipts, withdrawals=[])
        block = vm.finalize_block(vm.pack_block(vm.block_postprocessing(block))).block
        self.chain.chaindb.persist_block(block)
        return block.header, self._result(block, outcomes, opts["full"]), gas_left

    def _vm(self, header, state_overrides: dict[bytes, StateOverride], validation: bool,
            blob_base_fee: int | None):
        """The block's VM with the simulation's state rules; precompiles moved by
        `movePrecompileToAddress` run at their new address."""
        vm_class = self.chain.get_vm_class(header)
        computation_class = vm_class._state_class.computation_class
        moves = {source: o.move_to for source, o in state_overrides.items() if o.move_to is not None}
        if moves:
            precompiles = dict(computation_class.get_precompiles())
            for source in moves:
                if source not in precompiles:
                    raise SimulateError(f"account {F.addr(source)} is not a precompile")
            moved = {target: precompiles[source] for source, target in moves.items()}
            for source in moves:
                del precompiles[source]
            precompiles.update(moved)
            computation_class = type("SimulatedComputation", (computation_class,), {"_precompiles": precompiles})
        vm_class = vm_class.configure(_state_class=_simulated_state_class(vm_class._state_class, computation_class))
        vm = vm_class(header=header, chaindb=self.chain.chaindb, chain_context=ChainContext(self.chain_id),
                      consensus_context=self.chain.consensus_context)
        vm.state.validation = validation
        vm.state.blob_base_fee_override = blob_base_fee
        return vm

    @staticmethod
    def _result(block, outcomes, full: bool) -> dict:
        out = F.block(block, full)
        header = block.header
        calls, log_index = [], 0
        for index, (tx, (computation, used, max_used, traced)) in enumerate(
                zip(block.transactions, outcomes)):
            logs = []
            for entry in traced:
                if entry is not None:
                    log = F.log_entry(entry, header, tx.hash, index, log_index)
                    log["blockTimestamp"] = F.qty(header.timestamp)
                    logs.append(log)
                log_index += 1
            result = {"returnData": F.hexdata(b"" if computation.is_error else computation.output),
                      "logs": logs, "gasUsed": F.qty(used), "maxUsedGas": F.qty(max_used),
                      "status": "0x1" if not computation.is_error else "0x0"}
            if computation.is_error:
                if isinstance(computation.error, Revert):
                    reason = revert_reason(computation.output)
                    result["error"] = {"message": "execution reverted" + (f": {reason}" if reason else ""),
                                       "code": 3, "data": F.hexdata(computation.output)}
                else:
                    result["error"] = {"message": geth_error(computation.error), "code": -32015}
            calls.append(result)
        out["calls"] = calls
        return out
