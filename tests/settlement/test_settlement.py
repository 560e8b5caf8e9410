"""The node's settlement duties against anvil, driven step by step on a real L2 data dir: deposits
relayed after F confirmations (the supply unchanged), batches posted once each across restarts,
output roots every K blocks, and a second data dir derived from L1 data alone to the same hashes."""
import time
import zlib

import pytest
import rlp
from eth_account import Account
from eth_utils import to_canonical_address

import genesis
from node.chain import Node
from node.settlement import L1, Contract, L1Error
from node.settlement import batches
from node.settlement.derive import DerivationError, derive
from node.settlement.outputs import output_at
from node.settlement.service import PENDING_BATCH, Settlement, SettlementConfig, StepReport, Waiting
from node.settlement.withdrawals import deposit
from tests.settlement.conftest import BATCHER, DEPLOYER, USER, VALIDATOR_KEY, total_supply

RECIPIENT = Account.from_key(USER).address
F, K = 2, 4


def _config(anvil, deployment, **kw):
    return SettlementConfig(anvil.url, deployment, BATCHER, (VALIDATOR_KEY,), output_interval=K, confirmations=F, **kw)


def _mine_l1(anvil, n):
    anvil.rpc("anvil_mine", hex(n))


def _l2_balance(node, address):
    return node.state_at(node.head()).get_balance(to_canonical_address(address))


def test_deposit_is_relayed_after_f_confirmations_and_mints_nothing(anvil, deployment, l2):
    settlement = Settlement(l2, _config(anvil, deployment))
    l2.produce_block()  # the validator earns its first reward: gas for relays
    before = _l2_balance(l2, RECIPIENT)
    escrow = _l2_balance(l2, genesis.L2_BRIDGE_ADDRESS)
    deposit(L1(anvil.url, DEPLOYER), deployment, RECIPIENT, 5 * 10**18)
    assert settlement.step().relayed == []  # 0 confirmations on top
    _mine_l1(anvil, F)
    assert settlement.step().relayed == [0]
    assert settlement.step().relayed == []  # already in the pool: not sent twice
    l2.produce_block()
    assert _l2_balance(l2, RECIPIENT) == before + 5 * 10**18
    assert _l2_balance(l2, genesis.L2_BRIDGE_ADDRESS) == escrow - 5 * 10**18
    assert total_supply(l2) == genesis.TOTAL_SUPPLY  # released from escrow: nothing minted


def test_batches_outputs_and_derivation(anvil, deployment, l2, tmp_path, l2_genesis):
    settlement = Settlement(l2, _config(anvil, deployment, max_batch_blocks=3))
    l2.produce_block()
    deposit(L1(anvil.url, DEPLOYER), deployment, RECIPIENT, 7 * 10**18)
    _mine_l1(anvil, F)
    for _ in range(9):
        settlement.step()
        l2.produce_block()
    head = l2.head().block_number
    while (report := settlement.step()).batches or report.outputs:
        pass
    inbox = Contract(L1(anvil.url), "BatchInbox", deployment.inbox)
    oracle = Contract(L1(anvil.url), "OutputOracle", deployment.oracle)
    assert inbox.call("nextBlock") == head + 1
    assert oracle.call("latestBlockNumber") == head // K * K
    assert oracle.call("getOutput", 0)[0] == output_at(l2, K).root
    with Node.init(tmp_path / "derived", l2_genesis) as fresh:
        report = derive(fresh, L1(anvil.url), deployment)
        assert report.imported == head and report.deposits == 1
        assert [fresh.header_by_number(n).hash for n in range(head + 1)] == \
               [l2.header_by_number(n).hash for n in range(head + 1)]
        again = derive(fresh, L1(anvil.url), deployment)  # resumable: from the last batch's L1 block on
        assert again.imported == 0 and 0 < again.skipped <= 3
        for _ in range(2):  # the chain goes on: only the new blocks are read and imported
            l2.produce_block()
        while settlement.step().batches:
            pass
        assert derive(fresh, L1(anvil.url), deployment).imported == 2
        assert fresh.head().hash == l2.head().hash


def test_batcher_restarted_mid_post_posts_nothing_twice(anvil, deployment, l2):
    for _ in range(3):
        l2.produce_block()
    anvil.rpc("evm_setAutomine", False)  # the post stays in flight
    first = Settlement(l2, _config(anvil, deployment))
    assert [b[:2] for b in first.step().batches] == [(1, 3)]
    l2.produce_block()
    restarted = Settlement(l2, _config(anvil, deployment))  # same data dir: it knows the pending post
    assert restarted.step().batches == []
    _mine_l1(anvil, 1)
    assert [b[:2] for b in restarted.step().batches] == [(4, 4)]
    _mine_l1(anvil, 1)
    assert Contract(L1(anvil.url), "BatchInbox", deployment.inbox).call("nextBlock") == 5
    assert l2.db.get(PENDING_BATCH) is not None


