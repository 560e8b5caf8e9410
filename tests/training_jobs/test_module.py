"""The TrainingJobs module's rules on our real VM (tests/native's in-memory chain, which checks the
OPEN supply identity after every block): the paid flow and its fee split, the data-use fee in
proportion to accepted contributions, every deadline's refund, an invalid quorum's slashing (the
trainer and a verifier that attested without replaying), and hostile input reverting with a reason
and changing nothing."""
import pytest
from eth_utils import keccak

from tests.native.conftest import OPEN, H, build_world
from tests.native.native_chain import ADDRESS, NativeChain
from tests.native.test_bad_input import assert_rejected, snapshot
from vm.modules import training_jobs
from vm.modules.system import PPM

FEE = 5 * OPEN
PRICE = 10**6 + 1  # wei: over three accepted contributions (dev2 two, dev8 one) it leaves a dust of 1
RUN = (H(11), H(12), H(13), H(14), H(15), H(16))  # record, manifest, config, adapter, metrics, index root


def _world():
    """tests/native's world, plus a third accepted contribution (by dev8) in version 2 and dev9 staked."""
    w = build_world(NativeChain())
    k = w.keys
    for key, module, fn, args, value in [
        (k[8], "Datanets", "contribute", (1, H(4), 100), 0),
        (k[1], "Datanets", "curate", (1, H(4), True, 50), 0),
        (k[0], "Datanets", "publishVersion", (1,), 0),
        (k[9], "Staking", "registerValidator", (0, 1), 200 * OPEN),
    ]:
        r = w.nc.send(key, module, fn, *args, value=value)
        assert r.ok, (fn, r.reason)
    return w


@pytest.fixture(scope="module")
def w():
    """One world for the flow tests: each makes its own jobs, so they do not disturb one another."""
    return _world()


def _request(w, fee=FEE, version=2, builder=7):
    r = w.nc.send(w.keys[builder], "TrainingJobs", "requestTraining", 1, version, 1, H(9), fee, value=fee)
    assert r.ok, r.reason
    return r.events("TrainingJobs", "TrainingRequested")[0]["jobId"]


def _submitted(w, trainer=4, fee=FEE):
    job = _request(w, fee)
    assert w.nc.send(w.keys[trainer], "TrainingJobs", "claimJob", job).ok
    r = w.nc.send(w.keys[trainer], "TrainingJobs", "submitRun", job, *RUN, 3)
    assert r.ok, r.reason
    w.nc.mine([])  # the challenge block (submitBlock + 1) is sealed
    return job


def _attest(w, job, v, valid=True):
    segments = list(w.nc.call("TrainingJobs", "challengeSegments", job, w.addrs[v]))
    return w.nc.send(w.keys[v], "TrainingJobs", "attest", job, valid, segments, H(99))


