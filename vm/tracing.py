"""Transaction tracing for py-evm: go-ethereum's struct logger and callTracer.

py-evm has no tracer hooks, so a trace re-executes the block through a VM subclass whose
computation class wraps each opcode function (struct logger) or only the call-family opcodes
(callTracer) and records call frames in `apply_computation`. Writes go to a throw-away
`BatchDB` overlay, so tracing never changes the chain. Each call runs under `TraceLimits`
(wall time, opcode steps, bytes of captured output). Pure: the caller passes the chain.
"""
from __future__ import annotations

import functools
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from eth.abc import ChainAPI, ComputationAPI, MessageAPI, SignedTransactionAPI
from eth.db.atomic import AtomicDB
from eth.db.batch import BatchDB
from eth.db.chain import ChainDB
from eth.exceptions import (
    VMError,
    InsufficientFunds,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfGas,
    Revert,
    StackDepthLimit,
    FullStack,
    Halt,
    WriteProtection,
    ContractCreationCollision,
    OutOfBoundsRead,
    ReservedBytesInCode,
)
from eth.vm.chain_context import ChainContext
from eth_abi import decode as abi_decode

TRACERS = ("", "callTracer", "noopTracer")
_CALL_OPS = {0xF0: "CREATE", 0xF1: "CALL", 0xF2: "CALLCODE", 0xF4: "DELEGATECALL", 0xF5: "CREATE2", 0xFA: "STATICCALL"}
_SLOAD, _SSTORE, _SELFDESTRUCT = 0x54, 0x55, 0xFF
_GETH_NAMES = {"SHA3": "KECCAK256", "DIFFICULTY": "PREVRANDAO", "SUICIDE": "SELFDESTRUCT"}
_ERROR_SELECTOR = bytes.fromhex("08c379a0")


class TraceError(Exception):
    """A trace request that cannot be served (bad tracer name or config, limits exceeded)."""


class TraceLimitExceeded(TraceError):
    """The trace ran past its time, step or output budget; no partial result is returned."""


@dataclass(frozen=True)
class TraceLimits:
    """Per-call budget; geth's default tracer timeout is 5 s."""

    timeout_s: float = 5.0
    max_steps: int = 2_000_000
    max_output_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class TraceConfig:
    """geth's TraceConfig: which tracer, and what the struct logger captures."""

    tracer: str = ""
    disable_stack: bool = False
    disable_storage: bool = False
    enable_memory: bool = False
    enable_return_data: bool = False
    limit: int = 0
    only_top_call: bool = False
    with_log: bool = False
    timeout_s: float | None = None

    @classmethod
    def from_json(cls, obj: Any) -> "TraceConfig":
        """Parse the JSON-RPC TraceConfig object; raises TraceError naming the bad field."""
        if obj is None:
            return cls()
        if not isinstance(obj, dict):
            raise TraceError("trace config must be an object")
        tracer = obj.get("tracer") or ""
        if not isinstance(tracer, str):
            raise TraceError("tracer must be a string")
        if tracer not in TRACERS:
            raise TraceError(f"tracer not found: {tracer!r} (supported: callTracer, noopTracer, struct logger)")
        flags = {}
        for wire, name in (("disableStack", "disable_stack"), ("disableStorage", "disable_storage"),
                           ("enableMemory", "enable_memory"), ("enableReturnData", "enable_return_data")):
            value = obj.get(wire, False)
            if not isinstance(value, bool):
                raise TraceError(f"{wire} must be a boolean")
            flags[name] = value
        limit = obj.get("limit", 0)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise TraceError("limit must be a non-negative integer")
        tracer_config = obj.get("tracerConfig")
        tracer_config = {} if tracer_config is None else tracer_config
        if not isinstance(tracer_config, dict):
            raise TraceError("tracerConfig must be an object")
        timeout = obj.get("timeout")
        return cls(tracer=tracer, limit=limit, only_top_call=bool(tracer_config.get("onlyTopCall", False)),
                   with_log=bool(tracer_config.get("withLog", False)),
                   timeout_s=None if timeout is None else parse_duration(timeout), **flags)


