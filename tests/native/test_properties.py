"""Consensus properties: two nodes importing the same blocks agree on the state root; the fee
split always sums to the fee; random sequences of native operations keep the supply identity."""
from tests.native.conftest import OPEN, H, build_world
from hypothesis import HealthCheck, given, settings, strategies as st
from tests.native.native_chain import NativeChain

from vm.modules.attribution import split_fee


def test_two_nodes_importing_the_same_blocks_agree(world):
    nc = world.nc
    k = world.keys
    for tx in [(k[7], "InferenceJobs", "requestInference", (1, H(301), OPEN), OPEN),
               (k[4], "InferenceJobs", "submitResult", (1, H(302), H(303)), 0),
               (k[5], "InferenceJobs", "attest", (1, True), 0), (k[6], "InferenceJobs", "attest", (1, True), 0),
               (k[4], "Attribution", "postProof", (1, H(302), H(400), 1, [H(1), H(2)], [500_000, 500_000]), 0)]:
        assert nc.send(tx[0], tx[1], tx[2], *tx[3], value=tx[4]).ok
    nc.now += 700
    assert nc.send(k[0], "Attribution", "finaliseProof", 1).ok
    other = NativeChain(nc.genesis)
    assert other.chain.get_canonical_head() == nc.chain.get_canonical_block_header_by_number(0)
    head = nc.chain.get_canonical_head().block_number
    for n in range(1, head + 1):
        block = nc.chain.get_canonical_block_by_number(n)
        result = other.chain.import_block(block)  # re-executes, block hooks included
        assert result.imported_block.header.state_root == block.header.state_root
    assert other.chain.get_canonical_head() == nc.chain.get_canonical_head()
    assert other.storage_root("Attribution") == nc.storage_root("Attribution")


@given(fee=st.integers(0, 2**128), weights=st.lists(st.integers(1, 10**6), min_size=1, max_size=16),
       split=st.lists(st.integers(0, 10**6), min_size=3, max_size=3), validators=st.integers(0, 40))
def test_fee_split_always_sums_to_the_fee(fee, weights, split, validators):
    total = sum(weights)
    weights = [w * 10**6 // total for w in weights]
    weights[0] += 10**6 - sum(weights)  # parts per million summing to 1e6, as the module demands
    if sum(split) > 10**6:
        split = [s * 10**6 // sum(split) for s in split]
    ppm = (*split, 10**6 - sum(split))
    per_contributor, owner, per_validator, treasury = split_fee(fee, ppm, weights, validators)
    assert sum(per_contributor) + owner + sum(per_validator) + treasury == fee
    assert min(per_contributor + per_validator + [owner, treasury]) >= 0
    assert len(per_validator) == validators and len(set(per_validator)) <= 1
    assert treasury >= fee * ppm[3] // 10**6  # remainders only ever add to the treasury
    for w, x in zip(weights, per_contributor):
        assert x == fee * ppm[0] // 10**6 * w // 10**6


OPS = st.lists(st.tuples(st.sampled_from(["contribute", "delegate", "undelegate", "request", "transfer", "empty"]),
                         st.integers(0, 9), st.integers(1, 5)), min_size=3, max_size=8)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_random_operations_keep_the_supply_identity(ops):
    """NativeChain checks circulating + reserve + locked + burned == supply after each block."""
    nc = NativeChain()
    build_world(nc)
    k, a = nc.keys, nc.addresses
    for i, (op, who, amount) in enumerate(ops):
        if op == "contribute":
            nc.send(k[who], "Datanets", "contribute", 1, H(1000 + i), amount * 100)
        elif op == "delegate":
            nc.send(k[who], "Staking", "delegate", a[4 + amount % 3], value=amount * OPEN)
        elif op == "undelegate":
            nc.send(k[who], "Staking", "undelegate", a[4 + amount % 3], amount * OPEN)
        elif op == "request":
            nc.send(k[who], "InferenceJobs", "requestInference", 1, H(2000 + i), amount * OPEN, value=amount * OPEN)
        elif op == "transfer":
            nc.mine([nc.sign(k[who], a[(who + 1) % 10], b"", value=amount * OPEN)])
        else:
            nc.mine([])
