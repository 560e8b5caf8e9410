"""vm.trie's one-pass ordered trie against py-trie's HexaryTrie (py-evm's reference)."""
import rlp
from eth.db.trie import _make_trie_root_and_nodes
from hypothesis import given, settings, strategies as st
from trie import HexaryTrie

from vm.trie import ordered_trie_root


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=80), min_size=0, max_size=300))
def test_same_root_and_readable_nodes_as_hexary_trie(items) -> None:
    root, nodes = ordered_trie_root(items)
    expected_root, _ = _make_trie_root_and_nodes(tuple(items))
    assert root == expected_root
    trie = HexaryTrie(nodes, root)  # every item readable from our nodes alone
    for index, item in enumerate(items):
        assert trie[rlp.encode(index)] == item  # b"" reads as absent in both


def test_block_sized_lists() -> None:
    for count in (1, 2, 16, 17, 127, 128, 129, 255, 256, 1000):
        items = [bytes([i % 251]) * (1 + i % 120) for i in range(count)]
        assert ordered_trie_root(items)[0] == _make_trie_root_and_nodes(tuple(items))[0], count
