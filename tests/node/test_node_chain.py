"""Node: production, import into a second data dir, reads, logs from the index, calls."""
import pytest
import rlp
from eth._utils.address import generate_contract_address
from eth.exceptions import Revert
from eth_utils import keccak

import genesis
from node.chain import CallError, DataDirError, Node, UnknownBlock
from vm import WrongChainId

# Runtime: LOG1(topic = calldata[32:64], data = calldata[0:32]); init code copies it out.
LOGGER_RUNTIME = bytes.fromhex("60003560005260203560206000a100")
LOGGER_INIT = bytes.fromhex("600f80600b6000396000f3") + LOGGER_RUNTIME
REVERTER_INIT = bytes.fromhex("6005600c60003960056000f3") + bytes.fromhex("60006000fd")  # runtime: REVERT(0, 0)


def _contract(node, key, nonce, init, sign_tx):
    tx_hash = node.mempool.add_raw(sign_tx(key, nonce, to=b"", value=0, data=init, gas=200_000))
    block = node.produce_block()
    receipt = node.receipts(block.header)[node.tx_location(tx_hash)[1]]
    assert receipt.state_root == b"\x01"
    return generate_contract_address(block.transactions[0].sender, nonce)


def test_produce_then_import_gives_the_same_chain(node, tmp_path, dev_accounts, sign_tx) -> None:
    for i in range(1, 4):
        for n in range(5):
            node.mempool.add_raw(sign_tx(dev_accounts[i][1], n))
    b1 = node.produce_block()
    b2 = node.produce_block()  # empty blocks are fine
    assert len(b1.transactions) == 15 and len(b2.transactions) == 0
    seen = []
    with Node.init(tmp_path / "follower", genesis.devnet()) as follower:
        follower.add_listener(lambda block, receipts: seen.append((block.number, len(receipts))))
        for block in (b1, b2):
            follower.import_block(block)
        assert follower.head() == node.head()
        assert seen == [(1, 15), (2, 0)]
        for tx_index, tx in enumerate(b1.transactions):
            assert follower.tx_location(tx.hash) == (1, tx_index)
        assert [r.gas_used for r in follower.receipts(b1.header)] == [r.gas_used for r in node.receipts(b1.header)]


def test_import_rejects_a_foreign_chain_id(tmp_path, dev_accounts, sign_tx) -> None:
    with Node.init(tmp_path / "a", genesis.devnet(chain_id=999)) as foreign:
        foreign.mempool.add_raw(sign_tx(dev_accounts[1][1], 0, chain_id=999))
        block = foreign.produce_block()
    with Node.init(tmp_path / "b", genesis.devnet()) as ours:
        with pytest.raises(WrongChainId):
            ours.import_block(block)
        assert ours.head().block_number == 0 and ours.tx_location(block.transactions[0].hash) is None


def test_reads_and_block_tags(node, dev_accounts, sign_tx) -> None:
    node.mempool.add_raw(sign_tx(dev_accounts[1][1], 0, value=9))
    block = node.produce_block()
    head = node.head()
    assert head == block.header
    for tag in ("latest", "pending", "safe", "finalized", 1, block.hash):
        assert node.resolve_block(tag) == head
    assert node.resolve_block("earliest").block_number == 0
    for bad in (2, -1, b"\x00" * 32, "newest", b"\x01", True):
        with pytest.raises(UnknownBlock):
            node.resolve_block(bad)
    assert node.block_by_number(1).transactions == block.transactions
    assert node.block_by_hash(block.hash).header == head
    assert node.block_by_number(5) is None and node.block_by_hash(b"\x00" * 32) is None
    assert node.header_by_hash(b"\x12" * 3) is None
    assert node.tx_location(b"\x00" * 32) is None
    # archive reads
    assert node.state_at(node.resolve_block(0)).get_balance(b"\x11" * 20) == 0
    assert node.state_at(head).get_balance(b"\x11" * 20) == 9


def test_logs_served_from_the_index(node, dev_accounts, sign_tx) -> None:
    key = dev_accounts[1][1]
    logger = _contract(node, key, 0, LOGGER_INIT, sign_tx)
    other = _contract(node, key, 1, LOGGER_INIT, sign_tx)
    topic_a, topic_b = keccak(b"A"), keccak(b"B")
    calls = [(logger, topic_a, 1), (other, topic_b, 2), (logger, topic_b, 3)]
    for n, (to, topic, value) in enumerate(calls, start=2):
        node.mempool.add_raw(sign_tx(key, n, to=to, value=0, gas=60_000, data=value.to_bytes(32, "big") + topic))
        node.produce_block()
    node.produce_block()  # block without logs
    everything = node.logs(0, 10)
    assert [(r.address, r.topics, int.from_bytes(r.data, "big")) for r in everything] == [
        (logger, (topic_a,), 1), (other, (topic_b,), 2), (logger, (topic_b,), 3)]
    assert [r.block_number for r in everything] == [3, 4, 5]
    assert everything[0].transaction_hash == node.block_by_number(3).transactions[0].hash
    assert [r.data[-1] for r in node.logs(0, 10, addresses=[logger])] == [1, 3]
    assert [r.data[-1] for r in node.logs(0, 10, topics=[topic_b])] == [2, 3]
    assert [r.data[-1] for r in node.logs(0, 10, topics=[[topic_a, topic_b]])] == [1, 2, 3]
    assert [r.data[-1] for r in node.logs(0, 10, addresses=[logger], topics=[topic_b])] == [3]
    assert [r.data[-1] for r in node.logs(4, 4)] == [2]
    assert node.logs(0, 10, topics=[None, topic_a]) == []
    assert node.logs(0, 10, addresses=[b"\x99" * 20]) == []
    assert node.logs(6, 2) == []


