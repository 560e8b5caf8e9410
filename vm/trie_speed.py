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
import threading
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
    """Decoded trie nodes by hash, and each one's (hash, encoding) by its decoded form, least
    recently used dropped first. The second map is what py-trie's writes ask for: they hash
    every node they replace (to prune it) and every node they write, and the replaced ones are
    mostly nodes just read, whose hash and encoding the read already had. A node written is
    kept decoded too: the next block reads the nodes this one wrote. One lock: block import
    and JSON-RPC threads read tries at the same time."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._lock = threading.Lock()
        self._nodes: OrderedDict[bytes, tuple] = OrderedDict()
        self._encoded: OrderedDict[tuple, tuple[bytes, bytes]] = OrderedDict()

    def _decoded(self, node_hash: bytes) -> tuple | None:
        with self._lock:
            found = self._nodes.get(node_hash)
            if found is not None:
                self._nodes.move_to_end(node_hash)
            return found

    def _keep(self, key: tuple, node_hash: bytes, encoded: bytes) -> None:
        with self._lock:
            self._nodes[node_hash] = key
            self._encoded[key] = (node_hash, encoded)
            if len(self._nodes) > self.entries:
                self._nodes.popitem(last=False)
            if len(self._encoded) > self.entries:
                self._encoded.popitem(last=False)

    def get_node(self, trie_self, node_hash):
        if node_hash == BLANK_NODE or node_hash == BLANK_NODE_HASH:
            return BLANK_NODE
        if len(node_hash) < 32:
            return trie.utils.nodes.decode_node(node_hash)   # an inline node: the caller's own list
        found = self._decoded(node_hash)
        if found is not None:
            return listify(found)
        encoded = trie_self.db[node_hash]
        decoded = trie.utils.nodes.decode_node(encoded)
        if isinstance(decoded, list):
            self._keep(tuplify(decoded), node_hash, encoded)
        return decoded

    def node_to_db_mapping(self, trie_self, node):
        """py-trie's (reference, encoding or None) of a node: its hash and encoding when that is
        32 bytes or more, else the node itself (inline)."""
        if not isinstance(node, list):
            return trie_self._create_node_to_db_mapping(node)
        key = tuplify(node)
        with self._lock:
            found = self._encoded.get(key)
        if found is not None:
            return found
        reference, encoded = trie_self._create_node_to_db_mapping(node)
        if encoded is not None:     # a node being written: the next block reads it
            self._keep(key, reference, encoded)
        return reference, encoded

    def clear(self) -> None:
        with self._lock:
            self._nodes.clear()
            self._encoded.clear()


NODES = _Nodes(NODE_CACHE_ENTRIES)
_REPLACED = {"bytes_to_nibbles": bytes_to_nibbles, "decode_nibbles": decode_nibbles, "extract_key": extract_key,
             "tuplify": tuplify, "listify": listify}
_MODULES = (trie.utils.nibbles, trie.utils.nodes, trie.hexary)
_ORIGINALS = {(module, name): getattr(module, name) for module in _MODULES for name in _REPLACED
              if hasattr(module, name)}
_ORIGINAL_GET_NODE = trie.hexary.HexaryTrie.get_node
_ORIGINAL_NODE_TO_DB_MAPPING = trie.hexary.HexaryTrie._node_to_db_mapping


def _get_node(self, node_hash):
    return NODES.get_node(self, node_hash)


def _node_to_db_mapping(self, node):
    return NODES.node_to_db_mapping(self, node)


def use_fast_trie(enabled: bool = True) -> None:
    """Install the replacements into py-trie's modules, or (False: py-trie as shipped, for the
    benchmarks' peer and before/after figures) put the originals back. Idempotent."""
    for (module, name), original in _ORIGINALS.items():
        setattr(module, name, _REPLACED[name] if enabled else original)
    trie.hexary.HexaryTrie.get_node = _get_node if enabled else _ORIGINAL_GET_NODE
    trie.hexary.HexaryTrie._node_to_db_mapping = _node_to_db_mapping if enabled else _ORIGINAL_NODE_TO_DB_MAPPING
    NODES.clear()
