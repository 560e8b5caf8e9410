"""py-trie's pure helpers, memoised, and a process-wide cache of decoded state-trie nodes.

Every state read and write walks py-trie's HexaryTrie from the state root, and each step
RLP-decodes a node read from the database and turns its hex-prefix key into a tuple of nibbles
through generator-based helpers (`eth_utils.to_tuple`). A new block gets a new state object,
so nothing decoded survives from one block to the next: importing consecutive blocks (block
sync) decoded the same upper trie nodes, account keys and module storage slots again for
every block; that was about half of a one-transfer block's import.

`use_fast_trie()` (called when `vm` is imported, as `vm.keccak` picks the hasher) replaces,
in py-trie's modules, functions of bytes with equal results:
- `bytes_to_nibbles`, `decode_nibbles`, `extract_key`: memoised (bounded LRU) pure functions
  of immutable bytes, returning the same immutable tuples;
- `tuplify` / `listify`: plain recursion instead of generators wrapped by `to_tuple`;
- `HexaryTrie.get_node`: a node referred to by its hash is content-addressed, so its decoding
  is the same in every database and at every root; decodings are kept (as tuples, which no
  one can change) in a bounded LRU keyed by the hash, and each caller gets fresh lists,
  because py-trie edits the nodes it gets in place. A node is only cached after it was read
  from the trie's own database, so a missing node still raises KeyError there.
tests/vm/test_trie_speed.py checks the replacements against py-trie's originals and that
roots and reads of random tries are unchanged.
"""
from __future__ import annotations

import functools
from collections import OrderedDict

import trie.exceptions
import trie.hexary
import trie.utils.nibbles
import trie.utils.nodes
from trie.constants import BLANK_NODE, BLANK_NODE_HASH, NIBBLE_TERMINATOR

NODE_CACHE_ENTRIES = 1 << 16
"""Decoded nodes kept (a branch node is about 600 bytes decoded: some 40 MB at most)."""
_NIBBLES = tuple((byte >> 4, byte & 15) for byte in range(256))


@functools.lru_cache(maxsize=1 << 16)
def bytes_to_nibbles(value: bytes) -> tuple[int, ...]:
    return tuple(n for byte in value for n in _NIBBLES[byte])


@functools.lru_cache(maxsize=1 << 16)
def decode_nibbles(value: bytes) -> tuple[int, ...]:
    """The inverse of the hex-prefix encoding (a leaf's nibbles end in the terminator, 16)."""
    nibbles = bytes_to_nibbles(value)
    flag = nibbles[0]
    raw = nibbles[1:] if flag & 1 else nibbles[2:]
    return raw + (NIBBLE_TERMINATOR,) if flag & 2 else raw


@functools.lru_cache(maxsize=1 << 16)
def _key(prefixed: bytes) -> tuple[int, ...]:
    nibbles = decode_nibbles(prefixed)
    return nibbles[:-1] if nibbles and nibbles[-1] == NIBBLE_TERMINATOR else nibbles


def extract_key(node) -> tuple[int, ...]:
    if not isinstance(node, list):
        raise trie.exceptions.InvalidNode("Blank node does not have a key")
    prefixed, _ = node
    return _key(prefixed)


def tuplify(node) -> tuple:
    return tuple(tuplify(sub) if isinstance(sub, list) else sub for sub in node)


def listify(node) -> list:
    return [listify(sub) if isinstance(sub, tuple) else sub for sub in node]


class _Nodes:
    """Decoded trie nodes by hash, least recently used dropped first."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._nodes: OrderedDict[bytes, tuple] = OrderedDict()

    def get_node(self, trie_self, node_hash):
        if node_hash == BLANK_NODE or node_hash == BLANK_NODE_HASH:
            return BLANK_NODE
        if len(node_hash) < 32:
            return trie.utils.nodes.decode_node(node_hash)   # an inline node: the caller's own list
        nodes = self._nodes
        found = nodes.get(node_hash)
        if found is None:
            decoded = trie.utils.nodes.decode_node(trie_self.db[node_hash])
            if not isinstance(decoded, list):
                return decoded
            found = nodes[node_hash] = tuplify(decoded)
            if len(nodes) > self.entries:
                nodes.popitem(last=False)
            return decoded
        nodes.move_to_end(node_hash)
        return listify(found)

    def clear(self) -> None:
        self._nodes.clear()


NODES = _Nodes(NODE_CACHE_ENTRIES)
_REPLACED = {"bytes_to_nibbles": bytes_to_nibbles, "decode_nibbles": decode_nibbles, "extract_key": extract_key,
             "tuplify": tuplify, "listify": listify}
_MODULES = (trie.utils.nibbles, trie.utils.nodes, trie.hexary)
_ORIGINALS = {(module, name): getattr(module, name) for module in _MODULES for name in _REPLACED
              if hasattr(module, name)}
_ORIGINAL_GET_NODE = trie.hexary.HexaryTrie.get_node


def _get_node(self, node_hash):
    return NODES.get_node(self, node_hash)


def use_fast_trie(enabled: bool = True) -> None:
    """Install the replacements into py-trie's modules, or (False: py-trie as shipped, for the
    benchmarks' peer and before/after figures) put the originals back. Idempotent."""
    for (module, name), original in _ORIGINALS.items():
        setattr(module, name, _REPLACED[name] if enabled else original)
    trie.hexary.HexaryTrie.get_node = _get_node if enabled else _ORIGINAL_GET_NODE
    NODES.clear()
