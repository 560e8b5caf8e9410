"""Votes and proposals: the signed bytes are standard EIP-712 (checked against eth-account), bind
the chain id, height, round and step, and the wire forms refuse malformed input."""
import pytest
import rlp
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from consensus import InvalidSignature, MalformedMessage, Proposal, SignedProposal, SignedVote, Vote, VoteType
from consensus.messages import SECP256K1_N, keccak, sign_proposal, sign_vote
from tests.consensus.app import CHAIN_ID, address, private_key

H = keccak(b"block")
DOMAIN = {"name": "OpenLedger Consensus", "version": "1", "chainId": CHAIN_ID}
DOMAIN_TYPES = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}]


def typed(primary: str, fields: list[tuple[str, str]], message: dict) -> bytes:
    data = {"types": {"EIP712Domain": DOMAIN_TYPES, primary: [{"name": n, "type": t} for n, t in fields]},
            "primaryType": primary, "domain": DOMAIN, "message": message}
    return _hash_eip191_message(encode_typed_data(full_message=data))


@pytest.mark.parametrize("vote", [Vote(VoteType.PREVOTE, 1, 0, H), Vote(VoteType.PRECOMMIT, 2**64 - 1, 2**31 - 1, H),
                                  Vote(VoteType.PRECOMMIT, 7, 3, None)])
def test_vote_digest_is_eip712(vote):
    fields = [("voteType", "uint8"), ("height", "uint64"), ("round", "uint32"), ("blockHash", "bytes32")]
    expected = typed("Vote", fields,
                     {"voteType": int(vote.type), "height": vote.height, "round": vote.round,
                      "blockHash": vote.block_hash or bytes(32)})
    assert vote.digest(CHAIN_ID) == expected
    assert vote.sign_bytes(CHAIN_ID)[:2] == b"\x19\x01" and len(vote.sign_bytes(CHAIN_ID)) == 66
    assert keccak(vote.sign_bytes(CHAIN_ID)) == expected


@pytest.mark.parametrize("pol_round", [-1, 0, 4])
def test_proposal_digest_is_eip712(pol_round):
    p = Proposal(9, 5, pol_round, H)
    fields = [("height", "uint64"), ("round", "uint32"), ("polRound", "int32"), ("blockHash", "bytes32")]
    expected = typed("Proposal", fields,
                     {"height": 9, "round": 5, "polRound": pol_round, "blockHash": H})
    assert p.digest(CHAIN_ID) == expected


def test_a_wallet_signature_is_a_vote_signature():
    """A staking key held in an ordinary wallet signs the same bytes (EIP-712 typed data)."""
    vote = Vote(VoteType.PREVOTE, 3, 1, H)
    data = {"types": {"EIP712Domain": DOMAIN_TYPES, "Vote": [{"name": "voteType", "type": "uint8"},
            {"name": "height", "type": "uint64"}, {"name": "round", "type": "uint32"},
            {"name": "blockHash", "type": "bytes32"}]}, "primaryType": "Vote", "domain": DOMAIN,
            "message": {"voteType": 1, "height": 3, "round": 1, "blockHash": H}}
    wallet = Account.sign_message(encode_typed_data(full_message=data), private_key(0))
    signature = wallet.r.to_bytes(32, "big") + wallet.s.to_bytes(32, "big") + bytes([wallet.v - 27])
    assert SignedVote(vote, signature).signer(CHAIN_ID) == address(0)
    assert sign_vote(private_key(0), CHAIN_ID, vote).signature == signature


def test_every_field_is_bound_by_the_signature():
    signed = sign_vote(private_key(1), CHAIN_ID, Vote(VoteType.PREVOTE, 3, 1, H))
    assert signed.signer(CHAIN_ID) == address(1)
    for other in (Vote(VoteType.PRECOMMIT, 3, 1, H), Vote(VoteType.PREVOTE, 4, 1, H), Vote(VoteType.PREVOTE, 3, 2, H),
                  Vote(VoteType.PREVOTE, 3, 1, None), Vote(VoteType.PREVOTE, 3, 1, keccak(b"other"))):
        assert SignedVote(other, signed.signature).signer(CHAIN_ID) != address(1)
    assert signed.signer(CHAIN_ID + 1) != address(1)  # another chain: another signer, never this validator


def test_vote_wire_round_trip():
    for vote in (Vote(VoteType.PREVOTE, 1, 0, None), Vote(VoteType.PRECOMMIT, 10**6, 12, H)):
        signed = sign_vote(private_key(2), CHAIN_ID, vote)
        assert SignedVote.decode(signed.encode()) == signed
    p = sign_proposal(private_key(2), CHAIN_ID, Proposal(4, 2, -1, H))
    assert SignedProposal.decode(p.encode()) == p
    p = sign_proposal(private_key(2), CHAIN_ID, Proposal(4, 2, 1, H))
    assert SignedProposal.decode(p.encode()) == p


def _encoded(fields: list) -> bytes:
    return rlp.encode(fields)


