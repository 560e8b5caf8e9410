"""The explorer scenario: the same signed transactions sent to any node (ours or anvil), so
their traces and Otterscan answers can be compared. Returns the transaction hashes by name."""
import pathlib
import time

from eth_account import Account
from eth._utils.address import generate_contract_address
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from tests.rpc.nodes import call
from tests.rpc.solc import compile_contract

CONTRACTS = pathlib.Path(__file__).resolve().parent / "contracts"
BENEFICIARY = "0x" + "be" * 20
FAILING = ("forward", "revert")  # forward: its 1-wei transfer is refused for lack of balance


def selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


def word(value: int | bytes) -> bytes:
    return value.rjust(32, b"\x00") if isinstance(value, bytes) else value.to_bytes(32, "big")


def rpc(url: str, method: str, *params):
    response = call(url, method, *params)
    assert "error" not in response, (method, response)
    return response["result"]


def run(url: str, key: str, chain_id: int, strict: bool = True) -> dict[str, str]:
    """Deploy Explorer and exercise every call kind; each tx is mined before the next (automine)."""
    _, code = compile_contract("Explorer", CONTRACTS)
    sender = Account.from_key(key).address
    nonce = int(rpc(url, "eth_getTransactionCount", sender, "latest"), 16)
    explorer = to_checksum_address(generate_contract_address(bytes.fromhex(sender[2:]), nonce))
    steps = [
        ("deploy", None, code, 0),
        ("make", explorer, selector("make()"), 5),
        ("forward", explorer, selector("forward(uint256)") + word(7), 3),
        ("borrow", explorer, selector("borrow()"), 0),
        ("catch", explorer, selector("catchFail()"), 0),
        ("revert", explorer, selector("tryFail()"), 0),
        ("make2", explorer, selector("make2(bytes32)") + word(b"\x11" * 32), 0),
        ("retire", explorer, selector("retire(address)") + word(bytes.fromhex(BENEFICIARY[2:])), 0),
    ]
    hashes = {}
    for i, (name, to, data, value) in enumerate(steps):
        tx = {"type": 2, "chainId": chain_id, "nonce": nonce + i, "gas": 3_000_000, "value": value,
              "maxFeePerGas": 50 * 10**9, "maxPriorityFeePerGas": 10**9, "data": data}
        if to:
            tx["to"] = to
        raw = Account.sign_transaction(tx, key).raw_transaction
        hashes[name] = rpc(url, "eth_sendRawTransaction", "0x" + bytes(raw).hex())
        receipt = None
        for _ in range(200):
            receipt = rpc(url, "eth_getTransactionReceipt", hashes[name])
            if receipt:
                break
            time.sleep(0.05)
        assert receipt, f"{name} not mined on {url}"
        assert receipt["status"] == ("0x0" if name in FAILING else "0x1") or not strict, (name, receipt)
    hashes["explorer"] = explorer
    hashes["sender"] = sender
    return hashes