_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: Any) -> float:
    """Go's time.ParseDuration subset geth accepts for `timeout` ("5s", "300ms", "1m30s")."""
    if not isinstance(text, str) or not text:
        raise TraceError(f"invalid timeout {text!r}")
    parts = _DURATION.findall(text)
    if "".join(a + b for a, b in parts) != text:
        raise TraceError(f"time: invalid duration {text!r}")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _hex(value: int) -> str:
    return hex(value)


def _as_int(item: int | bytes) -> int:
    return item if isinstance(item, int) else int.from_bytes(item, "big")


# py-evm's failures in go-ethereum's words (core/vm/errors.go): traces, eth_call and simulate.
GETH_VM_ERRORS = (
    (InsufficientStack, "stack underflow"),
    (FullStack, "stack limit reached 1024 (1023)"),
    (InvalidJumpDestination, "invalid jump destination"),
    (InvalidInstruction, "invalid opcode"),
    (WriteProtection, "write protection"),
    (InsufficientFunds, "insufficient balance for transfer"),
    (StackDepthLimit, "max call depth exceeded"),
    (ContractCreationCollision, "contract address collision"),
    (OutOfBoundsRead, "return data out of bounds"),
    (ReservedBytesInCode, "invalid code: must not begin with 0xef"),
)


def geth_error(exc: BaseException) -> str:
    """go-ethereum's wording for an EVM error."""
    if isinstance(exc, Revert):
        return "execution reverted"
    if isinstance(exc, OutOfGas):
        return "contract creation code storage out of gas" if "code storage" in str(exc).lower() else "out of gas"
    for kind, message in GETH_VM_ERRORS:
        if isinstance(exc, kind):
            return message
    return str(exc) or type(exc).__name__


def revert_reason(output: bytes) -> str | None:
    """Decode Solidity's Error(string) revert data, as geth's `abi.UnpackRevert` does."""
    if len(output) < 4 or output[:4] != _ERROR_SELECTOR:
        return None
    try:
        (reason,) = abi_decode(["string"], output[4:])
    except Exception:  # malformed revert data is just not decodable; geth leaves the reason out
        return None
    return reason


class Budget:
    """Shared step/time/output budget of one trace call."""

    def __init__(self, limits: TraceLimits, timeout_s: float | None) -> None:
        self.limits = limits
        timeout = limits.timeout_s if timeout_s is None else min(timeout_s, limits.timeout_s)
        self.deadline = time.monotonic() + timeout
        self.steps = 0
        self.output_bytes = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise TraceLimitExceeded(f"trace exceeded {self.limits.max_steps} steps")
        if self.steps & 1023 == 0 and time.monotonic() > self.deadline:
            raise TraceLimitExceeded("execution timeout")

    def output(self, nbytes: int) -> None:
        self.output_bytes += nbytes
        if self.output_bytes > self.limits.max_output_bytes:
            raise TraceLimitExceeded(f"trace output exceeded {self.limits.max_output_bytes} bytes")

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TraceLimitExceeded("execution timeout")


class Tracer:
    """Receives execution events for one transaction; `result` gives its JSON answer."""

    wants_steps = False

    def __init__(self, config: TraceConfig, budget: Budget) -> None:
        self.config = config
        self.budget = budget
        self.frames: list[ComputationAPI] = []
        self.pending_call_type: str | None = None
        self.pending_call_args: tuple = ()

    def enter(self, message: MessageAPI, call_type: str) -> None:
        pass

    def exit(self, computation: ComputationAPI) -> None:
        pass

    def refused(self, error: BaseException) -> None:
        """The frame just entered did not run (py-evm raised before executing it)."""

    def refused_call(self, computation: ComputationAPI, gas: int) -> None:
        """A CALL-family opcode that py-evm refused without opening a child frame."""

    def intrinsic_gas(self, amount: int) -> None:
        """Gas the top frame paid before running that geth counts as intrinsic (EIP-3860)."""

    def step(self, computation: ComputationAPI, opcode: int, mnemonic: str) -> None:
        pass

    def log(self, address: bytes, topics: tuple[int, ...], data: bytes) -> None:
        pass

    def selfdestruct(self, computation: ComputationAPI) -> None:
        pass

    def step_done(self, computation: ComputationAPI, error: BaseException | None) -> None:
        pass

    def result(self, tx: SignedTransactionAPI, computation: ComputationAPI, gas_used: int) -> Any:
        return {}


