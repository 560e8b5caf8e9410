"""Forced inclusion through the L1 (docs/settlement.md): a signed L2 transaction queued on the L1
bridge lands on the L2 after F confirmations with its own receipt, while the validators ignore
its sender; one that cannot execute is consumed as failed with the reason; a proposer that skips,
swaps or leaves one out has an invalid chain; and a withheld batch stops roots on the L1 and
leaves derivation waiting (and saying for what) until the batch is posted."""
import dataclasses

import pytest
from eth_account import Account
from eth_utils import ValidationError, keccak, to_canonical_address, to_checksum_address

import genesis
from node.chain import Node
from node.settlement import L1, Contract, L1Error, batches, forced
from node.settlement.derive import DerivationError, derive
from node.settlement.outputs import output_at, output_digest, signatures, validator_set_hash
from node.settlement.service import Settlement, SettlementConfig, StepReport
from tests.settlement.conftest import BATCHER, USER, VALIDATOR_KEY, total_supply
from vm.modules.bridge import FORCED_GAS_MAX, NEXT_FORCED, PENDING_FORCED

F = 2
CENSORED = Account.from_key(USER)  # a user the validators never include (its L2 RPC calls go nowhere)
PAYEE = "0x" + "5e" * 20
BRIDGE_EVENTS = {keccak(text="ForcedTransactionQueued(uint256,bytes32,address,uint256)"): "queued",
                 keccak(text="ForcedTransactionFailed(uint256,bytes32,string)"): "failed"}


def _config(anvil, deployment, **kw):
    return SettlementConfig(anvil.url, deployment, BATCHER, (VALIDATOR_KEY,), output_interval=2, confirmations=F, **kw)


