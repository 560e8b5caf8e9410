"""Activation commitments in the style of TOPLOC (Ong et al., arXiv 2501.16007).

While generating, the final hidden states that produced each chunk of CHUNK output tokens are
summarised by their k = TOPK_PER_TOKEN * tokens largest-magnitude entries. The entries' flat
positions and bf16 values are encoded as ONE polynomial over GF(p) through the points
(position mod p, value bits): only its k coefficients (2 bytes each) and p (2 bytes) are kept,
so a full chunk costs 2 + 2 * 128 = 258 bytes = 8.06 bytes per token. A verifier who recomputes
the hidden states takes its own top-k positions and evaluates the polynomial there: a position
the prover also chose yields the prover's value, any other yields noise. Comparing sign,
exponent and mantissa of these values against its own gives the statistics that `Thresholds`
bound. The digest of all chunk bytes is what goes on chain.

The polynomial arithmetic is written here because no maintained Python library does
interpolation over a small prime field vectorised with numpy; it is O(k^2) per chunk.
"""
from __future__ import annotations

import collections
import dataclasses
import functools

import numpy as np
import torch
from eth_utils import keccak

CHUNK = 32
TOPK_PER_TOKEN = 4
_PRIMES = (65521, 65519, 65497, 65479, 65449, 65447, 65437, 65423, 65419, 65413)


def chunk_bytes(tokens: int) -> int:
    """Size of one encoded chunk covering `tokens` tokens."""
    return 2 + 2 * TOPK_PER_TOKEN * tokens


