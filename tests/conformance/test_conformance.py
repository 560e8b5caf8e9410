"""execution-apis rpc-compat: every fixture against one `openledger run` process on the suite's
chain (init + import as a user would). One case per fixture; KNOWN_FAILURES (runner.py) lists
the ones we do not pass, each with its reason, as strict xfails."""
import json

import pytest
from web3 import Web3
from web3.exceptions import Web3RPCError

from tests.conformance.runner import KNOWN_FAILURES, load_fixtures, run_fixture, start_node

FIXTURES = load_fixtures()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    process = start_node(tmp_path_factory.mktemp("conformance"))
    yield process
    process.stop()


def test_known_failures_name_real_fixtures():
    ids = {f.id for f in FIXTURES}
    assert not set(KNOWN_FAILURES) - ids


@pytest.mark.parametrize("fixture", [
    pytest.param(f, id=f.id, marks=[pytest.mark.xfail(reason=KNOWN_FAILURES[f.id], strict=True)]
                 if f.id in KNOWN_FAILURES else [])
    for f in FIXTURES
])
def test_fixture(node, fixture):
    outcome = run_fixture(node, fixture)
    assert outcome.failure is None, outcome.failure


HEAD = "0xe27a3e81bd7cfe2aec2cc9e832c73a17c93e7efcf659cf4b39883b96c48708c2"
ACCOUNT = "0x7dcd17433742f4c0ca53122ab541d0ba67fc27df"


@pytest.mark.parametrize("method, params, code", [
    ("debug_getRawBlock", ["0x99999"], -32000),
    ("debug_getRawHeader", ["0x" + "11" * 32], -32000),
    ("debug_getRawReceipts", [{"blockHash": "0x" + "11" * 32}], -32000),
    ("debug_traceBlockByNumber", ["0x2d", {"tracer": "prestateTracerX"}], -32602),
    ("debug_traceBlockByNumber", ["0x2d", {"tracer": "callTracer", "tracerConfig": "yes"}], -32602),
    ("debug_traceBlockByNumber", ["0x2d", {"disableStack": 1}], -32602),
    ("debug_traceBlockByNumber", ["0x2d", {"limit": -5}], -32602),
    ("debug_traceBlockByNumber", ["0x2d", "callTracer"], -32602),
    ("debug_traceBlockByNumber", ["latest", {"timeout": "1x"}], -32602),
    ("debug_traceTransaction", ["0x1234"], -32602),
    ("eth_getProof", [ACCOUNT, "0x0", "latest"], -32602),
    ("eth_getProof", [ACCOUNT, ["0x" + "00" * 33], "latest"], -32602),
    ("eth_getProof", [ACCOUNT, ["0x0"] * 2000, "latest"], -32602),
    ("eth_getProof", [ACCOUNT, [], "0x99999"], -32000),
    ("eth_getStorageValues", [{}], -32602),
    ("eth_getStorageValues", [{ACCOUNT: "0x0"}], -32602),
    ("eth_getStorageValues", [{"0x12": ["0x" + "00" * 32]}], -32602),
    ("eth_getStorageValues", [{ACCOUNT: ["0x" + "00" * 32] * 1025}], -32602),
    ("eth_createAccessList", [{"to": ACCOUNT, "gasPrice": "0x1", "maxFeePerGas": "0x1"}], -32602),
    ("eth_createAccessList", ["not an object"], -32602),
    ("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "0x7fffffff"}], -32602),
    ("eth_getLogs", [{"fromBlock": "0x2", "toBlock": "0x1"}], -32602),
    ("eth_getLogs", [{"fromBlock": "0x29", "toBlock": "0x2f"}], -32602),  # as filter-error-future-block-range.io
    ("eth_getLogs", [{"blockHash": HEAD, "fromBlock": "0x1"}], -32602),
    ("eth_getLogs", [{"topics": "0x1"}], -32602),
    ("eth_getLogs", [{"topics": [[1, 2]]}], -32602),
    ("eth_getLogs", [{"address": ["0xzz"]}], -32602),
    ("eth_getLogs", [["not", "an", "object"]], -32602),
    ("eth_config", [1], -32602),
    ("txpool_contentFrom", ["0x1234"], -32602),
    ("eth_simulateV1", [{"blockStateCalls": "x"}, "latest"], -32602),
    ("eth_simulateV1", [{"blockStateCalls": [{"blockOverrides": {"color": "0x1"}}]}, "latest"], -32602),
    ("eth_simulateV1", [{"blockStateCalls": [{"stateOverrides": {ACCOUNT: {"balance": "1"}}}]}, "latest"], -32602),
    ("eth_simulateV1", [{"blockStateCalls": [{}] * 257}, "latest"], -38026),
    ("eth_simulateV1", [{"blockStateCalls": [{"blockOverrides": {"number": "0x2d"}}]}, "latest"], -38020),
    ("eth_simulateV1", [{"blockStateCalls": [{"blockOverrides": {"time": "0x1"}}]}, "latest"], -38021),
    ("eth_simulateV1", [{"blockStateCalls": [{"calls": [{"blobVersionedHashes": ["0x01"]}]}]}, "latest"], -32602),
    ("eth_simulateV1", [{"blockStateCalls": []}, "0x99999"], -32000),
])
def test_bad_input_is_an_error_and_changes_nothing(node, method, params, code):
    response = node.post(json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}))
    assert response.get("error", {}).get("code") == code, response
    assert node.post('{"jsonrpc":"2.0","id":8,"method":"eth_getBlockByNumber","params":["latest",false]}')[
        "result"]["hash"] == HEAD


