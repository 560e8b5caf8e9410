"""The VM subclass on py-evm's in-memory database: chain id, fee sink, registry hooks."""
import dataclasses
import time

import pytest
from eth.db.atomic import AtomicDB
from eth_utils import ValidationError, to_canonical_address

import genesis
import vm
from vm import WrongChainId, registry

COINBASE = to_canonical_address(genesis.dev_accounts()[0][0])
RECIPIENT = b"\x11" * 20


def _chain(g):
    return vm.build_chain_class(g).from_genesis(AtomicDB(), vm.genesis_params(g), vm.genesis_state(g))


def _mine(chain, raws):
    builder = chain.get_vm().get_transaction_builder()
    chain.set_header_timestamp(max(int(time.time()), chain.header.timestamp))
    result, receipts, _ = chain.mine_all([builder.decode(r) for r in raws], coinbase=COINBASE)
    return result.imported_block, receipts


def test_block_with_foreign_chain_id_is_rejected_on_import(dev_accounts, sign_tx) -> None:
    # Without governance predeploys (whose EIP-712 domains commit to the chain id) the two chains
    # share block 0, so only the transaction's chain id tells the foreign block apart.
    ours, theirs = (dataclasses.replace(genesis.devnet(chain_id=c), governance=None) for c in (7167, 999))
    foreign_chain = _chain(theirs)
    assert foreign_chain.get_canonical_head() == _chain(ours).get_canonical_head()  # same block 0
    block, _ = _mine(foreign_chain, [sign_tx(dev_accounts[1][1], 0, chain_id=999)])
    chain = _chain(ours)
    with pytest.raises(WrongChainId, match="transaction has 999, chain is 7167"):
        chain.import_block(block)
    assert chain.get_canonical_head().block_number == 0


def test_block_with_our_chain_id_imports_to_the_same_state(dev_accounts, sign_tx) -> None:
    g = genesis.devnet()
    block, _ = _mine(_chain(g), [sign_tx(dev_accounts[1][1], n) for n in range(3)])
    other = _chain(g)
    other.import_block(block)
    assert other.get_canonical_head() == block.header


def test_validate_chain_id_refuses_unprotected_legacy(dev_accounts, sign_tx) -> None:
    chain = _chain(genesis.devnet())
    builder = chain.get_vm().get_transaction_builder()
    tx = builder.decode(sign_tx(dev_accounts[1][1], 0, chain_id=None, gasPrice=2 * 10**9))
    assert tx.chain_id is None
    with pytest.raises(WrongChainId):
        vm.validate_chain_id(tx, 7167)
    with pytest.raises(ValidationError):
        _mine(chain, [sign_tx(dev_accounts[1][1], 0, chain_id=None, gasPrice=2 * 10**9)])


@pytest.mark.parametrize("sink", ["burn", "treasury"])
def test_base_fee_goes_to_its_sink(monkeypatch, dev_accounts, sign_tx, sink) -> None:
    monkeypatch.setattr(registry, "BLOCK_HOOKS", ())  # only the fee sink moves OPEN here
    g = genesis.devnet(base_fee_sink=sink)
    chain = _chain(g)
    sender = to_canonical_address(dev_accounts[1][0])
    before = chain.get_vm().state
    balances = {a: before.get_balance(a) for a in (sender, COINBASE, g.treasury, RECIPIENT)}
    block, receipts = _mine(chain, [sign_tx(dev_accounts[1][1], 0, value=5)])
    header = block.header
    after = chain.get_vm(header).state
    gas = receipts[0].gas_used
    base_fee_paid = gas * header.base_fee_per_gas
    tip_paid = gas * 10**9
    assert gas == header.gas_used == 21_000
    assert after.get_balance(sender) == balances[sender] - 5 - base_fee_paid - tip_paid
    assert after.get_balance(COINBASE) == balances[COINBASE] + tip_paid
    assert after.get_balance(RECIPIENT) == balances[RECIPIENT] + 5
    treasury_gain = after.get_balance(g.treasury) - balances[g.treasury]
    assert treasury_gain == (base_fee_paid if sink == "treasury" else 0)
    # burn: the base fee leaves the supply; treasury: the supply is conserved
    supply_change = sum(after.get_balance(a) - balances[a] for a in balances)
    assert supply_change == (-base_fee_paid if sink == "burn" else 0)


