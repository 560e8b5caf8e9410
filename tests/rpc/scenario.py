"""One wallet-and-contract scenario run against any node, so ours and anvil can be compared."""
from __future__ import annotations

import re

from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3 import Web3

import genesis
from tests.rpc.nodes import CHAIN_ID, call

KEYS = [key for _, key in genesis.dev_accounts()]
GWEI = 10**9
SINK = "0x" + "22" * 20


def sign(key: str, **fields) -> bytes:
    return bytes(Account.sign_transaction({"chainId": CHAIN_ID, **fields}, key).raw_transaction)


def shape(value):
    """A value's JSON-RPC format class, to compare formats across nodes."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    if isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]*", value):
        if len(value) in (18, 42, 66, 514):  # nonce, address, hash/word, bloom: fixed-size data
            return f"bytes{len(value) // 2 - 1}" if value == value.lower() or len(value) != 42 else "address"
        if re.fullmatch(r"0x(0|[1-9a-f][0-9a-f]*)", value):
            return "quantity"
        return "data" if len(value) % 2 == 0 else "odd-hex"
    return type(value).__name__


def run(url: str) -> dict:
    """Send the scenario's transactions (automine) and collect every answer worth comparing."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    from tests.rpc.solc import compile_contract

    abi, bytecode = compile_contract("Store")
    out: dict = {"raw": {}}
    a0, a1 = Account.from_key(KEYS[0]).address, Account.from_key(KEYS[1]).address

    def send(raw: bytes) -> dict:
        tx_hash = w3.eth.send_raw_transaction(raw)
        w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)
        return call(url, "eth_getTransactionReceipt", "0x" + tx_hash.hex())["result"]

    start = w3.eth.block_number
    out["legacy"] = send(sign(KEYS[0], nonce=0, to=SINK, value=1, gas=21_000, gasPrice=3 * GWEI))
    out["type1"] = send(sign(KEYS[0], type=1, nonce=1, to=SINK, value=2, gas=30_000, gasPrice=3 * GWEI,
                             accessList=[{"address": SINK, "storageKeys": ["0x" + "00" * 31 + "01"]}]))
    out["type2"] = send(sign(KEYS[0], type=2, nonce=2, to=SINK, value=3, gas=21_000,
                             maxFeePerGas=3 * GWEI, maxPriorityFeePerGas=GWEI))
    store = w3.eth.contract(abi=abi, bytecode=bytecode)
    deploy_data = store.constructor(42).build_transaction({"gas": 1, "gasPrice": 1, "chainId": CHAIN_ID})["data"]
    out["deploy"] = send(sign(KEYS[0], type=2, nonce=3, data=deploy_data, gas=500_000,
                              maxFeePerGas=3 * GWEI, maxPriorityFeePerGas=GWEI))
    address = to_checksum_address(out["deploy"]["contractAddress"])
    contract = w3.eth.contract(address=address, abi=abi)
    store_data = contract.encode_abi("store", [7, "hello"])
    out["estimate"] = call(url, "eth_estimateGas", {"from": a1, "to": address, "data": store_data})
    out["store"] = send(sign(KEYS[1], type=2, nonce=0, to=address, data=store_data, gas=200_000,
                             maxFeePerGas=3 * GWEI, maxPriorityFeePerGas=GWEI))
    failing = contract.encode_abi("store", [0, "nope"])
    out["failed"] = send(sign(KEYS[1], type=2, nonce=1, to=address, data=failing, gas=100_000,
                              maxFeePerGas=3 * GWEI, maxPriorityFeePerGas=GWEI))
    deploy_block = out["deploy"]["blockNumber"]
    head = w3.eth.block_number
    out["blocks_mined"] = head - start

    twice = contract.encode_abi("twice", [])
    out["call_latest"] = call(url, "eth_call", {"to": address, "data": twice}, "latest")
    out["call_at_deploy"] = call(url, "eth_call", {"to": address, "data": twice}, deploy_block)
    out["call_by_hash"] = call(url, "eth_call", {"to": address, "data": twice},
                               {"blockHash": out["deploy"]["blockHash"]})
    out["revert_reason"] = call(url, "eth_call", {"from": a1, "to": address, "data": failing})
    out["revert_custom"] = call(url, "eth_call", {"from": a1, "to": address,
                                                  "data": contract.encode_abi("store", [2 * 10**18, "x"])})
    out["estimate_revert"] = call(url, "eth_estimateGas", {"from": a1, "to": address, "data": failing})
    out["storage_latest"] = call(url, "eth_getStorageAt", address, "0x0", "latest")
    out["storage_at_deploy"] = call(url, "eth_getStorageAt", address, "0x0", deploy_block)
    out["code"] = call(url, "eth_getCode", address, "latest")
    out["code_before_deploy"] = call(url, "eth_getCode", address, hex(int(deploy_block, 16) - 1))
    out["balance_sink_history"] = [call(url, "eth_getBalance", SINK, hex(n))["result"] for n in range(start, head + 1)]
    out["nonce_latest"] = call(url, "eth_getTransactionCount", a0, "latest")
    out["nonce_pending"] = call(url, "eth_getTransactionCount", a0, "pending")
    topic = "0x" + keccak(text="Stored(address,uint256,string)").hex()
    out["logs_by_topic"] = call(url, "eth_getLogs", {"fromBlock": "earliest", "toBlock": "latest",
                                                   "address": address, "topics": [topic]})
    out["logs_by_sender"] = call(url, "eth_getLogs", {"fromBlock": hex(start), "topics": [
        None, "0x" + "00" * 12 + a1[2:].lower()]})
    out["logs_by_hash"] = call(url, "eth_getLogs", {"blockHash": out["store"]["blockHash"]})
    out["logs_other_topic"] = call(url, "eth_getLogs", {"fromBlock": hex(start), "topics": [[topic], ["0x" + "00" * 32]]})
    store_block = out["store"]["blockNumber"]
    out["block_full"] = call(url, "eth_getBlockByNumber", store_block, True)
    out["block_hashes"] = call(url, "eth_getBlockByHash", out["store"]["blockHash"], False)
    out["block_receipts"] = call(url, "eth_getBlockReceipts", store_block)
    out["tx_by_hash"] = call(url, "eth_getTransactionByHash", out["legacy"]["transactionHash"])
    out["tx_type1"] = call(url, "eth_getTransactionByHash", out["type1"]["transactionHash"])
    out["tx_by_index"] = call(url, "eth_getTransactionByBlockNumberAndIndex", store_block, "0x0")
    out["tx_by_hash_index"] = call(url, "eth_getTransactionByBlockHashAndIndex", out["store"]["blockHash"], "0x0")
    out["count_by_number"] = call(url, "eth_getBlockTransactionCountByNumber", store_block)
    out["count_by_hash"] = call(url, "eth_getBlockTransactionCountByHash", out["store"]["blockHash"])
    out["missing_tx"] = call(url, "eth_getTransactionByHash", "0x" + "ab" * 32)
    out["syncing"] = call(url, "eth_syncing")
    out["missing_block"] = call(url, "eth_getBlockByNumber", hex(head + 100), False)
    out["fee_history"] = call(url, "eth_feeHistory", "0x3", "latest", [25, 75])
    out["filters"] = filters(url, w3, address, contract, topic)
    return out


