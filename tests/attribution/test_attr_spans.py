"""Span matching over a real infini-gram u8 index of a small byte corpus."""
import dataclasses
import random

import pytest

from attribution import (
    PPM, AttributionError, EmptyOutput, IndexRootMismatch, NoAttribution, SpanAttributor, SpanConfig, SpanIndex,
    UnknownRun, near_duplicates, verify,
)
from tests.attribution.attr_tiny import contribution, tampered as tampered_kinds

PLANTED_ROW = 7
PLANTED = b"the zebra quartzite manifesto of nineteen owls"
WORDS = "river stone bright market window silver garden quiet morning paper engine yellow forest".split()


def corpus() -> list[bytes]:
    rnd = random.Random(5)
    texts = [" ".join(rnd.choice(WORDS) for _ in range(30)).encode() for _ in range(20)]
    texts[PLANTED_ROW] = texts[PLANTED_ROW][:40] + b" " + PLANTED + b" " + texts[PLANTED_ROW][40:]
    texts[12] = "café crème brûlée near the lighthouse keeper's lamp".encode()
    texts[15] = texts[3] + b"!"  # a near-duplicate of row 3, contributed later by someone else
    return texts


@pytest.fixture(scope="module")
def span_index(tmp_path_factory):
    texts = corpus()
    owners = [i % 6 for i in range(len(texts))]
    contributions = [contribution(i, owners[i]) for i in range(len(texts))]
    return SpanIndex.build(texts, contributions, tmp_path_factory.mktemp("span"), SpanConfig(min_len=12, top_k=5),
                           canonical=near_duplicates(texts))


@pytest.fixture(scope="module")
def spans(span_index):
    return SpanAttributor(span_index)


def test_planted_span_pays_its_contribution(spans, span_index):
    output = b"As they say, " + PLANTED + b", and so it goes."
    proof = spans.attribute(b"tell me", output)
    assert sum(s.ppm for s in proof.shares) == PPM
    assert proof.shares[0].contribution_id == span_index.contributions[PLANTED_ROW].contribution_id
    assert proof.shares[0].ppm > 500_000
    assert spans.attribute(b"tell me", output) == proof  # integer-only: bit-identical


def test_unicode_span_maps_to_its_row(spans, span_index):
    proof = spans.attribute(b"", "I ordered café crème brûlée near it".encode())
    assert proof.shares[0].contribution_id == span_index.contributions[12].contribution_id


def test_near_duplicate_credit_goes_to_the_first_copy(spans, span_index):
    proof = spans.attribute(b"", corpus()[3][:80])
    ids = {s.contribution_id for s in proof.shares}
    assert span_index.contributions[3].contribution_id in ids
    assert span_index.contributions[15].contribution_id not in ids


def test_verify_accepts_honest_and_rejects_tampering(spans):
    output = b"As they say, " + PLANTED + b" and " + corpus()[12][:30]
    proof = spans.attribute(b"p", output)
    assert len(proof.shares) >= 2
    assert verify(proof.encode(), spans, b"p", output).accepted
    tampered = {
        **tampered_kinds(proof, (("contributor_cap_ppm", PPM), ("max_cnt", 64), ("min_len", 4), ("top_k", 5))),
        "evidence": dataclasses.replace(proof, evidence=b"\x01"),
    }
    for kind, bad in tampered.items():
        verdict = verify(bad, spans, b"p", output)
        assert not verdict.accepted, kind
    assert not verify(proof, spans, b"p", output + b"x").accepted


def test_bad_queries_give_clear_errors(spans):
    with pytest.raises(EmptyOutput):
        spans.attribute(b"p", b"")
    with pytest.raises(NoAttribution):
        spans.attribute(b"p", b"zzzz qqqq nothing in the corpus matches this")
    with pytest.raises(AttributionError, match="0xff"):
        spans.attribute(b"p", b"abc\xffdef")


def test_index_load_checks(span_index, tmp_path):
    assert SpanIndex.load(span_index.directory, expected_root=span_index.root).root == span_index.root
    with pytest.raises(IndexRootMismatch):
        SpanIndex.load(span_index.directory, expected_root=b"\x00" * 32)
    with pytest.raises(UnknownRun):
        SpanIndex.load(tmp_path / "nothing")
    with pytest.raises(AttributionError, match="one text per contribution"):
        SpanIndex.build([b"a"], [], tmp_path / "x")
    with pytest.raises(AttributionError, match="not UTF-8"):
        SpanIndex.build([b"\xc3\x28"], [contribution(0)], tmp_path / "y")
