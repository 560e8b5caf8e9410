"""The method registry: one config, one implementation and one registration line per method.

Verifiers look a proof's method id up here, so a new method is added by writing its config and
attributor and adding one line below.
"""
from dataclasses import dataclass

from attribution.errors import MalformedProof
from attribution.gradient import DataInfConfig, EnsembleConfig, GradDotConfig, GradientAttributor
from attribution.proof import AttributionProof
from attribution.ranking import Verdict
from attribution.semantic import SemanticAttributor, SemanticConfig
from attribution.spans import SpanAttributor, SpanConfig


@dataclass(frozen=True)
class Method:
    config: type
    attributor: type
    code: int  # the uint32 methodId the Attribution system contract stores


METHODS: dict[str, Method] = {}


def register(config: type, attributor: type, code: int) -> None:
    if code in {m.code for m in METHODS.values()}:
        raise ValueError(f"method code {code} is taken")
    METHODS[config.method] = Method(config, attributor, code)


register(GradDotConfig, GradientAttributor, 1)
register(DataInfConfig, GradientAttributor, 2)
register(SpanConfig, SpanAttributor, 3)
register(SemanticConfig, SemanticAttributor, 4)
register(EnsembleConfig, GradientAttributor, 5)


def onchain_args(proof: AttributionProof) -> tuple[bytes, int, list[bytes], list[int]]:
    """(proofHash, methodId, contentHashes, weightsPpm): what `postProof` takes after the job id and its outputHash."""
    if proof.method not in METHODS:
        raise MalformedProof(f"unknown attribution method {proof.method!r}")
    return (proof.hash(), METHODS[proof.method].code, [s.contribution_id for s in proof.shares], [s.ppm for s in proof.shares])


def verify(proof: AttributionProof | bytes, attributor: object, prompt: bytes, output: bytes) -> Verdict:
    """Re-check a proof (object or canonical bytes) with an attributor for the index it names."""
    if isinstance(proof, bytes):
        try:
            proof = AttributionProof.decode(proof)
        except MalformedProof as exc:
            return Verdict(False, str(exc))
    method = METHODS.get(proof.method)
    if method is None:
        return Verdict(False, f"unknown attribution method {proof.method!r}; known: {sorted(METHODS)}")
    if not isinstance(attributor, method.attributor):
        return Verdict(False, f"method {proof.method!r} needs a {method.attributor.__name__}, got {type(attributor).__name__}")
    return attributor.verify(proof, prompt, output)