def filters(url: str, w3: Web3, address: str, contract, topic: str) -> dict:
    """Polling filters see exactly what happened after they were installed."""
    log_filter = call(url, "eth_newFilter", {"address": address, "topics": [topic]})["result"]
    block_filter = call(url, "eth_newBlockFilter")["result"]
    empty = call(url, "eth_getFilterChanges", log_filter)["result"]
    raw = sign(KEYS[2], type=2, nonce=0, to=address, data=contract.encode_abi("store", [9, "filtered"]),
               gas=200_000, maxFeePerGas=3 * GWEI, maxPriorityFeePerGas=GWEI)
    tx_hash = w3.eth.send_raw_transaction(raw)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)
    changes = call(url, "eth_getFilterChanges", log_filter)["result"]
    blocks = call(url, "eth_getFilterChanges", block_filter)["result"]
    return {
        "empty": empty,
        "changes": changes,
        "again": call(url, "eth_getFilterChanges", log_filter)["result"],
        "blocks_contains_receipt_block": "0x" + bytes(receipt["blockHash"]).hex() in blocks,
        "filter_logs": call(url, "eth_getFilterLogs", log_filter)["result"],
        "uninstall": call(url, "eth_uninstallFilter", log_filter)["result"],
        "uninstall_again": call(url, "eth_uninstallFilter", log_filter)["result"],
        "gone": call(url, "eth_getFilterChanges", log_filter).get("error", {}).get("message"),
    }
