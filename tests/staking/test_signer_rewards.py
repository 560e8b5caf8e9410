"""Rewards to signers (issue 13 item 9): block N + 1's extraData is the bitmap of who signed block
N's commit; the block hook pays the validator share only to them, by stake, commission and
delegators, and sends what the others forgo to the treasury. The supply identity is checked after
every block (NativeChain.mine). A malformed bitmap makes the block invalid, built or imported."""
import pytest
from eth_utils import ValidationError, to_checksum_address as cs

import vm
from vm.chain import fill_block
from genesis.governance import TIMELOCK_ADDRESS
from tests.native.native_chain import NativeChain
from tests.staking.conftest import ADDRS, OPEN, members, mine_signed, staked_chain
from vm.modules.staking import bitmap_signers, signer_bitmap

STAKES = (3000, 2000, 1000, 1000)  # total 7000: any three of the first three hold more than 2/3


def _released(nc) -> int:
    return nc.call("Economics", "supply")[3]


def _balances(nc, addresses) -> list[int]:
    return [nc.state.get_balance(a) for a in addresses]


def _payout_check(nc, signers):
    """Mine one block naming `signers`; check every validator's, the treasury's and the
    proposer's gain against the rule, to the wei."""
    watched = ADDRS[:len(STAKES)] + [TIMELOCK_ADDRESS, b"\0" * 20]
    before, released = _balances(nc, watched), _released(nc)
    mine_signed(nc, signers)
    gained = [b - a for a, b in zip(before, _balances(nc, watched))]
    amount = _released(nc) - released
    assert amount > 0
    total = sum(STAKES) * OPEN
    parts = [amount * s * OPEN // total for s in STAKES]
    want = [p if a in signers else 0 for a, p in zip(ADDRS, parts)]
    forgone = sum(p for a, p in zip(ADDRS, parts) if a not in signers)
    assert gained == want + [forgone, amount - sum(parts)]
    return want


def test_all_signers_are_paid_by_stake():
    nc = staked_chain(STAKES)
    nc.mine([])  # block 1 carries no commit
    paid = _payout_check(nc, set(ADDRS[:4]))
    assert all(paid) and abs(paid[0] - 3 * paid[2]) < 3  # 3000 vs 1000 OPEN, up to rounding


def test_a_validator_that_did_not_sign_gets_nothing_and_its_part_goes_to_the_treasury():
    nc = staked_chain(STAKES)
    nc.mine([])
    _payout_check(nc, {ADDRS[0], ADDRS[1], ADDRS[2]})
    _payout_check(nc, {ADDRS[0], ADDRS[1], ADDRS[3]})


def test_without_a_bitmap_every_active_validator_is_paid_as_before():
    nc = staked_chain(STAKES)
    nc.mine([])
    before, released = _balances(nc, ADDRS[:4]), _released(nc)
    nc.mine([])  # empty extraData: no commit information
    amount = _released(nc) - released
    gained = [b - a for a, b in zip(before, _balances(nc, ADDRS[:4]))]
    assert gained == [amount * s // sum(STAKES) for s in STAKES]


def test_delegators_of_signers_earn_and_of_non_signers_do_not():
    nc = staked_chain(STAKES)
    d1, d3 = nc.addresses[1], nc.addresses[3]
    assert nc.send(nc.keys[1], "Staking", "delegate", cs(ADDRS[1]), value=500 * OPEN).ok
    assert nc.send(nc.keys[3], "Staking", "delegate", cs(ADDRS[3]), value=500 * OPEN).ok
    pending = [nc.call("Staking", "pendingRewards", d, cs(v)) for d, v in ((d1, ADDRS[1]), (d3, ADDRS[3]))]
    mine_signed(nc, set(ADDRS[:3]))
    after = [nc.call("Staking", "pendingRewards", d, cs(v)) for d, v in ((d1, ADDRS[1]), (d3, ADDRS[3]))]
    assert after[0] > pending[0] and after[1] == pending[1]


def test_a_bitmap_that_no_commit_could_have_makes_the_block_invalid():
    nc = staked_chain(STAKES)
    nc.mine([])
    head = nc.chain.get_canonical_head()
    n = len(members(nc, 1))
    bad = {
        b"\x00": "2/3",  # nobody signed
        bytes([0b1100]): "2/3",  # 2000 of 7000
        bytes([0b0011, 0]): "2 bytes, the set of 4 validators takes 1",  # longer than the set
        bytes([0b10011]): "bits beyond the 4 validators",
    }
    for extra, reason in bad.items():
        with pytest.raises(ValidationError, match=reason):
            nc.mine([], extra_data=extra)
        assert nc.chain.get_canonical_head() == head  # nothing was written
    assert n == 4
    nc.mine([], extra_data=bytes([0b0111]))  # 6000 of 7000: a commit


def _build(nc, extra_data: bytes):
    """Build the next block as the node does (`vm.fill_block`, with the system steps import runs)."""
    head = nc.chain.get_canonical_head()
    header = nc.chain.create_header_from_parent(head, timestamp=head.timestamp + 1, extra_data=extra_data)
    block, _, _ = fill_block(nc.chain.get_vm(header), [], lambda tx, error: None)
    nc.chain.chaindb.persist_block(block)
    return block


def test_import_refuses_a_block_whose_bitmap_was_tampered_with():
    builder, follower = staked_chain(STAKES), staked_chain(STAKES)
    vm.import_block(follower.chain, _build(builder, b""))
    honest = _build(builder, signer_bitmap(members(builder, 1), ADDRS[:4]))
    forged = honest.copy(header=honest.header.copy(extra_data=bytes([0b1000])))  # names 1000 of 7000
    with pytest.raises(ValidationError, match="extraData"):
        vm.import_block(follower.chain, forged)
    vm.import_block(follower.chain, honest)
    assert follower.chain.get_canonical_head() == honest.header


def test_a_devnet_with_a_fixed_set_does_not_read_extra_data():
    """A devnet's sequencer is not staked and its set is fixed: extraData stays free (testing_buildBlockV1
    sets it, as on Ethereum) and every staked validator is paid as before."""
    nc = NativeChain()
    v = nc.addresses[4]
    assert nc.send(nc.keys[4], "Staking", "registerValidator", 0, 0, value=200 * OPEN).ok
    before = nc.balance(v)
    nc.mine([], extra_data=b"ol")  # not a bitmap of the one-member set: read as nothing
    assert nc.balance(v) > before


def test_bitmap_codec():
    members_ = [bytes([i]) * 20 for i in range(10)]
    bitmap = signer_bitmap(members_, [members_[0], members_[8], members_[9]])
    assert bitmap == bytes([0b1, 0b11])
    assert bitmap_signers(members_, bitmap) == [members_[0], members_[8], members_[9]]
    assert signer_bitmap(members_[:8], members_[:8]) == b"\xff"
    with pytest.raises(ValueError, match="not in the set"):
        signer_bitmap(members_[:2], [members_[3]])
    with pytest.raises(ValueError):
        bitmap_signers(members_, b"")
    assert signer_bitmap([], []) == b""
