"""Blocks are filled by gas used, as go-ethereum's miner fills them: a gas pool that shrinks by
each transaction's gas used, a transaction whose gas limit exceeds what is left waits for the
next block (with its sender's later ones), and other senders carry on."""
import time

import pytest
from eth.db.atomic import AtomicDB
from eth_account import Account
from eth_utils import to_canonical_address

import genesis
import vm
from node.chain import Node
from tests.node.serving import web3_for

GWEI = 10**9
DEV = genesis.dev_accounts()
SINK = "0x" + "22" * 20


@pytest.fixture
def served(tmp_path):
    with Node.init(tmp_path / "data", genesis.devnet()) as node, web3_for(node) as w3:
        yield node, w3


def _send(w3, key: str, nonce: int, gas: int, tip: int = GWEI, **extra) -> bytes:
    tx = {"type": 2, "chainId": w3.eth.chain_id, "nonce": nonce, "to": SINK, "value": 1, "gas": gas,
          "maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": tip, **extra}
    return bytes(w3.eth.send_raw_transaction(Account.sign_transaction(tx, key).raw_transaction))


def _block_of(w3, tx_hash: bytes) -> int | None:
    return w3.eth.get_transaction(tx_hash)["blockNumber"]


def test_generous_gas_limits_do_not_under_fill_a_block(served) -> None:
    """40 transfers declaring 1,000,000 gas each (40M > the 30M block limit) use 21,000 each:
    all go into one block, as in geth (packing by declared gas took 30)."""
    node, w3 = served
    assert w3.eth.get_block("latest")["gasLimit"] == 30_000_000
    hashes = [_send(w3, DEV[1 + i % 4][1], i // 4, 1_000_000) for i in range(40)]
    number = node.produce_block().number
    assert {_block_of(w3, h) for h in hashes} == {number}
    block = w3.eth.get_block(number)
    assert len(block["transactions"]) == 40 and block["gasUsed"] == 40 * 21_000
    assert all(w3.eth.get_transaction_receipt(h)["status"] == 1 for h in hashes)
    assert len(node.mempool) == 0


def test_a_transaction_over_the_gas_left_waits_without_blocking_other_senders(served) -> None:
    node, w3 = served
    rich, big, small = DEV[1][1], DEV[2][1], DEV[3][1]
    first = [_send(w3, rich, n, 1_000_000, tip=3 * GWEI) for n in range(5)]  # best tips: packed first
    whole_block = _send(w3, big, 0, 30_000_000, tip=2 * GWEI)  # fits an empty block only
    after_it = _send(w3, big, 1, 21_000, tip=2 * GWEI)  # would fit, but its nonce comes after
    cheap = _send(w3, small, 0, 21_000, tip=GWEI)
    one = node.produce_block().number
    assert [_block_of(w3, h) for h in (*first, cheap)] == [one] * 6
    assert _block_of(w3, whole_block) is None and _block_of(w3, after_it) is None  # still pending
    assert w3.eth.get_transaction_count(Account.from_key(big).address, "pending") == 2
    two = node.produce_block().number
    assert [_block_of(w3, h) for h in (whole_block, after_it)] == [two, two]
    assert w3.eth.get_block(two)["gasUsed"] == 2 * 21_000
    assert len(node.mempool) == 0


def test_the_gas_pool_counts_gas_used_up_to_the_block_limit(served) -> None:
    """Transactions that each declare the whole block's gas limit go one per block: after the
    first, the gas left is under their limit (py-evm's rule, gas used so far + the tx's gas limit
    <= the block's, is the one block import checks: a second node imports every block)."""
    node, w3 = served
    hashes = [_send(w3, DEV[1 + i][1], 0, 30_000_000) for i in range(3)]
    numbers = [node.produce_block().number for _ in range(3)]
    assert sorted(_block_of(w3, h) for h in hashes) == numbers
    with Node.init(node.datadir.parent / "other", genesis.devnet()) as other:  # a second node agrees
        for number in numbers:
            other.import_block(node.block_by_number(number))
        assert other.head().state_root == node.head().state_root


def test_build_block_skips_a_refused_transaction_and_its_senders_later_ones(dev_accounts, sign_tx) -> None:
    """`vm.build_block` over a plain list: a nonce gap is refused (reported), the same sender's
    next nonce is skipped without a report, and another sender's transaction still goes in."""
    g = genesis.devnet()
    chain = vm.build_chain_class(g).from_genesis(AtomicDB(), vm.genesis_params(g), vm.genesis_state(g))
    decode = chain.get_vm().get_transaction_builder().decode
    a, b = dev_accounts[1][1], dev_accounts[2][1]
    txs = [decode(sign_tx(a, 0)), decode(sign_tx(a, 2)), decode(sign_tx(a, 3)), decode(sign_tx(b, 0))]
    rejected = []
    block, receipts = vm.build_block(chain, txs, int(time.time()), to_canonical_address(dev_accounts[0][0]),
                                     rejected=lambda tx, error: rejected.append((tx, str(error))))
    assert [tx.hash for tx in block.transactions] == [txs[0].hash, txs[3].hash]
    assert [r.gas_used for r in receipts] == [21_000, 42_000]
    assert [tx.hash for tx, _ in rejected] == [txs[1].hash] and "nonce" in rejected[0][1]
    assert chain.get_canonical_head() == block.header