class StructLogger(Tracer):
    """geth's default opcode logger (eth/tracers/logger/logger.go), JSON as the spec defines."""

    wants_steps = True

    def __init__(self, config: TraceConfig, budget: Budget) -> None:
        super().__init__(config, budget)
        self.logs: list[dict] = []
        self.storage: dict[bytes, dict[str, str]] = {}
        self._open: dict[int, dict] = {}  # depth -> the entry whose opcode is running there
        self._child_gas: tuple[int, int] | None = None  # (gas given, gas returned) of the last child
        self._next_pc: dict[int, int] = {}  # depth -> pc after the last step: spots py-evm's implicit STOP
        self._outer_refund = 0  # refunds of the frames below the running one (see _refund)

    def _refund(self, computation: ComputationAPI) -> int:
        """geth's refund counter is transaction-wide: add up the live frames' refunds. The outer
        frames wait while this one runs, so their part is summed again only when frames switch."""
        depth = computation.msg.depth
        frames = self.frames
        if len(frames) != depth + 1 or frames[depth] is not computation:
            del frames[depth:]
            self._outer_refund = sum(frame.get_gas_refund() for frame in frames)
            frames.append(computation)
        return self._outer_refund + computation.get_gas_refund()

    def enter(self, message: MessageAPI, call_type: str) -> None:
        self._child_gas = None
        self._next_pc[message.depth] = 0

    def exit(self, computation: ComputationAPI) -> None:
        self._child_gas = (computation.msg.gas, computation.get_gas_remaining())

    def refused_call(self, computation: ComputationAPI, gas: int) -> None:
        self._child_gas = (gas, gas)  # no child ran: all its gas came back

    def step(self, computation: ComputationAPI, opcode: int, mnemonic: str) -> None:
        self.budget.step()
        if not len(computation.code):
            self._open.pop(computation.msg.depth, None)  # geth runs no interpreter for code-less accounts
            return
        if self.config.limit and len(self.logs) >= self.config.limit:
            self._open.pop(computation.msg.depth, None)
            return
        values = computation._stack.values  # py-evm exposes no public stack view
        pc = computation.code.program_counter
        if opcode != 0 or pc != self._next_pc.get(computation.msg.depth, 0):
            pc -= 1  # the code stream has moved past the opcode, except for the STOP past the end
        entry: dict[str, Any] = {
            "pc": pc,
            "op": mnemonic,
            "gas": computation.get_gas_remaining(),
            "gasCost": 0,
            "depth": computation.msg.depth + 1,
        }
        size = 64
        entry["refund"] = self._refund(computation)  # the spec: SHOULD be present even when zero
        if not self.config.disable_stack:
            entry["stack"] = [hex(v) if v.__class__ is int else hex(int.from_bytes(v, "big")) for v in values]
            size += 24 * len(values)
        if self.config.enable_memory:
            memory = bytes(computation._memory._bytes)
            entry["memory"] = ["0x" + memory[i:i + 32].hex() for i in range(0, len(memory), 32)]
            size += 2 * len(memory)
        if self.config.enable_return_data and computation.return_data:
            entry["returnData"] = "0x" + bytes(computation.return_data).hex()
            size += 2 * len(computation.return_data)
        if not self.config.disable_storage and opcode in (_SLOAD, _SSTORE):
            slots = self.storage.setdefault(computation.msg.storage_address, {})
            if opcode == _SLOAD and len(values) >= 1:
                key = _as_int(values[-1])
                value = computation.state.get_storage(computation.msg.storage_address, key)
                slots[f"0x{key:064x}"] = f"0x{value:064x}"
                entry["storage"] = dict(slots)
            elif opcode == _SSTORE and len(values) >= 2:
                slots[f"0x{_as_int(values[-1]):064x}"] = f"0x{_as_int(values[-2]):064x}"
                entry["storage"] = dict(slots)
            size += 140 * len(slots)
        self.budget.output(size)
        self.logs.append(entry)
        self._open[computation.msg.depth] = entry
        self._child_gas = None

    def step_done(self, computation: ComputationAPI, error: BaseException | None) -> None:
        self._next_pc[computation.msg.depth] = computation.code.program_counter
        entry = self._open.pop(computation.msg.depth, None)
        if entry is None:
            return
        if error is not None and not isinstance(error, Revert):
            # geth reports the failing step's own cost; py-evm burns all remaining gas on error.
            entry["error"] = geth_error(error)
            return
        cost = entry["gas"] - computation.get_gas_remaining()
        if self._child_gas is not None:
            given, returned = self._child_gas
            if entry["op"] in ("CREATE", "CREATE2"):
                cost = cost - given + returned  # geth charges the forwarded gas inside the op
            else:
                cost += returned  # geth's CALL cost includes all gas forwarded to the callee
        entry["gasCost"] = max(cost, 0)

    def result(self, tx: SignedTransactionAPI, computation: ComputationAPI, gas_used: int) -> Any:
        output = computation.output if (not computation.is_error or isinstance(computation.error, Revert)) else b""
        return {"gas": gas_used, "failed": computation.is_error, "returnValue": "0x" + bytes(output).hex(),
                "structLogs": self.logs}


