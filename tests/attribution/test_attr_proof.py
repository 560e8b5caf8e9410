"""AttributionProof canonical encoding: round trip, stable hash, hostile bytes refused clearly."""
import pytest
import rlp
from hypothesis import given
from hypothesis import strategies as st

from attribution import AttributionProof, MalformedProof, Share

shares = st.lists(
    st.builds(Share, st.binary(min_size=32, max_size=32), st.binary(min_size=20, max_size=20), st.integers(0, 10**6)),
    max_size=12,
)
proofs = st.builds(
    AttributionProof,
    method=st.sampled_from(["graddot-v1", "datainf-v1", "span-v1"]),
    params=st.lists(st.tuples(st.text(min_size=1, max_size=12), st.integers(0, 2**64)), max_size=6).map(tuple),
    seed=st.integers(0, 2**63 - 1),
    index_root=st.binary(min_size=32, max_size=32),
    query_hash=st.binary(min_size=32, max_size=32),
    evidence=st.binary(max_size=256),
    shares=shares.map(tuple),
)


@given(proofs)
def test_round_trip_and_hash_is_of_the_encoding(proof):
    data = proof.encode()
    assert AttributionProof.decode(data) == proof
    assert AttributionProof.decode(data).hash() == proof.hash()


@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_decoder(data):
    try:
        AttributionProof.decode(data)
    except MalformedProof:
        pass


GOOD = [1, b"span-v1", [[b"top_k", 10]], 5, b"\x01" * 32, b"\x02" * 32, b"", [[b"\x03" * 32, b"\x04" * 20, 1_000_000]]]


@pytest.mark.parametrize("index,value,reason", [
    (0, 2, "unsupported proof version"),
    (4, b"\x01" * 31, "32 bytes"),
    (7, [[b"\x03" * 31, b"\x04" * 20, 1]], "contribution id must be 32 bytes"),
    (7, [[b"\x03" * 32, b"\x04" * 19, 1]], "20-byte address"),
    (3, [b"x"], "byte string"),
    (1, b"\xff\xfe", "malformed"),
])
def test_each_malformed_field_is_named(index, value, reason):
    items = list(GOOD)
    items[index] = value
    with pytest.raises(MalformedProof, match=reason):
        AttributionProof.decode(rlp.encode(items))


def test_non_canonical_integer_and_wrong_arity_refused():
    good = rlp.encode(GOOD)
    assert AttributionProof.decode(good).shares[0].ppm == 1_000_000
    with pytest.raises(MalformedProof, match="leading zero"):
        AttributionProof.decode(rlp.encode([*GOOD[:3], b"\x00\x05", *GOOD[4:]]))
    with pytest.raises(MalformedProof, match="8 items"):
        AttributionProof.decode(rlp.encode(GOOD[:7]))
    with pytest.raises(MalformedProof, match="not valid RLP"):
        AttributionProof.decode(good + b"\x00")


def test_shape_checks():
    proof = AttributionProof.decode(rlp.encode(GOOD))
    proof.check_shape()
    two = Share(b"\x03" * 32, b"\x04" * 20, 500_000)
    with pytest.raises(MalformedProof, match="listed twice"):
        AttributionProof.decode(rlp.encode(GOOD[:7] + [[[two.contribution_id, two.contributor, 500_000]] * 2])).check_shape()
    with pytest.raises(MalformedProof, match="sum to 999999"):
        AttributionProof.decode(rlp.encode(GOOD[:7] + [[[b"\x03" * 32, b"\x04" * 20, 999_999]]])).check_shape()
