"""eth_simulateV1 behaviours go-ethereum has and py-evm's block rules do not, over a node started
as a user would (`openledger init/import/run` on the execution-apis chain): fee-free calls
without validation, a nonce of 2^64-1, blob transactions, the fee recipient carried over, and
log indexes that count the logs of failed frames."""
import json

import pytest

from tests.conformance.runner import start_node

SENDER = "0xc000000000000000000000000000000000000000"
CONTRACT = "0xc100000000000000000000000000000000000000"
OTHER = "0xc200000000000000000000000000000000000000"
RECIPIENT = "0xc300000000000000000000000000000000000000"
BALANCE_OF = "0x60003531600052602060" + "00f3"  # return BALANCE(calldata[0:32])
BLOB_HASH = "0x600049600052602060" + "00f3"  # return BLOBHASH(0)
BLOB_BASE_FEE = "0x4a600052602060" + "00f3"  # return BLOBBASEFEE
COINBASE = "0x41600052602060" + "00f3"  # return COINBASE
LOG_THEN_REVERT = "0x60006000a060006000fd"  # LOG0, REVERT
LOG = "0x60006000a000"  # LOG0, STOP
VERSIONED_HASH = "0x01" + "ab" * 31
MAX_NONCE = 2**64 - 1


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    process = start_node(tmp_path_factory.mktemp("simulate"))
    yield process
    process.stop()


def simulate(node, blocks, **options):
    request = {"jsonrpc": "2.0", "id": 1, "method": "eth_simulateV1",
               "params": [{"blockStateCalls": blocks, **options}, "latest"]}
    return node.post(json.dumps(request))


def word(address: str) -> str:
    return "0x" + address[2:].rjust(64, "0")


def test_fee_free_call_runs_below_the_base_fee_without_validation(node):
    """geth's NoBaseFee: fee caps of 0 skip the base-fee check and pay the coinbase nothing;
    a fee cap above 0 but below the base fee is still refused (-38012)."""
    def coinbase_balance(fees: dict) -> int:
        blocks = [
            {"blockOverrides": {"baseFeePerGas": "0x3e8", "feeRecipient": RECIPIENT},
             "stateOverrides": {SENDER: {"balance": "0x3b9aca00"}},
             "calls": [{"from": SENDER, "to": OTHER, "gas": "0x5208", **fees}]},
            {"stateOverrides": {CONTRACT: {"code": BALANCE_OF}},
             "calls": [{"from": SENDER, "to": CONTRACT, "input": word(RECIPIENT)}]},
        ]
        result = simulate(node, blocks)["result"]
        assert result[0]["calls"][0]["status"] == "0x1"
        assert result[0]["baseFeePerGas"] == "0x3e8"
        return int(result[1]["calls"][0]["returnData"], 16)

    assert coinbase_balance({"maxFeePerGas": "0x0", "maxPriorityFeePerGas": "0x0"}) == 0
    assert coinbase_balance({"maxFeePerGas": "0x7d0", "maxPriorityFeePerGas": "0x2"}) == 2 * 21000

    too_low = simulate(node, [{"blockOverrides": {"baseFeePerGas": "0x3e8"},
                               "calls": [{"from": SENDER, "to": OTHER, "maxFeePerGas": "0x5"}]}])
    assert too_low["error"]["code"] == -38012, too_low
    with_validation = simulate(node, [{"blockOverrides": {"baseFeePerGas": "0x3e8"},
                                       "calls": [{"from": SENDER, "to": OTHER, "maxFeePerGas": "0x0",
                                                  "maxPriorityFeePerGas": "0x0"}]}], validation=True)
    assert with_validation["error"]["code"] == -38012, with_validation


def test_nonce_of_2_64_minus_1_wraps_without_validation(node):
    blocks = [{"stateOverrides": {SENDER: {"nonce": hex(MAX_NONCE)}},
               "calls": [{"from": SENDER, "to": OTHER}, {"from": SENDER, "to": OTHER}]}]
    result = simulate(node, blocks, returnFullTransactions=True)["result"]
    assert [c["status"] for c in result[0]["calls"]] == ["0x1", "0x1"]
    assert [t["nonce"] for t in result[0]["transactions"]] == [hex(MAX_NONCE), "0x0"]

    refused = simulate(node, [{**blocks[0], "calls": [{"from": SENDER, "to": OTHER, "maxFeePerGas": "0x3b9aca00"}]}],
                       validation=True)
    assert refused["error"]["code"] == -32603, refused  # geth's ErrNonceMax
    assert "nonce has max value" in refused["error"]["message"]
    create = simulate(node, [{**blocks[0], "calls": [{"from": SENDER, "input": "0x00"}]}])
    assert create["error"]["code"] == -32000 and "overflow" in create["error"]["message"], create


def test_intrinsic_gas_is_checked(node):
    response = simulate(node, [{"calls": [{"from": SENDER, "to": OTHER, "gas": "0x5000"}]}])
    assert response["error"]["code"] == -38013, response


