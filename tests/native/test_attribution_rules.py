"""Attribution rules of the services slice (#14): a proof with no entries (no contribution had a
positive score) still settles the escrowed fee, the contributors' part going to the treasury; a
disputed proof is cleared and a new one may be posted; the poster of a paid-out proof is paid a
work share of that block's reserve release. The OPEN supply identity is checked after every block
(NativeChain does it)."""
from tests.native.conftest import OPEN, H

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


def test_a_disputed_proof_is_cleared_and_an_honest_one_paid_with_a_work_share_for_its_poster(world):
    nc, k, a = world.nc, world.keys, world.addrs
    job = _succeeded_job(world)
    inflated = nc.send(k[4], "Attribution", "postProof", job, H(302), H(401), 1, [H(1), H(2)], [990_000, 10_000])
    assert inflated.ok, inflated.reason
    assert nc.send(k[4], "Attribution", "disputeProof", job, H(9)).reason == "the poster may not dispute its own proof"
    r = nc.send(k[5], "Attribution", "disputeProof", job, H(9))
    assert r.events("Attribution", "ProofDisputed") == [{"jobId": job, "disputer": a[5], "reasonHash": H(9)}]
    honest = nc.send(k[5], "Attribution", "postProof", job, H(302), H(402), 1, [H(1), H(2)], [600_000, 400_000])
    assert honest.ok, honest.reason
    nc.now += 600
    r = nc.send(k[0], "Attribution", "finaliseProof", job)
    assert r.ok, r.reason
    paid = {(e["account"].lower(), e["amount"]) for e in r.events("Attribution", "RewardPaid") if e["role"] == 0}
    assert paid == {(a[2].lower(), OPEN // 2 * 600_000 // 10**6), (a[2].lower(), OPEN // 2 * 400_000 // 10**6)}
    block, state = nc.chain.get_canonical_head().block_number, nc.state
    workers = [state.get_storage(ECONOMICS, slot_of(103, block, i)).to_bytes(20, "big")
               for i in range(state.get_storage(ECONOMICS, slot_of(102, block)))]
    assert workers == [bytes.fromhex(a[5][2:])]  # the honest poster's attribution, paid from this block's release
