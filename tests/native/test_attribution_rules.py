"""Attribution rules of the services slice (#14): a proof with no entries (no contribution had a
positive score) still settles the escrowed fee, the contributors' part going to the treasury; a
proof disputed by a quorum is rejected at once and its poster slashed (attribution_slash_ppm), one
disputed short of a quorum is rejected unpaid and unslashed when its window closes; a job whose
proof never comes is settled without one after proof_timeout_s; the poster of a paid-out proof is
paid a work share of that block's reserve release. The OPEN supply identity is checked after every
block (NativeChain does it).
"""
from tests.native.conftest import OPEN, H

ZERO_ADDRESS = "0x" + "0" * 40

from vm.modules.attribution import split_fee
from vm.modules.storage import slot_of
from vm.modules.system import ECONOMICS, INFERENCE_JOBS


def _succeeded_job(world) -> int:
    nc, k = world.nc, world.keys
    r = nc.send(k[7], "InferenceJobs", "requestInference", 1, H(301), OPEN, value=OPEN)
    assert r.ok, r.reason
    job = r.events("InferenceJobs", "InferenceRequested")[0]["jobId"]
    assert nc.send(k[4], "InferenceJobs", "submitResult", job, H(302), H(303)).ok
    assert nc.send(k[5], "InferenceJobs", "attest", job, True).ok
    assert nc.send(k[6], "InferenceJobs", "attest", job, True).ok
    return job


def test_a_proof_with_no_positive_score_pays_the_contributors_part_to_the_treasury(world):
    nc, k, a = world.nc, world.keys, world.addrs
    job = _succeeded_job(world)
    r = nc.send(k[4], "Attribution", "postProof", job, H(302), H(400), 1, [], [])
    assert r.ok, r.reason
    nc.now += 600
    treasury = "0x" + nc.genesis.treasury.hex()
    before = {x: nc.balance(x) for x in (treasury, a[3], a[2])}
    escrow_before = nc.balance("0x" + INFERENCE_JOBS.hex())
    r = nc.send(k[0], "Attribution", "finaliseProof", job)
    assert r.ok, r.reason
    _, owner, per_validator, treasury_part = split_fee(OPEN, (500_000, 200_000, 200_000, 100_000), [], 3)
    split = r.events("Attribution", "FeeSplit")[0]
    assert (split["contributors"], split["modelOwner"], split["validators"], split["treasury"]) == (
        0, owner, sum(per_validator), treasury_part)
    assert treasury_part == OPEN - owner - sum(per_validator) >= OPEN // 2  # the contributors' half included
    assert nc.balance(treasury) - before[treasury] == treasury_part
    assert nc.balance(a[3]) - before[a[3]] == owner and nc.balance(a[2]) == before[a[2]]
    assert escrow_before - nc.balance("0x" + INFERENCE_JOBS.hex()) == OPEN  # nothing stuck


def _work_recorded(nc) -> list[bytes]:
    """Who economics.record_work credited in the head block."""
    block, state = nc.chain.get_canonical_head().block_number, nc.state
    return [state.get_storage(ECONOMICS, slot_of(103, block, i)).to_bytes(20, "big")
            for i in range(state.get_storage(ECONOMICS, slot_of(102, block)))]


