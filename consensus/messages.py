"""Consensus messages: votes and proposals, the bytes a validator signs, and their wire form.

A validator signs with its staking key (secp256k1, the address registered in the Staking module);
the signer's address is recovered from the signature, so messages carry no sender field.

What is signed is EIP-712 typed data, so a wallet or hardware signer can display it and a
contract can check it with `ecrecover`:

    domain    EIP712Domain(string name, string version, uint256 chainId)
              name "OpenLedger Consensus", version "1", chainId = the chain's EIP-155 id
    vote      Vote(uint8 voteType, uint64 height, uint32 round, bytes32 blockHash)
              voteType 1 = prevote, 2 = precommit; blockHash 0x00..00 = nil
    proposal  Proposal(uint64 height, uint32 round, int32 polRound, bytes32 blockHash)
              polRound -1 = no proof-of-lock round

    sign bytes = 0x19 0x01 || domainSeparator(chainId) || hashStruct(message)     (66 bytes)
    digest     = keccak256(sign bytes)
    signature  = r (32) || s (32) || v (1), v in {0, 1}, s in the lower half of the curve order

The chain id, height, round and step (vote type, or "proposal" by its own struct type) are all in
the signed bytes: a vote cannot be replayed on another chain, height, round or step.
"""
from __future__ import annotations

import dataclasses
import enum
import functools

import rlp
from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError as KeysValidationError

from consensus.errors import InvalidSignature, MalformedMessage

try:  # libsecp256k1, which eth-keys also prefers (installed with libp2p, a dependency)
    import coincurve
except ImportError:  # pragma: no cover
    coincurve = None

try:  # safe-pysha3 (a dependency) is about five times faster than eth-hash's pycryptodome default
    from eth_hash.backends.pysha3 import backend as _keccak_backend

    keccak = _keccak_backend.keccak256
except ImportError:  # pragma: no cover - platforms without the pysha3 wheel
    from eth_hash.auto import keccak

HASH_LENGTH = 32
ADDRESS_LENGTH = 20
SIGNATURE_LENGTH = 65
NIL_HASH = bytes(HASH_LENGTH)
"""How a nil vote's block hash is written in the signed bytes (and why no block may hash to it)."""
MAX_HEIGHT = 2**64 - 1
MAX_ROUND = 2**31 - 1
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

DOMAIN_NAME = "OpenLedger Consensus"
DOMAIN_VERSION = "1"
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId)"
VOTE_TYPE = "Vote(uint8 voteType,uint64 height,uint32 round,bytes32 blockHash)"
PROPOSAL_TYPE = "Proposal(uint64 height,uint32 round,int32 polRound,bytes32 blockHash)"
_DOMAIN_TYPEHASH = keccak(DOMAIN_TYPE.encode())
_VOTE_TYPEHASH = keccak(VOTE_TYPE.encode())
_PROPOSAL_TYPEHASH = keccak(PROPOSAL_TYPE.encode())


class VoteType(enum.IntEnum):
    """The two votes of a round (CometBFT's SignedMsgType numbers)."""

    PREVOTE = 1
    PRECOMMIT = 2


class Step(enum.IntEnum):
    """Where a round is; also the order in which one validator signs within a round."""

    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    COMMIT = 4  # the height is decided; waiting for the node to start the next one


STEP_OF_VOTE = {VoteType.PREVOTE: Step.PREVOTE, VoteType.PRECOMMIT: Step.PRECOMMIT}


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    """The value consensus agrees on: opaque bytes (an RLP Ethereum block) and their hash (the
    block hash, which the application computes; it is what votes sign)."""

    hash: bytes
    data: bytes

    def __post_init__(self) -> None:
        _check_hash(self.hash, "block hash")
        if not isinstance(self.data, bytes):
            raise MalformedMessage("block data must be bytes")