class CallTracer(Tracer):
    """geth's callTracer (eth/tracers/native/call.go): the tree of call frames."""

    def __init__(self, config: TraceConfig, budget: Budget) -> None:
        super().__init__(config, budget)
        self.stack: list[dict] = []
        self.root: dict | None = None

    def enter(self, message: MessageAPI, call_type: str) -> None:
        self.budget.check_time()
        if self.config.only_top_call and self.stack:
            self.stack.append({})  # placeholder so exit() pairs up; never reported
            return
        # geth names the executing contract as `from` and the code run as `to`; py-evm's
        # DELEGATECALL message keeps the outer sender and the caller's storage address.
        caller = message.storage_address if call_type == "DELEGATECALL" else message.sender
        callee = message.storage_address if message.is_create else message.code_address
        frame: dict[str, Any] = {
            "type": call_type,
            "from": "0x" + bytes(caller).hex(),
            "gas": _hex(message.gas),
            "gasUsed": "0x0",
            "to": "0x" + bytes(callee).hex(),
            "input": "0x" + bytes(message.code if message.is_create else message.data).hex(),
        }
        if call_type != "STATICCALL":
            frame["value"] = _hex(message.value)
        self.budget.output(200 + len(frame["input"]))
        if self.stack and self.stack[-1]:
            self.stack[-1].setdefault("calls", []).append(frame)
        self.stack.append(frame)

    def exit(self, computation: ComputationAPI) -> None:
        frame = self.stack.pop()
        if not frame:
            return
        msg = computation.msg
        frame["gasUsed"] = _hex(msg.gas - computation.get_gas_remaining())
        self._process_output(frame, computation)
        if computation.is_error:
            frame.pop("logs", None)  # geth drops the logs of reverted frames
        if not self.stack:
            self.root = frame

    def intrinsic_gas(self, amount: int) -> None:
        if len(self.stack) == 1 and self.stack[0]:
            self.stack[0]["gas"] = _hex(int(self.stack[0]["gas"], 16) - amount)

    def refused_call(self, computation: ComputationAPI, gas: int) -> None:
        call_type = self.pending_call_type
        if self.config.only_top_call or not self.stack or not self.stack[-1]:
            return
        args = [_as_int(v) for v in reversed(self.pending_call_args)]  # top of stack first
        with_value = call_type in ("CALL", "CALLCODE")
        if len(args) < (7 if with_value else 6):
            return
        target, value = args[1].to_bytes(32, "big")[-20:], args[2] if with_value else 0
        start, size = (args[3], args[4]) if with_value else (args[2], args[3])
        data = bytes(computation._memory._bytes[start:start + size]) if size else b""
        balance = computation.state.get_balance(computation.msg.storage_address)
        frame = {"type": call_type, "from": "0x" + bytes(computation.msg.storage_address).hex(),
                 "gas": _hex(gas), "gasUsed": "0x0", "to": "0x" + target.hex(), "input": "0x" + data.hex(),
                 "error": "insufficient balance for transfer" if with_value and balance < value
                 else "max call depth exceeded"}
        if call_type != "STATICCALL":
            frame["value"] = _hex(value)
        self.stack[-1].setdefault("calls", []).append(frame)

    def refused(self, error: BaseException) -> None:
        frame = self.stack.pop()
        if frame:
            frame["gasUsed"] = frame["gas"]
            frame["error"] = geth_error(error)

    def selfdestruct(self, computation: ComputationAPI) -> None:
        """geth reports SELFDESTRUCT as a frame: contract -> beneficiary, with its balance."""
        values = computation._stack.values  # py-evm exposes no public stack view
        if self.config.only_top_call or not self.stack or not self.stack[-1] or not values:
            return
        contract = computation.msg.storage_address
        beneficiary = _as_int(values[-1]).to_bytes(32, "big")[-20:]
        self.stack[-1].setdefault("calls", []).append({
            "type": "SELFDESTRUCT", "from": "0x" + bytes(contract).hex(), "gas": "0x0", "gasUsed": "0x0",
            "to": "0x" + beneficiary.hex(), "input": "0x",
            "value": _hex(computation.state.get_balance(contract))})

    def log(self, address: bytes, topics: tuple[int, ...], data: bytes) -> None:
        if not self.config.with_log or not self.stack or not self.stack[-1]:
            return
        frame = self.stack[-1]
        frame.setdefault("logs", []).append({
            "address": "0x" + bytes(address).hex(), "topics": [f"0x{t:064x}" for t in topics],
            "data": "0x" + bytes(data).hex(), "position": _hex(len(frame.get("calls", ())))})

    @staticmethod
    def _process_output(frame: dict, computation: ComputationAPI) -> None:
        output = bytes(computation.output)
        if not computation.is_error:
            if output:
                frame["output"] = "0x" + output.hex()
            return
        error = computation.error
        frame["error"] = geth_error(error)
        if frame["type"] in ("CREATE", "CREATE2"):
            del frame["to"]
        if isinstance(error, Revert) and output:
            frame["output"] = "0x" + output.hex()
            reason = revert_reason(output)
            if reason is not None:
                frame["revertReason"] = reason

    def result(self, tx: SignedTransactionAPI, computation: ComputationAPI, gas_used: int) -> Any:
        root = self.root or {}
        if root:
            root["gasUsed"] = _hex(gas_used)  # the receipt's: intrinsic gas and refunds included
        return root


