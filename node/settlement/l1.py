"""The L1 as the settlement code sees it: JSON-RPC (plain HTTP, as the SDK's transport, keeping the
revert data for our contracts' custom errors), the committed contract
artifact (l1.json), ABI encoding and decoding, signed EIP-1559 transactions, custom-error reasons.

web3.py is a test dependency only, so the node speaks to the L1 with eth-abi and eth-account as
the SDK does to the L2."""
from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import time
import urllib.error
import urllib.request
from typing import Any

import eth_abi
from eth_account import Account
from eth_utils import keccak, to_canonical_address, to_checksum_address

from node.sdk import _revert_reason

ARTIFACT = pathlib.Path(__file__).resolve().parent / "l1.json"


class L1Error(RuntimeError):
    """An L1 call or transaction that failed; `reason` holds the decoded revert when there is one."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


@functools.cache
def artifact() -> dict:
    return json.loads(ARTIFACT.read_text())


def abi_type(param: dict) -> str:
    """eth-abi's type string of an ABI parameter (tuples spelled out)."""
    t = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in param["components"]) + ")" + t[len("tuple"):]
    return t


def _signature(entry: dict) -> str:
    return f"{entry['name']}({','.join(abi_type(p) for p in entry['inputs'])})"


@functools.cache
def _errors() -> dict[bytes, tuple[str, list[str]]]:
    out = {}
    for c in artifact()["contracts"].values():
        for e in c["abi"]:
            if e["type"] == "error":
                out[keccak(text=_signature(e))[:4]] = (e["name"], [abi_type(p) for p in e["inputs"]])
    return out


def decode_revert(data: str | None) -> str | None:
    """`Error(string)` text or one of our contracts' custom errors as `Name(arg, ...)`."""
    if not data or len(data) < 10:
        return None
    raw = bytes.fromhex(data[2:])
    if raw[:4] in _errors():
        name, types = _errors()[raw[:4]]
        try:
            args = eth_abi.decode(types, raw[4:])
        except Exception:  # malformed revert data
            return name
        shown = ("0x" + a.hex() if isinstance(a, bytes) else str(a) for a in args)
        return f"{name}({', '.join(shown)})"
    return _revert_reason(data)


