"""testing_buildBlockV1 over a real devnet process: off by default, builds the next block from
payload attributes without changing the chain, and its payload imports as the very block it
describes (the block hash recomputed here from the payload's fields, then `Node.import_block`)."""
import hashlib
import time

import pytest
import rlp
from eth.constants import EMPTY_UNCLE_HASH
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth.vm.forks.shanghai.withdrawals import Withdrawal
from eth_account import Account

import genesis
from node.chain import Node
from node.rpc.testing import gas_limit_towards
from tests.rpc import scenario
from tests.rpc.nodes import NodeProcess, call, devnet_process, start_ours
from vm.trie import ordered_trie_root

APIS = "eth,net,web3,testing"
DEV = genesis.devnet()
BEACON_ROOT = "0x" + "be" * 32
RANDAO = "0x" + "5a" * 32
RECIPIENT = "0x" + "fe" * 20
GWEI = 10**9


def start_devnet(tmp_path, apis: str = APIS) -> NodeProcess:
    """`openledger devnet` with the testing namespace on and no block for an hour after its first
    (height 1 is decided as the node starts): the head only moves if testing_buildBlockV1 (wrongly)
    moved it."""
    proc = devnet_process(tmp_path / "data", "--http.api", apis, "--block-time", "3600").wait_ready()
    deadline = time.monotonic() + 30
    while int(call(proc.url, "eth_blockNumber")["result"], 16) < 1:
        assert time.monotonic() < deadline, "the devnet decided no first block"
        time.sleep(0.05)
    return proc


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    proc = start_devnet(tmp_path_factory.mktemp("testing-api"))
    yield proc
    proc.stop()


def head(url: str) -> dict:
    return call(url, "eth_getBlockByNumber", "latest", False)["result"]


def attributes(parent: dict, **changes) -> dict:
    attrs = {"timestamp": hex(int(parent["timestamp"], 16) + 12), "prevRandao": RANDAO,
             "suggestedFeeRecipient": RECIPIENT, "withdrawals": [], "parentBeaconBlockRoot": BEACON_ROOT}
    attrs.update(changes)
    return attrs


def transfer(key_index: int, nonce: int, value: int = 1, tip: int = GWEI) -> str:
    raw = scenario.sign(scenario.KEYS[key_index], type=2, nonce=nonce, to=scenario.SINK, value=value, gas=21_000,
                        maxFeePerGas=3 * GWEI, maxPriorityFeePerGas=tip)
    return "0x" + raw.hex()


def balance(url: str, address: str) -> int:
    return int(call(url, "eth_getBalance", address, "latest")["result"], 16)


def test_gas_limit_moves_towards_the_ceiling_by_at_most_parent_over_1024():
    assert gas_limit_towards(0x47E7C40, 60_000_000) == 0x47D5CA2  # the execution-apis fixture's step down
    assert gas_limit_towards(30_000_000, 60_000_000) == 30_000_000 + 30_000_000 // 1024 - 1
    assert gas_limit_towards(59_990_000, 60_000_000) == 60_000_000  # the last step lands on the ceiling
    assert gas_limit_towards(30_000_000, 30_000_000) == 30_000_000  # our chains: the genesis limit stays


def test_off_unless_enabled(tmp_path):
    proc = start_ours(tmp_path)  # the default --http.api: eth,net,web3
    try:
        parent = head(proc.url)
        answer = call(proc.url, "testing_buildBlockV1", parent["hash"], attributes(parent), [], None)
        assert answer["error"]["code"] == -32601
    finally:
        proc.stop()


