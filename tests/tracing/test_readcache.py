"""node.readcache.ContentCache: traces read through one shared cache, block after block, give
exactly the answers of the uncached database; the cache stays within its budget and never
keeps entries that are not content-addressed."""
import pytest
from eth_utils import keccak

from node.readcache import ContentCache
from node.storage import LevelDB
from tests.conformance.chain import imported_chain
from vm.tracing import TraceConfig, trace_block

CONFIGS = [TraceConfig(tracer="callTracer"), TraceConfig()]


def traces(chain, numbers, config):
    return [trace_block(chain, chain.get_canonical_block_by_number(n), config) for n in numbers]


@pytest.mark.parametrize("budget", [64 * 1024 * 1024, 4096])
def test_traces_through_one_cache_equal_uncached_traces_for_every_block(budget):
    chain = imported_chain()
    cache = ContentCache(chain.chaindb.db, budget_bytes=budget)
    cached_chain = type(chain)(cache)
    numbers = range(1, chain.get_canonical_head().block_number + 1)
    for config in CONFIGS:
        assert traces(cached_chain, numbers, config) == traces(chain, numbers, config)
        assert cache.cached_bytes <= budget
    assert cache.hits > 0


def test_second_walk_is_served_from_the_cache():
    chain = imported_chain()
    cache = ContentCache(chain.chaindb.db)
    cached_chain = type(chain)(cache)
    numbers = range(1, 11)
    first = traces(cached_chain, numbers, CONFIGS[0])
    misses = cache.misses
    assert traces(cached_chain, numbers, CONFIGS[0]) == first
    # only the entries that are not content-addressed (header lookups by number) are read again
    assert cache.misses - misses < misses / 2


def test_only_content_addressed_entries_are_kept(tmp_path):
    db = LevelDB(tmp_path / "db")
    try:
        node = b"\xc2\x80\x80" * 20
        mutable_key = b"k" * 32  # 32 bytes, but not the hash of its value
        db[keccak(node)] = node
        db[mutable_key] = b"first"
        cache = ContentCache(db)
        assert cache[keccak(node)] == node
        assert cache[mutable_key] == b"first"
        db[mutable_key] = b"second"
        assert cache[mutable_key] == b"second"
        assert cache.cached_bytes == len(node)
        assert keccak(node) in cache and mutable_key in cache and b"missing" not in cache
        with pytest.raises(KeyError):
            cache[b"missing"]
    finally:
        db.close()


def test_budget_bounds_the_bytes_held():
    values = [bytes([i]) * 100 for i in range(100)]
    cache = ContentCache({keccak(v): v for v in values}, budget_bytes=1000)
    for value in values:
        assert cache[keccak(value)] == value
        assert cache.cached_bytes <= 1000
    for value in values[-3:]:  # the latest reads are still held: no new misses
        misses = cache.misses
        assert cache[keccak(value)] == value
        assert cache.misses == misses


def test_values_larger_than_half_the_budget_are_read_through():
    big = b"\x01" * 600
    cache = ContentCache({keccak(big): big}, budget_bytes=1000)
    assert cache[keccak(big)] == big
    assert cache.cached_bytes == 0


def test_read_only_and_bad_budget():
    cache = ContentCache({})
    with pytest.raises(TypeError, match="read-only"):
        cache[b"k"] = b"v"
    with pytest.raises(TypeError, match="read-only"):
        del cache[b"k"]
    with pytest.raises(ValueError, match="budget"):
        ContentCache({}, budget_bytes=1)
