"""Evidence and slashing (issue 13 item 8): `Staking.submitEvidence(bytes)` takes the RLP of two
conflicting signed votes, checks them with consensus' own code against the set of their height,
slashes `evidence_slash_ppm` of the offender's self stake to the treasury and jails it; every
refusal reverts with its reason and changes nothing."""
import re

import pytest
import rlp
from eth_utils import to_checksum_address as cs

from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import VoteType
from genesis.governance import TIMELOCK_ADDRESS
from tests.native.native_chain import NativeChain
from tests.staking.conftest import ADDRS, KEYS, OPEN, evidence as _evidence, staked_chain, vote
from vm.modules import consensus_set
from vm.modules.staking import MAX_EVIDENCE_BYTES
from vm.modules.system import STAKING


@pytest.fixture
def nc() -> NativeChain:
    nc = staked_chain((1000, 1000, 1000, 1000))
    for _ in range(3):
        nc.mine([])
    return nc


def _submit(nc, data: bytes, submitter: int = 7):
    return nc.send(nc.keys[submitter], "Staking", "submitEvidence", data)


def test_valid_evidence_slashes_five_percent_and_jails(nc):
    treasury = nc.state.get_balance(TIMELOCK_ADDRESS)
    data = _evidence()
    r = _submit(nc, data)
    assert r.ok, r.reason
    n = nc.chain.get_canonical_head().block_number
    assert r.events("Staking", "Slashed") == [{"validator": cs(ADDRS[0]), "amount": 50 * OPEN,
                                               "reason": DuplicateVoteEvidence.decode(data).hash()}]
    assert r.events("Staking", "Jailed") == [{"validator": cs(ADDRS[0]), "height": 2,
                                              "evidenceHash": DuplicateVoteEvidence.decode(data).hash()}]
    self_stake, _, _, _, active, slashed = nc.call("Staking", "getValidator", cs(ADDRS[0]))
    assert (self_stake, active, slashed) == (950 * OPEN, False, 50 * OPEN)
    assert nc.call("Staking", "jailedAt", cs(ADDRS[0])) == n
    assert nc.call("Staking", "evidenceBlock", DuplicateVoteEvidence.decode(data).hash()) == n
    assert nc.state.get_balance(TIMELOCK_ADDRESS) - treasury >= 50 * OPEN  # plus the block's forgone share, if any
    assert ADDRS[0] in [a for a, _ in consensus_set(nc.state, n + 1)]
    assert [a for a, _ in consensus_set(nc.state, n + 2)] == sorted(ADDRS[1:4])  # leaves at the scheduled height
    # a jailed validator cannot come back, nor be delegated to; it can still take its stake out
    assert nc.send(nc.keys[1], "Staking", "delegate", cs(ADDRS[0]), value=OPEN).reason == \
        f"validator {cs(ADDRS[0])} is jailed (block {n})"
    assert nc.send("0x" + KEYS[0].hex(), "Staking", "undelegate", cs(ADDRS[0]), 950 * OPEN).ok


def test_nil_against_a_block_and_prevotes_are_evidence_too(nc):
    assert _submit(nc, _evidence(KEYS[1], a=None, b=5, type_=VoteType.PREVOTE, round_=3)).ok


REFUSALS = {
    "replay": (lambda: _evidence(), "already submitted in block"),
    "second equivocation of a jailed validator": (lambda: _evidence(a=3, b=4), "is already jailed"),
    "same vote twice": (
        lambda: rlp.encode([vote(KEYS[1], 2, 1).encode()] * 2), "the same block: no conflict"),
    "different heights": (
        lambda: rlp.encode([vote(KEYS[1], 1, 1).encode(), vote(KEYS[1], 2, 2).encode()]), r"different \(height"),
    "different rounds": (
        lambda: DuplicateVoteEvidence(vote(KEYS[1], 2, 1), vote(KEYS[1], 2, 2, round_=1)).encode(),
        r"different \(height"),
    "forged signature": (
        lambda: DuplicateVoteEvidence.of(vote(KEYS[1], 2, 1), vote(KEYS[2], 2, 2)).encode(), "different keys"),
    "another chain's votes": (lambda: _evidence(KEYS[1], chain_id=1), "different keys|not a validator"),
    "non-validator": (lambda: _evidence(KEYS[6]), "was not a validator at height 2"),
    "future height": (lambda: _evidence(KEYS[1], height=50), "is not from before this block"),
    "out of canonical order": (
        lambda: DuplicateVoteEvidence(vote(KEYS[1], 2, 2), vote(KEYS[1], 2, 1)).encode(), "canonical order"),
    "malformed RLP": (lambda: b"\xc3\x01\x02", "malformed evidence"),
    "not RLP": (lambda: b"\xff" * 40, "malformed evidence"),
    "empty": (lambda: b"", "malformed evidence"),
    "oversized": (lambda: b"\x00" * (MAX_EVIDENCE_BYTES + 1), f"above the {MAX_EVIDENCE_BYTES}-byte limit"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_revert_with_a_reason_and_change_nothing(nc, case):
    assert _submit(nc, _evidence()).ok  # validator 0 is jailed for height 2
    make, reason = REFUSALS[case]
    root, held = nc.storage_root("Staking"), nc.state.get_balance(STAKING)
    stakes = [nc.call("Staking", "getValidator", cs(a)) for a in ADDRS[:4]]
    r = _submit(nc, make())
    assert not r.ok
    assert r.reason is not None and re.search(reason, r.reason), r.reason
    assert nc.storage_root("Staking") == root and nc.state.get_balance(STAKING) == held
    assert [nc.call("Staking", "getValidator", cs(a)) for a in ADDRS[:4]] == stakes


def test_stale_evidence_is_refused():
    nc = staked_chain((1000, 1000, 1000, 1000), evidence_max_age_blocks=3)
    for _ in range(5):
        nc.mine([])
    r = _submit(nc, _evidence(height=2))  # block 6: 4 blocks after height 2
    assert r.reason == "evidence for height 2 is older than 3 blocks (evidence_max_age_blocks) at block 6"
    assert _submit(nc, _evidence(height=4)).ok  # block 7: exactly 3 blocks after height 4


def test_the_slash_share_is_a_genesis_parameter():
    nc = staked_chain((1000, 1000), evidence_slash_ppm=200_000)
    nc.mine([])
    nc.mine([])
    r = _submit(nc, _evidence(height=1))
    assert r.ok and r.events("Staking", "Slashed")[0]["amount"] == 200 * OPEN


def test_evidence_is_checked_against_the_set_of_its_height(nc):
    """A validator registered in block 4 signs from height 6: its votes at height 4 prove nothing."""
    key, address = bytes.fromhex(nc.keys[5][2:]), nc.addresses[5]
    assert nc.send(nc.keys[5], "Staking", "registerValidator", 0, 0, value=1000 * OPEN).ok  # block 4
    assert _submit(nc, _evidence(key, height=4)).reason == f"{address} was not a validator at height 4"
    nc.mine([])  # block 6
    assert _submit(nc, _evidence(key, height=6)).ok
