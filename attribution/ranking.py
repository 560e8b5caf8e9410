"""From integer scores to paid shares, and the checks every method's verifier shares."""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from attribution.apportion import apportion, cap_owners
from attribution.errors import MalformedProof, NoAttribution
from attribution.proof import AttributionProof, Contribution, Share, query_hash


@dataclass(frozen=True)
class Verdict:
    """A verifier's answer: accepted or not, and why."""

    accepted: bool
    reason: str

    def __bool__(self) -> bool:
        return self.accepted


def shares_from_scores(
    scores: Mapping[int, int], contributions: Sequence[Contribution], top_k: int, cap_ppm: int
) -> tuple[Share, ...]:
    """Top-K contributions by positive score (ties: smaller id), apportioned and capped per contributor."""
    by_id: dict[bytes, int] = {}
    owner: dict[bytes, bytes] = {}
    for row, score in scores.items():
        c = contributions[row]
        by_id[c.contribution_id] = by_id.get(c.contribution_id, 0) + score
        owner[c.contribution_id] = c.contributor
    ranked = sorted((cid for cid, s in by_id.items() if s > 0), key=lambda cid: (-by_id[cid], cid))[:top_k]
    if not ranked:
        raise NoAttribution("no contribution has a positive score for this output")
    weights = cap_owners(apportion({cid: by_id[cid] for cid in ranked}), owner, cap_ppm)
    ordered = sorted((cid for cid, w in weights.items() if w > 0), key=lambda cid: (-weights[cid], cid))
    return tuple(Share(cid, owner[cid], weights[cid]) for cid in ordered)


def check_common(
    proof: AttributionProof, method: str, params: tuple, seed: int, root: bytes, prompt: bytes, output: bytes
) -> Verdict:
    """The method-independent checks, each with its own reason."""
    try:
        proof.check_shape()
    except MalformedProof as exc:
        return Verdict(False, str(exc))
    if proof.method != method:
        return Verdict(False, f"proof method {proof.method!r} is not this index's {method!r}")
    if proof.params != params:
        return Verdict(False, "proof parameters differ from the index's")
    if proof.seed != seed:
        return Verdict(False, f"proof seed {proof.seed} is not the index's projection seed {seed}")
    if proof.index_root != root:
        return Verdict(False, f"proof index root 0x{proof.index_root.hex()} is not 0x{root.hex()}")
    if proof.query_hash != query_hash(prompt, output):
        return Verdict(False, "proof query hash does not match the prompt and output")
    return Verdict(True, "common checks passed")