SIG = sign_vote(private_key(0), CHAIN_ID, Vote(VoteType.PREVOTE, 1, 0, H)).signature


@pytest.mark.parametrize("data", [
    b"", b"\xc0", b"\xff" * 10, _encoded([1, 1, 0, H]), _encoded([1, 1, 0, H, SIG, b""]),
    _encoded([3, 1, 0, H, SIG]),  # type 3
    _encoded([0, 1, 0, H, SIG]),  # type 0
    _encoded([1, 0, 0, H, SIG]),  # height 0
    _encoded([1, 2**64, 0, H, SIG]),  # height over 64 bits
    _encoded([1, 1, 2**31, H, SIG]),  # round over int32
    _encoded([1, b"\x00\x01", 0, H, SIG]),  # leading zero
    _encoded([1, 1, 0, H[:31], SIG]),  # short hash
    _encoded([1, 1, 0, bytes(32), SIG]),  # the zero hash is how nil is signed, not a block
    _encoded([1, 1, 0, H, SIG[:64]]),  # short signature
    _encoded([1, 1, 0, H, SIG[:64] + b"\x02"]),  # v = 2
    _encoded([1, 1, 0, [H], SIG]),  # a list where a hash goes
])
def test_malformed_votes_are_refused(data):
    with pytest.raises(MalformedMessage):
        SignedVote.decode(data)


def test_high_s_signatures_are_refused():
    """One encoding per signature: (r, n - s, v ^ 1) also recovers the signer; it is refused."""
    r, s, v = SIG[:32], int.from_bytes(SIG[32:64], "big"), SIG[64]
    flipped = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([v ^ 1])
    with pytest.raises(InvalidSignature, match="lower half"):
        SignedVote(Vote(VoteType.PREVOTE, 1, 0, H), flipped).signer(CHAIN_ID)
    with pytest.raises(InvalidSignature):
        SignedVote(Vote(VoteType.PREVOTE, 1, 0, H), bytes(65)).signer(CHAIN_ID)


@pytest.mark.parametrize("args", [(9, 0, -2, H), (9, 3, 3, H), (9, 0, 0, H), (0, 0, -1, H), (9, -1, -1, H),
                                  (9, 0, -1, None), (9, 0, -1, bytes(32))])
def test_proposal_fields_are_checked(args):
    with pytest.raises(MalformedMessage):
        Proposal(*args)


def test_proposal_pol_round_wire_form():
    p = sign_proposal(private_key(0), CHAIN_ID, Proposal(4, 2, -1, H))
    assert rlp.decode(p.encode())[2] == b""  # polRound + 1 = 0
    with pytest.raises(MalformedMessage):  # polRound + 1 = 3 -> 2, not below round 2
        SignedProposal.decode(rlp.encode([4, 2, 3, H, p.signature]))


def test_the_documented_test_vector():
    """docs/consensus.md quotes these bytes: keep the two in step."""
    vote = Vote(VoteType.PRECOMMIT, 7, 1, bytes.fromhex("11" * 32))
    assert CHAIN_ID == 7167
    assert vote.sign_bytes(CHAIN_ID).hex() == (
        "1901" "7424d5871cf1bcde6e99689912140249b004e972c14e0b4d6bac85ed11f596d2"
        "a79989bfba8c890708008d423fd1e4d4468a51af55b89552cb523718f1c5cfac")
    assert vote.digest(CHAIN_ID).hex() == "ae4a7fea457ae9c23e14fbcfd381f185b5e9720ab8306f59d15169a442029ac9"
    assert private_key(0).hex() == "0e731070b069d744a8f6d6db27e06356d89d271898f52309a22fc324c58eb8f0"
    signed = sign_vote(private_key(0), CHAIN_ID, vote)
    assert signed.signature.hex() == (
        "848762619bfba6a7c67380f29143ffefd27364a3cb074271cf9aca713618a3e3"
        "00d75eaeaeb128efc6c837a8619fa66ab3230a7f8ae1005baeff07acb5caf860" "00")
    assert signed.signer(CHAIN_ID).hex() == "65fb757535b2f61f550ecc6a506f0f0f533aa62c" == address(0).hex()
    assert signed.encode().hex() == "f867020701a0" + "11" * 32 + "b841" + signed.signature.hex()


def test_the_pure_python_signing_path_agrees(monkeypatch):
    """Without libsecp256k1 (coincurve), eth-keys signs and recovers the same bytes."""
    from consensus import messages
    vote = Vote(VoteType.PREVOTE, 11, 4, H)
    fast = sign_vote(private_key(3), CHAIN_ID, vote)
    monkeypatch.setattr(messages, "coincurve", None)
    messages._recover.cache_clear()
    slow = sign_vote(private_key(3), CHAIN_ID, vote)
    assert slow == fast and slow.signer(CHAIN_ID) == address(3)
    assert SignedVote(vote, fast.signature).signer(CHAIN_ID + 1) != address(3)
    messages._recover.cache_clear()
