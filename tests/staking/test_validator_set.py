"""The consensus set from stake (issue 13 item 4): CometBFT's order, whole-OPEN power, a schedule in
Staking storage that reaches the set `validator_set_delay_blocks` after the block that changed
stake, on a real chain driven by signed transactions."""
from eth_utils import to_checksum_address as cs

import genesis
from consensus.validators import MAX_TOTAL_VOTING_POWER, Validator, ValidatorSet
from tests.native.native_chain import NativeChain
from tests.staking.conftest import ADDRS, KEYS, OPEN, members, staked_chain
from vm.modules import consensus_set, validator_set
from vm.modules.system import STAKING


def test_genesis_validators_sign_from_height_one_in_cometbft_order():
    nc = staked_chain((1000, 3000, 1000, 2000))
    assert consensus_set(nc.state, 0) == []
    want = [(ADDRS[1], 3000), (ADDRS[3], 2000)] + sorted([(ADDRS[0], 1000), (ADDRS[2], 1000)])
    assert consensus_set(nc.state, 1) == want
    vs = ValidatorSet(Validator(a, p) for a, p in want)  # consensus' own order is the same
    assert [(v.address, v.power) for v in vs] == want
    assert consensus_set(nc.state, 10**9) == want  # nothing scheduled after it
    assert nc.state.get_balance(STAKING) == 7000 * OPEN  # the stakes sit in the module's balance
    addresses, powers = nc.call("Staking", "consensusSet", 1)
    assert [bytes.fromhex(a[2:]) for a in addresses] == [a for a, _ in want] and list(powers) == [p for _, p in want]


def test_power_is_stake_in_whole_open():
    nc = staked_chain((100, 100))
    assert nc.send(nc.keys[0], "Staking", "delegate", cs(ADDRS[0]), value=OPEN // 2).ok  # 100.5 OPEN: power 100
    assert consensus_set(nc.state, 100) == sorted([(ADDRS[0], 100), (ADDRS[1], 100)])
    assert nc.send(nc.keys[1], "Staking", "delegate", cs(ADDRS[0]), value=OPEN // 2).ok  # 101 OPEN
    head = nc.chain.get_canonical_head().block_number
    assert consensus_set(nc.state, head + 2) == [(ADDRS[0], 101), (ADDRS[1], 100)]
    assert genesis.TOTAL_SUPPLY // OPEN < MAX_TOTAL_VOTING_POWER  # the whole supply as power fits CometBFT's cap


def test_a_registration_joins_the_set_two_blocks_later():
    nc = staked_chain()
    genesis_set = consensus_set(nc.state, 1)
    nc.mine([])
    r = nc.send(nc.keys[5], "Staking", "registerValidator", 0, 0, value=5000 * OPEN)  # block 2
    assert r.ok
    n = nc.chain.get_canonical_head().block_number
    after_n = nc.state
    assert consensus_set(after_n, n) == genesis_set and consensus_set(after_n, n + 1) == genesis_set
    joined = [(bytes.fromhex(nc.addresses[5][2:]), 5000)] + genesis_set
    assert consensus_set(after_n, n + 2) == joined  # known one block before it signs
    nc.mine([])
    nc.mine([])
    for height, want in ((n, genesis_set), (n + 1, genesis_set), (n + 2, joined), (n + 5, joined)):
        assert consensus_set(nc.state, height) == want, height  # past sets stay readable


def test_leaving_and_power_changes_are_scheduled_and_an_empty_set_never_is():
    nc = staked_chain((1000, 1000), min_validator_stake=100 * OPEN)
    r = nc.send("0x" + KEYS[0].hex(), "Staking", "undelegate", cs(ADDRS[0]), 950 * OPEN)  # 50 OPEN: below the minimum
    assert r.ok, r.reason
    n = nc.chain.get_canonical_head().block_number
    assert consensus_set(nc.state, n + 2) == [(ADDRS[1], 1000)]
    r = nc.send("0x" + KEYS[1].hex(), "Staking", "undelegate", cs(ADDRS[1]), 1000 * OPEN)  # the last one leaves
    assert r.ok, r.reason
    m = nc.chain.get_canonical_head().block_number
    assert consensus_set(nc.state, m + 2) == [(ADDRS[1], 1000)]  # the chain keeps a set that can sign
    assert validator_set(nc.state) == []


def test_the_set_holds_the_largest_max_validators():
    nc = staked_chain((1000, 900), max_validators=2)
    assert nc.send(nc.keys[3], "Staking", "registerValidator", 0, 0, value=950 * OPEN).ok
    n = nc.chain.get_canonical_head().block_number
    dev3 = bytes.fromhex(nc.addresses[3][2:])
    assert consensus_set(nc.state, n + 2) == [(ADDRS[0], 1000), (dev3, 950)]
    assert nc.send(nc.keys[4], "Staking", "registerValidator", 0, 0, value=100 * OPEN).ok  # too small to enter
    assert consensus_set(nc.state, 10**6) == [(ADDRS[0], 1000), (dev3, 950)]


def test_a_fixed_genesis_set_ignores_stake():
    """A devnet's sequencer is not staked: its genesis set signs for good, whoever stakes."""
    nc = NativeChain()
    sequencer = [(nc.genesis.validators[0].address, 1)]
    assert consensus_set(nc.state, 1) == sequencer
    assert nc.send(nc.keys[4], "Staking", "registerValidator", 0, 0, value=5000 * OPEN).ok
    nc.mine([])
    assert consensus_set(nc.state, 10**6) == sequencer
    assert members(nc, 1) == [nc.genesis.validators[0].address]