def test_a_verified_run_is_registered_for_the_builder_and_the_fee_split_by_contributions(w):
    nc, a = w.nc, w.addrs
    assert nc.send(w.keys[0], "TrainingJobs", "setDataUsePrice", 1, 2, PRICE).ok
    job = _submitted(w)
    escrow, runs, ledger = nc.balance(ADDRESS["TrainingJobs"]), nc.call("Models", "runCount"), nc.call(
        "Economics", "rewardsOf", a[8])
    before = {i: nc.balance(a[i]) for i in (2, 8)}  # validators also earn block rewards
    treasury = nc.balance(nc.genesis.treasury)
    assert _attest(w, job, 5).ok and _attest(w, job, 6).ok
    r = _attest(w, job, 9)  # the last eligible voter: decided at once
    assert r.ok, r.reason
    done = r.events("TrainingJobs", "TrainingCompleted")[0]
    run = r.events("Models", "TrainingRunCommitted")[0]
    assert run["trainer"] == a[7] and done["runId"] == run["runId"] == runs + 1  # the builder owns the run
    assert nc.call("Models", "getTrainingRun", runs + 1)[5] == H(13)  # the record `train --commit` writes
    # data use: 3 accepted contributions, dev2 has 2 and dev8 1; 1000001 * 2 // 3 + 1000001 // 3 = 1000000
    paid = {e["contributor"]: e["amount"] for e in r.events("TrainingJobs", "DataUseFeePaid")}
    assert paid == {a[2]: PRICE * 2 // 3, a[8]: PRICE // 3}
    assert done["treasuryDust"] == PRICE - sum(paid.values()) == 1
    verifiers = (FEE - PRICE) * 100_000 // PPM // 3 * 3
    assert done["verifierFee"] == verifiers and done["trainerFee"] == FEE - PRICE - verifiers
    assert nc.balance(a[2]) - before[2] == PRICE * 2 // 3 and nc.balance(a[8]) - before[8] == PRICE // 3
    assert nc.balance(nc.genesis.treasury) - treasury >= 1
    assert nc.call("Economics", "rewardsOf", a[8]) - ledger == PRICE // 3  # the ledger ol_getRewards reads
    assert nc.balance(ADDRESS["TrainingJobs"]) == escrow - FEE  # the job's whole fee left the escrow
    assert nc.send(w.keys[7], "Models", "registerAdapter", runs + 1, OPEN).ok  # the builder serves its adapter


def test_the_seed_is_derived_from_the_parent_block_as_training_derives_it(w):
    from training import derive_seed

    job = _request(w)
    header = w.nc.chain.get_canonical_head()
    parent = w.nc.chain.get_block_header_by_hash(header.parent_hash)
    assert w.nc.call("TrainingJobs", "getJob", job)[7] == derive_seed(parent.hash, job)


def test_segments_differ_by_validator_and_are_fixed_by_the_later_block(w):
    job = _request(w)
    assert w.nc.send(w.keys[4], "TrainingJobs", "claimJob", job).ok
    assert w.nc.send(w.keys[4], "TrainingJobs", "submitRun", job, *RUN, 40).ok
    with pytest.raises(Exception):  # the challenge block is not sealed yet
        w.nc.call("TrainingJobs", "challengeSegments", job, w.addrs[5])
    w.nc.mine([])
    picks = {v: w.nc.call("TrainingJobs", "challengeSegments", job, w.addrs[v]) for v in (5, 6, 9)}
    assert all(len(p) == 2 and list(p) == sorted(set(p)) and max(p) < 40 for p in picks.values())
    assert len(set(picks.values())) > 1
    w.nc.mine([])
    assert picks[5] == w.nc.call("TrainingJobs", "challengeSegments", job, w.addrs[5])  # stable afterwards
    assert training_jobs.choose_segments(b"\x01" * 32, b"\x02" * 20, 3, 5) == [0, 1, 2]


def test_an_invalid_quorum_refunds_the_builder_and_slashes_the_trainer_and_the_lazy_verifier(w):
    """dev5 attests valid without replaying; dev6 and dev9 replay and find the run wrong."""
    nc, a = w.nc, w.addrs
    job = _submitted(w)
    builder, runs = nc.balance(a[7]), nc.call("Models", "runCount")
    stakes = {v: nc.call("Staking", "getValidator", a[v])[0] for v in (4, 5, 6, 9)}
    assert _attest(w, job, 5, True).ok and _attest(w, job, 6, False).ok
    r = _attest(w, job, 9, False)
    assert r.ok, r.reason
    failed = r.events("TrainingJobs", "TrainingFailed")[0]
    assert failed["status"] == training_jobs.FAILED and failed["refund"] == FEE
    assert nc.balance(a[7]) - builder == FEE
    slashed = {e["validator"] for e in r.events("Staking", "Slashed")}
    assert slashed == {a[4], a[5]}
    after = {v: nc.call("Staking", "getValidator", a[v])[0] for v in (4, 5, 6, 9)}
    assert after[6] == stakes[6] and after[9] == stakes[9] and after[4] < stakes[4] and after[5] < stakes[5]
    assert nc.call("Models", "runCount") == runs  # no run registered


def test_a_valid_quorum_short_of_every_vote_completes_at_the_window_end(w):
    nc = w.nc
    job = _submitted(w)
    assert _attest(w, job, 5).ok and _attest(w, job, 6).ok
    assert nc.call("TrainingJobs", "getJob", job)[8] == training_jobs.SUBMITTED  # dev9 may still object
    r = nc.send(w.keys[7], "TrainingJobs", "finalise", job)
    assert not r.ok and "open until" in r.reason
    nc.mine([], advance=600)
    r = nc.send(w.keys[1], "TrainingJobs", "finalise", job)  # anyone
    assert r.ok and r.events("TrainingJobs", "TrainingCompleted")


def test_a_split_vote_at_the_window_end_refunds_without_slashing(w):
    nc = w.nc
    job = _submitted(w)
    assert _attest(w, job, 5, True).ok and _attest(w, job, 6, False).ok
    nc.mine([], advance=600)
    r = nc.send(w.keys[7], "TrainingJobs", "finalise", job)
    assert r.ok and r.events("TrainingJobs", "TrainingFailed")[0]["status"] == training_jobs.REFUNDED
    assert not r.events("Staking", "Slashed")


@pytest.mark.parametrize("stage, window", [("requested", 600), ("claimed", 3600), ("submitted", 600)])
def test_a_missed_deadline_refunds_the_whole_fee(w, stage, window):
    nc, a = w.nc, w.addrs
    job = _submitted(w) if stage == "submitted" else _request(w)
    if stage == "claimed":
        assert nc.send(w.keys[4], "TrainingJobs", "claimJob", job).ok
    builder, escrow = nc.balance(a[7]), nc.balance(ADDRESS["TrainingJobs"])
    nc.mine([], advance=window)
    late = {"requested": ("claimJob", (job,), 5), "claimed": ("submitRun", (job, *RUN, 3), 4),
            "submitted": ("attest", (job, True, [0, 1], H(1)), 5)}[stage]
    r = nc.send(w.keys[late[2]], "TrainingJobs", late[0], *late[1])
    assert not r.ok and "closed" in r.reason, r.reason
    r = nc.send(w.keys[1], "TrainingJobs", "finalise", job)
    assert r.ok and r.events("TrainingJobs", "TrainingFailed")[0]["status"] == training_jobs.REFUNDED
    assert nc.balance(a[7]) - builder == FEE and nc.balance(ADDRESS["TrainingJobs"]) == escrow - FEE


@pytest.fixture(scope="module")
def hostile():
    """One world with job 1 submitted by dev4 (dev5 attested) and job 2 requested."""
    w = _world()
    assert w.nc.send(w.keys[0], "TrainingJobs", "setDataUsePrice", 1, 2, OPEN).ok
    job = _submitted(w)
    assert _attest(w, job, 5).ok
    _request(w)
    return w


def _hostile_cases():
    return [
        (0, "setDataUsePrice", (9, 1, 1), 0, "unknown datanet 9"),
        (0, "setDataUsePrice", (1, 7, 1), 0, "unknown version 7 of datanet 1"),
        (2, "setDataUsePrice", (1, 1, 1), 0, "only the datanet owner"),
        (0, "setDataUsePrice", (1, 1, 10**28), 0, "above the OPEN supply"),
        (7, "requestTraining", (9, 1, 1, H(9), FEE), FEE, "unknown datanet 9"),
        (7, "requestTraining", (1, 3, 1, H(9), FEE), FEE, "unknown version 3 of datanet 1"),
        (7, "requestTraining", (1, 0, 1, H(9), FEE), FEE, "unknown version 0 of datanet 1"),
        (7, "requestTraining", (1, 2, 5, H(9), FEE), FEE, "unknown base model 5"),
        (7, "requestTraining", (1, 2, 1, bytes(32), FEE), FEE, "configBlobHash is zero"),
        (7, "requestTraining", (1, 2, 1, H(9), OPEN), OPEN, "must exceed the data-use price"),
        (7, "requestTraining", (1, 2, 1, H(9), FEE), FEE - 1, "send exactly maxFee"),
        (4, "claimJob", (0,), 0, "unknown training job 0"),
        (4, "claimJob", (3,), 0, "unknown training job 3"),
        (7, "claimJob", (2,), 0, "not an active GPU validator"),
        (5, "claimJob", (1,), 0, "not open to a claim"),  # double claim
        (5, "submitRun", (2, *RUN, 3), 0, "not awaiting a run"),
        (4, "submitRun", (1, *RUN, 3), 0, "not awaiting a run"),
        (6, "attest", (1, True, [0, 7], H(1)), 0, "are not the ones the challenge picks"),
        (5, "attest", (1, True, [0, 1], H(1)), 0, "already attested"),  # a replayed attestation
        (4, "attest", (1, True, [0, 1], H(1)), 0, "the trainer may not attest"),
        (7, "attest", (1, True, [0, 1], H(1)), 0, "not an active validator"),
        (6, "attest", (2, True, [0, 1], H(1)), 0, "no run awaits attestation"),
        (7, "finalise", (1,), 0, "open until"),
        (7, "finalise", (2,), 0, "open until"),
        (7, "requestTraining", (1, 2, 1, H(9), FEE), 0, "send exactly maxFee"),
        (7, "finalise", (1,), 1, "function is not payable"),
    ]


@pytest.mark.parametrize("who, fn, args, value, reason", _hostile_cases())
def test_hostile_input_reverts_with_a_reason_and_changes_nothing(hostile, who, fn, args, value, reason):
    before = snapshot(hostile.nc)
    r = hostile.nc.send(hostile.keys[who], "TrainingJobs", fn, *args, value=value)
    assert_rejected(hostile, r, reason, before)


def test_a_submit_by_another_validator_or_with_zero_hashes_reverts(w):
    job = _request(w)
    assert w.nc.send(w.keys[4], "TrainingJobs", "claimJob", job).ok
    before = snapshot(w.nc)
    assert_rejected(w, w.nc.send(w.keys[5], "TrainingJobs", "submitRun", job, *RUN, 3), "only the trainer", before)
    assert_rejected(w, w.nc.send(w.keys[4], "TrainingJobs", "submitRun", job, *RUN[:5], bytes(32), 3),
                    "attributionIndexRoot is zero", before)
    assert_rejected(w, w.nc.send(w.keys[4], "TrainingJobs", "submitRun", job, *RUN, 0), "segmentCount must be", before)


def test_malformed_call_data_reverts(hostile):
    before = snapshot(hostile.nc)
    selector = keccak(text="attest(uint256,bool,uint256[],bytes32)")[:4]
    r = hostile.nc.send_raw(hostile.keys[6], "TrainingJobs", selector + b"\x01" * 7)
    assert_rejected(hostile, r, "malformed call data", before)


@pytest.mark.parametrize("field, value", [("training_verify_segments", 0), ("training_verifier_ppm", PPM + 1)])
def test_a_genesis_whose_training_params_cannot_work_is_refused(field, value):
    import genesis

    with pytest.raises(genesis.GenesisError, match="trainingVerifySegments must be >= 1"):
        genesis.devnet(economics=genesis.Economics(**{field: value}))


def test_reads_of_unknown_ids_revert(hostile):
    import eth.exceptions

    for fn, args, reason in [
        ("getJob", (3,), "unknown training job 3"),
        ("getRun", (0,), "unknown training job 0"),
        ("attestation", (9, hostile.addrs[5]), "unknown training job 9"),
        ("challengeSegments", (2, hostile.addrs[5]), "job has no submitted run"),
        ("dataUsePrice", (1, 9), "unknown version 9 of datanet 1"),
    ]:
        with pytest.raises(eth.exceptions.Revert) as e:
            hostile.nc.call("TrainingJobs", fn, *args)
        assert reason in e.value.args[0][4:].decode(errors="replace"), (fn, e.value.args)
