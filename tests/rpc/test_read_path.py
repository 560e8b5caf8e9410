"""The explorer read path: body and receipt records written at commit (`node.records`), served
without trie walks or ECDSA recovery, and the fallback to py-evm's tries when a record is missing."""
from eth_account import Account
from eth_utils import to_canonical_address
import msgpack
import rlp

import genesis
from node.chain import Node
from node.rpc import format as F
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


def _every_type(datadir):
    """One block with each transaction type the pool takes: legacy (EIP-155), EIP-2930 with an
    access list, EIP-1559 creating a contract, EIP-7702 delegating an account. (Blob transactions,
    which the pool does not take, are checked by the conformance fixtures of the imported chain.)"""
    with Node.init(datadir, genesis.devnet()) as node:
        fee = {"maxFeePerGas": 100 * 10**9, "maxPriorityFeePerGas": 10**9}
        txs = [
            (DEV[0][1], {"nonce": 0, "gas": 21_000, "gasPrice": 50 * 10**9, "to": DEV[3][0], "value": 1}),
            (DEV[1][1], {"nonce": 0, "gas": 60_000, "gasPrice": 50 * 10**9, "to": DEV[3][0], "value": 2,
                         "accessList": [{"address": DEV[4][0], "storageKeys": ["0x" + "00" * 31 + "05"]}],
                         "type": 1}),
            (DEV[2][1], {"nonce": 0, "gas": 100_000, "data": "0x600a600c600039600a6000f3", "value": 3,
                         "type": 2, **fee}),
            (DEV[4][1], {"nonce": 0, "gas": 100_000, "to": DEV[5][0], "type": 4, **fee, "authorizationList": [
                Account.sign_authorization({"chainId": node.chain_id, "address": DEV[6][0], "nonce": 0}, DEV[5][1])]}),
        ]
        for key, tx in txs:
            node.mempool.add_raw(bytes(Account.sign_transaction({"chainId": node.chain_id, **tx}, key).raw_transaction))
        block = node.produce_block()
        assert len(block.transactions) == len(txs)
        return block.hash


def test_block_records_serve_what_the_tries_hold(tmp_path):
    """Each transaction type, read from the body record written at commit, formats to the same
    JSON as the block py-evm decodes from its transaction trie, and rebuilds the same block."""
    block_hash = _every_type(tmp_path)
    with Node.open(tmp_path) as node:
        header = node.header_by_hash(block_hash)
        record = node.block_record(header)
        from_tries = node.block_class_at(header.block_number).from_header(header, node.evm_chain().chaindb)
        assert record is not None and [tx.type_id for tx in record.transactions] == [0, 1, 2, 4]
        for full in (True, False):
            assert F.block(record, full) == F.block(from_tries, full)
        assert rlp.encode(node.block_by_hash(block_hash)) == rlp.encode(from_tries)
        eth = Eth(RpcContext(node=node, config=RpcConfig()))
        assert [eth.get_transaction_by_hash(tx.hash) for tx in from_tries.transactions] == [
            F.transaction(tx, header, i) for i, tx in enumerate(from_tries.transactions)]
        assert F.block(record, True)["transactions"][1]["accessList"][0]["storageKeys"] == ["0x" + "00" * 31 + "05"]


def test_a_damaged_body_record_falls_back_to_the_tries(tmp_path):
    block_hash = _mine_two(tmp_path)
    with Node.open(tmp_path) as node:
        expected = F.block(node.block_record(node.header_by_hash(block_hash)), True)
        packed = node.db[Schema.block_body(block_hash)]
        short_sender = msgpack.unpackb(packed, use_list=True, ext_hook=lambda code, data: msgpack.ExtType(code, data))
        short_sender[1][0][2] = b"\x01" * 19
        for damage in (packed[:-3], b"\x01" * 21, msgpack.packb([5, [[1, 2, 3]]]),
                       msgpack.packb(short_sender), msgpack.packb([5, [[b"\x01"] * 20]])):
            node.db[Schema.block_body(block_hash)] = damage
            assert node.block_record(node.header_by_hash(block_hash)) is None
            block = node.block_by_hash(block_hash)  # read from the tries, senders recovered (ECDSA)
            assert [tx.sender for tx in block.transactions] == [
                to_canonical_address(DEV[0][0]), to_canonical_address(DEV[1][0])]
            assert Eth(RpcContext(node=node, config=RpcConfig())).get_block_by_number(1, True) == expected


def _record_and_fallback(node, eth, block_hash):
    """The receipts of a block served from its commit record, then with the record removed."""
    block = node.block_by_hash(block_hash)
    by_block = eth.get_block_receipts(block.number)
    by_tx = [eth.get_transaction_receipt(tx.hash) for tx in block.transactions]
    assert node.receipt_record(block.header) is not None
    del node.db[Schema.block_receipts(block_hash)]  # as a block committed before records were written
    del node.db[Schema.block_body(block_hash)]
    assert node.receipt_record(block.header) is None and node.block_record(block.header) is None
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


def test_transaction_lookups_decode_like_rlp():
    """py-evm's tx lookup value [block number, index], read inline on the read path: the same
    numbers as rlp for every size, and refusals (or rlp's own reading) for anything else."""
    from node.chain import _two_integers

    for number, index in ((0, 0), (1, 0), (127, 5), (128, 200), (2**40, 2**16), (2**63, 1), (2**64 - 1, 2**32)):
        assert _two_integers(rlp.encode([number, index])) == (number, index)
    for damaged in (b"\xc2\x81\x00", rlp.encode([1, 2, 3]), b"\xc0", b"\xc3\x01\x02", rlp.encode([[1], 2])):
        try:
            _two_integers(damaged)
        except (rlp.exceptions.RLPException, ValueError, TypeError):
            continue
        raise AssertionError(f"{damaged.hex()} was accepted")