def _signed(node, account=CENSORED, **fields) -> bytes:
    tx = {"type": 2, "chainId": node.chain_id, "nonce": node.state_at(node.head()).get_nonce(
        to_canonical_address(account.address)), "to": to_checksum_address(PAYEE), "value": 10**18, "gas": 21_000,
        "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "data": b""}
    tx.update(fields)
    return bytes(account.sign_transaction(tx).raw_transaction)


def _force(anvil, deployment, raw) -> None:
    Contract(L1(anvil.url, USER), "L1Bridge", deployment.bridge).transact("forceTransaction", raw)


def _outcomes(node, number) -> list[tuple[str, int, str]]:
    """(queued|failed, forced id, reason) of every relay in L2 block `number`, in order."""
    import eth_abi
    out = []
    for receipt in node.receipts(node.header_by_number(number)):
        for log in receipt.logs:
            kind = BRIDGE_EVENTS.get(log.topics[0].to_bytes(32, "big") if log.topics else b"")
            if kind is not None:
                reason = eth_abi.decode(["string"], log.data)[0] if kind == "failed" else ""
                out.append((kind, log.topics[1], reason))
    return out


def _post_all(settlement):
    while settlement.step().batches:
        pass


def _balance(node, address) -> int:
    return node.state_at(node.head()).get_balance(to_canonical_address(address))


def test_forced_transaction_lands_while_the_validators_censor_its_sender(anvil, deployment, l2, tmp_path,
                                                                          l2_genesis):
    settlement = Settlement(l2, _config(anvil, deployment))
    l2.produce_block()  # the validator earns gas for its relays
    raw = _signed(l2)
    _force(anvil, deployment, raw)
    assert settlement.step().forced == []  # not F deep yet
    anvil.rpc("anvil_mine", hex(F))
    assert settlement.step().forced == [0]
    assert settlement.step().forced == []  # in the pool already: not relayed twice
    block = l2.produce_block()
    assert [tx.hash for tx in block.transactions][-1] == keccak(raw)  # right after its relay
    location = l2.tx_location(keccak(raw))
    assert location is not None and l2.receipts(block.header)[location[1]].state_root == b"\x01"
    assert _balance(l2, PAYEE) == 10**18
    assert _outcomes(l2, block.number) == [("queued", 0, "")]
    assert l2.state_at(l2.head()).get_storage(genesis.L2_BRIDGE_ADDRESS, PENDING_FORCED) == 0
    assert total_supply(l2) == genesis.TOTAL_SUPPLY
    _post_all(settlement)
    with Node.init(tmp_path / "derived", l2_genesis) as fresh:
        report = derive(fresh, L1(anvil.url), deployment)
        assert report.forced == 1 and fresh.head().hash == l2.head().hash
        assert "waiting for L2 block 3: the L1 inbox holds blocks up to 2" == report.waiting


def test_hostile_forced_transactions_are_included_as_failed_with_the_reason(anvil, deployment, l2, tmp_path,
                                                                              l2_genesis):
    """Nothing stalls and nothing is lost: each is consumed in order (the next id moves on), the
    censored user's good transaction after them still lands, and the supply identity holds."""
    settlement = Settlement(l2, _config(anvil, deployment))
    l2.produce_block()
    good = _signed(l2)
    hostile = [
        (b"\x02garbage", "not a signed transaction"),
        (b"\xc0", "not a signed transaction"),
        (_signed(l2, chainId=1), "invalid chain id"),
        (_signed(l2, nonce=7), "nonce"),
        (_signed(l2, value=10**30), "enough balance"),
        (_signed(l2, gas=FORCED_GAS_MAX + 1), "above the forced transaction limit"),
        (_signed(l2, gas=20_000), "intrinsic gas|Insufficient gas"),
        (_signed(l2, maxFeePerGas=1, maxPriorityFeePerGas=1), "lower than block's base fee"),
        (_signed(l2, to="0x" + "00" * 20), "recipient is the zero address"),
        (_signed(l2, to="0x0000000000000000000000000000000000000001"), "value sent to precompile 0x0000"),
        (good[:-1] + bytes([good[-1] ^ 1]), "signature|afford|balance"),  # another s: another (or no) signer
        (good, ""),
        (good, "nonce"),  # replayed: its nonce is used
    ]
    for raw, _ in hostile:
        _force(anvil, deployment, raw)
    anvil.rpc("anvil_mine", hex(F))
    assert settlement.step().forced == list(range(len(hostile)))
    block = l2.produce_block()
    outcomes = _outcomes(l2, block.number)
    assert [o[1] for o in outcomes] == list(range(len(hostile)))
    for (kind, _, reason), (_, expected) in zip(outcomes, hostile):
        if expected:
            assert kind == "failed", reason
            assert __import__("re").search(expected, reason), (expected, reason)
    assert [o[0] for o in outcomes].count("queued") == 1
    assert l2.tx_location(keccak(good)) is not None and _balance(l2, PAYEE) == 10**18
    assert l2.state_at(l2.head()).get_storage(genesis.L2_BRIDGE_ADDRESS, NEXT_FORCED) == len(hostile)
    assert total_supply(l2) == genesis.TOTAL_SUPPLY
    # debug_trace* replays the block as it ran (its replay skips transaction validation: the
    # relays must still judge as they did)
    from vm.tracing import TraceConfig, trace_block
    traces = trace_block(l2.evm_chain(), block, TraceConfig(tracer="callTracer"))
    assert len(traces) == len(block.transactions)
    cumulative = [0] + [r.gas_used for r in l2.receipts(block.header)]
    assert [int(t["gasUsed"], 16) for t in traces] == [b - a for a, b in zip(cumulative, cumulative[1:])]
    _post_all(settlement)
    with Node.init(tmp_path / "derived", l2_genesis) as fresh:
        assert derive(fresh, L1(anvil.url), deployment).forced == len(hostile)
        assert fresh.head().hash == l2.head().hash


def test_the_largest_forced_transactions_are_relayed(anvil, deployment, l2):
    """16,384 bytes, the L1's limit: a valid one (a call with 16 KiB of data) lands, a garbage one
    is consumed as failed; the relay's gas covers Prague's calldata floor for both."""
    from vm.modules.bridge import MAX_FORCED_TX_BYTES
    settlement = Settlement(l2, _config(anvil, deployment))
    l2.produce_block()
    big = _signed(l2, gas=1_000_000, data=b"\x01" * 16_000)
    big = _signed(l2, gas=1_000_000, data=b"\x01" * (16_000 + MAX_FORCED_TX_BYTES - len(big)))
    assert len(big) == MAX_FORCED_TX_BYTES
    _force(anvil, deployment, big)
    _force(anvil, deployment, b"\x02" + b"\xab" * (MAX_FORCED_TX_BYTES - 1))
    anvil.rpc("anvil_mine", hex(F))
    assert settlement.step().forced == [0, 1]
    block = l2.produce_block()
    assert [(kind, i) for kind, i, _ in _outcomes(l2, block.number)] == [("queued", 0), ("failed", 1)]
    assert l2.tx_location(keccak(big)) == (block.number, 1)


def test_forced_call_that_reverts_is_included_as_failed_and_a_forced_withdrawal_goes_through(anvil, deployment,
                                                                                              l2):
    """A transaction to a system address runs the module like any call: a call it refuses is a
    reverted receipt (value kept), and the escape hatch works: a censored user forces its own
    withdrawal to the L1."""
    from node.sdk import encode_call
    settlement = Settlement(l2, _config(anvil, deployment))
    l2.produce_block()
    to_bridge = to_checksum_address(genesis.L2_BRIDGE_ADDRESS)
    relay = _signed(l2, to=to_bridge, value=0, gas=200_000,
                    data=encode_call("L2Bridge", "relayDeposit", 0, CENSORED.address, 10**18))
    _force(anvil, deployment, relay)
    anvil.rpc("anvil_mine", hex(F))
    settlement.step()
    block = l2.produce_block()
    receipt = l2.receipts(block.header)[l2.tx_location(keccak(relay))[1]]
    assert receipt.state_root == b""  # status 0: reverted, executed and paid for, nothing released
    withdraw = _signed(l2, to=to_bridge, value=3 * 10**18, gas=200_000,
                       data=encode_call("L2Bridge", "withdraw", CENSORED.address))
    _force(anvil, deployment, withdraw)
    anvil.rpc("anvil_mine", hex(F))
    settlement.step()
    block = l2.produce_block()
    assert l2.receipts(block.header)[l2.tx_location(keccak(withdraw))[1]].state_root == b"\x01"
    assert l2.state_at(l2.head()).get_storage(genesis.L2_BRIDGE_ADDRESS, 1) == 1  # one withdrawal recorded
    assert total_supply(l2) == genesis.TOTAL_SUPPLY


def test_a_block_that_leaves_a_queued_forced_transaction_out_is_invalid(anvil, deployment, l2, tmp_path,
                                                                       l2_genesis):
    """The VM's rule, for builder and importer alike: the forced transaction comes right after
    its relay, and a block cannot end with one still queued."""
    from vm import chain as vm_chain
    settlement = Settlement(l2, _config(anvil, deployment))
    l2.produce_block()
    raw = _signed(l2)
    _force(anvil, deployment, raw)
    anvil.rpc("anvil_mine", hex(F))
    settlement.step()
    (relay,) = l2.mempool.pending()
    evm = l2.evm_chain()
    header = evm.create_header_from_parent(evm.get_canonical_head(), timestamp=l2.head().timestamp + 1,
                                           coinbase=l2_genesis.validators[0].address)
    with pytest.raises(ValidationError, match="was queued by relayForced but is not the transaction after it"):
        vm_chain.fill_block(evm.get_vm(header), [relay], lambda tx, error: None)
    bystander = _signed(l2, account=Account.from_key(genesis.dev_accounts()[3][1]))
    refused = []
    with pytest.raises(ValidationError, match="was queued by relayForced"):
        vm_chain.fill_block(evm.get_vm(header), [relay, l2.mempool.decode(bystander)],
                            lambda tx, error: refused.append(str(error)))
    assert refused and "must come before" in refused[0]
    assert l2.head().block_number == 1  # nothing was committed
    l2.produce_block()  # the builder's own order is valid
    assert l2.tx_location(keccak(raw)) is not None


def test_derivation_refuses_a_proposer_that_censors_or_swaps_a_forced_transaction(anvil, deployment, l2, tmp_path,
                                                                                  l2_genesis):
    d = dataclasses.replace(deployment, sequencing_window=3)
    inbox = Contract(L1(anvil.url, BATCHER), "BatchInbox", d.inbox)
    raw = _signed(l2)
    _force(anvil, d, raw)
    l2.produce_block()
    inbox.transact("appendBatch", 1, 1, batches.encode([l2.block_by_number(1)]))  # within the window: fine
    with Node.init(tmp_path / "derived", l2_genesis) as fresh:
        assert derive(fresh, L1(anvil.url), d).imported == 1
        anvil.rpc("anvil_mine", hex(3))
        l2.produce_block()  # the proposer leaves the forced transaction out
        inbox.transact("appendBatch", 2, 2, batches.encode([l2.block_by_number(2)]))
        with pytest.raises(DerivationError, match=r"forced transaction #0 \(L1 block \d+, L2 tx 0x"
                                                  + keccak(raw).hex() + r"\) is past the sequencing window of 3"):
            derive(fresh, L1(anvil.url), d)
        assert fresh.head().block_number == 1

    # a proposer that relays forced transaction #0 with bytes of its own choosing
    other = genesis.dev_accounts()[4][1]
    swapped = _signed(l2, account=Account.from_key(other))
    proposer = Account.from_key(VALIDATOR_KEY)
    relay = proposer.sign_transaction({
        "type": 2, "chainId": l2.chain_id, "nonce": l2.mempool.pending_nonce(to_canonical_address(proposer.address)),
        "to": to_checksum_address(genesis.L2_BRIDGE_ADDRESS), "value": 0, "gas": forced.relay_gas(swapped),
        "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "data": forced.relay_data(0, swapped)})
    l2.mempool.add_raw(bytes(relay.raw_transaction), local=False)
    l2.produce_block()
    assert l2.tx_location(keccak(swapped)) is not None  # valid L2 execution...
    inbox.transact("appendBatch", 3, 3, batches.encode([l2.block_by_number(3)]))
    with Node.init(tmp_path / "derived2", l2_genesis) as fresh:
        with pytest.raises(DerivationError, match="relays forced transaction #0 as 0x.*; the L1 queued 0x"
                                                  + keccak(raw).hex()):
            derive(fresh, L1(anvil.url), dataclasses.replace(d, sequencing_window=10**6))


def test_withheld_batch_stops_roots_and_derivation_waits_then_both_resume(anvil, deployment, l2, tmp_path,
                                                                           l2_genesis):
    """The batcher withholds blocks 3..: the L1 refuses a root past the posted data however well
    signed, derivation holds blocks 1..2 and says what it waits for (including the forced
    transaction the censored user sent meanwhile); then the batch is posted and both resume, the
    forced transaction on the derived chain too."""
    settlement = Settlement(l2, _config(anvil, deployment))
    l2.produce_block()
    l2.produce_block()
    _post_all(settlement)  # blocks 1..2 and the root of block 2
    oracle = Contract(L1(anvil.url, BATCHER), "OutputOracle", deployment.oracle)
    assert oracle.call("latestBlockNumber") == 2
    raw = _signed(l2)
    _force(anvil, deployment, raw)
    anvil.rpc("anvil_mine", hex(F))
    settlement.relay_forced(StepReport())
    for _ in range(3):
        l2.produce_block()  # blocks 3..5, the forced transaction in block 3: not posted (withheld)
    assert l2.tx_location(keccak(raw))[0] == 3
    validators = [(v.address, v.power) for v in l2_genesis.validators]
    root = output_at(l2, 4).root
    digest = output_digest(deployment.l1_chain_id, deployment.oracle, l2.chain_id, 4, root,
                           validator_set_hash(validators))
    with pytest.raises(L1Error, match=r"OutputDataNotPosted\(4, 2\)"):
        oracle.transact("proposeOutput", 4, root, validators, signatures([VALIDATOR_KEY], digest))
    with Node.init(tmp_path / "derived", l2_genesis) as fresh:
        report = derive(fresh, L1(anvil.url), deployment)
        assert fresh.head().block_number == 2 and report.imported == 2
        assert report.waiting.startswith("waiting for L2 block 3: the L1 inbox holds blocks up to 2; ")
        assert "1 forced transaction(s) queued on the L1 not yet on the L2, the oldest #0 from L1 block" \
               in report.waiting
        assert derive(fresh, L1(anvil.url), deployment).imported == 0  # waiting is not an error
        _post_all(settlement)  # the batcher is back
        assert oracle.call("latestBlockNumber") == 4
        report = derive(fresh, L1(anvil.url), deployment)
        assert report.imported == 3 and report.forced == 1
        assert fresh.head().hash == l2.head().hash
        assert fresh.tx_location(keccak(raw)) == (3, l2.tx_location(keccak(raw))[1])
        assert report.waiting == "waiting for L2 block 6: the L1 inbox holds blocks up to 5"