class L1:
    """One L1 endpoint; `key` signs its transactions (None: reads only)."""

    def __init__(self, url: str, key: bytes | str | None = None, timeout: float = 30) -> None:
        self.url, self.timeout = url, timeout
        self.account = Account.from_key(key) if key is not None else None

    def rpc(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                answer = json.loads(resp.read())
        except urllib.error.URLError as e:
            raise L1Error(f"cannot reach the L1 at {self.url}: {e.reason}") from None
        except (OSError, ValueError) as e:
            raise L1Error(f"bad answer from the L1 at {self.url}: {e}") from None
        if "error" in answer:
            err = answer["error"]
            reason = decode_revert(err.get("data") if isinstance(err.get("data"), str) else None)
            raise L1Error(f"L1 {method}: {reason or err.get('message')}", reason)
        return answer["result"]

    @property
    def address(self) -> str:
        if self.account is None:
            raise L1Error("no L1 signing key")
        return self.account.address

    @functools.cached_property
    def chain_id(self) -> int:
        return int(self.rpc("eth_chainId"), 16)

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def send(self, to: str | None, data: bytes, *, gas: int | None = None, nonce: int | None = None) -> str:
        """Sign and send a transaction; its hash. A call the L1 would revert is refused before
        sending (L1Error with the decoded reason)."""
        tx = {"from": self.address, "data": "0x" + data.hex()}
        if to is not None:
            tx["to"] = to
        if gas is None:
            try:
                gas = int(self.rpc("eth_estimateGas", tx), 16) * 6 // 5
            except L1Error as e:
                raise L1Error(f"L1 would revert: {e.reason or e}", e.reason) from None
        if nonce is None:
            nonce = int(self.rpc("eth_getTransactionCount", self.address, "pending"), 16)
        base = int(self.rpc("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
        tip = 10**9
        signed = self.account.sign_transaction({
            "type": 2, "chainId": self.chain_id, "nonce": nonce, "gas": gas, "maxFeePerGas": 2 * base + tip,
            "maxPriorityFeePerGas": tip, "value": 0, "data": data, **({"to": to} if to is not None else {})})
        return self.send_raw(bytes(signed.raw_transaction))

    def send_raw(self, raw: bytes) -> str:
        return self.rpc("eth_sendRawTransaction", "0x" + raw.hex())

    def receipt(self, tx_hash: str) -> dict | None:
        return self.rpc("eth_getTransactionReceipt", tx_hash)

    def wait(self, tx_hash: str, timeout: float = 60) -> dict:
        """The receipt of a mined transaction; L1Error if it reverted or is not mined in time."""
        deadline = time.monotonic() + timeout
        while (receipt := self.receipt(tx_hash)) is None:
            if time.monotonic() > deadline:
                raise L1Error(f"L1 transaction {tx_hash} not mined within {timeout:.0f}s")
            time.sleep(0.05)
        if receipt["status"] != "0x1":
            raise L1Error(f"L1 transaction {tx_hash} reverted")
        return receipt


@dataclasses.dataclass(frozen=True)
class Contract:
    """One of our L1 contracts (by artifact name) at an address."""

    l1: L1
    name: str
    address: str

    @functools.cached_property
    def _abi(self) -> list[dict]:
        return artifact()["contracts"][self.name]["abi"]

    def _function(self, fn: str) -> dict:
        for e in self._abi:
            if e["type"] == "function" and e["name"] == fn:
                return e
        raise L1Error(f"{self.name} has no function {fn}")

    def encode(self, fn: str, *args: Any) -> bytes:
        e = self._function(fn)
        return keccak(text=_signature(e))[:4] + eth_abi.encode([abi_type(p) for p in e["inputs"]], list(args))

    def decode_input(self, fn: str, data: bytes) -> tuple:
        """The arguments of a call to `fn` from its calldata (ValueError if it is not one)."""
        e = self._function(fn)
        if data[:4] != keccak(text=_signature(e))[:4]:
            raise ValueError(f"not a call to {self.name}.{fn}")
        return eth_abi.decode([abi_type(p) for p in e["inputs"]], data[4:])

    def call(self, fn: str, *args: Any, block: str | int = "latest") -> Any:
        e = self._function(fn)
        tag = hex(block) if isinstance(block, int) else block
        try:
            out = self.l1.rpc("eth_call", {"to": self.address, "data": "0x" + self.encode(fn, *args).hex()}, tag)
        except L1Error as err:
            raise L1Error(f"{self.name}.{fn}: {err.reason or err}", err.reason) from None
        try:
            values = eth_abi.decode([abi_type(p) for p in e["outputs"]], bytes.fromhex(out[2:]))
        except Exception:  # eth-abi's decoding errors, or a result that is not hex
            raise L1Error(f"{self.name}.{fn}: undecodable answer {str(out)[:80]!r} (no {self.name} at "
                          f"{self.address}?)") from None
        return values[0] if len(values) == 1 else values

    def transact(self, fn: str, *args: Any, gas: int | None = None, nonce: int | None = None,
                 wait: bool = True) -> dict | str:
        """Send `fn(*args)`; its receipt (or hash with wait=False). Reverts come back as L1Error
        with the contract's error decoded, and nothing is sent."""
        try:
            tx_hash = self.l1.send(self.address, self.encode(fn, *args), gas=gas, nonce=nonce)
        except L1Error as err:
            raise L1Error(f"{self.name}.{fn}: {err.reason or err}", err.reason) from None
        return self.l1.wait(tx_hash) if wait else tx_hash

    def events(self, event: str, from_block: int, to_block: int | str = "latest") -> list[dict]:
        """Decoded logs of `event` in the block range, oldest first: each {args, blockNumber,
        transactionHash, logIndex}."""
        e = next(x for x in self._abi if x["type"] == "event" and x["name"] == event)
        topic = "0x" + keccak(text=_signature(e)).hex()
        logs = self.l1.rpc("eth_getLogs", {"address": self.address, "topics": [topic], "fromBlock": hex(from_block),
                                           "toBlock": hex(to_block) if isinstance(to_block, int) else to_block})
        out = []
        indexed = [p for p in e["inputs"] if p["indexed"]]
        plain = [p for p in e["inputs"] if not p["indexed"]]
        for log in logs:
            args = {p["name"]: eth_abi.decode([abi_type(p)], bytes.fromhex(t[2:]))[0]
                    for p, t in zip(indexed, log["topics"][1:])}
            args.update(zip((p["name"] for p in plain),
                            eth_abi.decode([abi_type(p) for p in plain], bytes.fromhex(log["data"][2:]))))
            out.append({"args": args, "blockNumber": int(log["blockNumber"], 16),
                        "transactionHash": log["transactionHash"], "logIndex": int(log["logIndex"], 16)})
        return out


def deploy(l1: L1, name: str, *args: Any, nonce: int | None = None) -> str:
    """Deploy artifact contract `name` with constructor `args`; its checksum address."""
    c = artifact()["contracts"][name]
    ctor = next((e for e in c["abi"] if e["type"] == "constructor"), {"inputs": []})
    data = bytes.fromhex(c["bytecode"][2:]) + eth_abi.encode([abi_type(p) for p in ctor["inputs"]], list(args))
    receipt = l1.wait(l1.send(None, data, nonce=nonce))
    return to_checksum_address(receipt["contractAddress"])


def checksum(address: str | bytes) -> str:
    return to_checksum_address(to_canonical_address(address))
