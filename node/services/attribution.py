"""The attribution work of a succeeded job, shared by `openledger proof post|finalise` and the
attribution service: attribute the job's output with its adapter's training run (the run's
committed attribution index), and tell when the proof's dispute window has closed."""
from __future__ import annotations

import functools
import pathlib
import time

from node.sdk import Client, SdkError
from node.services.model import JobError, h, lineage, result_of

TOLERANCE_PPM = 20_000
"""How far a re-checked proof's weight may be from ours before it is disputed (2 points of 100)."""
DISPUTE_GAS = 300_000
"""A floor for a dispute's gas limit that covers upholding it: the vote that completes the quorum
also rejects the proof and slashes its poster (measured: a vote 84,900 gas, the upholding one
162,249, BENCHMARKS.md), and validators dispute at once, so an estimate made while another's vote
is in flight misses that part (unused gas is not charged)."""
FINALISE_GAS = 1_500_000
"""Gas for a finaliseProof sent before any block has passed the deadline (an automining devnet):
eth_estimateGas runs at the latest block's time, still inside the window (16 entries pay ~400,000)."""


@functools.lru_cache(maxsize=8)
def _attributor(run_dir: str):
    """A run's attributor (its base model, adapter and index loaded and the index checked against
    the record's root), opened once per process: a committed run does not change, and opening it
    costs more than attributing one output."""
    from attribution.runs import open_run

    return open_run(run_dir)


def prove(client: Client, job: dict, run_dir: pathlib.Path, chain: dict | None = None) -> tuple[bytes, tuple]:
    """(the proof's canonical bytes, the arguments of Attribution.postProof) for `job`; `chain`:
    its adapter's `lineage`, if the caller holds it."""
    from attribution import AttributionError, onchain_args
    from training import TrainingRun

    job_id = int(job["id"], 16)
    chain = chain or lineage(client, int(job["adapterId"], 16))
    try:
        record = TrainingRun.from_json((run_dir / "record.json").read_bytes())
    except (OSError, ValueError) as e:
        raise JobError(f"--run {run_dir}: no readable record.json ({e})") from None
    if "0x" + record.adapter_hash.hex() != chain["run"]["adapterHash"]:
        raise JobError(f"--run {run_dir} trained adapter 0x{record.adapter_hash.hex()}, but job {job_id} used "
                       f"adapter {int(job['adapterId'], 16)} = {chain['run']['adapterHash']}")
    result = result_of(client, job)
    try:
        prompt = client.get_object(h(job["promptHash"]))
        proof = _attributor(str(pathlib.Path(run_dir).resolve())).attribute(prompt, str(result["text"]).encode())
        proof_hash, method_id, hashes, weights = onchain_args(proof)
    except (AttributionError, KeyError) as e:
        raise JobError(f"attribution failed: {e}") from None
    except SdkError as e:
        raise JobError(f"the prompt of job {job_id} is not on this node ({e})") from None
    # no positive score: the proof is posted with no entries all the same (Attribution's rule: the
    # contributors' part of the fee then goes to the treasury, the rest is paid as usual)
    return proof.encode(), (job_id, h(job["outputHash"]), proof_hash, method_id, hashes, weights)


def compare(posted: dict, args: tuple) -> str | None:
    """Why a posted proof (ol_getProof) is wrong against the attribution computed here (`prove`'s
    arguments), or None when it agrees: the same method, contributions and every weight within
    TOLERANCE_PPM (the floating-point work of another machine may differ in its last digits).
    The entries on chain are what is paid, so they are compared even when the proof hash is ours
    (a poster may name the honest proof's blob and post other weights)."""
    _, _, _, method_id, hashes, weights = args
    if int(posted["methodId"], 16) != method_id:
        return f"method {int(posted['methodId'], 16)} where the adapter's run attributes with method {method_id}"
    theirs = {e["contentHash"]: int(e["weightPpm"], 16) for e in posted["entries"]}
    mine = {"0x" + hh.hex(): w for hh, w in zip(hashes, weights)}
    if theirs.keys() != mine.keys():
        extra, missing = sorted(theirs.keys() - mine.keys()), sorted(mine.keys() - theirs.keys())
        return f"credits {extra or 'no other'} rows and misses {missing or 'none'} of those that shaped the output"
    worst = max(mine, key=lambda k: abs(mine[k] - theirs[k]), default=None)
    if worst is not None and abs(mine[worst] - theirs[worst]) > TOLERANCE_PPM:
        return f"weight of {worst} is {theirs[worst]} ppm where the attribution gives {mine[worst]} ppm"
    return None


def finalise_gas(client: Client, deadline: int) -> tuple[bool, int | None]:
    """(whether finaliseProof may be sent now, its gas limit: None to estimate). It is valid in the
    first block whose timestamp reaches the deadline. Once the clock has reached it, the next block
    (timestamped no earlier than when it is built) is past it, so it is sent then, to be in that
    block, rather than a block later, after one is seen; an estimate would still run inside the
    window, so the gas is a fixed limit (an automining devnet, which has no block since, alike)."""
    head = int(client.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    if head >= deadline:
        return True, None
    if time.time() >= deadline:
        return True, FINALISE_GAS
    return False, None


def dispute_gas(client: Client, job_id: int, reason_hash: bytes) -> int:
    """The gas limit of `client`'s disputeProof (see DISPUTE_GAS)."""
    return max(2 * client.estimate("Attribution", "disputeProof", job_id, reason_hash), DISPUTE_GAS)