def test_empty_block_on_the_head(node):
    parent = head(node.url)
    answer = call(node.url, "testing_buildBlockV1", parent["hash"], attributes(parent), [], "0x6f6c")["result"]
    payload = answer["executionPayload"]
    assert payload["parentHash"] == parent["hash"]
    assert int(payload["blockNumber"], 16) == int(parent["number"], 16) + 1
    assert payload["timestamp"] == hex(int(parent["timestamp"], 16) + 12)
    assert (payload["feeRecipient"], payload["prevRandao"], payload["extraData"]) == (RECIPIENT, RANDAO, "0x6f6c")
    assert payload["gasLimit"] == parent["gasLimit"] == hex(DEV.gas_limit)  # our chain keeps its gas limit
    parent_fee = int(parent["baseFeePerGas"], 16)  # an empty parent: EIP-1559 lowers the fee by 1/8
    assert int(payload["baseFeePerGas"], 16) == parent_fee - parent_fee // 8
    assert (payload["transactions"], payload["withdrawals"], payload["gasUsed"]) == ([], [], "0x0")
    assert answer["blockValue"] == "0x0" and answer["executionRequests"] == []
    assert answer["blobsBundle"] == {"commitments": [], "proofs": [], "blobs": []}
    assert answer["shouldOverrideBuilder"] is False
    assert head(node.url) == parent
    # Deterministic: the same request gives the same block; other attributes another one.
    again = call(node.url, "testing_buildBlockV1", parent["hash"], attributes(parent), [], "0x6f6c")["result"]
    assert again == answer
    other = call(node.url, "testing_buildBlockV1", parent["hash"], attributes(parent, prevRandao="0x" + "00" * 32),
                 [], "0x6f6c")["result"]
    assert other["executionPayload"]["blockHash"] != payload["blockHash"]


def block_from_payload(block_class, payload: dict, beacon_root: str, requests: list[str]):
    """engine_newPayloadV4's reconstruction, written out independently of the node's builder."""
    txs = [block_class.get_transaction_builder().decode(bytes.fromhex(raw[2:])) for raw in payload["transactions"]]
    withdrawals = [Withdrawal(int(w["index"], 16), int(w["validatorIndex"], 16), bytes.fromhex(w["address"][2:]),
                              int(w["amount"], 16)) for w in payload["withdrawals"]]
    digest = hashlib.sha256()
    for request in requests:
        digest.update(hashlib.sha256(bytes.fromhex(request[2:])).digest())
    header = PragueBlockHeader(
        parent_hash=bytes.fromhex(payload["parentHash"][2:]), uncles_hash=EMPTY_UNCLE_HASH,
        coinbase=bytes.fromhex(payload["feeRecipient"][2:]), state_root=bytes.fromhex(payload["stateRoot"][2:]),
        transaction_root=ordered_trie_root([tx.encode() for tx in txs])[0],
        receipt_root=bytes.fromhex(payload["receiptsRoot"][2:]), bloom=int(payload["logsBloom"], 16),
        difficulty=0, block_number=int(payload["blockNumber"], 16), gas_limit=int(payload["gasLimit"], 16),
        gas_used=int(payload["gasUsed"], 16), timestamp=int(payload["timestamp"], 16),
        extra_data=bytes.fromhex(payload["extraData"][2:]), mix_hash=bytes.fromhex(payload["prevRandao"][2:]),
        nonce=b"\x00" * 8, base_fee_per_gas=int(payload["baseFeePerGas"], 16),
        withdrawals_root=ordered_trie_root([rlp.encode(w) for w in withdrawals])[0],
        blob_gas_used=int(payload["blobGasUsed"], 16), excess_blob_gas=int(payload["excessBlobGas"], 16),
        parent_beacon_block_root=bytes.fromhex(beacon_root[2:]), requests_hash=digest.digest())
    return block_class(header=header, transactions=txs, uncles=[], withdrawals=withdrawals)


def test_payload_imports_as_the_block_it_describes(tmp_path):
    proc = start_devnet(tmp_path)
    try:
        parent = head(proc.url)
        sink_before = balance(proc.url, scenario.SINK)
        txs = [transfer(0, 0, value=5, tip=GWEI), transfer(1, 0, value=7, tip=2 * GWEI)]
        withdrawal = {"index": "0x0", "validatorIndex": "0x7", "address": scenario.SINK, "amount": "0x3"}
        attrs = attributes(parent, withdrawals=[withdrawal])
        answer = call(proc.url, "testing_buildBlockV1", parent["hash"], attrs, txs, None)["result"]
        payload = answer["executionPayload"]
        assert payload["transactions"] == txs and payload["withdrawals"] == [withdrawal]
        assert payload["gasUsed"] == hex(2 * 21_000)
        assert answer["blockValue"] == hex(21_000 * GWEI + 21_000 * 2 * GWEI)  # the tips (fee cap is ample)
        # Nothing happened to the chain: no block, no balance moved, the senders' nonces unused.
        assert head(proc.url) == parent
        assert balance(proc.url, scenario.SINK) == sink_before
        sender = Account.from_key(scenario.KEYS[0]).address
        assert call(proc.url, "eth_getTransactionCount", sender, "latest")["result"] == "0x0"
    finally:
        assert proc.stop() == 0
    with Node.open(tmp_path / "data") as chain:
        block = block_from_payload(chain.block_class, payload, BEACON_ROOT, answer["executionRequests"])
        assert "0x" + block.header.hash.hex() == payload["blockHash"]
        chain.import_block(block)
        assert chain.head().hash == block.header.hash
        state = chain.state_at(chain.head())
        sink = bytes.fromhex(scenario.SINK[2:])
        assert state.get_balance(sink) == sink_before + 5 + 7 + 3 * GWEI  # withdrawals are in Gwei