def test_a_proof_disputed_by_a_quorum_is_rejected_its_poster_slashed_and_an_honest_one_paid(world):
    nc, k, a = world.nc, world.keys, world.addrs
    job = _succeeded_job(world)
    inflated = nc.send(k[4], "Attribution", "postProof", job, H(302), H(401), 1, [H(1), H(2)], [990_000, 10_000])
    assert inflated.ok, inflated.reason
    assert nc.send(k[4], "Attribution", "disputeProof", job, H(9)).reason == "the poster may not dispute its own proof"
    r = nc.send(k[5], "Attribution", "disputeProof", job, H(9))
    assert r.events("Attribution", "ProofDisputed") == [{"jobId": job, "disputer": a[5], "reasonHash": H(9)}]
    window = inflated.events("Attribution", "ProofPosted")[0]["disputeDeadline"]
    assert r.events("Attribution", "ProofRejected") == [] and nc.call("Attribution", "getProof", job)[3:] == (
        1, window, 2, 1)  # still open, one dispute of the quorum of two
    assert nc.call("Attribution", "hasDisputed", job, a[5]) is True
    assert nc.call("Attribution", "hasDisputed", job, a[6]) is False
    assert nc.send(k[5], "Attribution", "disputeProof", job, H(9)).reason == "validator already disputed this proof"
    stake_before, treasury = nc.call("Staking", "getValidator", a[4])[0], "0x" + nc.genesis.treasury.hex()
    treasury_before = nc.balance(treasury)
    r = nc.send(k[6], "Attribution", "disputeProof", job, H(10))  # the quorum: upheld at once
    assert r.ok, r.reason
    slashed = r.events("Staking", "Slashed")
    assert [(e["validator"].lower(), e["amount"]) for e in slashed] == [(a[4].lower(), stake_before // 10)]
    assert r.events("Attribution", "ProofRejected") == [{"jobId": job, "poster": a[4], "disputes": 2,
                                                          "slashed": stake_before // 10}]
    assert nc.call("Staking", "getValidator", a[4])[0] == stake_before - stake_before // 10
    assert nc.balance(treasury) - treasury_before == stake_before // 10
    assert nc.call("Attribution", "hasDisputed", job, a[5]) is False  # no open proof
    honest = nc.send(k[5], "Attribution", "postProof", job, H(302), H(402), 1, [H(1), H(2)], [600_000, 400_000])
    assert honest.ok, honest.reason
    assert nc.call("Attribution", "hasDisputed", job, a[5]) is False  # a new proof, a new round of disputes
    nc.now += 600
    r = nc.send(k[0], "Attribution", "finaliseProof", job)
    assert r.ok, r.reason
    paid = {(e["account"].lower(), e["amount"]) for e in r.events("Attribution", "RewardPaid") if e["role"] == 0}
    assert paid == {(a[2].lower(), OPEN // 2 * 600_000 // 10**6), (a[2].lower(), OPEN // 2 * 400_000 // 10**6)}
    assert _work_recorded(nc) == [bytes.fromhex(a[5][2:])]  # the honest poster's attribution, paid from this block's release


def test_a_proof_disputed_short_of_a_quorum_is_rejected_unpaid_and_unslashed_when_its_window_closes(world):
    nc, k, a = world.nc, world.keys, world.addrs
    job = _succeeded_job(world)
    assert nc.send(k[4], "Attribution", "postProof", job, H(302), H(401), 1, [H(1)], [10**6]).ok
    assert nc.send(k[5], "Attribution", "disputeProof", job, H(9)).ok
    nc.now += 600
    assert nc.send(k[6], "Attribution", "disputeProof", job, H(9)).reason == "dispute window closed"
    escrow, stake = nc.balance("0x" + INFERENCE_JOBS.hex()), nc.call("Staking", "getValidator", a[4])[0]
    r = nc.send(k[0], "Attribution", "finaliseProof", job)
    assert r.ok, r.reason
    assert r.events("Attribution", "ProofRejected") == [{"jobId": job, "poster": a[4], "disputes": 1, "slashed": 0}]
    assert r.events("Attribution", "FeeSplit") == [] and r.events("Staking", "Slashed") == []
    assert nc.balance("0x" + INFERENCE_JOBS.hex()) == escrow and nc.call("Staking", "getValidator", a[4])[0] == stake
    assert nc.send(k[0], "Attribution", "getProof", job).reason == f"no proof for job {job}"
    assert nc.send(k[6], "Attribution", "postProof", job, H(302), H(402), 1, [H(2)], [10**6]).ok  # awaits a new one
    assert nc.send(k[5], "Attribution", "disputeProof", job, H(11)).ok  # the same disputer, a new round


def test_a_job_whose_proof_never_comes_is_settled_without_one_after_the_proof_timeout(world):
    nc, k, a = world.nc, world.keys, world.addrs
    job = _succeeded_job(world)
    succeeded_at = nc.now  # the block of the quorum's attestation
    deadline = nc.call("Attribution", "proofDeadline", job)
    assert deadline == succeeded_at + 3600  # genesis proof_timeout_s
    assert nc.send(k[0], "Attribution", "finaliseWithoutProof", job).reason == \
        f"proof due until {deadline} (proof_timeout_s after the job succeeded)"
    assert nc.send(k[4], "Attribution", "postProof", job, H(302), H(401), 1, [H(1)], [10**6]).ok
    assert nc.send(k[5], "Attribution", "disputeProof", job, H(9)).ok
    assert nc.send(k[6], "Attribution", "disputeProof", job, H(9)).ok  # rejected: no proof again
    nc.now = deadline + 60
    assert nc.send(k[7], "Attribution", "postProof", job, H(302), H(402), 1, [H(2)], [10**6]).reason == \
        "sender is not an active validator"
    treasury = "0x" + nc.genesis.treasury.hex()
    before = {x: nc.balance(x) for x in (treasury, a[2], a[3], a[7])}
    escrow = nc.balance("0x" + INFERENCE_JOBS.hex())
    r = nc.send(k[8], "Attribution", "finaliseWithoutProof", job)  # anyone
    assert r.ok, r.reason
    assert r.events("Attribution", "SettledWithoutProof") == [{"jobId": job, "caller": a[8]}]
    _, owner, per_validator, treasury_part = split_fee(OPEN, (500_000, 200_000, 200_000, 100_000), [], 3)
    split = r.events("Attribution", "FeeSplit")[0]
    assert (split["contributors"], split["modelOwner"], split["validators"], split["treasury"]) == (
        0, owner, sum(per_validator), treasury_part)
    assert nc.balance(treasury) - before[treasury] == treasury_part >= OPEN // 2  # the contributors' half with it
    assert nc.balance(a[3]) - before[a[3]] == owner
    assert {(e["account"].lower(), e["amount"]) for e in r.events("Attribution", "RewardPaid") if e["role"] == 2} == \
        {(v.lower(), per_validator[0]) for v in a[4:7]}  # the server and its two attesters
    assert nc.balance(a[2]) == before[a[2]] and nc.balance(a[7]) == before[a[7]]  # no contributor, no refund
    assert escrow - nc.balance("0x" + INFERENCE_JOBS.hex()) == OPEN  # nothing stuck
    assert _work_recorded(nc) == []  # no attribution was done
    assert nc.call("Attribution", "getProof", job) == (ZERO_ADDRESS, bytes(32), 0, 3, 0, 0, 0)
    assert nc.send(k[0], "Attribution", "finaliseWithoutProof", job).reason == "job already settled"
    assert nc.send(k[4], "Attribution", "postProof", job, H(302), H(403), 1, [H(1)], [10**6]).reason == \
        f"job {job} was settled without a proof (proof_timeout_s)"


def test_an_open_proof_holds_off_the_timeout_and_a_failed_job_has_none(world):
    nc, k = world.nc, world.keys
    job = _succeeded_job(world)
    assert nc.send(k[4], "Attribution", "postProof", job, H(302), H(401), 1, [H(1)], [10**6]).ok
    nc.now += 3600
    assert nc.send(k[0], "Attribution", "finaliseWithoutProof", job).reason == \
        "a proof is open: finaliseProof settles it when its dispute window closes"
    assert nc.send(k[7], "InferenceJobs", "requestInference", 1, H(305), OPEN, value=OPEN).ok
    nc.now += 600
    assert nc.send(k[0], "InferenceJobs", "finalise", job + 1).ok  # refunded: nobody served it
    assert nc.send(k[0], "Attribution", "finaliseWithoutProof", job + 1).reason == f"job {job + 1} has not succeeded"


def test_a_chain_with_both_parameters_at_zero_neither_slashes_attributors_nor_times_proofs_out():
    """What a chain started before the parameters existed reads (their slots hold 0)."""
    import dataclasses

    import genesis
    from tests.native.conftest import build_world
    from tests.native.native_chain import NativeChain

    g = genesis.devnet(economics=dataclasses.replace(genesis.Economics(), attribution_slash_ppm=0, proof_timeout_s=0))
    world = build_world(NativeChain(g))
    nc, k, a = world.nc, world.keys, world.addrs
    job = _succeeded_job(world)
    assert nc.call("Attribution", "proofDeadline", job) == 0
    nc.now += 10**6
    assert nc.send(k[0], "Attribution", "finaliseWithoutProof", job).reason == \
        "this chain has no proof timeout (proof_timeout_s is 0)"
    assert nc.send(k[4], "Attribution", "postProof", job, H(302), H(401), 1, [H(1)], [10**6]).ok
    assert nc.send(k[5], "Attribution", "disputeProof", job, H(9)).ok
    r = nc.send(k[6], "Attribution", "disputeProof", job, H(9))
    assert r.events("Attribution", "ProofRejected")[0]["slashed"] == 0 and r.events("Staking", "Slashed") == []
    assert nc.call("Staking", "getValidator", a[4])[0] == 200 * OPEN
