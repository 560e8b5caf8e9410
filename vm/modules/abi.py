"""The ABI codec of native modules: selector dispatch, argument decoding, events, from committed JSON.

Each module's interface is the Solidity-style ABI under `vm/abi/<Name>.json` (compiled by solc-js
from `contracts/native/I<Name>.sol`), so wallets, web3.py and explorers decode calls, results,
events and revert reasons with their ordinary tools. eth-abi does the encoding; this file only
maps selectors to handlers and enforces the call rules a Solidity contract would.
"""
import dataclasses
import json
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import eth_abi
from eth.exceptions import Revert, VMError
from eth_abi.exceptions import DecodingError, EncodingError
from eth_utils import keccak

from vm.modules.storage import Store, revert

ABI_DIR = pathlib.Path(__file__).resolve().parent.parent / "abi"
CALL_BASE_GAS = 700  # dispatch and decoding (a warm CALL's cost); storage and logs are charged apart


def load_abi(name: str) -> list[dict[str, Any]]:
    """The committed ABI JSON of module `name` (e.g. "Datanets")."""
    return json.loads((ABI_DIR / f"{name}.json").read_text())


def _type(param: Mapping[str, Any]) -> str:
    return param["type"]


def signature(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}({','.join(_type(p) for p in entry['inputs'])})"


@dataclasses.dataclass(frozen=True)
class Function:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    mutability: str
    handler: Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class Event:
    topic: int
    params: tuple[tuple[str, str, bool], ...]  # (name, type, indexed)


class Call:
    """What a handler sees of one call: sender, value, block, its own storage, and event emission."""

    def __init__(self, module: "NativeModule", computation) -> None:
        self.module, self.computation = module, computation
        self.state = computation.state
        self.sender: bytes = computation.msg.sender
        self.value: int = computation.msg.value
        self.store = Store(self.state, module.address, computation)

    @property
    def block_number(self) -> int:
        return self.state.block_number

    @property
    def timestamp(self) -> int:
        return self.state.timestamp

    def store_of(self, address: bytes) -> Store:
        """Another module's storage, read (and written) under this call's gas meter."""
        return Store(self.state, address, self.computation)

    def emit(self, event: str, **args: Any) -> None:
        """Charge like LOGn, then append a Solidity-style log entry from this module's account."""
        self.emit_from(self.module, event, **args)

    def emit_from(self, module: "NativeModule", event: str, **args: Any) -> None:
        """Emit `module`'s event from `module`'s account (a module acting on another's behalf)."""
        ev = module.events[event]
        if set(args) != {n for n, _, _ in ev.params}:
            raise TypeError(f"event {event} takes {[n for n, _, _ in ev.params]}, got {sorted(args)}")
        topics = [ev.topic] + [int.from_bytes(eth_abi.encode([t], [args[n]]), "big") for n, t, ix in ev.params if ix]
        data = eth_abi.encode([t for _, t, ix in ev.params if not ix], [args[n] for n, _, ix in ev.params if not ix])
        self.computation.consume_gas(375 + 375 * len(topics) + 8 * len(data), f"native LOG {event}")
        self.computation.add_log_entry(module.address, tuple(topics), data)


class NativeModule:
    """A stateful precompile: `module(computation)` runs one call the way a Solidity contract would.

    `handlers` is an explicit table function name -> fn(call, *args); it must cover the ABI
    exactly. Order inside a call: decode, charge, check, write, log (handlers charge storage as
    they touch it through `Store`, and check before their first write).
    """

    def __init__(self, name: str, address: bytes, handlers: Mapping[str, Callable[..., Any]]) -> None:
        self.name, self.address = name, address
        abi = load_abi(name)
        functions = {e["name"]: e for e in abi if e["type"] == "function"}
        if set(functions) != set(handlers):
            raise ValueError(f"{name}: handlers {sorted(handlers)} do not match ABI functions {sorted(functions)}")
        self.functions: dict[bytes, Function] = {
            keccak(text=signature(e))[:4]: Function(
                e["name"], tuple(_type(p) for p in e["inputs"]), tuple(_type(p) for p in e["outputs"]),
                e["stateMutability"], handlers[e["name"]])
            for e in functions.values()
        }
        self.events: dict[str, Event] = {
            e["name"]: Event(int.from_bytes(keccak(text=signature(e)), "big"),
                             tuple((p["name"], _type(p), p["indexed"]) for p in e["inputs"]))
            for e in abi if e["type"] == "event"
        }

    def __call__(self, computation) -> None:
        try:
            computation.output = self._run(computation)
        except Revert as e:
            computation.output = e.args[0]
            raise
        except VMError:
            raise
        except Exception as e:  # a bug must not halt block production: revert, deterministically
            reason = revert(f"{self.name}: internal error {type(e).__name__}")
            computation.output = reason.args[0]
            raise reason from e

    def _run(self, computation) -> bytes:
        computation.consume_gas(CALL_BASE_GAS, f"native {self.name}")
        msg = computation.msg
        if msg.storage_address != self.address:
            raise revert(f"{self.name}: DELEGATECALL and CALLCODE are not supported")
        data = msg.data_as_bytes
        fn = self.functions.get(data[:4])
        if fn is None:
            raise revert(f"{self.name}: unknown function selector 0x{data[:4].hex()}")
        if msg.value and fn.mutability != "payable":
            raise revert(f"{self.name}.{fn.name}: function is not payable")
        if msg.is_static and fn.mutability not in ("view", "pure"):
            raise revert(f"{self.name}.{fn.name}: state change in a static call")
        try:
            args = eth_abi.decode(list(fn.inputs), data[4:])
        except (DecodingError, ValueError, OverflowError) as e:
            raise revert(f"{self.name}.{fn.name}: malformed call data ({type(e).__name__})") from None
        result = fn.handler(Call(self, computation), *args)
        if not fn.outputs:
            return b""
        values = result if len(fn.outputs) > 1 else (result,)
        try:
            return eth_abi.encode(list(fn.outputs), list(values))
        except EncodingError as e:
            raise revert(f"{self.name}.{fn.name}: result does not fit its ABI type") from e
