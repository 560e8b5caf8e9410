"""Near-duplicate detection across contributions, so copies cannot multiply a payout.

Candidates come from MinHash LSH over byte 8-gram shingles (the `datasketch` package, fixed
seed, so every validator finds the same pairs); each candidate is then confirmed by exact
Jaccard similarity, and a duplicate's credit goes to its earliest copy in Datanet order.
"""
from collections.abc import Sequence

from datasketch import MinHash, MinHashLSH

SHINGLE = 8
NUM_PERM = 128
SEED = 1


def _shingles(text: bytes) -> set[bytes]:
    text = b" ".join(text.lower().split())
    if len(text) <= SHINGLE:
        return {text}
    return {text[i : i + SHINGLE] for i in range(len(text) - SHINGLE + 1)}


def near_duplicates(texts: Sequence[bytes], threshold_ppm: int = 800_000) -> tuple[int, ...]:
    """For each text, the index of its earliest near-duplicate (Jaccard >= threshold), else itself."""
    threshold = threshold_ppm / 1_000_000
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    shingles = [_shingles(t) for t in texts]
    canonical: list[int] = []
    for i, sh in enumerate(shingles):
        mh = MinHash(num_perm=NUM_PERM, seed=SEED)
        mh.update_batch(sorted(sh))
        confirmed = [
            int(j) for j in lsh.query(mh)
            if len(sh & shingles[int(j)]) * 1_000_000 >= threshold_ppm * len(sh | shingles[int(j)])
        ]
        canonical.append(canonical[min(confirmed)] if confirmed else i)
        lsh.insert(str(i), mh)
    return tuple(canonical)
