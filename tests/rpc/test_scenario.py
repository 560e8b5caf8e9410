"""End to end with web3.py and eth-account: the same signed transactions and queries against our
node and anvil in the same run, compared field by field (which fields exist, their formats, and
the values two honest nodes must agree on)."""
import json

import pytest
import tests.rpc.scenario as scenario
import tests.rpc.solc as solc

pytestmark = pytest.mark.skipif(not solc.available(), reason="solc-js not installed: run `npm install`")

# Values that depend on the chain's own blocks, not on the transactions: block hashes and
# timestamps, the miner, and the base fee (our genesis block already carries the initial base
# fee, anvil's first block does), hence effective gas prices.
CHAIN_SPECIFIC = {"blockHash", "blockTimestamp", "effectiveGasPrice", "gasPrice", "hash", "parentHash",
                  "stateRoot", "timestamp", "miner", "baseFeePerGas", "mixHash", "size", "extraData"}
# anvil extras that go-ethereum does not send (geth dropped totalDifficulty; blobGasPrice is for
# blob transactions only; anvil also puts a JSON-number blockTimestamp into receipts).
ANVIL_ONLY = {"totalDifficulty", "blobGasPrice"}


def strip(value, keys):
    if isinstance(value, dict):
        return {k: strip(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [strip(v, keys) for v in value]
    return value


@pytest.fixture(scope="module")
def answers(ours, anvil):
    return scenario.run(ours.url), scenario.run(anvil.url)


RECEIPTS = ["legacy", "type1", "type2", "deploy", "store", "failed"]


@pytest.mark.parametrize("name", RECEIPTS)
def test_receipts_match(answers, name):
    mine, theirs = answers[0][name], answers[1][name]
    theirs = {k: v for k, v in theirs.items() if not (k == "blockTimestamp" and isinstance(v, int))}
    assert scenario.shape(mine) == scenario.shape(strip(theirs, ANVIL_ONLY))
    assert strip(mine, CHAIN_SPECIFIC) == strip(theirs, CHAIN_SPECIFIC | ANVIL_ONLY)


def test_transaction_kinds_and_outcomes(answers):
    mine = answers[0]
    assert [mine[n]["type"] for n in RECEIPTS] == ["0x0", "0x1", "0x2", "0x2", "0x2", "0x2"]
    assert [mine[n]["status"] for n in RECEIPTS] == ["0x1"] * 5 + ["0x0"]
    assert mine["deploy"]["contractAddress"] and mine["deploy"]["to"] is None
    assert mine["blocks_mined"] == 6  # automine: one block per transaction


@pytest.mark.parametrize("name", [
    "estimate", "call_latest", "call_at_deploy", "call_by_hash", "revert_reason", "estimate_revert",
    "storage_latest", "storage_at_deploy", "code", "code_before_deploy", "balance_sink_history",
    "nonce_latest", "nonce_pending", "logs_by_topic", "logs_by_sender", "logs_by_hash", "logs_other_topic",
    "tx_by_hash", "tx_type1", "tx_by_index", "tx_by_hash_index", "count_by_number", "count_by_hash",
    "missing_tx", "missing_block", "block_receipts", "filters", "syncing",
])
def test_answers_match(answers, name):
    mine, theirs = answers[0][name], strip(answers[1][name], ANVIL_ONLY)
    if name == "block_receipts":
        theirs = json.loads(json.dumps(theirs))
        for receipt in theirs["result"]:
            receipt.pop("blockTimestamp")
    if name == "filters":  # error wording of an uninstalled filter is each node's own
        assert mine.pop("gone") and theirs.pop("gone")
    assert scenario.shape(mine) == scenario.shape(theirs)
    assert strip(mine, CHAIN_SPECIFIC) == strip(theirs, CHAIN_SPECIFIC)


def test_reverts_carry_code_3_and_data(answers):
    mine, theirs = answers
    assert mine["revert_reason"]["error"] == {
        "code": 3, "message": "execution reverted: zero not allowed",
        "data": theirs["revert_reason"]["error"]["data"]}
    # a custom error: same code and data; geth (and we) do not decode it into the message
    assert mine["revert_custom"]["error"]["code"] == theirs["revert_custom"]["error"]["code"] == 3
    assert mine["revert_custom"]["error"]["data"] == theirs["revert_custom"]["error"]["data"]
    assert mine["revert_custom"]["error"]["message"] == "execution reverted"


def test_blocks_match_in_shape_and_content(answers):
    for name in ("block_full", "block_hashes"):
        mine, theirs = answers[0][name]["result"], strip(answers[1][name]["result"], ANVIL_ONLY)
        assert scenario.shape(mine) == scenario.shape(theirs)
        for key in ("number", "gasUsed", "gasLimit", "logsBloom", "transactionsRoot", "receiptsRoot",
                    "withdrawalsRoot", "sha3Uncles", "uncles", "withdrawals", "blobGasUsed"):
            assert mine[key] == theirs[key], key
    full = answers[0]["block_full"]["result"]["transactions"]
    assert strip(full, CHAIN_SPECIFIC) == strip(answers[1]["block_full"]["result"]["transactions"], CHAIN_SPECIFIC)


def test_historical_state(answers):
    mine = answers[0]
    assert int(mine["call_at_deploy"]["result"], 16) == 84 and int(mine["call_latest"]["result"], 16) == 14
    assert int(mine["storage_at_deploy"]["result"], 16) == 42 and int(mine["storage_latest"]["result"], 16) == 7
    assert mine["code_before_deploy"]["result"] == "0x"
    assert [int(b, 16) for b in mine["balance_sink_history"]] == [0, 1, 3, 6, 6, 6, 6]


def test_fee_history(answers):
    mine, theirs = answers[0]["fee_history"]["result"], answers[1]["fee_history"]["result"]
    assert scenario.shape(mine) == scenario.shape(theirs)
    for key in ("oldestBlock", "gasUsedRatio", "reward", "blobGasUsedRatio"):
        assert mine[key] == theirs[key]
    assert len(mine["baseFeePerGas"]) == 4
