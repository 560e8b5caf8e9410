"""Proof of Attribution on chain: a staked validator posts which accepted contributions shaped a
succeeded inference job (weights in parts per million summing to 1,000,000), naming the job's
output hash and a method id the chain's registry enables (`attribution_methods`); other validators
may dispute it within `dispute_window_s`; afterwards anyone finalises it and the job's escrowed
fee is split, and the poster's attribution is recorded as verified work of that block (paid, like
a served job, from the block's reserve release: economics.record_work).

Disputes are votes against the open proof, one per validator (the poster excepted). When
`attestation_quorum` of them are in, the dispute is upheld at once: the proof is rejected and its
poster loses `attribution_slash_ppm` of its self stake to the treasury (Staking.slash, as a server
whose result a quorum found invalid). A proof with fewer disputes when its window closes is
rejected by finaliseProof without slashing (no quorum, no proof of fault). Either way the job
awaits a new proof; the rejected one stays in the logs (ProofPosted, ProofDisputed, ProofRejected).

A proof with no entries says that no contribution had a positive score: it is disputable and
finalised the same way, and its fee split pays the model owner and validators as usual while the
contributors' part, which no row earned, goes to the treasury (not back to the requester, who was
served; and never left in escrow).

Proof timeout: when no proof is open or paid `proof_timeout_s` after the job succeeded (no
attributor holds the adapter's run, or every proof was rejected), anyone may call
finaliseWithoutProof: the fee is split as for a proof with no entries (model owner and validators
paid, the contributors' part to the treasury), and no attribution work is recorded. The
contributors' part goes to the treasury rather than back to the requester so that nobody who could
hold a proof back (a requester who is also a validator disputing honest proofs, an idle attributor)
gains from the timeout. A proof may still be posted after the deadline as long as nobody has
settled the job; a proof open at the deadline blocks the timeout until it is paid or rejected.

Fee split (the rule other implementations must reproduce; parts always sum exactly to the fee):
  contributors = fee * contributorsPpm // 1e6, modelOwner = fee * ownerPpm // 1e6,
  validators = fee * validatorsPpm // 1e6, treasury = fee - the three above;
  contributor i gets contributors * weight_i // 1e6; the validators' part is shared equally by
  the result's submitter and its valid attesters; every integer remainder goes to the treasury.

Storage (slots in the Attribution account):
  0  proofs[jobId] -> p: p+0 poster | status << 160 | methodId << 168; p+1 proofHash;
     p+2 disputeDeadline; p+3 entryCount; p+4 disputes of the open proof; p+5 proofs of the job
     rejected so far (the round that keys disputers)
  1  entries[jobId][index] -> e: e+0 contentHash; e+1 contributor | weightPpm << 160
  2  disputers[jobId][round][validator] -> 1 once that validator disputed that round's proof
"""
from eth_utils import to_canonical_address

from genesis.params import method_names
from vm.modules import datanets, economics, inference_jobs, models, staking
from vm.modules.abi import Call, NativeModule
from vm.modules.storage import pack, require, slot_of, unpack
from vm.modules.system import (
    ATTRIBUTION, DATANETS, ECONOMICS, INFERENCE_JOBS, MODELS, PPM, STAKING, credit_reward, read_param,
)

PROOFS, ENTRIES, DISPUTERS = range(3)
NONE, POSTED, PAID, UNATTRIBUTED = 0, 1, 2, 3
SLASH_REASON = b"attribution proof disputed".ljust(32, b"\x00")
MAX_ENTRIES = 16
CONTRIBUTOR, MODEL_OWNER, VALIDATOR, TREASURY = range(4)
HEAD_WIDTHS = (160, 8, 32)


