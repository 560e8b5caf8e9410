"""What travels between nodes: topic names, protocol ids, size limits and strict decoders.

Everything a peer sends is read here, by `consensus.messages`' strict RLP readers; anything
else raises `PeerFault`, which the service turns into a score penalty for the sender.
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

import rlp

from consensus.errors import ConsensusError
from consensus.evidence import DuplicateVoteEvidence, verify_evidence
from consensus.messages import SignedProposal, SignedVote, check_signature_form, rlp_bytes, rlp_int, rlp_list


class Fault(enum.Enum):
    """What a peer did wrong, with its score penalty (`scoring.PeerScores`)."""
    MALFORMED = 25      # undecodable frame or message, bad signature, a block the node refuses
    OVERSIZED = 50      # a message or frame above its limit: costs us memory and bandwidth
    REPORTED = 25       # the node's verdict (consensus `Rejected`), via `P2P.penalise`


class PeerFault(Exception):
    """A peer sent something no honest peer sends."""

    def __init__(self, fault: Fault, detail: str) -> None:
        super().__init__(f"{fault.name.lower()}: {detail}")
        self.fault = fault


class Kind(enum.Enum):
    """The gossip topics; a topic name is `/openledger/<chain id>/<kind>/1`."""
    TX = "tx"
    PROPOSAL = "proposal"
    VOTE = "vote"
    EVIDENCE = "evidence"
    OUTPUT = "output"  # validators' signatures over L2 output roots (docs/settlement.md)


def topic(chain_id: int, kind: Kind) -> str:
    return f"/openledger/{chain_id}/{kind.value}/1"


# Request/response protocols (one request, one response, then the stream closes).
BLOCK_PROTOCOL = "/openledger/req/block/1"          # [height] -> [] | [node's block bytes]
BLOCKS_PROTOCOL = "/openledger/req/blocks/1"        # [first, count] -> [block bytes of first, first + 1, ...]
PROPOSAL_PROTOCOL = "/openledger/req/proposal/1"    # [height, round] -> [] | [proposal, block]
VOTES_PROTOCOL = "/openledger/req/votes/1"          # [height, round] -> [vote, ...]
MAX_REQUEST_BYTES = 64                              # two RLP integers fit in 20
MAX_BLOCKS_PER_REQUEST = 128
"""Most blocks one `BLOCKS_PROTOCOL` request may ask for (block sync asks for this many)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """Largest message accepted, per kind. A vote's wire form is about 110 bytes, evidence two
    of them; 128 KiB per transaction is geth's txMaxSize."""
    vote: int = 512
    evidence: int = 1024
    output: int = 256                                # an output signature's wire form is 140 bytes
    tx: int = 128 * 1024
    block: int = 4 * 1024 * 1024                     # a proposal carries its block
    votes_response: int = 1024 * 1024                # about 8,000 votes
    blocks_response: int = 8 * 1024 * 1024           # a range of blocks: two of the largest, or many small

    def of(self, kind: Kind) -> int:
        return {Kind.TX: self.tx, Kind.PROPOSAL: self.block + self.vote, Kind.VOTE: self.vote,
                Kind.EVIDENCE: self.evidence, Kind.OUTPUT: self.output}[kind]

    def response(self, protocol: str) -> int:
        """Largest response to a request on `protocol` (16 bytes of RLP list headers)."""
        return {BLOCK_PROTOCOL: self.block + 16, PROPOSAL_PROTOCOL: self.of(Kind.PROPOSAL) + 16,
                VOTES_PROTOCOL: self.votes_response,
                BLOCKS_PROTOCOL: max(self.blocks_response, self.block + 16)}[protocol]

    @property
    def gossip_frame(self) -> int:
        """pubsub's `max_inbound_rpc_size`: the largest message plus the RPC envelope."""
        return self.block + 64 * 1024


BlockCheck = Callable[[bytes], None]
"""The node's check of a block's (or transaction's) bytes; raises ValueError if it refuses them."""


def _strict(decode: Callable[[], object]) -> object:
    try:
        return decode()
    except (ConsensusError, ValueError, rlp.exceptions.DecodingError) as exc:
        raise PeerFault(Fault.MALFORMED, str(exc)) from None


def check_size(data: bytes, limit: int, what: str) -> None:
    if len(data) > limit:
        raise PeerFault(Fault.OVERSIZED, f"{what} of {len(data)} bytes (limit {limit})")


def encode_proposal(proposal: SignedProposal, block: bytes) -> bytes:
    return rlp.encode([proposal.encode(), block])


def decode_proposal(data: bytes, chain_id: int, check_block: BlockCheck) -> tuple[SignedProposal, bytes]:
    """A proposal with its block (RLP [proposal, block]): signature recovered, block checked."""
    return proposal_from(_strict(lambda: rlp_list(data, 2, "proposal message")), chain_id, check_block)