def test_post_forgotten_by_the_l1_is_posted_again(anvil, deployment, l2):
    """The batcher killed after recording its post but before the L1 had it (or a reorg dropped it)."""
    l2.produce_block()
    anvil.rpc("evm_setAutomine", False)
    s = Settlement(l2, _config(anvil, deployment))
    (posted,) = s.step().batches
    anvil.rpc("anvil_dropTransaction", posted[2])
    (again,) = s.step().batches
    assert again[:2] == (1, 1) and again[2] == posted[2]  # the same transaction, signed again
    _mine_l1(anvil, 1)
    assert Contract(L1(anvil.url), "BatchInbox", deployment.inbox).call("nextBlock") == 2


def test_l1_reorg_of_a_batch_reposts_it(anvil, deployment, l2):
    l2.produce_block()
    s = Settlement(l2, _config(anvil, deployment))
    snapshot = anvil.rpc("evm_snapshot")
    assert [b[:2] for b in s.step().batches] == [(1, 1)]
    anvil.rpc("evm_revert", snapshot)  # the L1 block with the batch is gone
    assert [b[:2] for b in s.step().batches] == [(1, 1)]
    assert Contract(L1(anvil.url), "BatchInbox", deployment.inbox).call("nextBlock") == 2


def test_settlement_refuses_another_chains_deployment(anvil, deployment, tmp_path):
    other_chain = genesis.devnet(chain_id=7168, bridge_escrow=genesis.DEVNET_BRIDGE_ESCROW)
    with Node.init(tmp_path / "other", other_chain) as other:
        with pytest.raises(L1Error, match="not this node's chain 7168"):
            Settlement(other, _config(anvil, deployment))


def test_settlement_refuses_a_key_that_is_not_the_proposers(anvil, deployment, l2):
    with pytest.raises(L1Error, match="is not this chain's block proposer"):
        Settlement(l2, SettlementConfig(anvil.url, deployment, BATCHER, (DEPLOYER,)))


def test_derivation_refuses_bad_batches(anvil, deployment, l2, tmp_path, l2_genesis):
    l2.produce_block()
    inbox = Contract(L1(anvil.url, BATCHER), "BatchInbox", deployment.inbox)
    inbox.transact("appendBatch", 1, 1, b"\x07garbage")
    with Node.init(tmp_path / "derived", l2_genesis) as fresh:
        with pytest.raises(DerivationError, match="unknown batch version 07"):
            derive(fresh, L1(anvil.url), deployment)


def test_derivation_refuses_a_relay_of_a_deposit_the_l1_never_had(anvil, deployment, l2, tmp_path, l2_genesis):
    """A dishonest sequencer pays itself a 'deposit': the block is valid L2 execution, but every
    deriving node refuses it against the L1 logs."""
    from node.sdk import encode_call
    l2.produce_block()
    proposer = Account.from_key(VALIDATOR_KEY)
    signed = proposer.sign_transaction({
        "type": 2, "chainId": l2.chain_id, "nonce": 0, "to": genesis.L2_BRIDGE_ADDRESS, "value": 0, "gas": 200_000,
        "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
        "data": encode_call("L2Bridge", "relayDeposit", 0, proposer.address, 10**20)})
    l2.mempool.add_raw(bytes(signed.raw_transaction), local=False)
    l2.produce_block()
    assert _l2_balance(l2, genesis.L2_BRIDGE_ADDRESS) == genesis.DEVNET_BRIDGE_ESCROW - 10**20
    inbox = Contract(L1(anvil.url, BATCHER), "BatchInbox", deployment.inbox)
    inbox.transact("appendBatch", 1, 2, batches.encode([l2.block_by_number(1), l2.block_by_number(2)]))
    with Node.init(tmp_path / "derived", l2_genesis) as fresh:
        with pytest.raises(DerivationError, match="relays deposit #0, which the L1 bridge did not hold"):
            derive(fresh, L1(anvil.url), deployment)
        assert fresh.head().block_number == 1  # the valid block before it stays


def test_batcher_waits_for_a_fuller_batch(anvil, deployment, l2):
    s = Settlement(l2, _config(anvil, deployment, batch_interval_s=60, max_batch_blocks=5))
    t0 = l2.head().timestamp
    for dt in (1, 30, 59):
        l2.produce_block(timestamp=t0 + dt)
    assert s.step().batches == []  # the oldest unposted block is 58 s old
    l2.produce_block(timestamp=t0 + 61)
    assert [b[:2] for b in s.step().batches] == [(1, 4)]
    for dt in range(62, 67):  # 5 blocks: full before the interval
        l2.produce_block(timestamp=t0 + dt)
    assert [b[:2] for b in s.step().batches] == [(5, 9)]