class AccessListTracer(Tracer):
    """geth's access-list tracer (eth_createAccessList): storage slots and addresses a call
    touches, without the sender, the recipient and the precompiles (always warm)."""

    wants_steps = True
    _ADDRESS_OPS = {0x31: -1, 0x3B: -1, 0x3C: -1, 0x3F: -1, 0xFF: -1,  # BALANCE, EXTCODE*, SELFDESTRUCT
                    0xF1: -2, 0xF2: -2, 0xF4: -2, 0xFA: -2}  # CALL, CALLCODE, DELEGATECALL, STATICCALL

    def __init__(self, excluded: set[bytes], budget: Budget) -> None:
        super().__init__(TraceConfig(), budget)
        self.excluded = excluded
        self.entries: dict[bytes, dict[int, int]] = {}  # address -> slot -> first opcode, in touch order
        self.cold_addresses: set[bytes] = set()

    def step(self, computation: ComputationAPI, opcode: int, mnemonic: str) -> None:
        self.budget.step()
        values = computation._stack.values  # py-evm exposes no public stack view
        if opcode in (_SLOAD, _SSTORE) and values:
            self.entries.setdefault(computation.msg.storage_address, {}).setdefault(_as_int(values[-1]), opcode)
        position = self._ADDRESS_OPS.get(opcode)
        if position is not None and len(values) >= -position:
            address = _as_int(values[position]).to_bytes(32, "big")[-20:]
            if address not in self.excluded:
                self.entries.setdefault(address, {})
                self.cold_addresses.add(address)

    def access_list(self) -> list[dict]:
        return [{"address": "0x" + address.hex(), "storageKeys": [f"0x{slot:064x}" for slot in slots]}
                for address, slots in self.entries.items()]

    def gas_with_list(self, gas_without: int) -> int:
        """Gas the call uses once the list is attached (EIP-2930): each entry costs 2,400 and
        each slot 1,900 up front, and saves the cold-access surcharge when first touched (2,500
        per address that was cold; 2,000 per slot first read, 2,100 per slot first written)."""
        slots = [first for entry in self.entries.values() for first in entry.values()]
        saved = sum(2000 if first == _SLOAD else 2100 for first in slots)
        return (gas_without + 2400 * len(self.entries) - 2500 * len(self.cold_addresses & set(self.entries))
                + 1900 * len(slots) - saved)


