"""Bad input for every native function: a revert with a reason, gas charged, no state change.

One populated world per module run (reverts leave it untouched, which each case asserts by
comparing every module account's storage root and balance before and after)."""
import eth.exceptions
import pytest
from tests.native.conftest import OPEN, H, build_world
from eth_abi import encode
from eth_utils import keccak, to_canonical_address, to_checksum_address
from tests.native.native_chain import ADDRESS, CONTRACTS, NativeChain

import genesis

from vm.modules.abi import CALL_BASE_GAS
from vm.modules.economics import VESTING_SLOT
from vm.modules.storage import slot_of
from vm.modules.system import ECONOMICS

ZERO32 = bytes(32)
MAX = 2**256 - 1
A = lambda i: genesis.dev_accounts()[i][0]  # noqa: E731  dev account i, checksummed


@pytest.fixture(scope="module")
def w():
    return build_world(NativeChain())


def snapshot(nc):
    """Storage root and balance of every module account. The Economics root moves every block
    (the block hook's release and burn counters), so for it the sender-facing views count."""
    snap = {m: (nc.storage_root(m), nc.balance(ADDRESS[m])) for m in ADDRESS if m != "Economics"}
    vesting = [slot_of(VESTING_SLOT, to_canonical_address(a)) + i for a in nc.addresses for i in (0, 1)]
    snap["Economics"] = [nc.state.get_storage(ECONOMICS, v) for v in vesting]
    return snap


def assert_rejected(w, r, expected: str, before) -> None:
    assert not r.ok, "call should revert"
    assert r.reason is not None and expected in r.reason, r.reason
    assert r.gas_used >= 21_000 + CALL_BASE_GAS  # the failed call was charged
    assert snapshot(w.nc) == before  # no state change in any module


