"""Batch encoding: L2 blocks as one version byte + zlib(RLP list of the blocks).

zlib is in the standard library, so every node can decode without a new dependency; OP Stack's
channels use zlib too (brotli since Fjord). Decoding is bounded: a hostile batch cannot expand
past MAX_DECODED_BYTES."""
from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import rlp
from eth.abc import BlockAPI

VERSION_ZLIB = 0
MAX_DECODED_BYTES = 32 * 1024 * 1024
MAX_BATCH_BYTES = 120_000
"""Compressed bytes per batch: under anvil's and geth's 128 KiB transaction size limit."""


class BadBatch(ValueError):
    """Batch data that is not a valid encoding of consecutive L2 blocks."""


def encode(blocks: Sequence[BlockAPI]) -> bytes:
    return bytes([VERSION_ZLIB]) + zlib.compress(rlp.encode(list(blocks)), 9)


def decode(data: bytes, block_class_at: Callable[[int], type], first: int, last: int) -> list[BlockAPI]:
    """The blocks first..last of a batch; BadBatch naming what is wrong."""
    if not data or data[0] != VERSION_ZLIB:
        raise BadBatch(f"unknown batch version {data[:1].hex() or '(empty)'}")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data[1:], MAX_DECODED_BYTES)
    except zlib.error as e:
        raise BadBatch(f"batch does not decompress: {e}") from None
    if inflater.unconsumed_tail:
        raise BadBatch(f"batch expands past {MAX_DECODED_BYTES} bytes")
    try:
        items = rlp.decode(raw, strict=True)
    except rlp.DecodingError as e:
        raise BadBatch(f"batch is not RLP: {e}") from None
    if not isinstance(items, list) or len(items) != last - first + 1:
        raise BadBatch(f"batch holds {len(items) if isinstance(items, list) else 'no list of'} blocks; "
                       f"its range {first}..{last} needs {last - first + 1}")
    blocks = []
    for number, item in zip(range(first, last + 1), items):
        try:
            block = rlp.decode(rlp.encode(item), sedes=block_class_at(number))
        except (rlp.DecodingError, rlp.DeserializationError, TypeError, ValueError) as e:
            raise BadBatch(f"block {number} of the batch does not decode: {e}") from None
        if block.number != number:
            raise BadBatch(f"batch position of block {number} holds block {block.number}")
        blocks.append(block)
    return blocks