def instrument_state(state: Any, tracer: Tracer) -> None:
    """Make `state` report every opcode and call of the next transaction to `tracer`
    (eth_call-style executions: the caller builds the state and applies the transaction)."""
    session = _Session()
    session.tracer = tracer
    _LOCAL.session = session  # this thread's next execution reports to `tracer`
    state.computation_class = _traced_computation_class(state.computation_class, all_steps=True)


def make_tracer(config: TraceConfig, budget: Budget) -> Tracer:
    if config.tracer == "callTracer":
        return CallTracer(config, budget)
    if config.tracer == "noopTracer":
        return Tracer(config, budget)
    return StructLogger(config, budget)


class _Session:
    """The tracer of the transaction being executed now (None: run untraced)."""

    def __init__(self) -> None:
        self.tracer: Tracer | None = None
        self.open_messages: set[int] = set()


_LOCAL = threading.local()  # .session: the _Session of the trace running on this thread
_IDLE = _Session()


def _session() -> _Session:
    return getattr(_LOCAL, "session", _IDLE)


@functools.lru_cache(maxsize=64)
def _traced_computation_class(base: type, all_steps: bool) -> type:
    """A subclass of `base` that reports opcodes and call frames to this thread's session.
    Built once per fork and mode (class creation costs more than a small block's trace)."""

    def wrap(opcode: int, fn: Callable, mnemonic: str) -> Callable:
        call_type = _CALL_OPS.get(opcode)

        def traced(computation: ComputationAPI) -> None:
            tracer = _session().tracer
            if tracer is None:
                return fn(computation=computation)
            if call_type is not None:
                tracer.pending_call_type = call_type
                tracer.pending_call_args = tuple(computation._stack.values[-7:])  # no public stack view
            elif opcode == _SELFDESTRUCT:
                tracer.selfdestruct(computation)
            if not tracer.wants_steps:
                return fn(computation=computation)
            tracer.step(computation, opcode, mnemonic)
            try:
                fn(computation=computation)
            except Halt:  # STOP, RETURN, SELFDESTRUCT end the frame normally
                tracer.step_done(computation, None)
                raise
            except BaseException as exc:
                tracer.step_done(computation, exc)
                raise
            tracer.step_done(computation, None)

        return traced

    wanted = base.opcodes if all_steps else {k: v for k, v in base.opcodes.items()
                                             if k in _CALL_OPS or k == _SELFDESTRUCT}
    opcodes = dict(base.opcodes)
    for opcode, fn in wanted.items():
        mnemonic = getattr(fn, "mnemonic", None) or getattr(getattr(fn, "__wrapped__", None), "mnemonic", "UNKNOWN")
        opcodes[opcode] = wrap(opcode, fn, _GETH_NAMES.get(mnemonic, mnemonic))

    def framed(name: str):
        """A frame spans apply_create_message (code deposit included) or apply_message; the
        former calls the latter for the same message, which must not open a second frame."""

        def apply(cls, state, message, transaction_context, parent_computation=None):
            run = getattr(super(traced_cls, cls), name)
            session = _session()
            tracer = session.tracer
            if tracer is None or id(message) in session.open_messages:
                return run(state, message, transaction_context, parent_computation)
            if message.depth == 0:
                call_type = "CREATE" if message.is_create else "CALL"
            else:
                call_type = tracer.pending_call_type or ("CREATE" if message.is_create else "CALL")
            tracer.pending_call_type = None
            tracer.enter(message, call_type)
            session.open_messages.add(id(message))
            try:
                computation = run(state, message, transaction_context, parent_computation)
            except VMError as exc:  # refused before running: depth limit, insufficient balance
                tracer.refused(exc)
                raise
            finally:
                session.open_messages.discard(id(message))
            tracer.exit(computation)
            return computation

        return classmethod(apply)

    def return_gas(self, amount):
        # py-evm refuses a call (insufficient balance, depth limit) by returning the child's
        # gas before any child frame opened; geth still reports that frame, with its error.
        tracer = _session().tracer
        if tracer is not None and tracer.pending_call_type is not None and self.msg.depth < 1024:
            tracer.refused_call(self, amount)
            tracer.pending_call_type = None
        super(traced_cls, self).return_gas(amount)

    @classmethod
    def consume_initcode_gas_cost(cls, computation):
        before = computation.get_gas_remaining()
        super(traced_cls, cls).consume_initcode_gas_cost(computation)
        tracer = _session().tracer
        if tracer is not None:  # geth counts it in the intrinsic gas, before the frame
            tracer.intrinsic_gas(before - computation.get_gas_remaining())

    def add_log_entry(self, account, topics, data):
        super(traced_cls, self).add_log_entry(account, topics, data)
        tracer = _session().tracer
        if tracer is not None:
            tracer.log(account, topics, data)

    traced_cls = type(f"Traced{base.__name__}", (base,), {
        "opcodes": opcodes, "add_log_entry": add_log_entry, "return_gas": return_gas,
        "consume_initcode_gas_cost": consume_initcode_gas_cost,
        "apply_message": framed("apply_message"), "apply_create_message": framed("apply_create_message")})
    return traced_cls