def test_debug_and_txpool_are_off_unless_enabled(tmp_path):
    process = start_node(tmp_path, apis="eth,net,web3")
    try:
        for method in ("debug_getRawBlock", "txpool_status", "ots_getApiLevel"):
            response = process.post(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": ["0x1"]}))
            assert response["error"]["code"] == -32601, response
        assert process.post('{"jsonrpc":"2.0","id":1,"method":"eth_getProof","params":["%s",[],"latest"]}'
                            % ACCOUNT)["result"]["balance"] == "0x56"
    finally:
        process.stop()


def test_txpool_views_agree(node):
    """After the eth_sendRawTransaction fixtures the pool holds their transactions: pending,
    and queued behind a nonce gap, as geth sorts them."""
    def result(method):
        return node.post(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}))["result"]

    content, status, inspect = result("txpool_content"), result("txpool_status"), result("txpool_inspect")
    for kind in ("pending", "queued"):
        txs = [tx for by_nonce in content[kind].values() for tx in by_nonce.values()]
        assert int(status[kind], 16) == len(txs)
        assert {(a, n) for a, by_nonce in inspect[kind].items() for n in by_nonce} == \
            {(a, n) for a, by_nonce in content[kind].items() for n in by_nonce}
    assert int(status["pending"], 16) + int(status["queued"], 16) >= 3
    line = next(iter(next(iter(inspect["pending"].values())).values()))
    assert " wei + " in line and " gas × " in line


def test_receipts_of_blob_transactions_carry_blob_gas(node):
    """The imported chain's blob transactions (blocks 42 and 44, one blob each, no excess blob
    gas yet): their receipts report blobGasUsed and the block's blob base fee, others do not."""
    w3 = Web3(Web3.HTTPProvider(node.url))
    for number in (42, 44):
        block = w3.eth.get_block(number, full_transactions=True)
        receipts = w3.eth.get_block_receipts(number)
        assert [tx["type"] for tx in block["transactions"]] == [r["type"] for r in receipts]
        for receipt in receipts:
            if receipt["type"] == 3:
                assert (receipt["blobGasUsed"], receipt["blobGasPrice"]) == (2**17, 1)
                assert w3.eth.get_transaction_receipt(receipt["transactionHash"]) == receipt
            else:
                assert "blobGasUsed" not in receipt and "blobGasPrice" not in receipt
        assert sum(r.get("blobGasUsed", 0) for r in receipts) == block["blobGasUsed"]


def test_get_logs_range_errors_in_geths_words(node):
    w3 = Web3(Web3.HTTPProvider(node.url))
    for criteria, message in [({"fromBlock": 41, "toBlock": 47}, "block range extends beyond current head block"),
                              ({"fromBlock": 44, "toBlock": 43}, "invalid block range params"),
                              ({"fromBlock": 46}, "invalid block range params")]:
        with pytest.raises(Web3RPCError) as raised:
            w3.eth.get_logs(criteria)
        assert raised.value.rpc_response["error"] == {"code": -32602, "message": message}
    assert w3.eth.get_logs({"fromBlock": 45, "toBlock": "latest"}) == w3.eth.get_logs({"fromBlock": 45, "toBlock": 45})


def test_get_proof_echoes_storage_keys_as_geth(node):
    """A key shorter than 32 bytes comes back as a quantity, a 32-byte key as it was sent."""
    keys = ["0x0", "0x00", "0x01", "0x" + "00" * 32, "0x" + "00" * 31 + "AB"]
    proof = node.rpc("eth_getProof", ACCOUNT, keys, "latest")["storageProof"]
    assert [p["key"] for p in proof] == ["0x0", "0x0", "0x1", "0x" + "00" * 32, "0x" + "00" * 31 + "ab"]
    assert proof[0] == proof[1] and proof[0]["value"] == "0x2a"
