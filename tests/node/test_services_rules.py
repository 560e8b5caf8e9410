"""The services' rules that need no chain: which results the verifiers re-check (a share drawn from
the chain's seed, the same for every verifier) and when a re-checked attribution proof is disputed."""
from eth_utils import keccak

from node.services.attribution import TOLERANCE_PPM, compare
from node.services.model import sampled


def test_the_verification_sample_is_the_chains_draw_at_the_genesis_rate():
    seeds = [keccak(i.to_bytes(8, "big")) for i in range(2000)]
    draws = [sampled(seed, 7, 250_000) for seed in seeds]
    assert draws == [sampled(seed, 7, 250_000) for seed in seeds]  # every verifier draws the same
    assert 400 < sum(draws) < 600  # 25% of 2,000 (the binomial's spread is about 19)
    assert [sampled(seeds[0], job, 250_000) for job in range(40)] != [sampled(seeds[1], job, 250_000) for job in range(40)]
    assert not any(sampled(seed, 1, 0) for seed in seeds) and all(sampled(seed, 1, 1_000_000) for seed in seeds)


def _posted(entries: dict[bytes, int], method: int = 2, proof_hash: bytes = b"\x01" * 32) -> dict:
    return {"proofHash": "0x" + proof_hash.hex(), "methodId": hex(method),
            "entries": [{"contentHash": "0x" + h.hex(), "weightPpm": hex(w)} for h, w in entries.items()]}


def _ours(entries: dict[bytes, int], method: int = 2) -> tuple:
    return (1, b"\x02" * 32, b"\x03" * 32, method, list(entries), list(entries.values()))


A, B, C = (bytes([i]) * 32 for i in (10, 11, 12))


def test_a_proof_within_the_tolerance_agrees_and_an_inflated_or_different_one_is_disputed():
    honest = {A: 600_000, B: 400_000}
    assert compare(_posted(honest, proof_hash=b"\x03" * 32), _ours(honest)) is None  # the same bytes
    named = compare(_posted({A: 990_000, B: 10_000}, proof_hash=b"\x03" * 32), _ours(honest))
    assert named is not None and "990000 ppm" in named  # our proof's hash named over other weights
    close = {A: 600_000 + TOLERANCE_PPM, B: 400_000 - TOLERANCE_PPM}
    assert compare(_posted(close), _ours(honest)) is None  # another machine's last digits
    inflated = compare(_posted({A: 990_000, B: 10_000}), _ours(honest))
    assert inflated is not None and "990000 ppm where the attribution gives 600000 ppm" in inflated
    assert "credits" in compare(_posted({A: 500_000, C: 500_000}), _ours(honest))
    assert "method 1" in compare(_posted(honest, method=1), _ours(honest))
    assert "misses" in compare(_posted({}), _ours(honest))  # "nothing shaped it" when something did
    assert compare(_posted({}, proof_hash=b"\x09" * 32), _ours({})) is None  # nothing shaped it, agreed
