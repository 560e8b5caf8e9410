"""OpenLoRA inference jobs: a paid request, a result with an activation commitment from a staked
GPU validator, attestations by other validators, and finalisation by quorum or timeout.

The adapter's price is escrowed in this account (any excess of maxFee is refunded at once).
`attestation_quorum` valid votes finalise the job (the fee then waits for its attribution
proof); that many invalid votes fail it: the fee is refunded and the submitter slashed. After
`job_timeout_s` anyone may finalise: a result with more valid than invalid votes succeeds,
anything else is refunded (no slashing without a quorum).

Storage (slots in the InferenceJobs account):
  0  jobCount
  1  jobs[id] -> j: j+0 requester; j+1 adapterId; j+2 promptHash; j+3 fee; j+4 status | deadline << 8;
     j+5 submitter; j+6 outputHash; j+7 activationCommitment; j+8 validVotes | invalidVotes << 128;
     j+9 the time it succeeded (Attribution's proof timeout counts from it; 0 on jobs settled before it was kept)
  2  attestations[jobId][validator] -> 1 valid, 2 invalid
  3  validAttesters[jobId][index] -> address (index < validVotes)
"""
from eth_utils import to_canonical_address

from vm.modules import economics, models, staking
from vm.modules.abi import Call, NativeModule
from vm.modules.storage import Store, require, slot_of
from vm.modules.system import ECONOMICS, INFERENCE_JOBS, MODELS, STAKING, read_param

COUNT, JOBS, ATTESTATIONS, VALID_ATTESTERS = range(4)
REQUESTED, SUBMITTED, SUCCEEDED, FAILED = 1, 2, 3, 4
SLASH_REASON = b"inference result invalid".ljust(32, b"\x00")


def job_slot(job_id: int) -> int:
    return slot_of(JOBS, job_id)


def existing(st: Store, job_id: int) -> int:
    require(0 < job_id <= st.read(COUNT), f"unknown job {job_id}")
    return job_slot(job_id)


def status_of(st: Store, j: int) -> tuple[int, int]:
    """(status, deadline) of the job at base slot `j`."""
    word = st.read(j + 4)
    return word & 0xFF, word >> 8


def valid_attesters(st: Store, job_id: int, count: int) -> list[bytes]:
    return [st.read(slot_of(VALID_ATTESTERS, job_id, i)).to_bytes(20, "big") for i in range(count)]


def request_inference(call: Call, adapter_id, prompt_hash, max_fee):
    st = call.store
    require(prompt_hash != bytes(32), "promptHash is zero")
    require(call.value == max_fee, f"send exactly maxFee ({max_fee} wei) with the request, got {call.value}")
    a = models.existing_adapter(call.store_of(MODELS), adapter_id)
    price = call.store_of(MODELS).read(a + 2)
    require(max_fee >= price, f"maxFee {max_fee} below the adapter price {price}")
    deadline = call.timestamp + read_param(call.store_of(ECONOMICS), "job_timeout_s")
    job_id = st.add(COUNT, 1)
    j = job_slot(job_id)
    st.write(j, int.from_bytes(call.sender, "big"))
    st.write(j + 1, adapter_id)
    st.write(j + 2, int.from_bytes(prompt_hash, "big"))
    st.write(j + 3, price)
    st.write(j + 4, REQUESTED | deadline << 8)
    st.pay(call.sender, max_fee - price)
    call.emit("InferenceRequested", jobId=job_id, adapterId=adapter_id, requester=call.sender, promptHash=prompt_hash,
              fee=price)
    return job_id


def submit_result(call: Call, job_id, output_hash, activation_commitment):
    st = call.store
    j = existing(st, job_id)
    require(output_hash != bytes(32) and activation_commitment != bytes(32), "outputHash and activationCommitment must be non-zero")
    require(staking.is_active(call.store_of(STAKING), call.store_of(ECONOMICS), call.sender, staking.CAP_GPU_INFERENCE),
            "sender is not an active GPU inference validator")
    status, deadline = status_of(st, j)
    require(status == REQUESTED, "job is not awaiting a result")
    require(call.timestamp < deadline, f"job timed out at {deadline} (job_timeout_s): `finalise` refunds it")
    st.write(j + 4, SUBMITTED | deadline << 8)
    st.write(j + 5, int.from_bytes(call.sender, "big"))
    st.write(j + 6, int.from_bytes(output_hash, "big"))
    st.write(j + 7, int.from_bytes(activation_commitment, "big"))
    call.emit("ResultSubmitted", jobId=job_id, validator=call.sender, outputHash=output_hash,
              activationCommitment=activation_commitment)


