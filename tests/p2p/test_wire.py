"""Strict decoding, size limits, scores and the peer key, without any host."""
import os

import pytest
import rlp
from libp2p.peer.id import ID

from consensus.evidence import DuplicateVoteEvidence
from node.p2p import Fault, Kind, Limits, ScoreConfig, load_or_create_key
from node.p2p import wire
from node.p2p.scoring import PeerScores
from node.p2p.wire import PeerFault
from tests.p2p.helpers import CHAIN_ID, block_bytes, check_block, check_tx, proposal, vote

LIMITS = Limits()


def decode(kind, data):
    return wire.decode_gossip(kind, data, CHAIN_ID, LIMITS, check_block, check_tx)


def test_every_kind_round_trips():
    block = block_bytes(4)
    evidence = DuplicateVoteEvidence.of(vote(4, block=b"\x01" * 32), vote(4, block=b"\x02" * 32))
    assert decode(Kind.VOTE, vote(4).encode()) == vote(4)
    assert decode(Kind.PROPOSAL, wire.encode_proposal(proposal(4, block), block)) == (proposal(4, block), block)
    assert decode(Kind.EVIDENCE, evidence.encode()) == evidence
    assert decode(Kind.TX, b"\x02tx") == b"\x02tx"


@pytest.mark.parametrize("kind, data", [
    (Kind.VOTE, b""),
    (Kind.VOTE, b"\xc3not"),
    (Kind.VOTE, vote(4).encode() + b"\x00"),                                   # trailing bytes
    (Kind.VOTE, rlp.encode([1, 4, 0, b"\x11" * 32, b"\x00" * 65])),           # zero signature
    (Kind.PROPOSAL, wire.encode_proposal(proposal(4, b"x"), b"not a block")),  # node refuses the block
    (Kind.PROPOSAL, rlp.encode([proposal(4, b"x").encode()])),
    (Kind.EVIDENCE, rlp.encode([vote(4).encode(), vote(4).encode()])),         # the same vote twice
    (Kind.TX, b""),
])
def test_malformed_messages_are_faults(kind, data):
    with pytest.raises(PeerFault) as caught:
        decode(kind, data)
    assert caught.value.fault is Fault.MALFORMED


def test_a_changed_signature_recovers_another_signer_not_the_validator():
    """A flipped signature bit still decodes, as another (or no) signer: the node's
    validator-set check, not the wire, decides whether that signer may vote."""
    data = bytearray(vote(4).encode())
    data[-2] ^= 1
    try:
        decoded = decode(Kind.VOTE, bytes(data))
    except PeerFault:
        return
    assert decoded.signer(CHAIN_ID) != vote(4).signer(CHAIN_ID)


@pytest.mark.parametrize("kind", list(Kind))
def test_messages_above_their_limit_are_oversized(kind):
    with pytest.raises(PeerFault) as caught:
        decode(kind, b"\x00" * (LIMITS.of(kind) + 1))
    assert caught.value.fault is Fault.OVERSIZED


def test_requests_and_responses_are_strict():
    assert wire.decode_request(wire.encode_request(7, 1), 2) == (7, 1)
    for bad in (b"", rlp.encode([7]), rlp.encode([b"\x00\x07", 1]), rlp.encode([[7], 1]), rlp.encode([2**64, 0])):
        with pytest.raises(PeerFault):
            wire.decode_request(bad, 2)
    assert wire.decode_response_list(rlp.encode([b"a", b"b"])) == [b"a", b"b"]
    for bad in (b"\x83ab", rlp.encode(b"a"), rlp.encode([[b"a"]])):
        with pytest.raises(PeerFault):
            wire.decode_response_list(bad)


def test_range_requests_and_responses_are_strict():
    assert wire.decode_blocks_request(wire.encode_request(5, 128)) == (5, 128)
    for bad in (wire.encode_request(0, 1), wire.encode_request(5, 0), wire.encode_request(5, wire.MAX_BLOCKS_PER_REQUEST + 1),
                wire.encode_request(5), wire.encode_request(5, 1, 1), rlp.encode([5, b"\x00\x01"]), b"\xc2\x05"):
        with pytest.raises(PeerFault) as caught:
            wire.decode_blocks_request(bad)
        assert caught.value.fault is Fault.MALFORMED
    blocks = [block_bytes(5), block_bytes(6)]
    assert wire.blocks_from(blocks, 2, check_block) == blocks
    assert wire.blocks_from([], 2, check_block) == []
    for bad, asked in ((blocks, 1), ([block_bytes(5), b"not a block"], 2)):
        with pytest.raises(PeerFault) as caught:
            wire.blocks_from(bad, asked, check_block)
        assert caught.value.fault is Fault.MALFORMED


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_scores_fall_recover_ban_and_expire():
    clock, peer = Clock(), ID(b"peer")
    scores = PeerScores(ScoreConfig(ban_below=-80, recovery_per_s=1, ban_seconds=60), clock)
    assert [scores.penalise(peer, Fault.MALFORMED) for _ in range(3)] == [False] * 3
    assert scores.score(peer) == -75
    clock.now = 30                                  # thirty points recovered
    assert scores.score(peer) == -45 and not scores.penalise(peer, Fault.MALFORMED)
    assert scores.penalise(peer, Fault.MALFORMED) and scores.is_banned(peer)
    assert not scores.penalise(peer, Fault.OVERSIZED)   # already banned: not reported twice
    clock.now = 89
    assert scores.expire_bans() == [] and scores.is_banned(peer)
    clock.now = 90
    assert scores.expire_bans() == [peer] and not scores.is_banned(peer) and scores.score(peer) == 0
    clock.now = 10_000
    assert scores.score(ID(b"clean")) == 0          # recovery never lifts a score above 0


def test_the_peer_key_is_made_once_and_kept(tmp_path):
    first = load_or_create_key(tmp_path / "data")
    path = tmp_path / "data" / "p2p_key"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path / "data").public_key.to_bytes() == first.public_key.to_bytes()
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match="32-byte"):
        load_or_create_key(tmp_path / "data")
