"""TxPool admission with go-ethereum's error text, replacement, limits and eviction."""
import rlp
import pytest
from eth_account import Account

from node.mempool import PoolConfig, TxPoolError

GWEI = 10**9


def _refused(node, raw, message, code=-32000):
    with pytest.raises(TxPoolError) as info:
        node.mempool.add_raw(raw)
    assert info.value.code == code
    assert info.value.message.startswith(message), info.value.message
    return info.value


def _addr(account):
    return bytes.fromhex(account[0][2:])


@pytest.mark.parametrize("raw, message", [
    (b"", "typed transaction too short"),
    (b"\x02", "rlp: "),
    (b"\x02\xc0", "rlp: "),
    (b"\xc0", "rlp: "),
    (b"\x05abc", "transaction type not supported"),
    (b"\x03" + rlp.encode([b""] * 14), "transaction type not supported"),
    (b"\xff" * 40, "rlp: "),
])
def test_undecodable_bytes(node, raw, message) -> None:
    _refused(node, raw, message)
    assert len(node.mempool) == 0


def test_stateless_rejections(node, dev_accounts, sign_tx) -> None:
    key = dev_accounts[1][1]
    _refused(node, sign_tx(key, 0, chain_id=1), "invalid chain id", code=-32003)
    _refused(node, sign_tx(key, 0, chain_id=None, gasPrice=2 * GWEI),
             "only replay-protected (EIP-155) transactions allowed over RPC")
    _refused(node, sign_tx(key, 0, gas=20_999), "intrinsic gas too low")
    _refused(node, sign_tx(key, 0, gas=30_000_001), "exceeds block gas limit")
    _refused(node, sign_tx(key, 0, maxFeePerGas=10, maxPriorityFeePerGas=1),
             "max fee per gas less than block base fee")
    _refused(node, sign_tx(key, 0, maxFeePerGas=2 * GWEI, maxPriorityFeePerGas=3 * GWEI),
             "max priority fee per gas higher than max fee per gas")
    _refused(node, sign_tx(key, 0, data=b"\x01" * (128 * 1024), gas=3_000_000), "oversized data")
    raw = sign_tx(key, 0)
    items = rlp.decode(raw[1:])
    _refused(node, raw[:1] + rlp.encode(items[:-2] + [b"\xff" * 32, items[-1]]), "invalid sender")
    assert len(node.mempool) == 0


