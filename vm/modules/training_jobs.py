"""ModelFactory training jobs: a builder pays OPEN for a LoRA run on a Datanet version, a staked GPU
validator claims, trains and submits it, other validators verify it by replaying checkpoint
segments, and the run is registered in Models once a quorum attests it valid.

Flow and windows (parameters from the economics account):
  requestTraining  escrows `maxFee` (the whole offer); the seed is derived from the chain (the
                   parent block's hash and the job id, as `training.derive_seed`); the version's
                   data-use price is fixed into the job; claimable for `training_claim_s`.
  claimJob         an active GPU validator takes the job; it must submit within `training_run_s`.
  submitRun        the trainer names the record (keccak of record.json), the manifest of its
                   stored files, and the record's hashes; open to attestation for `training_verify_s`.
  attest           another active validator replays the segments `challengeSegments` picks for
                   it (seeded by the hash of block submitBlock + 1, so unknown to the trainer when it
                   submitted, and by the validator's address) and votes, naming those segments.
  finalise         anyone, once the job's window has closed (or it is already decided).
Decision: `attestation_quorum` invalid votes fail the job at once (fee refunded, trainer and every
valid voter slashed); `attestation_quorum` valid votes and no invalid one complete it once every
other active validator has voted or the window has closed. Anything else at the deadline
(nobody claimed, nothing submitted, too few or split votes) refunds the builder, slashing no one.

Completion registers the run in Models exactly as `commitTrainingRun` would, with the builder as
its trainer (owner), so the builder registers its adapter and inference and attribution work on
it unchanged; then the fee is split: the data-use fee to the version's contributors in proportion
to their accepted contributions (dust to the treasury), `training_verifier_ppm` of the rest shared
equally by the valid voters, the remainder (with that division's dust) to the trainer.

Storage (slots in the TrainingJobs account):
  0  jobCount
  1  jobs[id] -> j: j+0 requester; j+1 datanetId; j+2 version; j+3 baseModelId; j+4 configBlobHash;
     j+5 fee; j+6 status | deadline << 8; j+7 seed | requestBlock << 64; j+8 trainer; j+9 recordHash;
     j+10 manifestHash; j+11 configHash; j+12 adapterHash; j+13 metricsHash; j+14 attributionIndexRoot;
     j+15 segmentCount | submitBlock << 64; j+16 validVotes | invalidVotes << 128; j+17 challenge;
     j+18 dataUseFee; j+19 runId
  2  attestations[jobId][validator] -> 1 valid, 2 invalid
  3  voters[jobId][index] -> address (every voter, in order)
  4  dataUsePrice[datanetId][version] -> price
"""
from eth_utils import keccak, to_canonical_address

from vm.modules import datanets, economics, models, staking
from vm.modules.abi import Call, NativeModule
from vm.modules.storage import Store, require, slot_of
from vm.modules.system import DATANETS, ECONOMICS, MODELS, PPM, STAKING, TRAINING_JOBS, credit_reward, read_param

COUNT, JOBS, ATTESTATIONS, VOTERS, PRICES = range(5)
REQUESTED, CLAIMED, SUBMITTED, COMPLETED, FAILED, REFUNDED = 1, 2, 3, 4, 5, 6
STATUS_NAMES = {REQUESTED: "requested", CLAIMED: "claimed", SUBMITTED: "submitted", COMPLETED: "completed",
                FAILED: "failed", REFUNDED: "refunded"}
SLASH_REASON = b"training run invalid".ljust(32, b"\x00")
MAX_PRICE = 10**9 * 10**18  # no price above the whole OPEN supply
MAX_SEGMENTS = 2**32
KECCAK_GAS = 42  # KECCAK256 of 64 bytes, charged per draw of the segment choice
LOW64, LOW128 = 2**64 - 1, 2**128 - 1


def job_slot(job_id: int) -> int:
    return slot_of(JOBS, job_id)


def existing(st: Store, job_id: int) -> int:
    require(0 < job_id <= st.read(COUNT), f"unknown training job {job_id}")
    return job_slot(job_id)


