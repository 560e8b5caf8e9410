from eth_utils import keccak
from hypothesis import given, strategies as st

from vm.merkle import EMPTY_ROOT, merkle_proof, merkle_root, verify_proof

leaves_st = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40)


def test_empty_and_single() -> None:
    assert merkle_root([]) == EMPTY_ROOT
    leaf = keccak(b"a")
    assert merkle_root([leaf]) == keccak(b"\x00" + leaf)


def test_order_matters_and_odd_node_is_not_duplicated() -> None:
    a, b, c = keccak(b"a"), keccak(b"b"), keccak(b"c")
    assert merkle_root([a, b]) != merkle_root([b, a])
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])


def test_rejects_wrong_leaf_size() -> None:
    import pytest

    with pytest.raises(ValueError, match="32 bytes"):
        merkle_root([b"short"])


@given(leaves_st, st.data())
def test_every_proof_verifies_and_tampering_fails(leaves: list[bytes], data: st.DataObject) -> None:
    root = merkle_root(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle_proof(leaves, i)
    assert verify_proof(root, leaves[i], i, len(leaves), proof)
    assert not verify_proof(root, keccak(leaves[i]), i, len(leaves), proof)
    if len(leaves) > 1:
        j = (i + 1) % len(leaves)
        if leaves[j] != leaves[i]:
            assert not verify_proof(root, leaves[i], j, len(leaves), merkle_proof(leaves, j))