def _succeed(call: Call, job_id: int, j: int, deadline: int) -> None:
    st = call.store
    st.write(j + 4, SUCCEEDED | deadline << 8)
    st.write(j + 9, call.timestamp)
    economics.record_work(call.store_of(ECONOMICS), call.block_number, st.read(j + 5).to_bytes(20, "big"))
    call.emit("JobFinalised", jobId=job_id, success=True, fee=st.read(j + 3))


def _fail(call: Call, job_id: int, j: int, deadline: int, slash_submitter: bool) -> None:
    st = call.store
    fee = st.read(j + 3)
    st.write(j + 4, FAILED | deadline << 8)
    st.pay(st.read(j).to_bytes(20, "big"), fee)
    if slash_submitter:
        staking.slash(call, st.read(j + 5).to_bytes(20, "big"), SLASH_REASON)
    call.emit("JobFinalised", jobId=job_id, success=False, fee=fee)


def attest(call: Call, job_id, valid):
    st = call.store
    j = existing(st, job_id)
    econ = call.store_of(ECONOMICS)
    require(staking.is_active(call.store_of(STAKING), econ, call.sender), "sender is not an active validator")
    status, deadline = status_of(st, j)
    require(status == SUBMITTED, "job has no result awaiting attestation")
    require(st.read(j + 5).to_bytes(20, "big") != call.sender, "the submitter may not attest its own result")
    a = slot_of(ATTESTATIONS, job_id, call.sender)
    require(st.read(a) == 0, "validator already attested this job")
    votes = st.read(j + 8)
    valid_votes, invalid_votes = votes & (2**128 - 1), votes >> 128
    st.write(a, 1 if valid else 2)
    if valid:
        st.write(slot_of(VALID_ATTESTERS, job_id, valid_votes), int.from_bytes(call.sender, "big"))
        valid_votes += 1
    else:
        invalid_votes += 1
    st.write(j + 8, valid_votes | invalid_votes << 128)
    call.emit("Attested", jobId=job_id, validator=call.sender, valid=valid)
    quorum = read_param(econ, "attestation_quorum")
    if valid_votes >= quorum:
        _succeed(call, job_id, j, deadline)
    elif invalid_votes >= quorum:
        _fail(call, job_id, j, deadline, slash_submitter=True)


def finalise(call: Call, job_id):
    st = call.store
    j = existing(st, job_id)
    status, deadline = status_of(st, j)
    require(status in (REQUESTED, SUBMITTED), "job already finalised")
    require(call.timestamp >= deadline, f"job open until {deadline}; finalise comes by quorum or after the timeout")
    votes = st.read(j + 8)
    if status == SUBMITTED and votes & (2**128 - 1) > votes >> 128:
        _succeed(call, job_id, j, deadline)
    else:
        _fail(call, job_id, j, deadline, slash_submitter=False)


def job_count(call: Call):
    return call.store.read(COUNT)


def get_job(call: Call, job_id):
    st = call.store
    j = existing(st, job_id)
    w = [st.read(j + i) for i in range(9)]
    h = lambda v: v.to_bytes(32, "big")  # noqa: E731
    return (w[0].to_bytes(20, "big"), w[1], h(w[2]), w[3], w[4] & 0xFF, w[5].to_bytes(20, "big"), h(w[6]), h(w[7]),
            w[8] & (2**128 - 1), w[8] >> 128, w[4] >> 8)


def attestation(call: Call, job_id, validator):
    existing(call.store, job_id)
    return call.store.read(slot_of(ATTESTATIONS, job_id, to_canonical_address(validator)))


MODULE = NativeModule("InferenceJobs", INFERENCE_JOBS, {
    "requestInference": request_inference,
    "submitResult": submit_result,
    "attest": attest,
    "finalise": finalise,
    "jobCount": job_count,
    "getJob": get_job,
    "attestation": attestation,
})
