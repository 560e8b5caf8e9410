"""Span matching for large (black-box) models: which contributions hold the output's rare spans.

The Datanet version's texts are indexed by the `infini-gram` package in raw-byte (u8) mode, so
no tokenizer is needed. A query asks infini-gram's own `attribute` (maximal spans of at least
`min_len` bytes occurring at most `max_cnt` times, with every occurrence) and credits each
occurrence with length^2 x 10^6 // count^2: long spans count more, common ones less (rarity),
and a span's copies share it. Everything after infini-gram is integer-only, so verification
is exact.
"""
import functools
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np
import rlp
from eth_utils import keccak

from attribution.errors import AttributionError, EmptyOutput, IndexRootMismatch, UnknownRun
from attribution.proof import AttributionProof, Contribution, query_hash
from attribution.ranking import Verdict, check_common, shares_from_scores
from vm.merkle import merkle_root

MANIFEST = "manifest.json"
ENGINE_DIR = "infini-gram"


@dataclass(frozen=True)
class SpanConfig:
    """Span matching parameters (all integers: they enter the proof)."""

    method: ClassVar[str] = "span-v1"
    min_len: int = 12  # bytes: shorter matches are coincidence, not attribution
    max_cnt: int = 64  # spans occurring more often than this are common phrases, not evidence
    top_k: int = 10
    contributor_cap_ppm: int = 1_000_000

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise AttributionError(f"SpanConfig.{f.name} must be positive, got {getattr(self, f.name)}")

    def params(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(asdict(self).items()))


