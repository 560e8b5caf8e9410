"""A small Python SDK for the native modules and the governance predeploys over JSON-RPC: sign
with a key (or a v3 keystore), send ordinary EIP-1559 transactions to the system addresses,
decode results, events and custom errors with the committed ABIs, read `ol_` and use the blob
store.

Plain JSON-RPC over HTTP (urllib) with eth-account and eth-abi, so the CLI needs nothing more;
web3.py users can instead load `vm/abi/*.json` into `w3.eth.contract` (see docs/native-modules.md).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import time
import urllib.error
import urllib.request
from typing import Any, Iterable

import eth_abi
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak, to_canonical_address, to_checksum_address

from genesis.governance import GOPEN_ADDRESS, GOVERNOR_ADDRESS, TIMELOCK_ADDRESS
from node.blobstore import blob_message
from vm import governance
from vm.modules import MODULES, load_abi

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
"""peft's two adapter files, in the order `training.adapter_hash` hashes them (named here so the
SDK loads without torch; a test checks they agree)."""
GAS_MARGIN_PCT = 20  # on top of eth_estimateGas (state may move between estimate and inclusion)
MAX_PROMPT_BYTES = 64 * 1024
"""Prompts above this are refused before anything is paid: no served model has a context that long."""
JOB_STATUS = {1: "requested", 2: "submitted", 3: "succeeded", 4: "failed"}
PROOF_STATUS = {1: "posted", 2: "paid", 3: "settled without a proof"}
ROLES = ("contributor", "model owner", "validator", "treasury")
"""Attribution.RewardPaid's role, by number."""