def _check_int(value: object, low: int, high: int, name: str) -> None:
    if type(value) is not int and not isinstance(value, enum.IntEnum):
        raise MalformedMessage(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise MalformedMessage(f"{name} {value} out of range [{low}, {high}]")


def _check_hash(value: object, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_LENGTH:
        raise MalformedMessage(f"{name} must be {HASH_LENGTH} bytes")
    if value == NIL_HASH:
        raise MalformedMessage(f"{name} must not be all zeros (that is how nil is signed)")


@dataclasses.dataclass(frozen=True, slots=True)
class Vote:
    """⟨PREVOTE|PRECOMMIT, height, round, id(v) or nil⟩: `block_hash` None is a nil vote."""

    type: VoteType
    height: int
    round: int
    block_hash: bytes | None

    def __post_init__(self) -> None:
        if self.type not in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            raise MalformedMessage(f"vote type {self.type!r} is neither prevote (1) nor precommit (2)")
        object.__setattr__(self, "type", VoteType(self.type))
        _check_int(self.height, 1, MAX_HEIGHT, "height")
        _check_int(self.round, 0, MAX_ROUND, "round")
        if self.block_hash is not None:
            _check_hash(self.block_hash, "block hash")

    @property
    def step(self) -> Step:
        return STEP_OF_VOTE[self.type]

    def sign_bytes(self, chain_id: int) -> bytes:
        return _sign_bytes(chain_id, _vote_struct_hash(self))

    def digest(self, chain_id: int) -> bytes:
        return _vote_digest(chain_id, self)


@dataclasses.dataclass(frozen=True, slots=True)
class Proposal:
    """⟨PROPOSAL, height, round, id(v), validRound⟩: the block travels beside it, bound by its hash."""

    height: int
    round: int
    pol_round: int
    block_hash: bytes

    def __post_init__(self) -> None:
        _check_int(self.height, 1, MAX_HEIGHT, "height")
        _check_int(self.round, 0, MAX_ROUND, "round")
        _check_int(self.pol_round, -1, self.round - 1, "proof-of-lock round")
        _check_hash(self.block_hash, "block hash")

    def sign_bytes(self, chain_id: int) -> bytes:
        return _sign_bytes(chain_id, _proposal_struct_hash(self))

    def digest(self, chain_id: int) -> bytes:
        return _proposal_digest(chain_id, self)


@functools.lru_cache(maxsize=64)
def domain_separator(chain_id: int) -> bytes:
    """EIP-712 hashStruct(EIP712Domain) for this chain."""
    _check_int(chain_id, 1, 2**256 - 1, "chain id")
    return keccak(_DOMAIN_TYPEHASH + keccak(DOMAIN_NAME.encode()) + keccak(DOMAIN_VERSION.encode())
                  + chain_id.to_bytes(32, "big"))


def _word(value: int) -> bytes:
    """A signed or unsigned integer as one 32-byte ABI word (two's complement)."""
    return (value % 2**256).to_bytes(32, "big")


def _vote_struct_hash(vote: Vote) -> bytes:
    return keccak(_VOTE_TYPEHASH + _word(vote.type) + _word(vote.height) + _word(vote.round)
                  + (vote.block_hash or NIL_HASH))


def _proposal_struct_hash(p: Proposal) -> bytes:
    return keccak(_PROPOSAL_TYPEHASH + _word(p.height) + _word(p.round) + _word(p.pol_round) + p.block_hash)


def _sign_bytes(chain_id: int, struct_hash: bytes) -> bytes:
    return b"\x19\x01" + domain_separator(chain_id) + struct_hash


@functools.lru_cache(maxsize=1 << 15)
def _vote_digest(chain_id: int, vote: Vote) -> bytes:
    return keccak(_sign_bytes(chain_id, _vote_struct_hash(vote)))


@functools.lru_cache(maxsize=1 << 12)
def _proposal_digest(chain_id: int, proposal: Proposal) -> bytes:
    return keccak(_sign_bytes(chain_id, _proposal_struct_hash(proposal)))


# --- signatures ---------------------------------------------------------------------------------


class SigningKey:
    """A staking key that signs 32-byte digests: r || s || v, deterministic (RFC 6979), low s.
    Through libsecp256k1 (coincurve, as eth-keys itself uses it) when installed, keeping the key
    parsed between signatures; eth-keys' pure backend otherwise."""

    def __init__(self, private_key: bytes) -> None:
        self._key = keys.PrivateKey(private_key)
        self.address: bytes = self._key.public_key.to_canonical_address()
        self._fast = None if coincurve is None else coincurve.PrivateKey(private_key)

    def sign(self, digest: bytes) -> bytes:
        if self._fast is not None:
            return self._fast.sign_recoverable(digest, hasher=None)
        return self._key.sign_msg_hash(digest).to_bytes()


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """A 65-byte r || s || v signature (deterministic, RFC 6979; low s)."""
    return SigningKey(private_key).sign(digest)


def check_signature_form(signature: object) -> None:
    """Refuse anything but a canonical 65-byte signature (one encoding per signature: no high s)."""
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_LENGTH:
        raise InvalidSignature(f"a signature is {SIGNATURE_LENGTH} bytes (r || s || v)")
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    if not (0 < r < SECP256K1_N and 0 < s <= SECP256K1_N // 2 and v in (0, 1)):
        raise InvalidSignature("signature out of range (r, s in the curve order, s in its lower half, v 0 or 1)")


@functools.lru_cache(maxsize=1 << 16)
def _recover(digest: bytes, signature: bytes) -> bytes | None:
    try:
        if coincurve is not None:
            public = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
            return keccak(public.format(compressed=False)[1:])[12:]
        return keys.Signature(signature).recover_public_key_from_msg_hash(digest).to_canonical_address()
    except (BadSignature, KeysValidationError, ValueError):
        return None


def recover_signer(digest: bytes, signature: bytes) -> bytes:
    """The address that signed `digest`; InvalidSignature if none can be recovered. Results are
    cached by (digest, signature), so a message seen from many peers is checked once."""
    check_signature_form(signature)
    address = _recover(digest, signature)
    if address is None:
        raise InvalidSignature("no public key recovers from this signature")
    return address


@dataclasses.dataclass(frozen=True, slots=True)
class SignedVote:
    vote: Vote
    signature: bytes

    def signer(self, chain_id: int) -> bytes:
        """The validator address that signed this vote (InvalidSignature if none)."""
        return recover_signer(self.vote.digest(chain_id), self.signature)

    def encode(self) -> bytes:
        """Wire form: RLP [type, height, round, blockHash or empty for nil, signature]."""
        v = self.vote
        return rlp.encode([int(v.type), v.height, v.round, v.block_hash or b"", self.signature])

    @classmethod
    def decode(cls, data: bytes) -> SignedVote:
        fields = rlp_list(data, 5, "vote")
        type_, height, round_ = (rlp_int(f, n) for f, n in zip(fields[:3], ("type", "height", "round")))
        block_hash = rlp_bytes(fields[3], "block hash") or None
        signature = rlp_signature(fields[4])
        return cls(Vote(_vote_type(type_), height, round_, block_hash), signature)


@dataclasses.dataclass(frozen=True, slots=True)
class SignedProposal:
    proposal: Proposal
    signature: bytes

    def signer(self, chain_id: int) -> bytes:
        return recover_signer(self.proposal.digest(chain_id), self.signature)

    def encode(self) -> bytes:
        """Wire form: RLP [height, round, polRound + 1, blockHash, signature] (the block travels
        beside it: `polRound + 1` keeps the integer non-negative, 0 = no proof-of-lock round)."""
        p = self.proposal
        return rlp.encode([p.height, p.round, p.pol_round + 1, p.block_hash, self.signature])

    @classmethod
    def decode(cls, data: bytes) -> SignedProposal:
        fields = rlp_list(data, 5, "proposal")
        height, round_, pol_plus_one = (rlp_int(f, n) for f, n in zip(fields[:3], ("height", "round", "polRound")))
        signature = rlp_signature(fields[4])
        return cls(Proposal(height, round_, pol_plus_one - 1, rlp_bytes(fields[3], "block hash")), signature)


def sign_vote(private_key: bytes, chain_id: int, vote: Vote) -> SignedVote:
    """Sign without any double-sign guard: for tests and evidence. Validators use `Signer`."""
    return SignedVote(vote, sign_digest(private_key, vote.digest(chain_id)))


def sign_proposal(private_key: bytes, chain_id: int, proposal: Proposal) -> SignedProposal:
    """Sign without any double-sign guard: for tests. Validators use `Signer`."""
    return SignedProposal(proposal, sign_digest(private_key, proposal.digest(chain_id)))


# --- strict RLP reading -------------------------------------------------------------------------


def rlp_list(data: object, length: int, what: str) -> list:
    if not isinstance(data, bytes):
        raise MalformedMessage(f"{what}: expected bytes")
    try:
        fields = rlp.decode(data, strict=True)
    except rlp.exceptions.DecodingError as exc:
        raise MalformedMessage(f"{what}: not RLP ({exc})") from None
    if not isinstance(fields, list) or len(fields) != length:
        raise MalformedMessage(f"{what}: expected an RLP list of {length} items")
    return fields


def rlp_bytes(item: object, name: str) -> bytes:
    if not isinstance(item, bytes):
        raise MalformedMessage(f"{name}: expected a byte string, got a list")
    return item


def rlp_int(item: object, name: str) -> int:
    raw = rlp_bytes(item, name)
    if raw[:1] == b"\x00":
        raise MalformedMessage(f"{name}: integer with leading zero bytes")
    if len(raw) > 8:
        raise MalformedMessage(f"{name}: integer wider than 64 bits")
    return int.from_bytes(raw, "big")


def rlp_signature(item: object) -> bytes:
    """A signature field: a canonical 65-byte signature, else MalformedMessage."""
    raw = rlp_bytes(item, "signature")
    try:
        check_signature_form(raw)
    except InvalidSignature as exc:
        raise MalformedMessage(f"signature: {exc}") from None
    return raw


def _vote_type(value: int) -> VoteType:
    try:
        return VoteType(value)
    except ValueError:
        raise MalformedMessage(f"vote type {value} is neither prevote (1) nor precommit (2)") from None