def status_of(st: Store, j: int) -> tuple[int, int]:
    """(status, deadline) of the job at base slot `j`."""
    word = st.read(j + 6)
    return word & 0xFF, word >> 8


def chain_seed(parent_hash: bytes, job_id: int) -> int:
    """The run seed: keccak256(parent block hash || job id), first 8 bytes, top bit clear
    (`training.derive_seed(parent_hash, job_id)`, restated here because vm/ does not import torch)."""
    return int.from_bytes(keccak(parent_hash + job_id.to_bytes(32, "big"))[:8], "big") >> 1


def choose_segments(challenge: bytes, validator: bytes, count: int, k: int) -> list[int]:
    """The k distinct segments (of `count`) `validator` must replay, ascending: draw i is
    keccak256(challenge || validator as a word || i) mod count, repeats skipped."""
    if count <= k:
        return list(range(count))
    chosen: set[int] = set()
    i = 0
    while len(chosen) < k:
        draw = keccak(challenge + validator.rjust(32, b"\x00") + i.to_bytes(32, "big"))
        chosen.add(int.from_bytes(draw, "big") % count)
        i += 1
    return sorted(chosen)


def _challenge(call: Call, j: int, job_id: int) -> bytes:
    """keccak256(hash of block submitBlock + 1 || job id), kept once the first voter reads it."""
    st = call.store
    stored = st.read(j + 17)
    if stored:
        return stored.to_bytes(32, "big")
    submit_block = st.read(j + 15) >> 64
    require(call.block_number > submit_block + 1, f"the challenge block {submit_block + 1} is not sealed yet")
    block_hash = call.state.get_ancestor_hash(submit_block + 1)
    require(len(block_hash) == 32, f"the challenge block {submit_block + 1} is older than 256 blocks")
    challenge = keccak(block_hash + job_id.to_bytes(32, "big"))
    if not call.computation.msg.is_static:
        st.write(j + 17, int.from_bytes(challenge, "big"))
    return challenge


def _segments_for(call: Call, j: int, job_id: int, validator: bytes) -> list[int]:
    count = call.store.read(j + 15) & LOW64
    k = read_param(call.store_of(ECONOMICS), "training_verify_segments")
    challenge = _challenge(call, j, job_id)
    segments = choose_segments(challenge, validator, count, k)
    call.computation.consume_gas(KECCAK_GAS * len(segments), "native segment choice")
    return segments


def set_data_use_price(call: Call, datanet_id, version, price):
    dn = call.store_of(DATANETS)
    datanets.version_root(dn, datanet_id, version)  # reverts for an unknown Datanet or version
    owner = dn.read(datanets.datanet_slot(datanet_id) + datanets.HEAD) & (2**160 - 1)
    require(owner.to_bytes(20, "big") == call.sender, "only the datanet owner may set its data-use price")
    require(price <= MAX_PRICE, f"price {price} above the OPEN supply")
    call.store.write(slot_of(PRICES, datanet_id, version), price)
    call.emit("DataUsePriceSet", datanetId=datanet_id, version=version, price=price)


def request_training(call: Call, datanet_id, version, base_model_id, config_blob_hash, max_fee):
    st = call.store
    require(config_blob_hash != bytes(32), "configBlobHash is zero")
    require(call.value == max_fee, f"send exactly maxFee ({max_fee} wei) with the request, got {call.value}")
    datanets.version_root(call.store_of(DATANETS), datanet_id, version)
    mst = call.store_of(MODELS)
    require(0 < base_model_id <= mst.read(models.MODEL_COUNT), f"unknown base model {base_model_id}")
    price = st.read(slot_of(PRICES, datanet_id, version))
    require(max_fee > price, f"maxFee {max_fee} must exceed the data-use price {price} of datanet {datanet_id} "
                             f"version {version} (the rest pays the trainer and verifiers)")
    job_id = st.add(COUNT, 1)
    parent = call.state.get_ancestor_hash(call.block_number - 1) if call.block_number else b""
    seed = chain_seed(parent.rjust(32, b"\x00"), job_id)
    deadline = call.timestamp + read_param(call.store_of(ECONOMICS), "training_claim_s")
    j = job_slot(job_id)
    for offset, value in ((0, int.from_bytes(call.sender, "big")), (1, datanet_id), (2, version), (3, base_model_id),
                          (4, int.from_bytes(config_blob_hash, "big")), (5, max_fee), (6, REQUESTED | deadline << 8),
                          (7, seed | call.block_number << 64), (18, price)):
        st.write(j + offset, value)
    call.emit("TrainingRequested", jobId=job_id, datanetId=datanet_id, requester=call.sender, version=version,
              baseModelId=base_model_id, configBlobHash=config_blob_hash, fee=max_fee, dataUseFee=price, seed=seed)
    return job_id