def test_call_and_estimate_gas(node, dev_accounts, sign_tx) -> None:
    key, sender = dev_accounts[1][1], bytes.fromhex(dev_accounts[1][0][2:])
    logger = _contract(node, key, 0, LOGGER_INIT, sign_tx)
    reverter = _contract(node, key, 1, REVERTER_INIT, sign_tx)
    head = node.head()
    computation = node.call({"from": sender, "to": logger, "data": b"\x00" * 64}, head)
    assert computation.is_success and len(computation.get_log_entries()) == 1
    assert node.call({"to": reverter}, head).is_error
    assert node.estimate_gas({"from": sender, "to": b"\x22" * 20, "value": 1}, head) == 21_000
    assert 21_000 < node.estimate_gas({"from": sender, "to": logger, "data": b"\x00" * 64}, head) < 40_000
    with pytest.raises(Revert):
        node.estimate_gas({"from": sender, "to": reverter}, head)
    with pytest.raises(CallError):
        node.call({"from": b"\x33" * 20, "to": logger, "value": 10**30}, head)
    assert node.head() == head and len(node.mempool) == 0  # nothing committed


def test_data_dir_errors(tmp_path) -> None:
    with pytest.raises(DataDirError, match="not initialised"):
        Node.open(tmp_path / "empty")
    Node.init(tmp_path / "d", genesis.devnet()).close()
    with pytest.raises(DataDirError, match="another genesis"):
        Node.init(tmp_path / "d", genesis.devnet(chain_id=4242))
    Node.init(tmp_path / "d", genesis.devnet()).close()  # same genesis: reopens


# Runtime: return NUMBER and TIMESTAMP (64 bytes).
ENV_RUNTIME = bytes.fromhex("4360005242602052604060" "00f3")
ENV_INIT = bytes.fromhex("600d80600b6000396000f3") + ENV_RUNTIME


def test_call_runs_in_the_asked_blocks_context(node, dev_accounts, sign_tx) -> None:
    env = _contract(node, dev_accounts[1][1], 0, ENV_INIT, sign_tx)
    node.produce_block()
    for header in (node.resolve_block(1), node.head()):
        out = node.call({"to": env}, header).output
        assert int.from_bytes(out[:32], "big") == header.block_number  # geth: NUMBER of that block
        assert int.from_bytes(out[32:], "big") == header.timestamp
    assert node.call({"to": env}, node.resolve_block(0)).output == b""  # no code at block 0


def test_call_with_fee_fields_pays_like_geth(node, dev_accounts, sign_tx) -> None:
    key, sender = dev_accounts[1][1], bytes.fromhex(dev_accounts[1][0][2:])
    # Runtime: return GASPRICE and BASEFEE (64 bytes).
    prices = _contract(node, key, 0, bytes.fromhex("600d80600b6000396000f3" "3a600052486020526040" "6000f3"), sign_tx)
    head = node.head()
    free = node.call({"from": sender, "to": prices}, head).output
    assert free == b"\x00" * 64
    paid = node.call({"from": sender, "to": prices, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 7}, head).output
    assert int.from_bytes(paid[:32], "big") == head.base_fee_per_gas + 7
    assert int.from_bytes(paid[32:], "big") == head.base_fee_per_gas
    legacy = node.call({"from": sender, "to": prices, "gasPrice": 5 * 10**9}, head).output
    assert int.from_bytes(legacy[:32], "big") == 5 * 10**9
    with pytest.raises(CallError, match="max priority fee per gas higher than max fee per gas"):
        node.call({"from": sender, "to": prices, "maxFeePerGas": 1, "maxPriorityFeePerGas": 2}, head)
    with pytest.raises(CallError):  # a sender without funds cannot pay for gas
        node.call({"from": b"\x44" * 20, "to": prices, "gasPrice": 5 * 10**9}, head)


def test_import_reuses_senders_the_pool_recovered(tmp_path, dev_accounts, sign_tx) -> None:
    raws = [sign_tx(dev_accounts[1][1], n) for n in range(3)]
    with Node.init(tmp_path / "a", genesis.devnet()) as producer, Node.init(tmp_path / "b", genesis.devnet()) as follower:
        for raw in raws:
            producer.mempool.add_raw(raw)
        pooled = follower.mempool.get(follower.mempool.add_raw(raws[0]))  # gossiped before the block
        block = producer.produce_block()
        fresh = follower.block_class.deserialize(rlp.decode(rlp.encode(block)))
        assert all("sender" not in tx.__dict__ for tx in fresh.transactions)
        follower.import_block(fresh)
        assert fresh.transactions[0].__dict__["sender"] is pooled.sender  # reused, not recovered again
        assert fresh.transactions[1].sender == pooled.sender
        assert follower.head() == producer.head() and len(follower.mempool) == 0


def test_a_pooled_tx_that_became_unaffordable_is_dropped_at_build(tmp_path, dev_accounts, sign_tx) -> None:
    key = dev_accounts[2][1]
    with Node.init(tmp_path / "a", genesis.devnet()) as producer, Node.init(tmp_path / "b", genesis.devnet()) as node:
        node.mempool.add_raw(sign_tx(key, 0, value=1))
        doomed = node.mempool.add_raw(sign_tx(key, 1, value=5_000 * 10**18))
        producer.mempool.add_raw(sign_tx(key, 0, value=9_990 * 10**18))  # a different nonce-0 spends it all
        node.import_block(producer.produce_block())
        assert [t.hash for t in node.mempool.pending()] == [doomed]  # nonce 0 is gone, nonce 1 is next
        block = node.produce_block()  # executing nonce 1 fails: it is dropped and the block still made
        assert block.number == 2 and block.transactions == () and len(node.mempool) == 0