def test_blob_transaction(node):
    blob_call = {"from": SENDER, "to": CONTRACT, "maxFeePerGas": "0x3b9aca00", "maxFeePerBlobGas": "0xa",
                 "blobVersionedHashes": [VERSIONED_HASH]}
    blocks = [
        {"blockOverrides": {"blobBaseFee": "0x7"},
         "stateOverrides": {SENDER: {"balance": "0xde0b6b3a7640000"}, CONTRACT: {"code": BLOB_HASH},
                            OTHER: {"code": BLOB_BASE_FEE}},
         "calls": [blob_call, {"from": SENDER, "to": OTHER, "maxFeePerGas": "0x3b9aca00"}]},
        {"calls": [{"from": SENDER, "to": OTHER, "maxFeePerGas": "0x3b9aca00"}]},
    ]
    response = simulate(node, blocks, validation=True, returnFullTransactions=True)
    first, second = response["result"]
    assert first["calls"][0]["status"] == "0x1"
    assert first["calls"][0]["returnData"] == VERSIONED_HASH  # BLOBHASH sees the transaction's hash
    assert int(first["calls"][1]["returnData"], 16) == 7  # the blobBaseFee override
    assert int(second["calls"][0]["returnData"], 16) == 1  # no override: the header's (excess 0)
    assert first["blobGasUsed"] == "0x20000" and second["blobGasUsed"] == "0x0"
    tx = first["transactions"][0]
    assert tx["type"] == "0x3" and tx["blobVersionedHashes"] == [VERSIONED_HASH]
    assert tx["maxFeePerBlobGas"] == "0xa"

    under_fee = simulate(node, [{**blocks[0], "blockOverrides": {"blobBaseFee": "0xb"}, "calls": [blob_call]}],
                         validation=True)
    assert "error" in under_fee and "blob" in under_fee["error"]["message"].lower(), under_fee
    bad_version = simulate(node, [{**blocks[0], "calls": [{**blob_call, "blobVersionedHashes": ["0x02" + "ab" * 31]}]}])
    assert "error" in bad_version and "version" in bad_version["error"]["message"].lower(), bad_version
    no_to = simulate(node, [{**blocks[0], "calls": [{k: v for k, v in blob_call.items() if k != "to"}]}])
    assert "error" in no_to and '"to"' in no_to["error"]["message"], no_to
    gas_price = simulate(node, [{"calls": [{"from": SENDER, "to": CONTRACT, "gasPrice": "0x1",
                                            "blobVersionedHashes": [VERSIONED_HASH]}]}])
    assert gas_price["error"]["code"] == -32602, gas_price


def test_fee_recipient_carries_over_to_later_blocks(node):
    """geth makes each simulated header from the one before it, gap blocks included."""
    blocks = [
        {"blockOverrides": {"feeRecipient": RECIPIENT}},
        {"blockOverrides": {"number": "0x31"}, "stateOverrides": {CONTRACT: {"code": COINBASE}},
         "calls": [{"from": SENDER, "to": CONTRACT}]},
    ]
    result = simulate(node, blocks)["result"]
    assert [b["miner"] for b in result] == [RECIPIENT] * 4
    assert result[-1]["calls"][0]["returnData"] == word(RECIPIENT)
    head = node.post('{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["latest",false]}')["result"]
    assert simulate(node, [{}])["result"][0]["miner"] == head["miner"]


@pytest.mark.parametrize("trace_transfers", [False, True])
def test_log_indexes_count_logs_of_failed_frames(node, trace_transfers):
    """The geth that recorded the execution-apis fixtures numbers every log its simulation tracer
    captured in the block, so a reverted frame's logs use up their indexes."""
    blocks = [{"stateOverrides": {CONTRACT: {"code": LOG_THEN_REVERT}, OTHER: {"code": LOG},
                                  SENDER: {"balance": "0x3b9aca00"}},
               "calls": [{"from": SENDER, "to": CONTRACT}, {"from": SENDER, "to": OTHER},
                         {"from": SENDER, "to": OTHER}]}]
    calls = simulate(node, blocks, traceTransfers=trace_transfers)["result"][0]["calls"]
    assert [c["status"] for c in calls] == ["0x0", "0x1", "0x1"]
    assert calls[0]["logs"] == []
    assert [log["logIndex"] for c in calls[1:] for log in c["logs"]] == ["0x1", "0x2"]

    if trace_transfers:  # a value transfer into a frame that fails (out of gas) also uses an index
        transfers = [{"stateOverrides": {SENDER: {"balance": "0x3b9aca00"}, OTHER: {"code": LOG}},
                      "calls": [{"from": SENDER, "to": OTHER, "gas": "0x5208", "value": "0x1"},
                                {"from": SENDER, "to": RECIPIENT, "value": "0x2"}]}]
        calls = simulate(node, transfers, traceTransfers=True)["result"][0]["calls"]
        assert calls[0]["status"] == "0x0" and calls[0]["logs"] == []
        (log,) = calls[1]["logs"]
        assert log["address"] == "0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee" and log["logIndex"] == "0x1"
        assert log["topics"][2] == word(RECIPIENT) and int(log["data"], 16) == 2