class SdkError(RuntimeError):
    """A JSON-RPC error or a failed transaction; `reason` holds a revert reason when there is one."""

    def __init__(self, message: str, code: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.code, self.reason = code, reason


@dataclasses.dataclass(frozen=True)
class _Fn:
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    output_names: tuple[str, ...]


def _sig(entry: dict) -> str:
    return f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"


CONTRACTS: tuple[tuple[str, bytes, list[dict]], ...] = (
    *((m.name, m.address, load_abi(m.name)) for m in MODULES),
    ("GOPEN", GOPEN_ADDRESS, governance.abi("GOPEN")),
    ("Governor", GOVERNOR_ADDRESS, governance.abi("OpenGovernor")),
    ("Timelock", TIMELOCK_ADDRESS, governance.abi("OpenTimelock")),
)
"""(name, address, ABI) of every contract the SDK calls by name: native modules and governance."""

_FUNCTIONS: dict[str, dict[str, _Fn]] = {}
_EVENTS: dict[tuple[bytes, bytes], tuple[str, str, list[dict]]] = {}  # (address, topic0) -> (module, name, inputs)
_ERRORS: dict[bytes, tuple[str, list[str]]] = {}  # custom error selector -> (name, input types)
ADDRESSES: dict[str, str] = {}
for _name, _address, _abi in CONTRACTS:
    ADDRESSES[_name] = to_checksum_address(_address)
    _FUNCTIONS[_name] = {}
    for _e in _abi:
        if _e["type"] == "function":
            _FUNCTIONS[_name][_e["name"]] = _Fn(
                keccak(text=_sig(_e))[:4], tuple(i["type"] for i in _e["inputs"]),
                tuple(o["type"] for o in _e["outputs"]), tuple(o["name"] for o in _e["outputs"]))
        elif _e["type"] == "event":
            _EVENTS[(_address, keccak(text=_sig(_e)))] = (_name, _e["name"], _e["inputs"])
        elif _e["type"] == "error":
            _ERRORS[keccak(text=_sig(_e))[:4]] = (_e["name"], [i["type"] for i in _e["inputs"]])


def _fn(module: str, fn: str) -> _Fn:
    try:
        return _FUNCTIONS[module][fn]
    except KeyError:
        raise SdkError(f"unknown native function {module}.{fn}") from None


def encode_call(module: str, fn: str, *args: Any) -> bytes:
    """Call data of `module.fn(*args)` (ABI-encoded with the committed ABI)."""
    f = _fn(module, fn)
    try:
        return f.selector + eth_abi.encode(list(f.inputs), list(args))
    except Exception as e:  # eth-abi raises several encoding error types
        raise SdkError(f"{module}.{fn}: arguments {args!r} do not fit ({', '.join(f.inputs)}): {e}") from None


def decode_events(logs: Iterable[dict]) -> list[dict]:
    """Native-module events among JSON-RPC receipt/`eth_getLogs` entries, decoded by ABI."""
    out = []
    for log in logs:
        topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
        key = (to_canonical_address(log["address"]), topics[0] if topics else b"")
        if key not in _EVENTS:
            continue
        module, name, inputs = _EVENTS[key]
        indexed = [i for i in inputs if i["indexed"]]
        plain = [i for i in inputs if not i["indexed"]]
        args = {i["name"]: eth_abi.decode([i["type"]], t)[0] for i, t in zip(indexed, topics[1:])}
        args.update(zip((i["name"] for i in plain),
                        eth_abi.decode([i["type"] for i in plain], bytes.fromhex(log["data"][2:]))))
        event = {"module": module, "event": name, "args": args}
        if log.get("blockNumber"):
            event["block"] = int(log["blockNumber"], 16)
        if log.get("blockHash"):
            event["blockHash"] = log["blockHash"]
        out.append(event)
    return out


def event_topic(module: str, event: str) -> str:
    """topic0 of a native module's event, for eth_getLogs filters."""
    for (_, topic), (m, name, _) in _EVENTS.items():
        if (m, name) == (module, event):
            return "0x" + topic.hex()
    raise SdkError(f"unknown event {module}.{event}")


def _revert_reason(data: str | None) -> str | None:
    """`Error(string)`'s text, or a known custom error as `Name(arg, ...)`; None for anything else."""
    if not data or len(data) < 10:
        return None
    try:
        raw = bytes.fromhex(data[2:])
        if raw[:4] == bytes.fromhex("08c379a0"):
            return eth_abi.decode(["string"], raw[4:])[0]
        if raw[:4] in _ERRORS:
            name, types = _ERRORS[raw[:4]]
            args = eth_abi.decode(types, raw[4:])
            return f"{name}({', '.join('0x' + a.hex() if isinstance(a, bytes) else str(a) for a in args)})"
    except Exception:  # malformed revert data: no reason
        return None
    return None


class Client:
    """One node's JSON-RPC endpoint, optionally with a signing key."""

    def __init__(self, url: str, key: bytes | str | None = None, timeout: float = 30) -> None:
        self.url, self.timeout = url, timeout
        self.account = Account.from_key(key) if key is not None else None
        self._id = 0
        self._chain_id: int | None = None

    @classmethod
    def from_keystore(cls, url: str, path: str, password: str, **kw: Any) -> "Client":
        from node.keystore import load_key
        return cls(url, load_key(path, password), **kw)

    @property
    def address(self) -> str:
        if self.account is None:
            raise SdkError("this client has no signing key")
        return self.account.address

    # -- transport ---------------------------------------------------------------------------
    def rpc(self, method: str, *params: Any) -> Any:
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                answer = json.loads(resp.read())
        except urllib.error.URLError as e:
            raise SdkError(f"cannot reach {self.url}: {e.reason}") from None
        except (OSError, ValueError) as e:
            raise SdkError(f"bad answer from {self.url}: {e}") from None
        if not isinstance(answer, dict) or not {"result", "error"} & answer.keys():
            raise SdkError(f"bad answer from {self.url}: not a JSON-RPC response (is it a node's RPC endpoint?)")
        if "error" in answer:
            err = answer["error"]
            raise SdkError(f"{method}: {err.get('message')}", err.get("code"), _revert_reason(err.get("data")))
        return answer["result"]

    def ol(self, method: str, *params: Any) -> Any:
        """An `ol_` read, e.g. `client.ol("getDatanet", hex(1))`."""
        return self.rpc(f"ol_{method}", *params)

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.rpc("eth_chainId"), 16)
        return self._chain_id

    # -- native modules ----------------------------------------------------------------------
    def call(self, module: str, fn: str, *args: Any, block: str = "latest") -> Any:
        """A view call; returns the decoded output (a tuple for several outputs)."""
        f = _fn(module, fn)
        tx = {"to": ADDRESSES[module], "data": "0x" + encode_call(module, fn, *args).hex()}
        if self.account is not None:
            tx["from"] = self.address
        out = eth_abi.decode(list(f.outputs), bytes.fromhex(self.rpc("eth_call", tx, block)[2:]))
        return out[0] if len(out) == 1 else out

    def estimate(self, module: str, fn: str, *args: Any, value: int = 0) -> int:
        """eth_estimateGas of `module.fn(*args)` from this client's account (SdkError with the
        module's revert reason if it would fail)."""
        tx = {"from": self.address, "to": ADDRESSES[module], "value": hex(value),
              "data": "0x" + encode_call(module, fn, *args).hex()}
        return int(self.rpc("eth_estimateGas", tx), 16)

    def fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas) for a transaction now: twice the base fee plus the tip."""
        tip = int(self.rpc("eth_maxPriorityFeePerGas"), 16)
        base = int(self.rpc("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
        return 2 * base + tip, tip

    def build(self, module: str, fn: str, *args: Any, value: int = 0, nonce: int | None = None,
              gas: int | None = None, fees: tuple[int, int] | None = None) -> tuple[bytes, bytes]:
        """(raw signed transaction, tx hash) for `module.fn(*args)`; estimates gas unless given
        (an estimate that reverts raises SdkError with the module's reason, and nothing is sent);
        reads the nonce and `fees()` unless given (a sender of many at once reads them once)."""
        data = encode_call(module, fn, *args)
        if gas is None:
            gas = self.estimate(module, fn, *args, value=value) * (100 + GAS_MARGIN_PCT) // 100
        if nonce is None:
            nonce = int(self.rpc("eth_getTransactionCount", self.address, "pending"), 16)
        max_fee, tip = self.fees() if fees is None else fees
        signed = Account.sign_transaction({
            "type": 2, "chainId": self.chain_id, "nonce": nonce, "to": ADDRESSES[module], "value": value, "gas": gas,
            "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip, "data": data}, self.account.key)
        return bytes(signed.raw_transaction), bytes(signed.hash)

    def send(self, module: str, fn: str, *args: Any, value: int = 0, gas: int | None = None) -> dict:
        """Send `module.fn(*args)` and wait for it; returns the receipt with decoded `events`.
        A reverted transaction raises SdkError."""
        raw, _ = self.build(module, fn, *args, value=value, gas=gas)
        return self.wait(self.rpc("eth_sendRawTransaction", "0x" + raw.hex()))

    def wait(self, tx_hash: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                break
            if time.monotonic() > deadline:
                raise SdkError(f"transaction {tx_hash} not mined within {timeout:.0f}s")
            time.sleep(0.05)
        if receipt["status"] != "0x1":
            raise SdkError(f"transaction {tx_hash} reverted (gas used {int(receipt['gasUsed'], 16)})")
        receipt["events"] = decode_events(receipt["logs"])
        return receipt

    # -- paid inference ----------------------------------------------------------------------
    def request_inference(self, adapter_id: int, prompt: str | bytes, max_fee: int | None = None) -> dict:
        """Store the prompt as a public object and pay for a job on `adapter_id` (the fee escrowed
        until attributed; `max_fee` defaults to the adapter's price). Returns the receipt's
        InferenceRequested arguments with the block it landed in."""
        data = prompt.encode() if isinstance(prompt, str) else bytes(prompt)
        if not data:
            raise SdkError("the prompt is empty")
        if len(data) > MAX_PROMPT_BYTES:
            raise SdkError(f"the prompt of {len(data)} bytes exceeds the {MAX_PROMPT_BYTES}-byte limit")
        try:
            price = int(self.ol("getAdapter", hex(adapter_id))["pricePerInference"], 16)
        except SdkError as e:
            raise SdkError(f"adapter {adapter_id}: {e.reason or e}", e.code, e.reason) from None
        max_fee = price if max_fee is None else max_fee
        if max_fee < price:
            raise SdkError(f"max fee {max_fee} wei is below adapter {adapter_id}'s price {price} wei")
        prompt_hash = self.put_blob(data, public=True)
        receipt = self.send("InferenceJobs", "requestInference", adapter_id, prompt_hash, max_fee, value=max_fee)
        args = next(e["args"] for e in receipt["events"] if e["event"] == "InferenceRequested")
        return {**args, "block": int(receipt["blockNumber"], 16), "transactionHash": receipt["transactionHash"]}

    def inference(self, job_id: int) -> dict:
        """Where a paid job stands: its output, the verification votes, the attribution proof with
        the contributors it credits, and every payment of its fee split (Attribution.RewardPaid)."""
        job = self.ol("getJob", hex(job_id))
        status = JOB_STATUS.get(int(job["status"], 16), "?")
        valid, invalid = int(job["validVotes"], 16), int(job["invalidVotes"], 16)
        out: dict[str, Any] = {"jobId": job_id, "status": status, "adapterId": int(job["adapterId"], 16),
                               "requester": job["requester"], "fee": int(job["fee"], 16), "output": None,
                               "submitter": None, "validVotes": valid, "invalidVotes": invalid}
        jobs_logs = self.rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["InferenceJobs"],
                                             "topics": [None, "0x%064x" % job_id]})  # jobId: every event's first
        events = decode_events(jobs_logs)
        out["requestBlock"] = next((e["block"] for e in events if e["event"] == "InferenceRequested"), None)
        out["attesters"] = [{"validator": e["args"]["validator"], "valid": e["args"]["valid"]}
                            for e in events if e["event"] == "Attested"]
        if int(job["outputHash"], 16):
            out["submitter"] = job["submitter"]
            try:
                out["output"] = json.loads(self.get_object(bytes.fromhex(job["outputHash"][2:])))["text"]
            except (SdkError, ValueError, KeyError, TypeError):
                pass  # the result is not on this node
        if status == "failed":
            out["verification"] = ("invalid: refunded, the server slashed" if out["submitter"] and invalid > valid
                                   else "not served or settled in time: refunded")
        else:
            out["verification"] = {"succeeded": "valid", "submitted": "awaiting attestations",
                                   "requested": "awaiting a result"}.get(status, status)
        out["attribution"] = None
        try:
            proof = self.ol("getProof", hex(job_id))
        except SdkError as e:
            if e.code is None:
                raise
            proof = None
        if proof is not None:
            out["attribution"] = {"status": PROOF_STATUS.get(int(proof["status"], 16), "?"), "poster": proof["poster"],
                                  "methodId": int(proof["methodId"], 16), "proofHash": proof["proofHash"],
                                  "disputeDeadline": int(proof["disputeDeadline"], 16)}
        job_topic = "0x%064x" % job_id
        paid = decode_events(self.rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["Attribution"],
                                                      "topics": [event_topic("Attribution", "FeeSplit"), job_topic]})
                             + self.rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["Attribution"],
                                                        "topics": [event_topic("Attribution", "RewardPaid"), None,
                                                                   job_topic]}))
        out["payments"] = [{"account": to_checksum_address(e["args"]["account"]), "role": ROLES[e["args"]["role"]],
                            "amount": e["args"]["amount"], "block": e["block"]} for e in paid if e["event"] == "RewardPaid"]
        out["payoutBlock"] = next((e["block"] for e in paid if e["event"] == "FeeSplit"), None)
        contributors = []
        for e in (proof or {}).get("entries", []):
            account = to_checksum_address(e["contributor"])
            contributors.append({"contentHash": e["contentHash"], "contributor": account,
                                 "weightPpm": int(e["weightPpm"], 16)})
        if out["payoutBlock"] is not None:  # RewardPaid follows the entries' order (a zero amount has none)
            rewards = iter([p for p in out["payments"] if p["role"] == "contributor"] + [None])
            payment = next(rewards)
            for c in contributors:
                c["paid"] = 0
                if payment is not None and payment["account"] == c["contributor"]:
                    c["paid"], payment = payment["amount"], next(rewards)
        out["contributors"] = contributors
        out["done"] = status == "failed" or out["payoutBlock"] is not None
        return out

    def infer(self, adapter_id: int, prompt: str | bytes, max_fee: int | None = None, wait: bool = True,
              timeout: float = 300, poll: float = 0.25, on_progress=None) -> dict:
        """Request a paid job and (with `wait`) follow it until its fee is paid out or refunded,
        at most `timeout` seconds; returns `inference(job)` with `done` False if time ran out.
        `on_progress(outcome)` is called whenever the job's stage changes."""
        request = self.request_inference(adapter_id, prompt, max_fee)
        job_id, deadline, stage = request["jobId"], time.monotonic() + timeout, None
        while True:
            outcome = self.inference(job_id)
            now = (outcome["status"], (outcome["attribution"] or {}).get("status"), outcome["done"])
            if on_progress is not None and now != stage:
                on_progress(outcome)
            stage = now
            if not wait or outcome["done"] or time.monotonic() > deadline:
                return outcome
            time.sleep(poll)

    # -- blobs -------------------------------------------------------------------------------
    def put_blob(self, data: bytes, public: bool = False) -> bytes:
        """Store `data` on the node (hash checked on both sides); returns its keccak256. A `public`
        object (adapter file, record, prompt, output, proof) is served to anyone by hash; other
        blobs only as contributions of a Datanet."""
        blob_hash = keccak(data)
        answer = self.ol("putBlob", "0x" + data.hex(), "0x" + blob_hash.hex(), public)
        if answer["hash"] != "0x" + blob_hash.hex():
            raise SdkError(f"node stored the blob as {answer['hash']}, expected 0x{blob_hash.hex()}")
        return blob_hash

    def get_object(self, blob_hash: bytes) -> bytes:
        """A public object's bytes, verified against its hash."""
        data = bytes.fromhex(self.ol("getBlob", "0x" + blob_hash.hex())[2:])
        if keccak(data) != blob_hash:
            raise SdkError(f"object served for 0x{blob_hash.hex()} does not match its hash")
        return data

    def put_adapter(self, folder: str | pathlib.Path) -> bytes:
        """Store a peft adapter directory as public objects: its two files, and the manifest (each
        file's name and keccak256) whose keccak256 is the adapter hash a training run commits to."""
        folder = pathlib.Path(folder)
        manifest = b""
        for name in ADAPTER_FILES:
            manifest += name.encode() + b"\x00" + self.put_blob((folder / name).read_bytes(), public=True)
        return self.put_blob(manifest, public=True)

    def fetch_adapter(self, adapter_hash: bytes, folder: str | pathlib.Path) -> pathlib.Path:
        """Write the adapter named by `adapter_hash` into `folder` (every part checked by hash)."""
        manifest, folder = self.get_object(adapter_hash), pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ADAPTER_FILES:
            entry = name.encode() + b"\x00"
            at = manifest.find(entry)
            if at < 0:
                raise SdkError(f"adapter manifest 0x{adapter_hash.hex()} does not name {name}")
            (folder / name).write_bytes(self.get_object(manifest[at + len(entry):at + len(entry) + 32]))
        return folder

    def request_training(self, datanet_id: int, version: int, base_model_id: int, config_blob: bytes,
                         max_fee: int) -> int:
        """Hire a training run (TrainingJobs): store the config blob as a public object, then send
        requestTraining with `max_fee` escrowed; returns the job id. `config_blob` is a training
        config's canonical JSON (node.services.training.config_blob)."""
        blob_hash = self.put_blob(config_blob, public=True)
        receipt = self.send("TrainingJobs", "requestTraining", datanet_id, version, base_model_id, blob_hash, max_fee,
                            value=max_fee)
        return next(e["args"]["jobId"] for e in receipt["events"] if e["event"] == "TrainingRequested")

    def get_blob(self, blob_hash: bytes, datanet_id: int) -> bytes:
        """A contribution's bytes, verified against its hash (signed for allowlist Datanets)."""
        params: list[Any] = ["0x" + blob_hash.hex(), hex(datanet_id)]
        if self.account is not None:
            message = encode_defunct(text=blob_message(self.chain_id, blob_hash))
            params.append("0x" + bytes(self.account.sign_message(message).signature).hex())
        data = bytes.fromhex(self.ol("getBlob", *params)[2:])
        if keccak(data) != blob_hash:
            raise SdkError(f"blob served for 0x{blob_hash.hex()} does not match its hash")
        return data
