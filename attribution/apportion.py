"""Integer apportioning of a payout into parts per million: the only arithmetic that pays people.

Everything here is integer-only so every validator computes the same split bit for bit.
"""
from collections.abc import Mapping

PPM = 1_000_000


def apportion(scores: Mapping[bytes, int], total: int = PPM) -> dict[bytes, int]:
    """Split `total` in proportion to positive integer `scores` by largest remainder.

    Each key first gets floor(total * score / sum); the units left over go one each to the
    largest remainders, ties broken by the smaller key, so the result always sums to `total`.
    """
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    if not scores:
        raise ValueError("cannot apportion over no scores")
    bad = {k.hex(): v for k, v in scores.items() if not isinstance(v, int) or v <= 0}
    if bad:
        raise ValueError(f"scores must be positive integers, got {bad}")
    whole = sum(scores.values())
    shares = {k: total * v // whole for k, v in scores.items()}
    remainders = sorted(scores, key=lambda k: (-(total * scores[k] % whole), k))
    for key in remainders[: total - sum(shares.values())]:
        shares[key] += 1
    return shares


def cap_owners(weights: Mapping[bytes, int], owner: Mapping[bytes, bytes], cap: int) -> dict[bytes, int]:
    """Cap each owner's total at `cap` ppm, handing the excess to the others pro rata.

    Water-filling in integers: owners above the cap are pinned to it, the rest of the total is
    re-apportioned over the unpinned owners by their weights, until nobody is above the cap.
    When the cap is infeasible (fewer than total/cap owners) it is raised to ceil(total/owners).
    Within an owner, the owner's total is split over its keys by largest remainder.
    """
    total = sum(weights.values())
    totals: dict[bytes, int] = {}
    for key, w in weights.items():
        totals[owner[key]] = totals.get(owner[key], 0) + w
    cap = max(cap, -(-total // len(totals)))
    pinned: set[bytes] = set()
    while True:
        free = {o: w for o, w in totals.items() if o not in pinned and w > 0}
        over = {o for o, w in totals.items() if o not in pinned and w > cap}
        if not over:
            break
        pinned |= over
        rest = total - cap * len(pinned)
        free = {o: w for o, w in free.items() if o not in pinned}
        totals = {o: cap for o in pinned} | (apportion(free, rest) if free else {})
    result: dict[bytes, int] = {}
    for own, own_total in totals.items():
        keys = {k: w for k, w in weights.items() if owner[k] == own and w > 0}
        if own_total and keys:
            result.update(apportion(keys, own_total))
    return result