class _ReplayExecutor:
    """Mixin for a fork's transaction executor that skips `validate_transaction`: a committed
    block's transactions passed it at import, and re-checking them (signature, nonce, balance,
    chain id) changes no state, only costs a tenth of a replay."""

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        pass


@functools.lru_cache(maxsize=64)
def _traced_vm_class(vm_class: type, all_steps: bool) -> type:
    state_class = vm_class._state_class
    computation_class = _traced_computation_class(state_class.computation_class, all_steps)
    base_executor = state_class.transaction_executor_class
    executor = type(f"Replay{base_executor.__name__}", (_ReplayExecutor, base_executor), {})
    return vm_class.configure(_state_class=state_class.configure(
        computation_class=computation_class, transaction_executor_class=executor))


def _replay_vm(chain: ChainAPI, block: Any, all_steps: bool):
    """A VM whose state is `block`'s parent state with `block`'s execution context. A replay
    never persists its state, but a database that takes writes still gets a throw-away overlay;
    one that refuses them (`read_only`, e.g. node.readcache.ContentCache) is read directly."""
    traced_vm = _traced_vm_class(chain.get_vm_class(block.header), all_steps)
    db = chain.chaindb.db
    chaindb = ChainDB(db if getattr(db, "read_only", False) else AtomicDB(BatchDB(db)))
    parent = chaindb.get_block_header_by_hash(block.header.parent_hash)
    header = block.header.copy(state_root=parent.state_root, gas_used=0)
    return traced_vm(header=header, chaindb=chaindb, chain_context=ChainContext(chain.chain_id),
                     consensus_context=chain.consensus_context)


def trace_block(chain: ChainAPI, block: Any, config: TraceConfig, limits: TraceLimits = TraceLimits(),
                only_index: int | None = None) -> list[Any]:
    """Replay `block` on its parent state and trace its transactions (or only `only_index`).

    The replay is py-evm's `import_block` up to the last wanted transaction: the block's
    pre-processing (beacon root, parent hash history), then each transaction applied to the
    state as `VM.apply_transaction` does; what only a new block needs (header gas checks,
    receipts, roots, rewards) is left out. Returns one result per traced transaction, in block
    order. Raises TraceLimitExceeded.
    """
    if block.header.block_number == 0:
        raise TraceError("genesis is not traceable")
    transactions = block.transactions
    if not transactions:
        return []
    budget = Budget(limits, config.timeout_s)
    session = _Session()
    results: list[Any] = []
    vm = _replay_vm(chain, block, all_steps=config.tracer == "")
    last = len(transactions) - 1 if only_index is None else min(only_index, len(transactions) - 1)
    previous = getattr(_LOCAL, "session", None)
    _LOCAL.session = session
    try:
        vm.block_preprocessing(block)
        state = vm.state
        for index, transaction in enumerate(transactions[:last + 1]):
            tracer = session.tracer = (make_tracer(config, budget) if only_index is None or index == only_index
                                       else None)
            state.lock_changes()  # as VM.apply_transaction: the previous transaction cannot revert
            computation = state.apply_transaction(transaction)
            if tracer is not None:
                results.append(tracer.result(transaction, computation, vm.finalize_gas_used(transaction, computation)))
            budget.check_time()
    finally:
        _LOCAL.session = previous
    return results


def trace_transaction(chain: ChainAPI, block: Any, index: int, config: TraceConfig,
                      limits: TraceLimits = TraceLimits()) -> Any:
    """Trace transaction `index` of `block` after replaying the ones before it."""
    return trace_block(chain, block, config, limits, only_index=index)[0]
