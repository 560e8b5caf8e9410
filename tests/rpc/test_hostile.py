"""Hostile and malformed input for every method class: wrong types, wrong lengths, missing
params, unknown blocks, bad filters, bad transactions. Each gets a JSON-RPC error (never a crash
or a traceback) and nothing changes: the head, balances and nonces are the same afterwards."""
import json
import time
import urllib.request

import pytest
import tests.rpc.scenario as scenario
from eth_account import Account
from tests.rpc.nodes import call

A = "0x" + "ab" * 20
H = "0x" + "cd" * 32
BIG = "0x1" + "0" * 64

# (method, params, expected code, expected message or None)
CASES = [
    ("web3_sha3", [], -32602, "missing value for required argument 0"),
    ("web3_sha3", ["0x0"], -32602, "invalid argument 0: hex string of odd length"),
    ("web3_sha3", ["zz"], -32602, "invalid argument 0: hex string without 0x prefix"),
    ("web3_sha3", [123], -32602, "invalid argument 0: cannot unmarshal number into data"),
    ("net_version", [1], -32602, "too many arguments, want at most 0"),
    ("eth_getBalance", [A[:-2]], -32602, "invalid argument 0: hex string has length 38, want 40 for common.Address"),
    ("eth_getBalance", [A, "0xfffffff"], -32000, "header not found"),
    ("eth_getBalance", [A, {"blockHash": H}], -32000, "header for hash not found"),
    ("eth_getBalance", [A, "newest"], -32602, "invalid argument 1: invalid block tag 'newest'"),
    ("eth_getBalance", [A, BIG], -32602, "invalid argument 1: hex number > 256 bits"),
    ("eth_getBalance", [A, {"blockHash": H, "blockNumber": "0x0"}], -32602, None),
    ("eth_getBalance", [A, {}], -32602, "invalid argument 1: either BlockHash or BlockNumber must be set"),
    ("eth_getBalance", [A, True], -32602, None),
    ("eth_getBalance", [[A]], -32602, "invalid argument 0: cannot unmarshal array into common.Address"),
    ("eth_getCode", [A, "0x00"], -32602, "invalid argument 1: hex number with leading zero digits"),
    ("eth_getStorageAt", [A, "0x" + "1" * 65], -32602, None),
    ("eth_getStorageAt", [A], -32602, "missing value for required argument 1"),
    ("eth_getTransactionCount", [None], -32602, "missing value for required argument 0"),
    ("eth_call", [], -32602, "missing value for required argument 0"),
    ("eth_call", ["0x00"], -32602, "invalid argument 0: cannot unmarshal string into TransactionArgs"),
    ("eth_call", [{"to": A, "data": "0x01", "input": "0x02"}], -32602, None),
    ("eth_call", [{"to": A, "gas": "0x" + "f" * 17}], -32602, "invalid argument 0: hex number > 64 bits"),
    ("eth_call", [{"to": A, "gasPrice": "0x1", "maxFeePerGas": "0x1"}], -32602, None),
    ("eth_call", [{"to": A}, "0xfffffff"], -32000, "header not found"),
    ("eth_call", [{"from": A, "to": A, "value": "0x1"}], -32000, None),  # from has no funds
    ("eth_call", [{"data": "0xfe"}], -32000, "invalid opcode"),  # initcode that fails, in geth's words
    ("eth_call", [{"data": "0x5b600056", "gas": "0x186a0"}], -32000, "out of gas"),
    ("eth_call", [{"data": "0x01"}], -32000, "stack underflow"),
    ("eth_estimateGas", [{"to": 5}], -32602, None),
    ("eth_estimateGas", [{"from": A, "to": A, "value": BIG[:-1]}], -32000, None),
    ("eth_sendRawTransaction", ["0x"], -32602, None),
    ("eth_sendRawTransaction", ["0x1234"], None, None),
    ("eth_sendRawTransaction", ["0x02" + "ff" * 40], None, None),
    ("eth_sendRawTransaction", [123], -32602, None),
    ("eth_getTransactionByHash", [H[:-2]], -32602, "invalid argument 0: hex string has length 62, want 64 for common.Hash"),
    ("eth_getTransactionReceipt", [{}], -32602, None),
    ("eth_getBlockByNumber", ["latest"], -32602, "missing value for required argument 1"),
    ("eth_getBlockByNumber", ["latest", "yes"], -32602, "invalid argument 1: cannot unmarshal string into bool"),
    ("eth_getBlockByNumber", [{"blockHash": H}, False], -32602, None),
    ("eth_getBlockByHash", ["latest", False], -32602, None),
    ("eth_getBlockTransactionCountByNumber", ["0x-1"], -32602, None),
    ("eth_getTransactionByBlockNumberAndIndex", ["latest", -1], -32602, None),
    ("eth_getBlockReceipts", ["0x" + "1" * 17], -32602, "invalid argument 0: block number larger than int64"),
    ("eth_feeHistory", ["0x1", "latest", [90, 10]], -32602, "invalid argument 2: invalid reward percentile: 10"),
    ("eth_feeHistory", ["0x1", "latest", [101]], -32602, None),
    ("eth_feeHistory", ["0x1", "latest", ["50"]], -32602, None),
    ("eth_feeHistory", [-1, "latest"], -32602, None),
    ("eth_feeHistory", ["0x1", "0xfffffff"], -32000, "header not found"),
    ("eth_getLogs", [{"fromBlock": "0x2", "toBlock": "0x1"}], -32602, "invalid block range params"),
    ("eth_getLogs", [{"fromBlock": "earliest", "toBlock": "0x100"}], -32602, "exceed maximum block range 50"),
    ("eth_getLogs", [{"blockHash": H, "fromBlock": "0x1"}], -32602, None),
    ("eth_getLogs", [{"blockHash": H}], -32000, "unknown block"),
    ("eth_getLogs", [{"topics": [None, None, None, None, None]}], -32602, "invalid argument 0: exceed max topics"),
    ("eth_getLogs", [{"topics": "0x00"}], -32602, None),
    ("eth_getLogs", [{"address": ["0x12"]}], -32602, None),
    ("eth_getLogs", [{"topics": [[H, 5]]}], -32602, None),
    ("eth_getLogs", ["latest"], -32602, None),
    ("eth_newFilter", [{"topics": [{}]}], -32602, None),
    ("eth_getFilterChanges", ["0x" + "00" * 16], -32000, "filter not found"),
    ("eth_getFilterChanges", [5], -32602, None),
    ("eth_getFilterLogs", ["not-an-id"], -32602, None),
    ("eth_uninstallFilter", ["0x" + "0" * 100], -32602, None),
]