def test_gas_limit_stays_at_genesis_over_empty_blocks() -> None:
    g = genesis.devnet()
    chain = _chain(g)
    for _ in range(3):
        block, _ = _mine(chain, [])
    assert block.header.gas_limit == g.gas_limit
    assert block.number == 3


def test_registry_precompile_and_block_hook_apply_in_build_and_import(monkeypatch, dev_accounts, sign_tx) -> None:
    module_address = b"\x00" * 18 + b"\x0f\x01"

    def echo_module(computation):
        computation.state.set_storage(module_address, 0, len(computation.msg.data))
        computation.output = computation.msg.data[::-1]
        return computation

    def count_blocks(state, header, genesis_):
        state.set_storage(module_address, 1, header.block_number * 1000 + genesis_.chain_id % 1000)

    monkeypatch.setitem(registry.PRECOMPILES, module_address, echo_module)
    monkeypatch.setattr(registry, "BLOCK_HOOKS", (count_blocks,))
    g = genesis.devnet()
    chain = _chain(g)
    tx = sign_tx(dev_accounts[1][1], 0, to=module_address, data=b"\x01\x02\x03", gas=50_000)
    block, receipts = _mine(chain, [tx])
    assert receipts[0].state_root == b"\x01"  # success
    state = chain.get_vm(block.header).state
    assert state.get_storage(module_address, 0) == 3
    assert state.get_storage(module_address, 1) == 1167
    other = _chain(g)
    other.import_block(block)  # the hook runs again on import and gives the same state root
    assert other.get_canonical_head().state_root == block.header.state_root
    # a chain class built without them computes another state root: the hook really ran
    monkeypatch.setattr(registry, "BLOCK_HOOKS", ())
    with pytest.raises(ValidationError):
        _chain(g).import_block(block)


def test_build_and_import_return_the_receipts_they_computed(dev_accounts, sign_tx) -> None:
    g = genesis.devnet()
    builder_chain = _chain(g)
    tx_builder = builder_chain.get_vm().get_transaction_builder()
    txs = [tx_builder.decode(sign_tx(dev_accounts[1][1], n)) for n in range(3)]
    block, receipts = vm.build_block(builder_chain, txs, int(time.time()), COINBASE)
    assert builder_chain.get_canonical_head() == block.header
    assert [r.gas_used for r in receipts] == [21_000, 42_000, 63_000]
    assert receipts == block.get_receipts(builder_chain.chaindb)
    chain = _chain(g)
    imported, imported_receipts = vm.import_block(chain, block)
    assert imported == block and imported_receipts == receipts
    assert chain.get_canonical_head() == block.header


def test_import_refuses_a_tampered_or_orphan_block(dev_accounts, sign_tx) -> None:
    g = genesis.devnet()
    source = _chain(g)
    tx = source.get_vm().get_transaction_builder().decode(sign_tx(dev_accounts[1][1], 0))
    block, _ = vm.build_block(source, [tx], int(time.time()), COINBASE)
    chain = _chain(g)
    with pytest.raises(ValidationError, match="differs from its re-execution in: state_root"):
        vm.import_block(chain, block.copy(header=block.header.copy(state_root=b"\x01" * 32)))
    with pytest.raises(ValidationError):  # a body that does not match its header's transaction root
        vm.import_block(chain, block.copy(transactions=[]))
    with pytest.raises(ValidationError, match="unknown parent"):
        vm.import_block(chain, block.copy(header=block.header.copy(parent_hash=b"\x02" * 32)))
    with pytest.raises(ValidationError):
        vm.import_block(chain, block.copy(header=block.header.copy(gas_used=block.header.gas_used + 1)))
    assert chain.get_canonical_head().block_number == 0
