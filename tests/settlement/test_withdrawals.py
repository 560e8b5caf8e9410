"""Withdrawals over real interfaces: recorded by the L2 bridge module, proven on anvil with the
node's own eth_getProof against a posted output root, claimable only after the window and only
once; proofs against another root or output are refused with the contract's reason."""
import dataclasses

import pytest
from eth_account import Account

import genesis
from node.sdk import SdkError
from node.settlement import L1, Contract, L1Error
from node.settlement.service import Settlement, SettlementConfig
from node.settlement.withdrawals import finalize, find, prove
from tests.settlement.conftest import BATCHER, FINALIZATION_S, VALIDATOR_KEY

USER_KEY = genesis.dev_accounts()[5][1]
L1_RECEIVER = Account.create().address
K = 3


def _withdraw(l2, l2_rpc, amount, to=L1_RECEIVER):
    user = type(l2_rpc)(l2_rpc.url, USER_KEY)
    raw, tx_hash = user.build("L2Bridge", "withdraw", to, value=amount)
    l2_rpc.rpc("eth_sendRawTransaction", "0x" + raw.hex())
    l2.produce_block()
    return "0x" + tx_hash.hex()


def _settle(l2, anvil, deployment, blocks):
    s = Settlement(l2, SettlementConfig(anvil.url, deployment, BATCHER, (VALIDATOR_KEY,), output_interval=K))
    for _ in range(blocks):
        l2.produce_block()
    while (report := s.step()).batches or report.outputs:
        pass


def test_withdrawal_proven_and_finalized_once_after_the_window(anvil, deployment, l2, l2_rpc):
    escrow = l2.state_at(l2.head()).get_balance(genesis.L2_BRIDGE_ADDRESS)
    l2.produce_block()
    w = find(l2_rpc, _withdraw(l2, l2_rpc, 3 * 10**18))
    assert (w.id, w.to, w.amount, w.l2_block) == (0, L1_RECEIVER, 3 * 10**18, 2)
    assert l2.state_at(l2.head()).get_balance(genesis.L2_BRIDGE_ADDRESS) == escrow + 3 * 10**18  # back in escrow
    l1 = L1(anvil.url, BATCHER)
    with pytest.raises(L1Error, match="no output root covers L2 block 2 yet"):
        prove(l1, deployment, l2_rpc, w)
    _settle(l2, anvil, deployment, 4)  # outputs at blocks 3 and 6
    prove(l1, deployment, l2_rpc, w)
    with pytest.raises(L1Error, match="FinalizationPeriodNotOver"):
        finalize(l1, deployment, w)
    anvil.rpc("evm_increaseTime", hex(FINALIZATION_S))
    anvil.rpc("anvil_mine", "0x1")
    finalize(l1, deployment, w)
    assert Contract(l1, "L1OpenToken", deployment.token).call("balanceOf", L1_RECEIVER) == 3 * 10**18
    with pytest.raises(L1Error, match="AlreadyFinalized"):  # a replayed claim
        finalize(l1, deployment, w)
    with pytest.raises(L1Error, match="AlreadyFinalized"):
        prove(l1, deployment, l2_rpc, w)


def test_proofs_for_another_root_or_withdrawal_are_refused(anvil, deployment, l2, l2_rpc):
    _settle(l2, anvil, deployment, K)  # output 0 at block 3, before the withdrawal
    w = find(l2_rpc, _withdraw(l2, l2_rpc, 10**18))
    _settle(l2, anvil, deployment, K)  # output 1 covers it
    l1 = L1(anvil.url, BATCHER)
    bridge = Contract(l1, "L1Bridge", deployment.bridge)
    slot = "0x" + __import__("vm.modules.bridge", fromlist=["sent_slot"]).sent_slot(w.hash).to_bytes(32, "big").hex()

    def proof_at(number):
        p = l2_rpc.rpc("eth_getProof", "0x00000000000000000000000000000000004F4C07", [slot], hex(number))
        h = l2_rpc.rpc("eth_getBlockByNumber", hex(number), False)
        return ((bytes.fromhex(h["stateRoot"][2:]), bytes.fromhex(p["storageHash"][2:]), bytes.fromhex(h["hash"][2:])),
                [bytes.fromhex(n[2:]) for n in p["storageProof"][0]["proof"]])

    root3, nodes3 = proof_at(3)
    root6, nodes6 = proof_at(6)
    # the output before the withdrawal: its root is genuine, but the record is not in it
    with pytest.raises(L1Error, match="WithdrawalNotInOutput"):
        bridge.transact("proveWithdrawal", w.as_tuple(), 0, root3, nodes3)
    # a proof against a root that is not the posted one
    with pytest.raises(L1Error, match=r"OutputRootMismatch\(1\)"):
        bridge.transact("proveWithdrawal", w.as_tuple(), 1, root3, nodes6)
    forged = (root6[0], b"\x01" * 32, root6[2])
    with pytest.raises(L1Error, match=r"OutputRootMismatch\(1\)"):
        bridge.transact("proveWithdrawal", w.as_tuple(), 1, forged, nodes6)
    # the right proof for another amount or recipient
    for other in (dataclasses.replace(w, amount=w.amount * 2), dataclasses.replace(w, to=Account.create().address)):
        with pytest.raises(L1Error, match="WithdrawalNotInOutput"):
            bridge.transact("proveWithdrawal", other.as_tuple(), 1, root6, nodes6)
    bridge.transact("proveWithdrawal", w.as_tuple(), 1, root6, nodes6)


def test_bad_withdrawals_revert_on_l2_with_a_reason(l2, l2_rpc):
    user = type(l2_rpc)(l2_rpc.url, USER_KEY)
    with pytest.raises(SdkError) as e:
        user.estimate("L2Bridge", "withdraw", L1_RECEIVER, value=0)
    assert e.value.reason == "withdraw: send the amount to withdraw as value"
    with pytest.raises(SdkError) as e:
        user.estimate("L2Bridge", "withdraw", "0x" + "00" * 20, value=1)
    assert e.value.reason == "withdraw: recipient is the zero address"
    with pytest.raises(SdkError) as e:  # only the block's proposer relays deposits
        user.estimate("L2Bridge", "relayDeposit", 0, user.address, 1)
    assert e.value.reason == "relayDeposit: only the block's proposer relays L1 deposits"
