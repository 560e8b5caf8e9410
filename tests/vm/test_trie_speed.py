"""vm.trie_speed (installed by importing vm) against py-trie as shipped, run in a process that
never imports vm: the same roots, reads and stored nodes for random set/delete sequences, and
no cached node edited in place by a later write."""
import json
import random
import subprocess
import sys

from trie import HexaryTrie
from trie.utils import nibbles, nodes

import vm  # noqa: F401  installs vm.trie_speed
from vm import trie_speed

REFERENCE = r"""
import json, sys
from trie import HexaryTrie
from trie.utils.nibbles import bytes_to_nibbles, decode_nibbles
from trie.utils.nodes import extract_key
assert "vm" not in sys.modules
case = json.load(sys.stdin)
out = {"nibbles": [list(bytes_to_nibbles(bytes.fromhex(v))) for v in case["values"]],
       "decoded": [list(decode_nibbles(bytes.fromhex(v))) for v in case["prefixed"]],
       "keys": [list(extract_key([bytes.fromhex(v), b"x"])) for v in case["prefixed"]], "runs": []}
for prune, ops in case["runs"]:
    db = {}
    t = HexaryTrie(db, prune=prune)
    roots = []
    for op, key, value in ops:
        if op == "set":
            t[bytes.fromhex(key)] = bytes.fromhex(value)
        else:
            del t[bytes.fromhex(key)]
        roots.append(t.root_hash.hex())
    reads = [t[bytes.fromhex(k)].hex() for _, k, _ in ops]
    out["runs"].append({"roots": roots, "reads": reads, "db": sorted(k.hex() for k in db)})
print(json.dumps(out))
"""


def _case(seed: int) -> dict:
    rng = random.Random(seed)
    runs = []
    for prune in (False, True):
        keys = [rng.randbytes(rng.choice((1, 2, 20, 32))) for _ in range(60)]
        ops = []
        for _ in range(400):
            key = rng.choice(keys)
            if rng.random() < 0.2:
                ops.append(("del", key.hex(), ""))
            else:
                ops.append(("set", key.hex(), rng.randbytes(rng.choice((1, 5, 33, 70))).hex()))
        runs.append((prune, ops))
    prefixed = [bytes([flag << 4 | (rng.randrange(16) if flag & 1 else 0)]) + rng.randbytes(n)
                for flag in range(4) for n in (0, 1, 7, 32)]
    return {"values": [rng.randbytes(n).hex() for n in (0, 1, 2, 20, 32, 33)],
            "prefixed": [p.hex() for p in prefixed], "runs": runs}


def _ours(case: dict) -> dict:
    out = {"nibbles": [list(nibbles.bytes_to_nibbles(bytes.fromhex(v))) for v in case["values"]],
           "decoded": [list(nibbles.decode_nibbles(bytes.fromhex(v))) for v in case["prefixed"]],
           "keys": [list(nodes.extract_key([bytes.fromhex(v), b"x"])) for v in case["prefixed"]], "runs": []}
    for prune, ops in case["runs"]:
        db: dict = {}
        t = HexaryTrie(db, prune=prune)
        roots = []
        for op, key, value in ops:
            if op == "set":
                t[bytes.fromhex(key)] = bytes.fromhex(value)
            else:
                del t[bytes.fromhex(key)]
            roots.append(t.root_hash.hex())
        reads = [t[bytes.fromhex(k)].hex() for _, k, _ in ops]
        out["runs"].append({"roots": roots, "reads": reads, "db": sorted(k.hex() for k in db)})
    return out


def test_same_results_as_py_trie_unpatched() -> None:
    assert nibbles.decode_nibbles is trie_speed.decode_nibbles  # installed
    for seed in (1, 2):
        case = _case(seed)
        reference = subprocess.run([sys.executable, "-c", REFERENCE], input=json.dumps(case), capture_output=True,
                                   text=True, check=True)
        assert _ours(case) == json.loads(reference.stdout), seed


def test_a_cached_node_is_never_edited_by_a_later_write() -> None:
    """py-trie edits the lists get_node returns; the cache must hand out copies."""
    db: dict = {}
    t = HexaryTrie(db)
    keys = [bytes([i]) * 32 for i in range(40)]
    for k in keys:
        t[k] = b"old" * 20
    old_root = t.root_hash
    for k in keys:
        t[k] = b"new" * 20      # every node on these paths read (cached), then edited
    again = HexaryTrie(db, old_root)
    assert all(again[k] == b"old" * 20 for k in keys)
    assert all(t[k] == b"new" * 20 for k in keys)


def test_a_missing_node_still_raises() -> None:
    from trie.exceptions import MissingTrieNode
    t = HexaryTrie({}, b"\x11" * 32)
    try:
        t[b"\x00" * 32]
    except MissingTrieNode:
        return
    raise AssertionError("a root absent from the database read as present")


def test_switching_off_puts_py_trie_back() -> None:
    """The benchmarks' peer runs py-trie as shipped in the same interpreter."""
    original_get_node = trie_speed._ORIGINAL_GET_NODE
    trie_speed.use_fast_trie(False)
    try:
        assert nibbles.decode_nibbles is not trie_speed.decode_nibbles
        assert HexaryTrie.get_node is original_get_node
        t = HexaryTrie({})
        t[b"k" * 32] = b"v" * 40
        assert t[b"k" * 32] == b"v" * 40
    finally:
        trie_speed.use_fast_trie()
    assert nibbles.decode_nibbles is trie_speed.decode_nibbles


def test_threads_share_the_cache_while_it_evicts() -> None:
    """Block import and JSON-RPC threads read tries at once; a tiny cache evicts all the time."""
    import threading

    db: dict = {}
    base = HexaryTrie(db)
    for i in range(200):
        base[bytes([i]) * 32] = bytes([i]) * 40
    root, errors = base.root_hash, []

    def work(seed: int) -> None:
        try:
            t = HexaryTrie(db, root)
            for i in range(200):
                assert t[bytes([i]) * 32] == bytes([i]) * 40
                t[bytes([i]) * 32] = bytes([seed]) * 40
            assert all(HexaryTrie(db, root)[bytes([i]) * 32] == bytes([i]) * 40 for i in range(200))
        except Exception as exc:  # noqa: BLE001  reported below
            errors.append(exc)

    entries, trie_speed.NODES.entries = trie_speed.NODES.entries, 8
    try:
        threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        trie_speed.NODES.entries = entries
    assert errors == []