def split_fee(fee: int, split_ppm: tuple[int, int, int, int], weights_ppm: list[int], validators: int
              ) -> tuple[list[int], int, list[int], int]:
    """(per-contributor amounts, model owner, per-validator amounts, treasury) for `fee`.

    Pure integer arithmetic; the result always sums to `fee` (property-tested)."""
    contributors_part = fee * split_ppm[0] // PPM
    owner_part = fee * split_ppm[1] // PPM
    validators_part = fee * split_ppm[2] // PPM
    per_contributor = [contributors_part * w // PPM for w in weights_ppm]
    per_validator = [validators_part // validators] * validators if validators else []
    treasury = fee - sum(per_contributor) - owner_part - sum(per_validator)
    return per_contributor, owner_part, per_validator, treasury


def proof_slot(job_id: int) -> int:
    return slot_of(PROOFS, job_id)


def _succeeded_job(call: Call, job_id: int) -> int:
    jobs = call.store_of(INFERENCE_JOBS)
    j = inference_jobs.existing(jobs, job_id)
    require(inference_jobs.status_of(jobs, j)[0] == inference_jobs.SUCCEEDED, f"job {job_id} has not succeeded")
    return j


def post_proof(call: Call, job_id, output_hash, proof_hash, method_id, content_hashes, weights):
    st = call.store
    require(proof_hash != bytes(32), "proofHash is zero")
    require(len(content_hashes) <= MAX_ENTRIES, f"0..{MAX_ENTRIES} contributions per proof")
    require(len(weights) == len(content_hashes), "contentHashes and weightsPpm differ in length")
    require(len(set(content_hashes)) == len(content_hashes), "duplicate contentHash in proof")
    require(all(w > 0 for w in weights), "every weight must be positive")
    require(not weights or sum(weights) == PPM, f"weights sum to {sum(weights)}, must be {PPM}")
    econ = call.store_of(ECONOMICS)
    enabled = read_param(econ, "attribution_methods")
    require(enabled >> method_id & 1 == 1,
            f"unknown attribution method id {method_id} (this chain accepts {method_names(enabled) or 'none'})")
    require(staking.is_active(call.store_of(STAKING), econ, call.sender), "sender is not an active validator")
    j = _succeeded_job(call, job_id)
    result = call.store_of(INFERENCE_JOBS).read(j + 6).to_bytes(32, "big")
    require(output_hash == result, f"outputHash 0x{output_hash.hex()} is not job {job_id}'s result 0x{result.hex()}")
    p = proof_slot(job_id)
    status = unpack(st.read(p), HEAD_WIDTHS)[1]
    require(status != UNATTRIBUTED, f"job {job_id} was settled without a proof (proof_timeout_s)")
    require(status == NONE, "proof already posted for this job")
    adapter_id = call.store_of(INFERENCE_JOBS).read(j + 1)
    _, _, datanet_id = models.adapter_lineage(call.store_of(MODELS), adapter_id)
    dn = call.store_of(DATANETS)
    contributors = []
    for h in content_hashes:
        contributor, _, status, _, _ = datanets.contribution_record(dn, datanet_id, h)
        require(status == datanets.ACCEPTED, f"0x{h.hex()} is not an accepted contribution of datanet {datanet_id}")
        contributors.append(contributor)
    deadline = call.timestamp + read_param(econ, "dispute_window_s")
    st.write(p, pack([(int.from_bytes(call.sender, "big"), 160), (POSTED, 8), (method_id, 32)]))
    st.write(p + 1, int.from_bytes(proof_hash, "big"))
    st.write(p + 2, deadline)
    st.write(p + 3, len(content_hashes))
    for i, (h, contributor, w) in enumerate(zip(content_hashes, contributors, weights)):
        e = slot_of(ENTRIES, job_id, i)
        st.write(e, int.from_bytes(h, "big"))
        st.write(e + 1, contributor | w << 160)
    call.emit("ProofPosted", jobId=job_id, poster=call.sender, proofHash=proof_hash, methodId=method_id,
              disputeDeadline=deadline)


def dispute_proof(call: Call, job_id, reason_hash):
    st, econ = call.store, call.store_of(ECONOMICS)
    require(reason_hash != bytes(32), "reasonHash is zero: name the evidence (e.g. keccak256 of a stored blob)")
    require(staking.is_active(call.store_of(STAKING), econ, call.sender), "sender is not an active validator")
    p = proof_slot(job_id)
    poster, status, _ = unpack(st.read(p), HEAD_WIDTHS)
    require(status == POSTED, "no open proof for this job")
    require(poster.to_bytes(20, "big") != call.sender, "the poster may not dispute its own proof")
    require(call.timestamp < st.read(p + 2), "dispute window closed")
    d = slot_of(DISPUTERS, job_id, st.read(p + 5), call.sender)
    require(st.read(d) == 0, "validator already disputed this proof")
    st.write(d, 1)
    disputes = st.add(p + 4, 1)
    call.emit("ProofDisputed", jobId=job_id, disputer=call.sender, reasonHash=reason_hash)
    if disputes >= read_param(econ, "attestation_quorum"):
        _reject(call, job_id, p, poster.to_bytes(20, "big"), upheld=True)


def _reject(call: Call, job_id: int, p: int, poster: bytes, upheld: bool) -> None:
    """Clear the open proof (the job awaits a new one); an upheld dispute slashes its poster."""
    st = call.store
    disputes = st.read(p + 4)
    st.write(p, 0)
    st.write(p + 4, 0)
    st.add(p + 5, 1)
    slashed = staking.slash(call, poster, SLASH_REASON, share="attribution_slash_ppm") if upheld else 0
    call.emit("ProofRejected", jobId=job_id, poster=poster, disputes=disputes, slashed=slashed)


def finalise_proof(call: Call, job_id):
    st = call.store
    p = proof_slot(job_id)
    poster, status, method_id = unpack(st.read(p), HEAD_WIDTHS)
    require(status == POSTED, "no open proof for this job")
    deadline = st.read(p + 2)
    require(call.timestamp >= deadline, f"dispute window open until {deadline}")
    if st.read(p + 4):  # disputed, short of a quorum: rejected, nobody slashed
        _reject(call, job_id, p, poster.to_bytes(20, "big"), upheld=False)
        return
    econ = call.store_of(ECONOMICS)
    entries = []
    for i in range(st.read(p + 3)):
        word = st.read(slot_of(ENTRIES, job_id, i) + 1)
        entries.append(((word & (2**160 - 1)).to_bytes(20, "big"), word >> 160))
    st.write(p, pack([(poster, 160), (PAID, 8), (method_id, 32)]))
    economics.record_work(econ, call.block_number, poster.to_bytes(20, "big"))
    _pay_fee(call, job_id, entries)


def proof_deadline(call: Call, job_id):
    """When a succeeded job with no proof open or paid may be settled without one (0: never, on a
    chain whose proof_timeout_s is 0)."""
    jobs = call.store_of(INFERENCE_JOBS)
    j = _succeeded_job(call, job_id)
    timeout = read_param(call.store_of(ECONOMICS), "proof_timeout_s")
    # a job that succeeded before its success time was recorded counts from its own deadline (later)
    return (jobs.read(j + 9) or inference_jobs.status_of(jobs, j)[1]) + timeout if timeout else 0


def finalise_without_proof(call: Call, job_id):
    st = call.store
    deadline = proof_deadline(call, job_id)
    require(deadline != 0, "this chain has no proof timeout (proof_timeout_s is 0)")
    p = proof_slot(job_id)
    status = unpack(st.read(p), HEAD_WIDTHS)[1]
    require(status != POSTED, "a proof is open: finaliseProof settles it when its dispute window closes")
    require(status == NONE, "job already settled")
    require(call.timestamp >= deadline, f"proof due until {deadline} (proof_timeout_s after the job succeeded)")
    st.write(p, pack([(0, 160), (UNATTRIBUTED, 8), (0, 32)]))
    for offset in (1, 2, 3):  # what a rejected proof left there
        st.write(p + offset, 0)
    call.emit("SettledWithoutProof", jobId=job_id, caller=call.sender)
    _pay_fee(call, job_id, [])


def _pay_fee(call: Call, job_id: int, entries: list[tuple[bytes, int]]) -> None:
    """Split the job's escrowed fee: `entries` are (contributor, weightPpm); none sends the
    contributors' part to the treasury."""
    jobs, econ = call.store_of(INFERENCE_JOBS), call.store_of(ECONOMICS)
    j = inference_jobs.job_slot(job_id)
    fee = jobs.read(j + 3)
    owner, _, _ = models.adapter_lineage(call.store_of(MODELS), jobs.read(j + 1))
    validators = [jobs.read(j + 5).to_bytes(20, "big")] + inference_jobs.valid_attesters(
        jobs, job_id, jobs.read(j + 8) & (2**128 - 1))
    split = tuple(read_param(econ, f"fee_split_{k}_ppm") for k in ("contributors", "model_owners", "validators", "treasury"))
    per_contributor, owner_part, per_validator, treasury_part = split_fee(fee, split, [w for _, w in entries],
                                                                          len(validators))
    treasury = read_param(econ, "treasury").to_bytes(20, "big")
    payees = ([(a, CONTRIBUTOR, x) for (a, _), x in zip(entries, per_contributor)] + [(owner, MODEL_OWNER, owner_part)]
              + [(v, VALIDATOR, x) for v, x in zip(validators, per_validator)] + [(treasury, TREASURY, treasury_part)])
    call.emit("FeeSplit", jobId=job_id, contributors=sum(per_contributor), modelOwner=owner_part,
              validators=sum(per_validator), treasury=treasury_part)
    for account, role, amount in payees:
        if amount:
            jobs.pay(account, amount)
            credit_reward(econ, account, amount)
            call.emit("RewardPaid", account=account, jobId=job_id, role=role, amount=amount)


def get_proof(call: Call, job_id):
    st = call.store
    p = proof_slot(job_id)
    poster, status, method_id = unpack(st.read(p), HEAD_WIDTHS)
    require(status != NONE, f"no proof for job {job_id}")
    return (poster.to_bytes(20, "big"), st.read(p + 1).to_bytes(32, "big"), method_id, status, st.read(p + 2),
            st.read(p + 3), st.read(p + 4))


def has_disputed(call: Call, job_id, validator):
    """Whether `validator` disputed the job's open proof (false when none is open)."""
    st = call.store
    p = proof_slot(job_id)
    if unpack(st.read(p), HEAD_WIDTHS)[1] != POSTED:
        return False
    return st.read(slot_of(DISPUTERS, job_id, st.read(p + 5), to_canonical_address(validator))) == 1


def proof_entry(call: Call, job_id, index):
    st = call.store
    p = proof_slot(job_id)
    require(unpack(st.read(p), HEAD_WIDTHS)[1] != NONE, f"no proof for job {job_id}")
    require(index < st.read(p + 3), f"entry index {index} out of range")
    e = slot_of(ENTRIES, job_id, index)
    word = st.read(e + 1)
    return st.read(e).to_bytes(32, "big"), (word & (2**160 - 1)).to_bytes(20, "big"), word >> 160


MODULE = NativeModule("Attribution", ATTRIBUTION, {
    "postProof": post_proof,
    "disputeProof": dispute_proof,
    "finaliseProof": finalise_proof,
    "finaliseWithoutProof": finalise_without_proof,
    "getProof": get_proof,
    "proofEntry": proof_entry,
    "proofDeadline": proof_deadline,
    "hasDisputed": has_disputed,
})