def claim_job(call: Call, job_id):
    st = call.store
    j = existing(st, job_id)
    require(staking.is_active(call.store_of(STAKING), call.store_of(ECONOMICS), call.sender, staking.CAP_GPU_INFERENCE),
            "sender is not an active GPU validator")
    status, deadline = status_of(st, j)
    require(status == REQUESTED, f"job is {STATUS_NAMES.get(status)}, not open to a claim")
    require(call.timestamp < deadline, f"claim window closed at {deadline}: `finalise` refunds the job")
    submit_by = call.timestamp + read_param(call.store_of(ECONOMICS), "training_run_s")
    st.write(j + 6, CLAIMED | submit_by << 8)
    st.write(j + 8, int.from_bytes(call.sender, "big"))
    call.emit("TrainingClaimed", jobId=job_id, trainer=call.sender, submitDeadline=submit_by)


def submit_run(call: Call, job_id, record_hash, manifest_hash, config_hash, adapter_hash, metrics_hash,
               attribution_index_root, segment_count):
    st = call.store
    j = existing(st, job_id)
    status, deadline = status_of(st, j)
    require(status == CLAIMED, f"job is {STATUS_NAMES.get(status)}, not awaiting a run")
    require(st.read(j + 8).to_bytes(20, "big") == call.sender, "only the trainer that claimed the job may submit")
    require(call.timestamp < deadline, f"submit window closed at {deadline}: `finalise` refunds the job")
    for field, value in (("recordHash", record_hash), ("manifestHash", manifest_hash), ("configHash", config_hash),
                         ("adapterHash", adapter_hash), ("metricsHash", metrics_hash),
                         ("attributionIndexRoot", attribution_index_root)):
        require(value != bytes(32), f"{field} is zero")
    require(0 < segment_count < MAX_SEGMENTS, f"segmentCount must be 1..{MAX_SEGMENTS - 1}, got {segment_count}")
    verify_by = call.timestamp + read_param(call.store_of(ECONOMICS), "training_verify_s")
    st.write(j + 6, SUBMITTED | verify_by << 8)
    for offset, value in enumerate((record_hash, manifest_hash, config_hash, adapter_hash, metrics_hash,
                                    attribution_index_root), start=9):
        st.write(j + offset, int.from_bytes(value, "big"))
    st.write(j + 15, segment_count | call.block_number << 64)
    call.emit("RunSubmitted", jobId=job_id, trainer=call.sender, recordHash=record_hash, manifestHash=manifest_hash,
              segmentCount=segment_count)


def _voters(st: Store, job_id: int, count: int) -> list[tuple[bytes, int]]:
    """(validator, vote) of every voter, in voting order."""
    out = []
    for i in range(count):
        v = st.read(slot_of(VOTERS, job_id, i)).to_bytes(20, "big")
        out.append((v, st.read(slot_of(ATTESTATIONS, job_id, v))))
    return out


def _eligible(call: Call, trainer: bytes) -> int:
    """Active validators that may vote on a job (every one but its trainer)."""
    active = staking.active_validators(call.store_of(STAKING), call.store_of(ECONOMICS))
    return sum(1 for v, _ in active if v != trainer)