@pytest.fixture(scope="class")
def snapshot(ours):
    def take():
        return [call(ours.url, "eth_blockNumber")["result"]] + [
            call(ours.url, m, a, "latest")["result"] for m in ("eth_getBalance", "eth_getTransactionCount")
            for a in (scenario.SINK, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")]
    before = take()
    yield
    assert take() == before, "hostile input changed the chain"


def _raw(**fields) -> str:
    base = dict(type=2, nonce=0, to=scenario.SINK, value=1, gas=21_000,
                maxFeePerGas=3 * scenario.GWEI, maxPriorityFeePerGas=scenario.GWEI)
    base.update(fields)
    key = base.pop("key", scenario.KEYS[9])
    chain_id = base.pop("chainId", scenario.CHAIN_ID)
    return "0x" + bytes(Account.sign_transaction({"chainId": chain_id, **base}, key).raw_transaction).hex()


POOR_KEY = "0x" + "42" * 32  # an account with no funds


class TestNothingChanges:
    """All of these leave the chain exactly as it was (checked when the class is done)."""

    @pytest.mark.parametrize("method, params, code, message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
    def test_hostile_params(self, ours, snapshot, method, params, code, message):
        answer = call(ours.url, method, *params)
        assert "result" not in answer, answer
        error = answer["error"]
        assert isinstance(error["code"], int) and isinstance(error["message"], str)
        assert "Traceback" not in error["message"] and "File \"" not in error["message"]
        if code is not None:
            assert error["code"] == code, error
        if message is not None:
            assert error["message"] == message



    @pytest.mark.parametrize("fields, code, message", [
        (dict(chainId=1), -32003, None),
        (dict(nonce=0, value=10**40, key=scenario.KEYS[9]), -32000, "insufficient funds for gas * price + value"),
        (dict(key=POOR_KEY), -32000, "insufficient funds for gas * price + value"),
        (dict(gas=20_000), -32000, "intrinsic gas too low"),
        (dict(maxFeePerGas=1, maxPriorityFeePerGas=1), -32000, "max fee per gas less than block base fee"),
        (dict(data=b"\x01" * 140_000, gas=3_000_000), -32000, "oversized data"),
    ], ids=["chain-id", "funds-value", "no-funds", "intrinsic", "fee-cap", "oversized"])
    def test_transaction_rejections_use_geth_wording(self, ours, snapshot, fields, code, message):
        error = call(ours.url, "eth_sendRawTransaction", _raw(**fields))["error"]
        assert error["code"] == code
        if message is not None:
            assert error["message"].startswith(message), error


    def test_bad_signature_is_refused(self, ours, snapshot):
        raw = bytearray.fromhex(_raw()[2:])
        raw[-40] ^= 0xFF  # corrupt s: recovers another sender or none at all
        error = call(ours.url, "eth_sendRawTransaction", "0x" + raw.hex())["error"]
        assert error["code"] in (-32000, -32003, -32602), error
        assert "Traceback" not in error["message"]

    def test_hostile_batch(self, ours, snapshot):
        batch = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p, _, _) in enumerate(CASES)]
        request = urllib.request.Request(ours.url, json.dumps(batch).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answers = json.loads(response.read())
        assert [a["id"] for a in answers] == list(range(len(CASES)))
        assert all("error" in a and "result" not in a for a in answers)


def test_nonce_too_low_after_a_mined_transaction(ours):
    key = scenario.KEYS[8]
    first = call(ours.url, "eth_sendRawTransaction", _raw(key=key, nonce=0))["result"]
    for _ in range(300):
        if call(ours.url, "eth_getTransactionReceipt", first)["result"]:
            break
        time.sleep(0.05)
    error = call(ours.url, "eth_sendRawTransaction", _raw(key=key, nonce=0, value=2))["error"]
    assert error["code"] == -32000 and error["message"].startswith("nonce too low"), error
