"""The explorer read path: senders recorded at commit, served without ECDSA recovery."""
from eth_account import Account
from eth_utils import to_canonical_address

import genesis
from node.chain import Node
from node.rpc.config import RpcConfig
from node.rpc.eth import Eth
from node.rpc.namespaces import RpcContext
from node.storage import Schema

DEV = genesis.dev_accounts()


def _mine_two(datadir):
    """One block with a legacy and an EIP-1559 transfer from two dev accounts."""
    with Node.init(datadir, genesis.devnet()) as node:
        to = DEV[3][0]
        legacy = {"chainId": node.chain_id, "nonce": 0, "gas": 21_000, "gasPrice": 50 * 10**9, "to": to, "value": 1}
        dynamic = {"chainId": node.chain_id, "nonce": 0, "gas": 21_000, "maxFeePerGas": 100 * 10**9,
                   "maxPriorityFeePerGas": 10**9, "to": to, "value": 2, "type": 2}
        for tx, (_, key) in ((legacy, DEV[0]), (dynamic, DEV[1])):
            node.mempool.add_raw(bytes(Account.sign_transaction(tx, key).raw_transaction))
        return node.produce_block().hash


def test_senders_recorded_at_commit_are_attached_on_read(tmp_path):
    block_hash = _mine_two(tmp_path)
    with Node.open(tmp_path) as node:  # a fresh process: nothing cached from the commit
        block = node.block_by_hash(block_hash)
        assert [tx.__dict__.get("sender") for tx in block.transactions] == [
            to_canonical_address(DEV[0][0]), to_canonical_address(DEV[1][0])]
        eth = Eth(RpcContext(node=node, config=RpcConfig()))
        receipt = eth.get_transaction_receipt(block.transactions[1].hash)
        assert receipt["from"] == DEV[1][0].lower()
        full = eth.get_block_by_number(block.number, True)
        assert [t["from"] for t in full["transactions"]] == [DEV[0][0].lower(), DEV[1][0].lower()]


def test_a_damaged_sender_record_falls_back_to_recovery(tmp_path):
    block_hash = _mine_two(tmp_path)
    with Node.open(tmp_path) as node:
        node.db[Schema.block_senders(block_hash)] = b"\x01" * 21  # not 20 bytes per transaction
        block = node.block_by_hash(block_hash)
        assert all("sender" not in tx.__dict__ for tx in block.transactions)
        assert [tx.sender for tx in block.transactions] == [
            to_canonical_address(DEV[0][0]), to_canonical_address(DEV[1][0])]


def _record_and_fallback(node, eth, block_hash):
    """The receipts of a block served from its commit record, then with the record removed."""
    block = node.block_by_hash(block_hash)
    by_block = eth.get_block_receipts(block.number)
    by_tx = [eth.get_transaction_receipt(tx.hash) for tx in block.transactions]
    assert node.receipt_record(block.header) is not None
    del node.db[Schema.block_receipts(block_hash)]  # as a block committed before records were written
    assert node.receipt_record(block.header) is None
    fresh = Eth(RpcContext(node=node, config=RpcConfig()))  # nothing cached from the record path
    return (by_block, by_tx), (fresh.get_block_receipts(block.number),
                               [fresh.get_transaction_receipt(tx.hash) for tx in block.transactions])


def test_receipt_record_and_fallback_give_equal_receipts(tmp_path):
    """Legacy and EIP-1559 transfers, a contract creation and a contract emitting a log: the
    record written in the commit batch serves the same receipts, byte for byte, as the block and
    receipts decoded from the chain database (a real reopened LevelDB)."""
    with Node.init(tmp_path, genesis.devnet()) as node:
        key = DEV[2][1]
        # init code: LOG2(topics 7, 9) over 4 bytes of memory, then return an empty runtime
        emit = bytes.fromhex("6001600052" "6009" "6007" "6004" "601c" "a2" "00")
        txs = [
            {"nonce": 0, "gas": 100_000, "gasPrice": 50 * 10**9, "data": emit, "value": 0},
            {"nonce": 1, "gas": 21_000, "maxFeePerGas": 100 * 10**9, "maxPriorityFeePerGas": 10**9,
             "to": DEV[3][0], "value": 5, "type": 2},
            {"nonce": 2, "gas": 100_000, "maxFeePerGas": 100 * 10**9, "maxPriorityFeePerGas": 2 * 10**9,
             "data": emit, "value": 0, "type": 2},
        ]
        for tx in txs:
            node.mempool.add_raw(bytes(Account.sign_transaction({"chainId": node.chain_id, **tx}, key).raw_transaction))
        block_hash = node.produce_block().hash
    with Node.open(tmp_path) as node:
        eth = Eth(RpcContext(node=node, config=RpcConfig()))
        record, fallback = _record_and_fallback(node, eth, block_hash)
    by_block, by_tx = record
    assert len(by_block) == 3 and by_block == by_tx
    assert by_block[0]["contractAddress"] is not None and by_block[0]["to"] is None
    assert [len(r["logs"]) for r in by_block] == [1, 0, 1] and by_block[2]["logs"][0]["logIndex"] == "0x1"
    assert record == fallback


def test_a_damaged_receipt_record_falls_back_to_decoding(tmp_path):
    block_hash = _mine_two(tmp_path)
    with Node.open(tmp_path) as node:
        eth = Eth(RpcContext(node=node, config=RpcConfig()))
        expected = eth.get_block_receipts(1)
        node.db[Schema.block_receipts(block_hash)] = b"\xc3\x01\x02\x03"  # RLP, but not a record
        assert node.receipt_record(node.header_by_hash(block_hash)) is None
        assert Eth(RpcContext(node=node, config=RpcConfig())).get_block_receipts(1) == expected