def proposal_from(items: list, chain_id: int, check_block: BlockCheck) -> tuple[SignedProposal, bytes]:
    def read() -> tuple[SignedProposal, bytes]:
        if len(items) != 2:
            raise ValueError("proposal: expected [proposal, block]")
        wire, block = (rlp_bytes(f, n) for f, n in zip(items, ("proposal", "block")))
        proposal = SignedProposal.decode(wire)
        proposal.signer(chain_id)
        check_block(block)
        return proposal, block
    return _strict(read)


def block_from(items: list, check_block: BlockCheck) -> bytes:
    """A block response's one item, checked by the node."""
    def read() -> bytes:
        if len(items) != 1:
            raise ValueError("block response: expected one item")
        check_block(items[0])
        return items[0]
    return _strict(read)


def decode_vote(data: bytes, chain_id: int) -> SignedVote:
    def read() -> SignedVote:
        vote = SignedVote.decode(data)
        vote.signer(chain_id)
        return vote
    return _strict(read)


def decode_evidence(data: bytes, chain_id: int) -> DuplicateVoteEvidence:
    def read() -> DuplicateVoteEvidence:
        evidence = DuplicateVoteEvidence.decode(data)
        verify_evidence(evidence, chain_id)
        return evidence
    return _strict(read)


@dataclasses.dataclass(frozen=True, slots=True)
class OutputSignature:
    """A validator's EIP-712 signature of the output root of L2 block `number` (OutputOracle's
    `Output` struct: the root and the hash of the validator set that signs the next output).
    The signer is not on the wire: it is recovered from the digest, which names the L1
    deployment, so only a node that knows the deployment can check it (node/settlement)."""
    number: int
    root: bytes
    next_set_hash: bytes
    signature: bytes  # r || s || v with v 27 or 28, as OutputOracle takes it

    def encode(self) -> bytes:
        return rlp.encode([self.number, self.root, self.next_set_hash, self.signature])


def decode_output_signature(data: bytes) -> OutputSignature:
    """RLP [number, root, next set hash, signature]: canonical integer, 32-byte hashes, a
    canonical 65-byte signature (low s, as OpenZeppelin's ECDSA requires)."""
    def read() -> OutputSignature:
        number, root, next_hash, signature = rlp_list(data, 4, "output signature")
        number = rlp_int(number, "output block number")
        root, next_hash, signature = (rlp_bytes(f, n) for f, n in ((root, "output root"), (next_hash, "next set hash"),
                                                                   (signature, "signature")))
        if number == 0 or len(root) != 32 or len(next_hash) != 32:
            raise ValueError("output signature: a block number above 0 and 32-byte hashes")
        if len(signature) != 65 or signature[64] not in (27, 28):
            raise ValueError("output signature: 65 bytes, v 27 or 28")
        check_signature_form(signature[:64] + bytes([signature[64] - 27]))
        return OutputSignature(number, root, next_hash, signature)
    return _strict(read)


def decode_gossip(kind: Kind, data: bytes, chain_id: int, limits: Limits, check_block: BlockCheck,
                  check_tx: BlockCheck) -> object:
    """The message a gossip payload carries, or PeerFault."""
    check_size(data, limits.of(kind), f"{kind.value} message")
    if kind is Kind.VOTE:
        return decode_vote(data, chain_id)
    if kind is Kind.PROPOSAL:
        return decode_proposal(data, chain_id, check_block)
    if kind is Kind.EVIDENCE:
        return decode_evidence(data, chain_id)
    if kind is Kind.OUTPUT:
        return decode_output_signature(data)
    _strict(lambda: check_tx(data))
    return data


def encode_request(*numbers: int) -> bytes:
    return rlp.encode(list(numbers))


def blocks_from(items: list, asked: int, check_block: BlockCheck) -> list[bytes]:
    """A range response's blocks: at most `asked`, each checked by the node (which checks
    heights, parents and commits as it imports them, in order)."""
    def read() -> list[bytes]:
        if len(items) > asked:
            raise ValueError(f"blocks response: {len(items)} blocks for a request of {asked}")
        for item in items:
            check_block(item)
        return items
    return _strict(read)


def decode_blocks_request(data: bytes) -> tuple[int, int]:
    """A range request [first height >= 1, count in 1..MAX_BLOCKS_PER_REQUEST]."""
    first, count = decode_request(data, 2)
    if first < 1 or not 1 <= count <= MAX_BLOCKS_PER_REQUEST:
        raise PeerFault(Fault.MALFORMED, f"blocks request [{first}, {count}]: first must be >= 1 and count "
                                         f"1..{MAX_BLOCKS_PER_REQUEST}")
    return first, count


def decode_request(data: bytes, count: int) -> tuple[int, ...]:
    """A request's integers: [height] or [height, round]."""
    def read() -> tuple[int, ...]:
        return tuple(rlp_int(f, "request") for f in rlp_list(data, count, "request"))
    return _strict(read)


def decode_response_list(data: bytes) -> list:
    """A response's RLP list of byte strings (nested lists are a fault)."""
    def read() -> list:
        items = rlp.decode(data, strict=True)
        if not isinstance(items, list):
            raise ValueError("response: expected an RLP list")
        return [rlp_bytes(item, "response item") for item in items]
    return _strict(read)