CASES = [
    # Datanets
    (0, "Datanets", "createDatanet", ("", H(1), 0, "MIT", 0, 0, 10, []), 0, "name must be 1..64 bytes"),
    (0, "Datanets", "createDatanet", ("x" * 65, H(1), 0, "MIT", 0, 0, 10, []), 0, "name must be 1..64 bytes"),
    (0, "Datanets", "createDatanet", ("n", H(1), 3, "MIT", 0, 0, 10, []), 0, "dataType 3 unknown"),
    (0, "Datanets", "createDatanet", ("n", H(1), 0, "", 0, 0, 10, []), 0, "license must be 1..64 bytes"),
    (0, "Datanets", "createDatanet", ("n", H(1), 0, "MIT", 2, 0, 10, []), 0, "accessPolicy 2 unknown"),
    (0, "Datanets", "createDatanet", ("n", H(1), 0, "MIT", 0, 0, 0, []), 0, "dailyByteLimit must be positive"),
    (0, "Datanets", "createDatanet", ("n", H(1), 0, "MIT", 0, 0, 10, [A(1)] * 2), 0, "duplicate curator"),
    (0, "Datanets", "createDatanet", ("n", H(1), 0, "MIT", 0, 0, 10, ["0x" + "00" * 20]), 0, "zero address"),
    (0, "Datanets", "createDatanet", ("n", H(1), 0, "MIT", 0, 0, 10,
                                      [to_checksum_address(f"0x{i + 1:040x}") for i in range(17)]), 0, "at most 16 curators"),
    (0, "Datanets", "createDatanet", ("n", H(1), 0, "MIT", 0, 0, 10, []), 1, "function is not payable"),
    (2, "Datanets", "setAllowed", (1, A(2), True), 0, "only the datanet owner"),
    (2, "Datanets", "contribute", (99, H(50), 10), 0, "unknown datanet 99"),
    (2, "Datanets", "contribute", (0, H(50), 10), 0, "unknown datanet 0"),
    (2, "Datanets", "contribute", (MAX, H(50), 10), 0, f"unknown datanet {MAX}"),
    (2, "Datanets", "contribute", (1, ZERO32, 10), 0, "contentHash is zero"),
    (2, "Datanets", "contribute", (1, H(50), 0), 0, "size must be"),
    (2, "Datanets", "contribute", (1, H(50), 2**64 - 1), 0, "size must be"),
    (2, "Datanets", "contribute", (1, H(1), 10), 0, "duplicate contribution"),
    (2, "Datanets", "contribute", (1, H(50), 10**6), 0, "daily byte limit 1000000 exceeded"),
    (2, "Datanets", "contribute", (1, H(50), 10), 1, "contribution fee is 0 wei, got 1"),
    (2, "Datanets", "curate", (1, H(3), True, 50), 0, "only the datanet owner or a curator"),
    (1, "Datanets", "curate", (1, H(3), True, 101), 0, "score 101 out of range"),
    (1, "Datanets", "curate", (1, H(77), True, 50), 0, "unknown contribution"),
    (1, "Datanets", "curate", (1, H(1), False, 50), 0, "already curated"),
    (1, "Datanets", "publishVersion", (1,), 0, "nothing new to publish"),
    (5, "Datanets", "publishVersion", (1,), 0, "only the datanet owner or a curator may publish"),
    # Models
    (3, "Models", "registerBaseModel", ("", H(1)), 0, "name must be"),
    (3, "Models", "registerBaseModel", ("m", ZERO32), 0, "weightsHash is zero"),
    (3, "Models", "commitTrainingRun", (1, 1, 9, H(1), 1, H(2), H(3), H(4)), 0, "unknown base model 9"),
    (3, "Models", "commitTrainingRun", (1, 5, 1, H(1), 1, H(2), H(3), H(4)), 0, "unknown version 5 of datanet 1"),
    (3, "Models", "commitTrainingRun", (8, 1, 1, H(1), 1, H(2), H(3), H(4)), 0, "unknown datanet 8"),
    (3, "Models", "commitTrainingRun", (1, 1, 1, ZERO32, 1, H(2), H(3), H(4)), 0, "configHash is zero"),
    (2, "Models", "registerAdapter", (1, OPEN), 0, "only the run's trainer"),
    (3, "Models", "registerAdapter", (1, OPEN), 0, "adapter already registered"),
    (3, "Models", "registerAdapter", (9, OPEN), 0, "unknown training run 9"),
    (3, "Models", "registerAdapter", (1, MAX), 0, "above the OPEN supply"),
    # Staking
    (7, "Staking", "registerValidator", (0, 1), OPEN, "below the minimum"),
    (7, "Staking", "registerValidator", (10**6 + 1, 1), 200 * OPEN, "commissionPpm 1000001"),
    (7, "Staking", "registerValidator", (0, 4), 200 * OPEN, "unknown capability bits 0x4"),
    (4, "Staking", "registerValidator", (0, 1), 200 * OPEN, "validator already registered"),
    (7, "Staking", "delegate", (A(4),), 0, "delegation amount is zero"),
    (7, "Staking", "delegate", (A(8),), OPEN, "unknown validator"),
    (7, "Staking", "undelegate", (A(4), OPEN), 0, "exceeds the 0 wei staked"),
    (4, "Staking", "undelegate", (A(4), 0), 0, "amount is zero"),
    (7, "Staking", "withdraw", (), 0, "nothing unbonding"),
    (7, "Staking", "withdraw", (), 5, "function is not payable"),
    # InferenceJobs
    (7, "InferenceJobs", "requestInference", (9, H(1), OPEN), OPEN, "unknown adapter 9"),
    (7, "InferenceJobs", "requestInference", (1, H(1), 2 * OPEN), OPEN, "send exactly maxFee"),
    (7, "InferenceJobs", "requestInference", (1, H(1), MAX), OPEN, "send exactly maxFee"),
    (7, "InferenceJobs", "requestInference", (1, H(1), OPEN // 2), OPEN // 2, "below the adapter price"),
    (7, "InferenceJobs", "requestInference", (1, ZERO32, OPEN), OPEN, "promptHash is zero"),
    (4, "InferenceJobs", "submitResult", (1, H(1), H(2)), 0, "unknown job 1"),
    (4, "InferenceJobs", "attest", (0, True), 0, "unknown job 0"),
    (4, "InferenceJobs", "finalise", (MAX,), 0, "unknown job"),
    # Attribution
    (4, "Attribution", "postProof", (1, H(302), H(1), 1, [H(1)], [10**6]), 0, "unknown job 1"),
    (4, "Attribution", "postProof", (1, H(302), H(1), 1, [H(1), H(2)], [500_000, 400_000]), 0, "weights sum to 900000"),
    (4, "Attribution", "postProof", (1, H(302), H(1), 1, [H(1), H(2)], [10**6]), 0, "differ in length"),
    (4, "Attribution", "postProof", (1, H(302), H(1), 1, [H(1), H(1)], [500_000] * 2), 0, "duplicate contentHash"),
    (4, "Attribution", "postProof", (1, H(302), H(1), 1, [H(1), H(2)], [10**6, 0]), 0, "every weight must be positive"),
    (4, "Attribution", "postProof", (1, H(302), H(1), 1, [H(i) for i in range(1, 18)], [1] * 17), 0, "0..16 contributions"),
    (4, "Attribution", "postProof", (1, H(302), H(1), 1, [], []), 0, "unknown job 1"),  # no entries: allowed (no positive score)
    (4, "Attribution", "postProof", (1, H(302), ZERO32, 1, [H(1)], [10**6]), 0, "proofHash is zero"),
    (7, "Attribution", "postProof", (1, H(302), H(1), 1, [H(1)], [10**6]), 0, "not an active validator"),
    (4, "Attribution", "disputeProof", (1, H(1)), 0, "no open proof"),
    (4, "Attribution", "finaliseProof", (1,), 0, "no open proof"),
    # Economics
    (7, "Economics", "claimVested", (), 0, "no vesting schedule"),
]


@pytest.mark.parametrize("sender,module,fn,args,value,expected", CASES,
                         ids=[f"{c[1]}.{c[2]}:{c[5][:30]}" for c in CASES])
def test_bad_call_reverts_with_reason(w, sender, module, fn, args, value, expected):
    before = snapshot(w.nc)
    assert_rejected(w, w.nc.send(w.keys[sender], module, fn, *args, value=value), expected, before)


def _selector(module: str, fn: str) -> bytes:
    entry = next(e for e in CONTRACTS[module].abi if e.get("name") == fn)
    return keccak(text=f"{fn}({','.join(i['type'] for i in entry['inputs'])})")[:4]


MALFORMED = [
    ("Datanets", b"", "unknown function selector 0x"),
    ("Datanets", b"\x12\x34\x56\x78", "unknown function selector 0x12345678"),
    ("Staking", b"\xff", "unknown function selector 0xff"),
    ("Datanets", _selector("Datanets", "contribute") + encode(["uint256"], [1]), "malformed call data"),
    ("Datanets", _selector("Datanets", "curate") + encode(["uint256", "bytes32", "uint256", "uint8"], [1, H(3), 2, 5]),
     "malformed call data"),  # bool = 2
    ("Datanets", _selector("Datanets", "curate") + encode(["uint256", "bytes32", "bool", "uint256"], [1, H(3), True, 256]),
     "malformed call data"),  # uint8 = 256
    ("Datanets", _selector("Datanets", "setAllowed") + encode(["uint256", "uint256", "bool"], [1, 2**200, True]),
     "malformed call data"),  # address with dirty high bits
    ("Attribution", _selector("Attribution", "postProof") + encode(
        ["uint256", "bytes32", "uint32", "uint256", "uint256"], [1, H(1), 1, 2**64, 2**64]), "malformed call data"),
    ("Attribution", _selector("Attribution", "postProof") + encode(
        ["uint256", "bytes32", "uint32", "uint256", "uint256", "uint256"], [1, H(1), 1, 160, 192, 2**255]),
     "malformed call data"),  # array length far beyond the data
    ("Datanets", _selector("Datanets", "createDatanet") + b"\xff" * 300, "malformed call data"),
]


@pytest.mark.parametrize("module,data,expected", MALFORMED, ids=[f"{m}:{d[:6].hex()}" for m, d, _ in MALFORMED])
def test_malformed_call_data_reverts(w, module, data, expected):
    before = snapshot(w.nc)
    assert_rejected(w, w.nc.send_raw(w.keys[7], module, data), expected, before)


def test_reads_of_unknown_ids_revert(w):
    for module, fn, args, reason in [
        ("Datanets", "getDatanet", (5,), "unknown datanet 5"),
        ("Datanets", "getVersion", (1, 2), "unknown version 2"),
        ("Datanets", "contributionAt", (1, 3), "contribution index 3 out of range"),
        ("Models", "getAdapter", (2,), "unknown adapter 2"),
        ("Staking", "getValidator", (A(9),), "unknown validator"),
        ("InferenceJobs", "getJob", (1,), "unknown job 1"),
        ("Attribution", "getProof", (1,), "no proof for job 1"),
    ]:
        with pytest.raises(eth.exceptions.Revert) as e:
            w.nc.call(module, fn, *args)
        assert reason in e.value.args[0][4:].decode(errors="replace"), (fn, e.value.args)


def test_allowlist_datanet_rejects_strangers(nc):
    k, a = nc.keys, nc.addresses
    assert nc.send(k[0], "Datanets", "createDatanet", "private", H(1), 1, "proprietary", 1, OPEN, 10**6, []).ok
    assert nc.send(k[2], "Datanets", "contribute", 1, H(5), 10, value=OPEN).reason == "sender is not on the datanet allowlist"
    assert nc.send(k[1], "Datanets", "setAllowed", 1, a[2], True).reason.startswith("only the datanet owner")
    assert nc.send(k[0], "Datanets", "setAllowed", 1, a[2], True).ok
    assert nc.call("Datanets", "isAllowed", 1, a[2]) is True
    owner_before = nc.balance(a[0])
    r = nc.send(k[2], "Datanets", "contribute", 1, H(5), 10, value=OPEN)
    assert r.ok and nc.balance(a[0]) - owner_before == OPEN  # the contribution fee goes to the owner
    assert to_canonical_address(r.events("Datanets", "Contributed")[0]["contributor"]) == to_canonical_address(a[2])


def _succeeded_job(world) -> None:
    nc, k = world.nc, world.keys
    for key, fn, args, value in [(7, "requestInference", (1, H(301), OPEN), OPEN), (4, "submitResult", (1, H(302), H(303)), 0),
                                 (5, "attest", (1, True), 0), (6, "attest", (1, True), 0)]:
        assert nc.send(k[key], "InferenceJobs", fn, *args, value=value).ok


# Fields the chain checks cheaply at the transaction (docs/native-modules.md, "What the chain refuses").
REFUSED_FIELDS = [
    ("method id outside the registry", (1, H(302), H(400), 9, [H(1)], [10**6]),
     "unknown attribution method id 9 (this chain accepts 1 graddot-v1, 2 datainf-v1, 3 span-v1, 4 semantic-v1, 5 ensemble-v1)"),
    ("method id 0 (no method)", (1, H(302), H(400), 0, [H(1)], [10**6]), "unknown attribution method id 0"),
    ("method id beyond 255", (1, H(302), H(400), 2**32 - 1, [H(1)], [10**6]), f"unknown attribution method id {2**32 - 1}"),
    ("proof names another output", (1, H(999), H(400), 2, [H(1)], [10**6]), "is not job 1's result 0x"),
    ("proof names a zero output", (1, ZERO32, H(400), 2, [H(1)], [10**6]), "is not job 1's result"),
    ("pending contribution", (1, H(302), H(400), 2, [H(3)], [10**6]), "is not an accepted contribution of datanet 1"),
    ("another datanet's row", (1, H(302), H(400), 2, [H(88)], [10**6]), "is not an accepted contribution"),
]


@pytest.mark.parametrize("args,expected", [c[1:] for c in REFUSED_FIELDS], ids=[c[0] for c in REFUSED_FIELDS])
def test_post_proof_refuses_what_the_chain_can_check(world, args, expected):
    _succeeded_job(world)
    before = snapshot(world.nc)
    assert_rejected(world, world.nc.send(world.keys[4], "Attribution", "postProof", *args), expected, before)
    assert world.nc.send(world.keys[4], "Attribution", "postProof", 1, H(302), H(400), 2, [H(1)], [10**6]).ok


def test_a_chain_can_narrow_the_method_registry(nc):
    """`attribution_methods` is a genesis parameter: a chain that enables only span-v1 refuses datainf-v1."""
    narrow = genesis.with_params(nc.genesis, {"attribution_methods": str(1 << 3)})
    world = build_world(NativeChain(narrow))
    _succeeded_job(world)
    r = world.nc.send(world.keys[4], "Attribution", "postProof", 1, H(302), H(400), 2, [H(1)], [10**6])
    assert r.reason == "unknown attribution method id 2 (this chain accepts 3 span-v1)"
    assert world.nc.send(world.keys[4], "Attribution", "postProof", 1, H(302), H(400), 3, [H(1)], [10**6]).ok


def test_dispute_needs_a_reason(world):
    _succeeded_job(world)
    nc, k = world.nc, world.keys
    assert nc.send(k[4], "Attribution", "postProof", 1, H(302), H(400), 2, [H(1)], [10**6]).ok
    before = snapshot(nc)
    assert_rejected(world, nc.send(k[5], "Attribution", "disputeProof", 1, ZERO32), "reasonHash is zero", before)


def test_registry_matches_the_attribution_package():
    from attribution import METHODS
    assert {m.code: name for name, m in METHODS.items()} == dict(genesis.ATTRIBUTION_METHODS)


def test_double_attestation_and_self_attestation(world):
    nc, k = world.nc, world.keys
    assert nc.send(k[7], "InferenceJobs", "requestInference", 1, H(301), OPEN, value=OPEN).ok
    assert nc.send(k[7], "InferenceJobs", "submitResult", 1, H(1), H(2)).reason == \
        "sender is not an active GPU inference validator"
    assert nc.send(k[4], "InferenceJobs", "attest", 1, True).reason == "job has no result awaiting attestation"
    assert nc.send(k[4], "InferenceJobs", "submitResult", 1, H(1), H(2)).ok
    assert nc.send(k[4], "InferenceJobs", "submitResult", 1, H(1), H(2)).reason == "job is not awaiting a result"
    assert nc.send(k[4], "InferenceJobs", "attest", 1, True).reason == "the submitter may not attest its own result"
    assert nc.send(k[5], "InferenceJobs", "attest", 1, True).ok
    before = snapshot(nc)
    assert_rejected(world, nc.send(k[5], "InferenceJobs", "attest", 1, False), "already attested", before)
    assert nc.call("InferenceJobs", "attestation", 1, world.addrs[5]) == 1
