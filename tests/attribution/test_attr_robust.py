"""Robustness: an outlier-inflation attack (Wang et al., arXiv 2409.05657) and copy spam, with
the payout the attacker gains with and without our defences (norm clipping, duplicate credit)."""
import torch

from attribution import PPM, GradDotConfig, GradientAttributor, build_gradient_index, near_duplicates
from tests.attribution.attr_tiny import encode, make_tiny, per_example_loss, synthetic

X, Y = synthetic(80, seed=3)
HONEST = 56
QUERIES = range(60, 80)
ATTACKER = 999


def attacker_payout(x, y, config, canonical=None) -> float:
    """Average share of the fee the attacker (owner of rows HONEST..) receives over the queries."""
    tiny = make_tiny(x, y, list(range(HONEST)) + [ATTACKER] * (len(x) - HONEST))
    index = build_gradient_index(tiny.model, per_example_loss, tiny.batches, tiny.contributions, config, 5, canonical)
    attributor = GradientAttributor(index, tiny.model, per_example_loss, encode)
    owner = tiny.contributions[-1].contributor
    paid = 0
    for q in QUERIES:
        proof = attributor.attribute(X[q].numpy().astype("<f4").tobytes(), str(int(Y[q])).encode())
        paid += sum(s.ppm for s in proof.shares if s.contributor == owner)
    return paid / len(QUERIES) / PPM


def outlier_rows(eps: float = 1.0, steps: int = 30) -> torch.Tensor:
    """The attacker trains a shadow model on the public honest rows, then pushes its own 4 rows
    (within an L-inf budget) towards the largest LoRA-gradient norm: outliers that attribution
    methods over-credit."""
    shadow = make_tiny(X[:HONEST], Y[:HONEST])
    params = [p for n, p in shadow.model.named_parameters() if "lora_" in n]
    own_x, own_y = X[HONEST:60], Y[HONEST:60]
    delta = torch.zeros_like(own_x, requires_grad=True)
    for _ in range(steps):
        grads = torch.autograd.grad(per_example_loss(shadow.model, (own_x + delta, own_y)).sum(), params, create_graph=True)
        (step,) = torch.autograd.grad(sum((g * g).sum() for g in grads), delta)
        with torch.no_grad():
            delta += 0.2 * eps * step.sign()
            delta.clamp_(-eps, eps)
    return (own_x + delta).detach()


def test_outlier_attack_gains_without_clipping_and_not_with_it():
    y = Y[:60]
    clean, attacked = X[:60], torch.cat([X[:HONEST], outlier_rows()])
    undefended, defended = GradDotConfig(clip_ppm=0), GradDotConfig()
    gain_undefended = attacker_payout(attacked, y, undefended) - attacker_payout(clean, y, undefended)
    gain_defended = attacker_payout(attacked, y, defended) - attacker_payout(clean, y, defended)
    print(f"outlier attack: payout gained {gain_undefended:.3f} undefended, {gain_defended:.3f} with clipping")
    assert gain_undefended > 0.05, "the attack should work against the undefended method"
    assert gain_defended < 0.01


def _text(row: torch.Tensor) -> bytes:
    return " ".join(f"{v:.1f}" for v in row.tolist()).encode()


def test_copy_spam_is_credited_to_the_originals():
    # the attacker resubmits slightly perturbed copies of the honest rows nearest the queries
    centre = X[60:80].mean(0)
    nearest = torch.argsort(((X[:HONEST] - centre) ** 2).sum(1))[:4]
    copies = X[nearest] + 1e-3
    x, y = torch.cat([X[:HONEST], copies]), torch.cat([Y[:HONEST], Y[nearest]])
    canonical = near_duplicates([_text(r) for r in x])
    assert [canonical[i] for i in range(HONEST, 60)] == nearest.tolist()
    config = GradDotConfig()
    assert attacker_payout(x, y, config) > 0.05
    assert attacker_payout(x, y, config, canonical) == 0.0