@functools.cache
def _inverses(p: int) -> np.ndarray:
    inv = [0, 1] + [0] * (p - 2)
    for i in range(2, p):
        inv[i] = (p - (p // i) * inv[p % i] % p) % p
    return np.array(inv, dtype=np.int64)


def _interpolate(xs: np.ndarray, ys: np.ndarray, p: int) -> np.ndarray:
    """Monomial coefficients (ascending) of the polynomial through (xs, ys) over GF(p)."""
    inv = _inverses(p)
    c = ys.astype(np.int64) % p  # Newton divided differences, in place
    for j in range(1, len(xs)):
        c[j:] = (c[j:] - c[j - 1:-1]) % p * inv[(xs[j:] - xs[:-j]) % p] % p
    poly = np.zeros(len(xs), dtype=np.int64)
    poly[0] = c[-1]
    for j in range(len(xs) - 2, -1, -1):  # poly = poly * (X - xs[j]) + c[j]
        shifted = np.concatenate(([0], poly[:-1]))
        poly = (shifted - xs[j] * poly) % p
        poly[0] = (poly[0] + c[j]) % p
    return poly


def _bf16_bits(values: torch.Tensor) -> np.ndarray:
    return (values.detach().to(torch.float32).cpu().to(torch.bfloat16).view(torch.int16).numpy()
            .astype(np.int64) & 0xFFFF)


def _top(hidden: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """Flat positions and values of the k largest |h| entries of a chunk [c, d]."""
    flat = hidden.detach().to(torch.float32).reshape(-1)
    k = TOPK_PER_TOKEN * hidden.shape[0]
    idx = torch.topk(flat.abs(), k, sorted=False).indices
    return idx.cpu().numpy().astype(np.int64), flat[idx]


def encode_chunk(hidden: torch.Tensor) -> bytes:
    """Encode the hidden states [c, d] (c <= CHUNK) of one chunk."""
    if not torch.isfinite(hidden).all():
        raise ValueError("hidden states contain NaN or infinity")
    idx, values = _top(hidden)
    p = next((q for q in _PRIMES if len(np.unique(idx % q)) == len(idx)), None)
    if p is None:  # practically unreachable: ten primes all colliding
        raise ValueError("no modulus separates the top-k positions")
    poly = _interpolate(idx % p, _bf16_bits(values), p)
    return p.to_bytes(2, "big") + poly.astype(">u2").tobytes()


@dataclasses.dataclass(frozen=True)
class ChunkStats:
    """How a recomputed chunk compares with its encoding (TOPLOC's three statistics)."""

    mismatch_fraction: float  # top-k entries whose sign or exponent differ
    mantissa_mean: float  # mean |mantissa difference| in bf16 ulps over matching entries
    mantissa_median: float


_NO_MATCH = ChunkStats(1.0, float("inf"), float("inf"))


def compare_chunk(encoded: bytes, hidden: torch.Tensor) -> ChunkStats:
    """Compare an encoded chunk with the verifier's own hidden states [c, d]."""
    return compare_chunks([encoded], [hidden])[0]


def compare_chunks(encoded: list[bytes], hidden: list[torch.Tensor]) -> list[ChunkStats]:
    """`compare_chunk` for many chunks at once: chunks of equal length share one vectorised
    top-k and one Horner evaluation, so a verifier's cost does not grow with a Python loop."""
    out: list[ChunkStats | None] = [None] * len(encoded)
    groups: dict[int, list[int]] = collections.defaultdict(list)
    for i, (enc, h) in enumerate(zip(encoded, hidden, strict=True)):
        if len(enc) != chunk_bytes(h.shape[0]):
            out[i] = _NO_MATCH
        else:
            groups[h.shape[0]].append(i)
    for tokens, members in groups.items():
        flat = torch.stack([hidden[i].detach().to(torch.float32).reshape(-1) for i in members])  # [G, c*d]
        idx = torch.topk(flat.abs(), TOPK_PER_TOKEN * tokens, dim=1, sorted=False).indices  # [G, k]
        mine = _bf16_bits(flat.gather(1, idx))  # [G, k]
        mods = np.array([max(int.from_bytes(encoded[i][:2], "big"), 2) for i in members], dtype=np.int64)[:, None]
        polys = np.stack([np.frombuffer(encoded[i][2:], dtype=">u2").astype(np.int64) for i in members])  # [G, k]
        xs = idx.cpu().numpy().astype(np.int64) % mods
        claimed = np.zeros_like(xs)
        for j in range(polys.shape[1] - 1, -1, -1):  # Horner, all chunks of the group at once
            claimed = (claimed * xs + polys[:, j:j + 1]) % mods
        claimed &= 0xFFFF
        same_exp = (claimed >> 7) == (mine >> 7)  # sign and exponent bits
        diff = np.abs((claimed & 0x7F) - (mine & 0x7F))
        for row, i in enumerate(members):
            mant = diff[row][same_exp[row]]
            out[i] = (ChunkStats(float(1.0 - same_exp[row].mean()), float(mant.mean()), float(np.median(mant)))
                      if len(mant) else _NO_MATCH)
    return out


@dataclasses.dataclass(frozen=True)
class ActivationCommitment:
    """The encoded chunks of one generation; `digest` is the 32-byte hash posted on chain."""

    chunks: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        return b"".join(self.chunks)

    @classmethod
    def from_bytes(cls, data: bytes, n_tokens: int) -> "ActivationCommitment":
        """Split proof bytes for an output of `n_tokens` tokens; ValueError if sizes disagree."""
        sizes = [chunk_bytes(min(CHUNK, n_tokens - s)) for s in range(0, n_tokens, CHUNK)]
        if sum(sizes) != len(data):
            raise ValueError(f"proof has {len(data)} bytes; {n_tokens} tokens need {sum(sizes)}")
        out, at = [], 0
        for size in sizes:
            out.append(bytes(data[at:at + size]))
            at += size
        return cls(tuple(out))

    @property
    def digest(self) -> bytes:
        return keccak(self.to_bytes())


class CommitmentBuilder:
    """Collects hidden states as tokens are generated and encodes each full chunk at once."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._pending: list[torch.Tensor] = []

    def add(self, hidden: torch.Tensor) -> None:
        self._pending.append(hidden.detach().to(torch.float32).cpu())
        if len(self._pending) == CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._chunks.append(encode_chunk(torch.stack(self._pending)))
            self._pending = []

    def finish(self) -> ActivationCommitment:
        self._flush()
        return ActivationCommitment(tuple(self._chunks))