def test_nonce_and_funds(node, dev_accounts, sign_tx) -> None:
    key = dev_accounts[1][1]
    node.mempool.add_raw(sign_tx(key, 0))
    node.produce_block()
    _refused(node, sign_tx(key, 0), "nonce too low")
    poor = Account.create()
    e = _refused(node, sign_tx(poor.key, 0), "insufficient funds for gas * price + value")
    assert "balance 0, tx cost 63000000000001" in e.message
    # funds are counted over the sender's pending transactions together
    balance = node.state_at(node.head()).get_balance(_addr(dev_accounts[1]))
    node.mempool.add_raw(sign_tx(key, 1, value=balance // 2))
    _refused(node, sign_tx(key, 2, value=balance // 2), "insufficient funds for gas * price + value")
    raw = sign_tx(key, 2)
    tx_hash = node.mempool.add_raw(raw)
    _refused(node, raw, "already known")
    assert node.mempool.pending_nonce(_addr(dev_accounts[1])) == 3
    assert [t.nonce for t in node.mempool.pending()] == [1, 2]
    assert node.mempool.get(tx_hash).nonce == 2


def test_replacement_needs_ten_percent_on_both_fees(node, dev_accounts, sign_tx) -> None:
    key = dev_accounts[3][1]
    node.mempool.add_raw(sign_tx(key, 0, maxFeePerGas=10 * GWEI, maxPriorityFeePerGas=2 * GWEI, value=1))
    _refused(node, sign_tx(key, 0, maxFeePerGas=11 * GWEI - 1, maxPriorityFeePerGas=3 * GWEI, value=2),
             "replacement transaction underpriced")
    _refused(node, sign_tx(key, 0, maxFeePerGas=20 * GWEI, maxPriorityFeePerGas=int(2.2 * GWEI) - 1, value=2),
             "replacement transaction underpriced")
    new_hash = node.mempool.add_raw(sign_tx(key, 0, maxFeePerGas=11 * GWEI, maxPriorityFeePerGas=int(2.2 * GWEI),
                                            value=2))
    assert len(node.mempool) == 1
    block = node.produce_block()
    assert [t.hash for t in block.transactions] == [new_hash]
    assert node.state_at(node.head()).get_balance(b"\x11" * 20) == 2
    assert len(node.mempool) == 0


def test_no_per_sender_cap_on_executable_transactions(node, dev_accounts, sign_tx) -> None:
    """go-ethereum has none (#11): one sender may fill the executable slots (was: 1,024 at most)."""
    node.mempool.configure(PoolConfig(global_slots=40, global_queue=8))
    key = dev_accounts[1][1]
    for n in range(40):
        node.mempool.add_raw(sign_tx(key, n))
    assert node.mempool.counts() == (40, 0)
    _refused(node, sign_tx(key, 40), "txpool is full")  # its own 41st executable one is trimmed at once
    node.mempool.add_raw(sign_tx(key, 1, maxFeePerGas=4 * GWEI, maxPriorityFeePerGas=2 * GWEI))  # replacing is fine


def test_full_pool_evicts_the_lowest_tip(node, dev_accounts, sign_tx) -> None:
    node.mempool.configure(PoolConfig(global_slots=2, global_queue=1))
    hashes = [node.mempool.add_raw(sign_tx(dev_accounts[i][1], 0, maxPriorityFeePerGas=i * GWEI, maxFeePerGas=5 * GWEI))
              for i in (1, 2, 3)]
    _refused(node, sign_tx(dev_accounts[4][1], 0, maxPriorityFeePerGas=GWEI // 2, maxFeePerGas=5 * GWEI),
             "transaction underpriced")  # geth's words when the newcomer pays less than the cheapest
    better = node.mempool.add_raw(sign_tx(dev_accounts[4][1], 0, maxPriorityFeePerGas=4 * GWEI, maxFeePerGas=5 * GWEI))
    assert node.mempool.get(hashes[0]) is None
    assert {t.hash for t in node.mempool.pending()} == {hashes[1], hashes[2], better}
    # best tip first across senders in the block
    block = node.produce_block()
    assert [t.hash for t in block.transactions] == [better, hashes[2], hashes[1]]


def test_select_respects_nonce_order_and_gas_limit(node, dev_accounts, sign_tx) -> None:
    cheap, rich = dev_accounts[1][1], dev_accounts[2][1]
    for n in range(3):
        node.mempool.add_raw(sign_tx(cheap, n, maxPriorityFeePerGas=GWEI))
    node.mempool.add_raw(sign_tx(rich, 0, maxPriorityFeePerGas=2 * GWEI))
    node.mempool.add_raw(sign_tx(rich, 1, maxPriorityFeePerGas=GWEI // 2))
    base_fee = node.head().base_fee_per_gas
    chosen = node.mempool.select(base_fee, 30_000_000)
    assert [(t.sender == _addr(dev_accounts[2]), t.nonce) for t in chosen] == [
        (True, 0), (False, 0), (False, 1), (False, 2), (True, 1)]
    assert node.mempool.select(base_fee, 20_999) == []  # over the gas limit: each sender stops at its first


def test_nonce_gap_is_queued_then_promoted(node, dev_accounts, sign_tx) -> None:
    key, sender = dev_accounts[5][1], _addr(dev_accounts[5])
    later = node.mempool.add_raw(sign_tx(key, 2))
    also_later = node.mempool.add_raw(sign_tx(key, 3))
    assert node.mempool.pending() == [] and node.mempool.pending_nonce(sender) == 0
    assert [t.nonce for t in node.mempool.queued()[sender]] == [2, 3]
    assert node.produce_block().transactions == ()  # queued transactions are not executable
    # a queued transaction is replaced by the same 10% rule
    _refused(node, sign_tx(key, 3, maxFeePerGas=3 * GWEI + 1), "replacement transaction underpriced")
    node.mempool.add_raw(sign_tx(key, 0))
    assert node.mempool.pending_nonce(sender) == 1 and len(node.mempool.queued()[sender]) == 2
    node.mempool.add_raw(sign_tx(key, 1))  # fills the gap: 2 and 3 are promoted
    assert node.mempool.pending_nonce(sender) == 4 and node.mempool.queued() == {}
    block = node.produce_block()
    assert [t.nonce for t in block.transactions] == [0, 1, 2, 3]
    assert block.transactions[3].hash == also_later and node.tx_location(later) == (2, 2)
    assert len(node.mempool) == 0


def test_queue_per_sender_limit(node, dev_accounts, sign_tx) -> None:
    key = dev_accounts[6][1]
    for n in range(1, 65):
        node.mempool.add_raw(sign_tx(key, n))
    _refused(node, sign_tx(key, 65), "account limit exceeded")
    assert len(node.mempool) == 64
