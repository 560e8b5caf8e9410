"""Seeds come from the chain, so anyone can replay a projection (DESIGN.md: Decisions)."""
from eth_utils import keccak


def chain_seed(block_hash: bytes, job_id: int) -> int:
    """63-bit seed = first 8 bytes of keccak256(block_hash || job_id as uint256), shifted right once."""
    if len(block_hash) != 32:
        raise ValueError(f"block hash must be 32 bytes, got {len(block_hash)}")
    if job_id < 0:
        raise ValueError(f"job id must be >= 0, got {job_id}")
    return int.from_bytes(keccak(block_hash + job_id.to_bytes(32, "big"))[:8], "big") >> 1
