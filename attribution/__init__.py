"""Proof of Attribution: which contributions shaped a model output, as re-checkable proofs.

Three families: gradient influence on LoRA parameters (Grad-Dot/TracIn and DataInf, over a
quantised index built once per training run), span matching over a Datanet version's text
(infini-gram), and semantic neighbours (sentence embeddings, for paraphrased text). All end in
an AttributionProof whose integer weights pay contributors.
"""
from attribution.apportion import PPM, apportion, cap_owners
from attribution.errors import (
    AttributionError,
    EmptyOutput,
    IndexRootMismatch,
    MalformedProof,
    NoAttribution,
    UnknownRun,
)
from attribution.gradient import (
    DataInfConfig,
    EnsembleConfig,
    GradDotConfig,
    GradientAttributor,
    GradientIndex,
    build_gradient_index,
    index_from_rows,
    project_rows,
    self_influence,
)
from attribution.methods import METHODS, onchain_args, verify
from attribution.proof import AttributionProof, Contribution, Share, query_hash
from attribution.ranking import Verdict
from attribution.robust import near_duplicates
from attribution.seeds import chain_seed
from attribution.semantic import Embedder, SemanticAttributor, SemanticConfig, SemanticIndex, minilm
from attribution.spans import SpanAttributor, SpanConfig, SpanIndex

__all__ = [
    "METHODS", "PPM", "AttributionError", "AttributionProof", "Contribution", "DataInfConfig", "Embedder", "EnsembleConfig", "EmptyOutput",
    "GradDotConfig", "GradientAttributor", "GradientIndex", "IndexRootMismatch", "MalformedProof", "NoAttribution",
    "SemanticAttributor", "SemanticConfig", "SemanticIndex", "Share", "SpanAttributor", "SpanConfig", "SpanIndex", "UnknownRun", "Verdict", "apportion",
    "build_gradient_index", "cap_owners", "chain_seed", "index_from_rows", "minilm", "near_duplicates", "onchain_args", "project_rows",
    "query_hash", "self_influence", "verify",
]