def attest(call: Call, job_id, valid, segments, evidence_hash):
    st = call.store
    j = existing(st, job_id)
    econ = call.store_of(ECONOMICS)
    require(staking.is_active(call.store_of(STAKING), econ, call.sender), "sender is not an active validator")
    status, deadline = status_of(st, j)
    require(status == SUBMITTED, f"job is {STATUS_NAMES.get(status)}, no run awaits attestation")
    require(call.timestamp < deadline, f"verification window closed at {deadline}: `finalise` decides the job")
    trainer = st.read(j + 8).to_bytes(20, "big")
    require(trainer != call.sender, "the trainer may not attest its own run")
    a = slot_of(ATTESTATIONS, job_id, call.sender)
    require(st.read(a) == 0, "validator already attested this job")
    expected = _segments_for(call, j, job_id, call.sender)
    require(list(segments) == expected, f"segments {list(segments)} are not the ones the challenge picks for this "
                                        f"validator: {expected}")
    votes = st.read(j + 16)
    valid_votes, invalid_votes = votes & LOW128, votes >> 128
    st.write(a, 1 if valid else 2)
    st.write(slot_of(VOTERS, job_id, valid_votes + invalid_votes), int.from_bytes(call.sender, "big"))
    valid_votes, invalid_votes = valid_votes + bool(valid), invalid_votes + (not valid)
    st.write(j + 16, valid_votes | invalid_votes << 128)
    call.emit("RunAttested", jobId=job_id, validator=call.sender, valid=valid, segments=list(segments),
              evidenceHash=evidence_hash)
    quorum = read_param(econ, "attestation_quorum")
    if invalid_votes >= quorum:
        _fail(call, job_id, j, FAILED)
    elif valid_votes >= quorum and invalid_votes == 0 and valid_votes >= _eligible(call, trainer):
        _complete(call, job_id, j)


def finalise(call: Call, job_id):
    st = call.store
    j = existing(st, job_id)
    status, deadline = status_of(st, j)
    require(status in (REQUESTED, CLAIMED, SUBMITTED), f"job already {STATUS_NAMES.get(status)}")
    require(call.timestamp >= deadline, f"job open until {deadline}; it is decided by its votes or after that")
    votes = st.read(j + 16)
    valid_votes, invalid_votes = votes & LOW128, votes >> 128
    quorum = read_param(call.store_of(ECONOMICS), "attestation_quorum")
    if status == SUBMITTED and valid_votes >= quorum and invalid_votes == 0:
        _complete(call, job_id, j)
    else:
        _fail(call, job_id, j, REFUNDED)


def _complete(call: Call, job_id: int, j: int) -> None:
    st, econ = call.store, call.store_of(ECONOMICS)
    w = {i: st.read(j + i) for i in (0, 1, 2, 3, 5, 7, 8, 11, 12, 13, 14, 16, 18)}
    h = lambda v: v.to_bytes(32, "big")  # noqa: E731
    requester, trainer = w[0].to_bytes(20, "big"), w[8].to_bytes(20, "big")
    run_id = models.write_run(call, requester, w[1], w[2], w[3], h(w[11]), w[7] & LOW64, h(w[12]), h(w[13]), h(w[14]))
    st.write(j + 19, run_id)
    st.write(j + 6, COMPLETED | (st.read(j + 6) >> 8) << 8)
    treasury = read_param(econ, "treasury").to_bytes(20, "big")
    fee, price = w[5], w[18]
    shares, dust = data_use_shares(call.store_of(DATANETS), w[1], w[2], price)
    for contributor, amount in shares:
        _pay(call, econ, contributor, amount)
        call.emit("DataUseFeePaid", jobId=job_id, contributor=contributor, datanetId=w[1], version=w[2], amount=amount)
    _pay(call, econ, treasury, dust)
    verifiers = [v for v, vote in _voters(st, job_id, w[16] & LOW128) if vote == 1]
    verifier_part = (fee - price) * read_param(econ, "training_verifier_ppm") // PPM
    each = verifier_part // len(verifiers)
    for v in verifiers:
        _pay(call, econ, v, each)
    trainer_fee = fee - price - each * len(verifiers)
    _pay(call, econ, trainer, trainer_fee)
    economics.record_work(econ, call.block_number, trainer)
    call.emit("TrainingCompleted", jobId=job_id, runId=run_id, trainer=trainer, trainerFee=trainer_fee,
              verifierFee=each * len(verifiers), dataUseFee=price - dust, treasuryDust=dust)


