"""Binary Merkle trees over 32-byte leaves: the one definition every root on chain uses.

Datanet version roots, training-run data roots and attribution index roots are all built here,
so the state machine, ModelFactory and the attribution engine agree byte for byte.

Rules (documented because other implementations must reproduce them):
- a leaf is hashed as keccak256(0x00 || leaf), an inner node as keccak256(0x01 || left || right),
  so a leaf can never be passed off as an inner node (second-preimage safety);
- an odd node at the end of a level is promoted unchanged to the next level (not duplicated,
  which would let two different leaf lists share a root);
- the root of no leaves is keccak256(b"").
"""
from collections.abc import Sequence

from eth_utils import keccak

EMPTY_ROOT = keccak(b"")


def _leaf(value: bytes) -> bytes:
    if len(value) != 32:
        raise ValueError(f"merkle leaf must be 32 bytes, got {len(value)}")
    return keccak(b"\x00" + value)


def _node(left: bytes, right: bytes) -> bytes:
    return keccak(b"\x01" + left + right)


def _next_level(level: list[bytes]) -> list[bytes]:
    paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of `leaves` (each 32 bytes) in the given order."""
    if not leaves:
        return EMPTY_ROOT
    level = [_leaf(v) for v in leaves]
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Sibling hashes from leaf `index` up to the root (promoted levels contribute nothing)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf index {index} out of range for {len(leaves)} leaves")
    level = [_leaf(v) for v in leaves]
    proof: list[bytes] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        level = _next_level(level)
        index //= 2
    return proof


def verify_proof(root: bytes, leaf: bytes, index: int, count: int, proof: Sequence[bytes]) -> bool:
    """True when `leaf` sits at `index` of a `count`-leaf tree whose root is `root`."""
    if not 0 <= index < count:
        return False
    node, width, steps = _leaf(leaf), count, list(proof)
    while width > 1:
        sibling = index ^ 1
        if sibling < width:
            if not steps:
                return False
            other = steps.pop(0)
            node = _node(node, other) if index % 2 == 0 else _node(other, node)
        index //= 2
        width = (width + 1) // 2
    return not steps and node == root
