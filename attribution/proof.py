"""AttributionProof: what was attributed, how, and to whom, in one canonical byte string.

The encoding is RLP (Ethereum's canonical serialisation, via the `rlp` package) so any client
can decode it, and the proof's identity is keccak256 of that encoding.
"""
from dataclasses import dataclass

import rlp
from eth_utils import keccak

from attribution.apportion import PPM
from attribution.errors import MalformedProof

PROOF_VERSION = 1


def query_hash(prompt: bytes, output: bytes) -> bytes:
    """keccak256 of the canonical (prompt, output) pair: names the query without revealing it."""
    return keccak(rlp.encode([prompt, output]))


@dataclass(frozen=True)
class Contribution:
    """One training-set row as the chain knows it: its content hash and who contributed it."""

    contribution_id: bytes  # 32-byte content hash of the Datanet row
    contributor: bytes  # 20-byte address paid for it

    def __post_init__(self) -> None:
        if len(self.contribution_id) != 32:
            raise ValueError(f"contribution id must be 32 bytes, got {len(self.contribution_id)}")
        if len(self.contributor) != 20:
            raise ValueError(f"contributor must be a 20-byte address, got {len(self.contributor)}")


@dataclass(frozen=True)
class Share:
    """A contribution's part of one output, in parts per million of the fee."""

    contribution_id: bytes
    contributor: bytes
    ppm: int

    def __post_init__(self) -> None:
        Contribution(self.contribution_id, self.contributor)


@dataclass(frozen=True)
class AttributionProof:
    """Method and parameters, seed, index root, query hash, evidence, and the top-K shares.

    `evidence` is what lets a verifier redo the integer stages exactly: for gradient methods the
    quantised projected query gradient (int16 little-endian); for span matching nothing.
    """

    method: str
    params: tuple[tuple[str, int], ...]
    seed: int
    index_root: bytes
    query_hash: bytes
    evidence: bytes
    shares: tuple[Share, ...]

    def encode(self) -> bytes:
        return rlp.encode(
            [
                PROOF_VERSION,
                self.method.encode(),
                [[k.encode(), v] for k, v in self.params],
                self.seed,
                self.index_root,
                self.query_hash,
                self.evidence,
                [[s.contribution_id, s.contributor, s.ppm] for s in self.shares],
            ]
        )

    def hash(self) -> bytes:
        return keccak(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> "AttributionProof":
        """Parse and check the shape of proof bytes; raise MalformedProof saying what is wrong."""
        try:
            items = rlp.decode(data)
        except Exception as exc:  # rlp raises several classes for bad bytes
            raise MalformedProof(f"proof is not valid RLP: {exc}") from exc
        if not isinstance(items, list) or len(items) != 8:
            raise MalformedProof("proof must be an RLP list of 8 items")
        version, method, params, seed, root, qhash, evidence, shares = items
        if _int(version, "version") != PROOF_VERSION:
            raise MalformedProof(f"unsupported proof version {_int(version, 'version')}")
        if len(_bytes(root, "index root")) != 32 or len(_bytes(qhash, "query hash")) != 32:
            raise MalformedProof("index root and query hash must be 32 bytes")
        try:
            return cls(
                method=_bytes(method, "method").decode(),
                params=tuple((_bytes(p[0], "param name").decode(), _int(p[1], "param")) for p in _list(params)),
                seed=_int(seed, "seed"),
                index_root=root,
                query_hash=qhash,
                evidence=_bytes(evidence, "evidence"),
                shares=tuple(
                    Share(_bytes(s[0], "contribution id"), _bytes(s[1], "contributor"), _int(s[2], "ppm"))
                    for s in _list(shares)
                ),
            )
        except (ValueError, IndexError, TypeError) as exc:
            raise MalformedProof(f"proof fields are malformed: {exc}") from exc

    def check_shape(self) -> None:
        """The invariants every proof must keep whatever its method."""
        if not self.shares:
            raise MalformedProof("proof lists no contributions")
        if sum(s.ppm for s in self.shares) != PPM:
            raise MalformedProof(f"weights sum to {sum(s.ppm for s in self.shares)}, not {PPM}")
        if any(s.ppm < 0 for s in self.shares):
            raise MalformedProof("negative weight")
        if len({s.contribution_id for s in self.shares}) != len(self.shares):
            raise MalformedProof("a contribution is listed twice")


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise MalformedProof(f"{what} must be a byte string")
    return value


def _list(value: object) -> list:
    if not isinstance(value, list):
        raise MalformedProof("expected an RLP list")
    return value


def _int(value: object, what: str) -> int:
    raw = _bytes(value, what)
    if raw[:1] == b"\x00":
        raise MalformedProof(f"{what} has a non-canonical leading zero")
    return int.from_bytes(raw, "big")