def _pay(call: Call, econ: Store, account: bytes, amount: int) -> None:
    if amount:
        call.store.pay(account, amount)
        credit_reward(econ, account, amount)


def data_use_shares(dn: Store, datanet_id: int, version: int, price: int) -> tuple[list[tuple[bytes, int]], int]:
    """([(contributor, amount)] in first-contribution order, dust): `price` split over the version's
    accepted contributions, contributor i getting price * count_i // total."""
    if price == 0:
        return [], 0
    total = dn.read(slot_of(datanets.VERSIONS, datanet_id, version) + 1) & LOW128
    counts: dict[bytes, int] = {}
    for content_hash in datanets.accepted_hashes(dn, datanet_id, total):
        contributor = datanets.contribution_record(dn, datanet_id, content_hash)[0].to_bytes(20, "big")
        counts[contributor] = counts.get(contributor, 0) + 1
    shares = [(c, price * n // total) for c, n in counts.items()]
    return shares, price - sum(a for _, a in shares)


def _fail(call: Call, job_id: int, j: int, status: int) -> None:
    """Refund the builder; a FAILED run (an invalid quorum) also slashes its trainer and every valid voter."""
    st = call.store
    deadline = st.read(j + 6) >> 8
    fee = st.read(j + 5)
    trainer = st.read(j + 8).to_bytes(20, "big")
    st.write(j + 6, status | deadline << 8)
    st.pay(st.read(j).to_bytes(20, "big"), fee)
    if status == FAILED:
        staking.slash(call, trainer, SLASH_REASON)
        votes = st.read(j + 16)
        for v, vote in _voters(st, job_id, (votes & LOW128) + (votes >> 128)):
            if vote == 1:
                staking.slash(call, v, SLASH_REASON)
    call.emit("TrainingFailed", jobId=job_id, trainer=trainer, status=status, refund=fee)


def job_count(call: Call):
    return call.store.read(COUNT)


def data_use_price(call: Call, datanet_id, version):
    datanets.version_root(call.store_of(DATANETS), datanet_id, version)
    return call.store.read(slot_of(PRICES, datanet_id, version))


def get_job(call: Call, job_id):
    st = call.store
    j = existing(st, job_id)
    w = {i: st.read(j + i) for i in (0, 1, 2, 3, 4, 5, 6, 7, 8, 18, 19)}
    return (w[0].to_bytes(20, "big"), w[1], w[2], w[3], w[4].to_bytes(32, "big"), w[5], w[18], w[7] & LOW64,
            w[6] & 0xFF, w[6] >> 8, w[8].to_bytes(20, "big"), w[19])


def get_run(call: Call, job_id):
    st = call.store
    j = existing(st, job_id)
    hashes = tuple(st.read(j + i).to_bytes(32, "big") for i in range(9, 15))
    seg, votes = st.read(j + 15), st.read(j + 16)
    return (*hashes, seg & LOW64, seg >> 64, votes & LOW128, votes >> 128)


def challenge_segments(call: Call, job_id, validator):
    st = call.store
    j = existing(st, job_id)
    require(status_of(st, j)[0] >= SUBMITTED, "job has no submitted run")
    return _segments_for(call, j, job_id, to_canonical_address(validator))


def attestation(call: Call, job_id, validator):
    existing(call.store, job_id)
    return call.store.read(slot_of(ATTESTATIONS, job_id, to_canonical_address(validator)))


MODULE = NativeModule("TrainingJobs", TRAINING_JOBS, {
    "setDataUsePrice": set_data_use_price,
    "requestTraining": request_training,
    "claimJob": claim_job,
    "submitRun": submit_run,
    "attest": attest,
    "finalise": finalise,
    "jobCount": job_count,
    "dataUsePrice": data_use_price,
    "getJob": get_job,
    "getRun": get_run,
    "challengeSegments": challenge_segments,
    "attestation": attestation,
})