@pytest.mark.parametrize("data, reason", [
    (b"", "unknown batch version"),
    (b"\x00not zlib", "does not decompress"),
    (b"\x00" + zlib.compress(b"\x00" * (batches.MAX_DECODED_BYTES + 1)), "expands past"),
    (b"\x00" + zlib.compress(b"\x83abc"), "holds no list of blocks"),
    (b"\x00" + zlib.compress(rlp.encode([b"x"])), "block 1 of the batch does not decode"),
    (b"\x00" + zlib.compress(rlp.encode([])), "holds 0 blocks"),
])
def test_hostile_batches_are_refused_with_the_reason(l2, data, reason):
    with pytest.raises(batches.BadBatch, match=reason):
        batches.decode(data, l2.block_class_at, 1, 1)


def test_a_batch_with_blocks_out_of_place_is_refused(l2):
    l2.produce_block()
    l2.produce_block()
    data = batches.encode([l2.block_by_number(2), l2.block_by_number(1)])
    with pytest.raises(batches.BadBatch, match="position of block 1 holds block 2"):
        batches.decode(data, l2.block_class_at, 1, 2)
    assert [b.number for b in batches.decode(batches.encode([l2.block_by_number(1), l2.block_by_number(2)]),
                                             l2.block_class_at, 1, 2)] == [1, 2]


def test_derivation_refuses_a_sequencer_that_holds_a_deposit_back(anvil, deployment, l2, tmp_path, l2_genesis):
    """Forced inclusion: past the sequencing window, a batch that still has not relayed a deposit
    is invalid for every deriving node."""
    import dataclasses
    d = dataclasses.replace(deployment, sequencing_window=3)
    deposit(L1(anvil.url, DEPLOYER), d, RECIPIENT, 10**18)
    inbox = Contract(L1(anvil.url, BATCHER), "BatchInbox", d.inbox)
    l2.produce_block()
    inbox.transact("appendBatch", 1, 1, batches.encode([l2.block_by_number(1)]))  # within the window: fine
    with Node.init(tmp_path / "derived", l2_genesis) as fresh:
        assert derive(fresh, L1(anvil.url), d).imported == 1
        _mine_l1(anvil, 3)
        l2.produce_block()
        inbox.transact("appendBatch", 2, 2, batches.encode([l2.block_by_number(2)]))
        with pytest.raises(DerivationError, match=r"deposit #0 \(L1 block \d+\) is past the sequencing window of 3"):
            derive(fresh, L1(anvil.url), d)
        assert fresh.head().block_number == 1  # nothing of the invalid batch was imported


def test_deposit_reorged_out_before_f_confirmations_is_never_relayed(anvil, deployment, l2):
    settlement = Settlement(l2, _config(anvil, deployment))
    l2.produce_block()
    snapshot = anvil.rpc("evm_snapshot")
    deposit(L1(anvil.url, DEPLOYER), deployment, RECIPIENT, 10**18)  # approve + deposit: 2 L1 blocks
    assert settlement.step().relayed == []  # 0 confirmations on top
    anvil.rpc("evm_revert", snapshot)  # an L1 reorg removes it
    _mine_l1(anvil, F + 2)
    assert settlement.step().relayed == []
    l2.produce_block()
    assert l2.state_at(l2.head()).get_storage(genesis.L2_BRIDGE_ADDRESS, 2) == 0  # next deposit id still 0


def test_output_roots_need_more_than_two_thirds_of_the_validators(anvil, tmp_path):
    """Three validators of equal power: the node's proposer posts a root only with all three
    signatures (two of three is exactly 2/3, not more); short of them it posts nothing and says
    why (OutputOracle's own refusal of an under-signed root: tests/settlement/test_contracts.py)."""
    import dataclasses

    from node.settlement import deploy_all
    keys = [VALIDATOR_KEY, "0x" + "11" * 32, "0x" + "22" * 32]
    validators = tuple(genesis.Validator(to_canonical_address(Account.from_key(k).address), 1) for k in keys)
    g = dataclasses.replace(genesis.devnet(bridge_escrow=genesis.DEVNET_BRIDGE_ESCROW), validators=validators)
    with Node.init(tmp_path / "three", g) as node:
        d = deploy_all(L1(anvil.url, DEPLOYER), l2_chain_id=g.chain_id, l2_genesis_hash=node.header_by_number(0).hash,
                       validators=[(v.address, v.power) for v in validators], batcher=L1(anvil.url, BATCHER).address,
                       escrow=genesis.DEVNET_BRIDGE_ESCROW, finalization_period=1)
        for _ in range(K):
            node.produce_block()
        two = Settlement(node, SettlementConfig(anvil.url, d, BATCHER, tuple(keys[:2]), output_interval=K))
        two.post_batch(posted := StepReport())
        assert posted.batches
        while two._in_flight():  # the batch is being mined (the proposer waits for it before a root)
            time.sleep(0.05)
        report = two.step()
        assert report.outputs == [] and report.waiting == Waiting(K, 2, 3, 2, 3)
        assert "L2 block 4 waits for validator signatures: 2 of 3 validators signed" in str(report.waiting)
        assert Contract(L1(anvil.url), "OutputOracle", d.oracle).call("outputCount") == 0
        three = Settlement(node, SettlementConfig(anvil.url, d, BATCHER, tuple(keys), output_interval=K))
        assert three.step().outputs == [K]