def test_null_transactions_take_the_pool(node):
    parent = head(node.url)
    raw = transfer(2, 0, value=11)
    tx_hash = call(node.url, "eth_sendRawTransaction", raw)["result"]
    from_pool = call(node.url, "testing_buildBlockV1", parent["hash"], attributes(parent), None, None)["result"]
    assert from_pool["executionPayload"]["transactions"] == [raw]
    empty = call(node.url, "testing_buildBlockV1", parent["hash"], attributes(parent), [], None)["result"]
    assert empty["executionPayload"]["transactions"] == []
    # Building takes nothing out of the pool and mines nothing.
    assert call(node.url, "eth_getTransactionByHash", tx_hash)["result"]["blockNumber"] is None
    assert head(node.url) == parent


def _hostile_cases(parent: dict) -> list[tuple[str, list, int, str]]:
    good = attributes(parent)
    nonce_gap = transfer(3, 5)
    return [
        ("unknown parent", ["0x" + "ab" * 32, good, [], None], -32000, "parentHash is not current head"),
        ("parent not a hash", ["0x1234", good, [], None], -32602, "invalid argument 0"),
        ("attributes not an object", [parent["hash"], [1, 2], [], None], -32602, "must be an object"),
        ("missing timestamp", [parent["hash"], {k: v for k, v in good.items() if k != "timestamp"}, [], None],
         -32602, "timestamp"),
        ("short fee recipient", [parent["hash"], {**good, "suggestedFeeRecipient": "0x12"}, [], None],
         -32602, "common.Address"),
        ("unknown attribute", [parent["hash"], {**good, "gasLimit": "0x1"}, [], None], -32602, "gasLimit"),
        ("bad withdrawal", [parent["hash"], {**good, "withdrawals": [{"index": "0x0"}]}, [], None],
         -32602, "withdrawals[0]"),
        ("no beacon root", [parent["hash"], {k: v for k, v in good.items() if k != "parentBeaconBlockRoot"}, [], None],
         -32602, "parentBeaconBlockRoot"),
        ("timestamp not after parent", [parent["hash"], {**good, "timestamp": parent["timestamp"]}, [], None],
         -32000, "invalid timestamp"),
        ("transactions not a list", [parent["hash"], good, "0x00", None], -32602, "array"),
        ("undecodable transaction", [parent["hash"], good, ["0x02deadbeef"], None], -32000, "invalid transaction 0"),
        ("not hex", [parent["hash"], good, ["zz"], None], -32602, "invalid argument 2"),
        ("wrong chain id", [parent["hash"], good, ["0x" + bytes(Account.sign_transaction(
            {"chainId": DEV.chain_id + 1, "type": 2, "nonce": 0, "to": scenario.SINK, "value": 1, "gas": 21_000,
             "maxFeePerGas": 3 * GWEI, "maxPriorityFeePerGas": GWEI}, scenario.KEYS[3]).raw_transaction).hex()], None],
         -32000, "chain id"),
        ("nonce too high", [parent["hash"], good, [nonce_gap], None], -32000, "nonce too high"),
        ("second transaction bad", [parent["hash"], good, [transfer(3, 0), transfer(3, 0)], None],
         -32000, "nonce too low"),
        ("extra data too long", [parent["hash"], good, [], "0x" + "00" * 33], -32602, "extraData"),
    ]


def test_hostile_input_is_refused_and_changes_nothing(node):
    parent = head(node.url)
    sender = Account.from_key(scenario.KEYS[3]).address
    for name, params, code, words in _hostile_cases(parent):
        error = call(node.url, "testing_buildBlockV1", *params).get("error")
        assert error is not None, name
        assert error["code"] == code and words in error["message"], (name, error)
        assert head(node.url) == parent, name
    assert call(node.url, "eth_getTransactionCount", sender, "latest")["result"] == "0x0"