@dataclass(frozen=True)
class SpanIndex:
    """A Datanet version's texts in an infini-gram u8 index, plus the Merkle root over them."""

    config: SpanConfig
    directory: pathlib.Path
    contributions: tuple[Contribution, ...]
    text_hashes: tuple[bytes, ...]
    canonical: tuple[int, ...]

    @property
    def method(self) -> str:
        return self.config.method

    @functools.cached_property
    def root(self) -> bytes:
        header = keccak(rlp.encode([self.method.encode(), [[k.encode(), v] for k, v in self.config.params()], len(self.contributions)]))
        rows = (
            keccak(rlp.encode([c.contribution_id, c.contributor, h, dup]))
            for c, h, dup in zip(self.contributions, self.text_hashes, self.canonical)
        )
        return merkle_root([header, *rows])

    @classmethod
    def build(
        cls, texts: Sequence[bytes], contributions: Sequence[Contribution], directory: str | pathlib.Path,
        config: SpanConfig = SpanConfig(), canonical: Sequence[int] | None = None, workers: int | None = None,
    ) -> "SpanIndex":
        """Index `texts` (row i belongs to contributions[i], in Datanet order) under `directory`.

        With `workers` (Ray connected, see training.cluster), contiguous slices of the rows are
        indexed as separate infini-gram shards by Ray tasks (shard k holds slice k); infini-gram
        queries all of a directory's shards together and sums their counts, so the spans, scores
        and root are those of a one-shard index."""
        if len(texts) != len(contributions) or not texts:
            raise AttributionError(f"need one text per contribution, got {len(texts)} texts for {len(contributions)}")
        for i, text in enumerate(texts):
            try:
                text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise AttributionError(f"text of row {i} is not UTF-8: {exc}") from exc
        path = pathlib.Path(directory).resolve()
        engine_dir = path / ENGINE_DIR
        if workers:
            _index_shards_on_ray(texts, engine_dir, workers)
        else:
            _index_shard(texts, engine_dir, 0)
        index = cls(config, path, tuple(contributions), tuple(keccak(t) for t in texts),
                    tuple(canonical) if canonical is not None else tuple(range(len(texts))))
        manifest = {
            "method": index.method, "config": asdict(config),
            "contributions": [[c.contribution_id.hex(), c.contributor.hex()] for c in contributions],
            "text_hashes": [h.hex() for h in index.text_hashes], "canonical": list(index.canonical),
            "root": index.root.hex(),
        }
        (path / MANIFEST).write_text(json.dumps(manifest, indent=1))
        return index

    @classmethod
    def load(cls, directory: str | pathlib.Path, expected_root: bytes | None = None) -> "SpanIndex":
        path = pathlib.Path(directory).resolve()
        if not (path / MANIFEST).is_file() or not (path / ENGINE_DIR).is_dir():
            raise UnknownRun(f"no span index at {path}")
        try:
            m = json.loads((path / MANIFEST).read_text())
            index = cls(
                SpanConfig(**m["config"]), path,
                tuple(Contribution(bytes.fromhex(c), bytes.fromhex(a)) for c, a in m["contributions"]),
                tuple(bytes.fromhex(h) for h in m["text_hashes"]), tuple(int(c) for c in m["canonical"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AttributionError(f"span index at {path} is malformed: {exc!r}") from exc
        if expected_root is not None and index.root != expected_root:
            raise IndexRootMismatch(f"span index at {path} has root 0x{index.root.hex()}, run committed 0x{expected_root.hex()}")
        return index


SHARD_FILES = ("tokenized", "table", "offset")
"""What infini-gram writes per shard (`NAME.k`) in raw-byte mode without metadata."""


def _index_shard(texts: Sequence[bytes], engine_dir: pathlib.Path, shard: int) -> None:
    """Index `texts` as infini-gram shard `shard` of `engine_dir` (its indexer numbers a lone shard 0)."""
    with tempfile.TemporaryDirectory() as tmp:
        with open(pathlib.Path(tmp) / "rows.jsonl", "w") as f:
            for i, text in enumerate(texts):
                f.write(json.dumps({"text": text.decode("utf-8"), "row": i}) + "\n")
        out = engine_dir if shard == 0 else pathlib.Path(tmp) / "out"
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        cmd = [sys.executable, "-m", "infini_gram.indexing", "--data_dir", tmp, "--save_dir", str(out),
               "--token_dtype", "u8", "--cpus", "1", "--mem", "2", "--shards", "1", "--ulimit", str(limit)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"TOKENIZERS_PARALLELISM": "false"})
        if done.returncode != 0:
            raise AttributionError(f"infini-gram indexing failed: {done.stderr[-2000:]}")
        if shard:
            engine_dir.mkdir(parents=True, exist_ok=True)
            for name in SHARD_FILES:
                os.replace(out / f"{name}.0", engine_dir / f"{name}.{shard}")


def _index_shards_on_ray(texts: Sequence[bytes], engine_dir: pathlib.Path, workers: int) -> None:
    import ray

    from training.cluster import gather, shards

    task = ray.remote(max_retries=3)(_index_shard)  # a retried shard is rebuilt from scratch
    refs = [task.remote([texts[i] for i in part], engine_dir, k) for k, part in enumerate(shards(len(texts), workers))]
    gather(refs, f"span index: {len(refs)} infini-gram shards on Ray", progress=False)


class SpanAttributor:
    """Answers and verifies span-matching queries; verification is exact recomputation."""

    def __init__(self, index: SpanIndex):
        from infini_gram.engine import InfiniGramEngine  # heavy C++ extension: load only when used

        self.index = index
        engine_dir = str(index.directory / ENGINE_DIR)
        # load_to_ram: the text and suffix array in memory (about 6 bytes per corpus byte) made queries
        # about 3x faster than mmap on the benchmark's 10 MB index
        self.engine = InfiniGramEngine(index_dir=engine_dir, eos_token_id=0, vocab_size=255, token_dtype="u8", load_to_ram=True)
        # per shard, document start offsets in its byte stream (an occurrence belongs to the last
        # start <= ptr) and the row of its first document: shard k holds a contiguous slice of rows
        self.starts = [np.fromfile(os.path.join(engine_dir, f"offset.{k}"), dtype="<u8")
                       for k in range(self.engine.engine.get_num_shards())]
        self.first_row = np.cumsum([0] + [len(s) for s in self.starts])
        if self.first_row[-1] != len(index.contributions):
            raise AttributionError(f"infini-gram index holds {self.first_row[-1]} documents, "
                                   f"manifest {len(index.contributions)}")

    @property
    def method(self) -> str:
        return self.index.method

    def spans(self, output: bytes) -> list[dict]:
        """infini-gram's maximal rare spans of `output`, with every occurrence."""
        if not output:
            raise EmptyOutput("output is empty: nothing to attribute")
        if b"\xff" in output:
            raise AttributionError("output holds byte 0xff, which is never in UTF-8 text")
        cfg = self.index.config
        found = self.engine.attribute(input_ids=list(output), delim_ids=[], min_len=cfg.min_len, max_cnt=cfg.max_cnt, enforce_bow=False)
        if "error" in found:
            raise AttributionError(f"infini-gram rejected the query: {found['error']}")
        return found["spans"]

    def scores(self, output: bytes) -> dict[int, int]:
        totals: dict[int, int] = {}
        for span in self.spans(output):
            credit = span["length"] ** 2 * 1_000_000 // span["count"] ** 2
            for doc in span["docs"]:
                shard = doc["s"]
                row = int(self.first_row[shard] + np.searchsorted(self.starts[shard], doc["ptr"], side="right") - 1)
                owner = self.index.canonical[row]
                totals[owner] = totals.get(owner, 0) + credit
        return totals

    def attribute(self, prompt: bytes, output: bytes) -> AttributionProof:
        cfg = self.index.config
        return AttributionProof(
            method=self.method, params=cfg.params(), seed=0, index_root=self.index.root,
            query_hash=query_hash(prompt, output), evidence=b"",
            shares=shares_from_scores(self.scores(output), self.index.contributions, cfg.top_k, cfg.contributor_cap_ppm),
        )

    def verify(self, proof: AttributionProof, prompt: bytes, output: bytes) -> Verdict:
        common = check_common(proof, self.method, self.index.config.params(), 0, self.index.root, prompt, output)
        if not common.accepted:
            return common
        if proof.evidence:
            return Verdict(False, "span proofs carry no evidence bytes")
        if self.attribute(prompt, output).shares != proof.shares:
            return Verdict(False, "contributions or weights differ from the recomputed span matches")
        return Verdict(True, "accepted (exact recomputation)")
