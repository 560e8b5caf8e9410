"""The training services: paid TrainingJobs (docs/training-jobs.md) served by a validator's keys.

`--serve-training` claims a requested job (with the key of index job id mod keys), trains it with
the chain's seed (resuming from its newest checkpoint after a restart), stores the adapter, record,
config, metrics and checkpoints in the node's blob store under one manifest, submits the run, and
finalises the job once its verification window closes if the votes have not decided it first.
`--verify-training` fetches a submitted run, checks every hash it names against the chain and the
builder's config, replays the segments the chain picks for each of its other keys and attests.

The job loop is node.services.jobs.Services (events taken in with the last block in one atomic
save, transactions recorded before they are sent, refused ones retried with a growing delay),
pointed at the TrainingJobs module; each stage of a job is recorded in the state file, so a kill -9
neither trains nor claims twice, and a restarted run resumes from its checkpoints.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import shutil
import time
from collections.abc import Sequence

from node.sdk import Client, SdkError, decode_events
from node.services.jobs import Services
from node.services.model import JobError
from node.services.state import State
from vm.modules.training_jobs import STATUS_NAMES

log = logging.getLogger("openledger.services")

CHUNK_BYTES = 1024 * 1024
"""Files above this are stored as several public blobs (the blob store takes 2 MiB at most)."""
INDEX_METHOD = "datainf-v1"
"""The attribution index a served run builds (as `train --commit` does by default)."""


def job_of(client: Client, job_id: int) -> dict:
    """TrainingJobs.getJob and getRun of `job_id` by name (hashes as bytes)."""
    names = ("requester", "datanetId", "version", "baseModelId", "configBlobHash", "fee", "dataUseFee", "seed",
             "status", "deadline", "trainer", "runId")
    job = dict(zip(names, client.call("TrainingJobs", "getJob", job_id)))
    run_names = ("recordHash", "manifestHash", "configHash", "adapterHash", "metricsHash", "attributionIndexRoot",
                 "segmentCount", "submitBlock", "validVotes", "invalidVotes")
    job.update(zip(run_names, client.call("TrainingJobs", "getRun", job_id)))
    job["id"], job["statusName"] = job_id, STATUS_NAMES.get(job["status"], "unknown")
    return job


def config_of(client: Client, job: dict):
    """The builder's config (the public blob named by configBlobHash) with the job's chain seed."""
    from training import ConfigError, TrainingConfig

    try:
        blob = client.get_object(job["configBlobHash"])
        return dataclasses.replace(TrainingConfig.from_dict(json.loads(blob)), seed=job["seed"])
    except SdkError as e:
        if e.code is None:
            raise
        raise JobError(f"config blob 0x{job['configBlobHash'].hex()} unavailable: {e.reason or e}") from None
    except (ConfigError, ValueError, TypeError) as e:
        raise JobError(f"config blob 0x{job['configBlobHash'].hex()} is not a training config: {e}") from None


def dataset_of(client: Client, datanet_id: int, version: int):
    """(rows of the version, contributor of each row), every row checked against its hash and the root."""
    from eth_utils import to_canonical_address

    from training import Dataset

    root, count, _ = client.call("Datanets", "getVersion", datanet_id, version)
    hashes = [client.call("Datanets", "acceptedAt", datanet_id, i) for i in range(count)]
    owners = [to_canonical_address(client.call("Datanets", "getContribution", datanet_id, h)[0]) for h in hashes]
    return Dataset.from_blobs(hashes, lambda h: client.get_blob(h, datanet_id), expected_root=root), owners


def base_of(client: Client, base_model_id: int) -> str:
    """The base model's registered name, which `training.load_base` loads."""
    return client.call("Models", "getBaseModel", base_model_id)[1]


def train(client: Client, job: dict, out_dir: pathlib.Path, device: str = "cpu", on_checkpoint=None):
    """Train the job's run into `out_dir` (resuming from its newest checkpoint); returns the TrainingRun."""
    from attribution.runs import index_hook
    from training import ConfigError, DataError, run

    config = config_of(client, job)
    data, owners = dataset_of(client, job["datanetId"], job["version"])
    resume = any((out_dir / "checkpoints").glob("step-*.safetensors"))
    try:
        return run(config, data, base_of(client, job["baseModelId"]), out_dir, run_id=job["id"], device=device,
                   resume=resume, progress=False, on_checkpoint=on_checkpoint,
                   attribution=index_hook(INDEX_METHOD, contributors=lambda index, _row: owners[index]))
    except (ConfigError, DataError) as e:
        raise JobError(f"cannot train job {job['id']}: {e}") from None


def _put_file(client: Client, data: bytes) -> list[str]:
    return ["0x" + client.put_blob(data[i:i + CHUNK_BYTES], public=True).hex()
            for i in range(0, max(len(data), 1), CHUNK_BYTES)]


def store_run(client: Client, out_dir: pathlib.Path) -> bytes:
    """Store a run directory as public objects; returns the hash of its manifest: the record,
    config, metrics and adapter hashes and every checkpoint's chunks by step."""
    from training import TrainingRun
    from training.trainer import checkpoint_path

    record_bytes = (out_dir / "record.json").read_bytes()
    record = TrainingRun.from_json(record_bytes)
    manifest = {"record": "0x" + client.put_blob(record_bytes, public=True).hex(),
                "config": "0x" + client.put_blob((out_dir / "config.json").read_bytes(), public=True).hex(),
                "metrics": "0x" + client.put_blob((out_dir / "metrics.json").read_bytes(), public=True).hex(),
                "adapter": "0x" + client.put_adapter(out_dir / "adapter").hex(),
                "checkpoints": {str(s): _put_file(client, checkpoint_path(out_dir, s).read_bytes())
                                for s in record.checkpoint_steps}}
    return client.put_blob(json.dumps(manifest, sort_keys=True).encode(), public=True)


def submit_args(job_id: int, record, manifest_hash: bytes) -> tuple:
    """TrainingJobs.submitRun's arguments for `record` stored under `manifest_hash`."""
    return (job_id, record.record_hash(), manifest_hash, record.config_hash, record.adapter_hash, record.metrics_hash,
            record.attribution_index_root, len(record.checkpoint_steps) - 1)


class RunUnavailable(Exception):
    """A file the run names could not be fetched or does not match its hash (the run is rejected)."""


def fetch_run(client: Client, job: dict, folder: pathlib.Path, steps: Sequence[int] | None = None):
    """Fetch the submitted run into `folder` (record.json, adapter/, the checkpoints of `steps`, all
    by default); returns its TrainingRun. RunUnavailable when the trainer withheld or garbled a file."""
    from training import TrainingRun
    from training.trainer import checkpoint_path

    def get(hash_hex: str) -> bytes:
        try:
            return client.get_object(bytes.fromhex(hash_hex[2:]))
        except SdkError as e:
            if e.code is None and "does not match its hash" not in str(e):
                raise  # the node is away: retried
            raise RunUnavailable(f"object {hash_hex}: {e.reason or e}") from None

    try:
        manifest = json.loads(get("0x" + job["manifestHash"].hex()))
        if manifest["record"] != "0x" + job["recordHash"].hex():
            raise RunUnavailable(f"manifest names record {manifest['record']}, the chain 0x{job['recordHash'].hex()}")
        record = TrainingRun.from_json(get(manifest["record"]))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "record.json").write_bytes(record.canonical_json())
        try:
            client.fetch_adapter(job["adapterHash"], folder / "adapter")
        except SdkError as e:
            raise RunUnavailable(f"adapter 0x{job['adapterHash'].hex()}: {e.reason or e}") from None
        for step in record.checkpoint_steps if steps is None else steps:
            path = checkpoint_path(folder, step)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                chunks = manifest["checkpoints"].get(str(step))
                if not chunks:
                    raise RunUnavailable(f"manifest has no checkpoint for step {step}")
                path.write_bytes(b"".join(get(c) for c in chunks))
        return record
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise RunUnavailable(f"manifest 0x{job['manifestHash'].hex()} is malformed: {e}") from None


def check_run(client: Client, job: dict, folder: pathlib.Path, segments: Sequence[int], device: str = "cpu"
              ) -> tuple[bool, str, dict]:
    """(valid, reason, evidence) for the job's submitted run, replaying `segments` (the chain's
    choice for the attesting validator)."""
    from training import verify_run

    try:
        record = fetch_run(client, job, folder, steps=())
    except RunUnavailable as e:
        return False, f"run unavailable: {e}", {}
    config = config_of(client, job)
    claims = {"record hash": (record.record_hash(), job["recordHash"]),
              "config hash (builder's config with the chain seed)": (config.config_hash(), job["configHash"]),
              "record's config hash": (record.config_hash, job["configHash"]),
              "adapter hash": (record.adapter_hash, job["adapterHash"]),
              "metrics hash": (record.metrics_hash, job["metricsHash"]),
              "attribution index root": (record.attribution_index_root, job["attributionIndexRoot"]),
              "segment count": (len(record.checkpoint_steps) - 1, job["segmentCount"]),
              "seed": (record.seed, job["seed"]),
              "base model": (record.base_model, base_of(client, job["baseModelId"]))}
    for what, (ours, chain) in claims.items():
        if ours != chain:
            return False, f"{what} differs from the job's", {}
    steps = record.checkpoint_steps
    needed = sorted({0, steps[-1]} | {steps[i] for i in segments} | {steps[i + 1] for i in segments})
    try:
        fetch_run(client, job, folder, steps=needed)
    except RunUnavailable as e:
        return False, f"run unavailable: {e}", {}
    data, _ = dataset_of(client, job["datanetId"], job["version"])
    verdict = verify_run(record, data, folder, len(segments), config=config, adapter_dir=folder / "adapter",
                         device=device, segments=tuple(segments))
    evidence = {"segments": list(verdict.segments), "max_deviation": verdict.max_deviation}
    return verdict.accepted, verdict.reason, evidence


class TrainingServices(Services):
    """Serve (`serve`: claim, train, store, submit, finalise) and verify (`verify`: replay and attest)
    TrainingJobs with the accounts of `keys`; progress in `folder`/state.json."""

    MODULES = ("TrainingJobs",)

    def __init__(self, url: str, keys: Sequence[bytes | str], folder, *, serve: bool, verify: bool,
                 device: str = "cpu", min_fee: int = 0) -> None:
        if not keys:
            raise JobError("the services need a signing key")
        self.reader = Client(url)
        self.signers = [Client(url, k) for k in keys]
        self.serving, self.verifying, self.attribute_runs = serve, verify, None
        self.device, self.min_fee = device, min_fee
        self.folder = pathlib.Path(folder)
        self.state = State(self.folder)
        self._runtimes: dict = {}
        self._away = False
        self._syncing = False  # Services' loop state (Services.step, Services._settle)
        self._sent: dict[str, float] = {}
        self._head: tuple[int, int] = (-1, 0)
        self._views: dict[str, object] = {}

    def _work(self):
        return ("train", self._train), ("verify", self._verify_run)

    def _before_jobs(self) -> None:
        """Nothing spans training jobs: each trains alone."""

    def _roles(self, ev: dict) -> list[str]:
        return {"TrainingRequested": ["train"] * self.serving,
                "RunSubmitted": ["verify"] * self.verifying}.get(ev["event"], [])

    def _now(self) -> int:
        return int(self.reader.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)

    # -- serving -------------------------------------------------------------------------------
    def _train(self, job_id: int, entry: dict) -> float | None:
        """Claim, train, store, submit; then come back at the verification deadline to finalise."""
        signer = self.signers[job_id % len(self.signers)]
        job = job_of(self.reader, job_id)
        claim = entry.setdefault("claim", {})
        if not claim.get("done"):
            if "tx" not in claim:
                if job["statusName"] != "requested":
                    log.info("training job %d: %s, nothing to claim", job_id, job["statusName"])
                    return None
                if job["deadline"] <= self._now():
                    log.info("training job %d: claim window closed (`train finalise` refunds it)", job_id)
                    return None
                if job["fee"] - job["dataUseFee"] < self.min_fee:
                    log.info("training job %d: fee below this validator's --min-training-fee; left to others", job_id)
                    return None
                config_of(self.reader, job)  # a config that cannot train is not claimed (the claim window refunds)
                self._record(claim, signer.build("TrainingJobs", "claimJob", job_id))
            receipt = self._settle(claim)
            claim["done"] = True
            self.state.save()
            job = job_of(self.reader, job_id)
            log.info("training job %d: claimed by %s in block %d", job_id, signer.address,
                     int(receipt["blockNumber"], 16))
        if job["trainer"].lower() != signer.address.lower():
            log.info("training job %d: claimed by %s, not by this validator", job_id, job["trainer"])
            return None
        submit = entry.setdefault("submit", {})
        if not submit.get("done"):
            if "tx" not in submit:
                if job["statusName"] != "claimed":
                    log.info("training job %d: %s before it was submitted", job_id, job["statusName"])
                    return None
                record, manifest = self._train_and_store(job, entry)
                self._record(submit, signer.build("TrainingJobs", "submitRun", *submit_args(job_id, record, manifest)))
            receipt = self._settle(submit)
            submit["done"] = True
            self.state.save()
            log.info("training job %d: run submitted in block %d (tx %s)", job_id, int(receipt["blockNumber"], 16),
                     submit["tx"])
            job = job_of(self.reader, job_id)
        return self._finalise(job, entry, signer)

    def _train_and_store(self, job: dict, entry: dict):
        job_id = job["id"]
        out = self.folder / "runs" / f"job-{job_id}"
        steps_total = []

        def progress(step: int, tensor_hash: bytes) -> None:
            entry["progress"] = step
            self.state.save()
            log.info("training job %d: step %d%s checkpointed (0x%s)", job_id, step,
                     f" of {steps_total[0]}" if steps_total else "", tensor_hash.hex()[:16])

        from training.trainer import checkpoint_steps

        config = config_of(self.reader, job)
        data, _ = dataset_of(self.reader, job["datanetId"], job["version"])
        steps_total.append(checkpoint_steps(config, len(data.examples(config)))[-1])
        done = sorted((out / "checkpoints").glob("step-*.safetensors"))
        log.info("training job %d: training %s on datanet %d v%d (seed %d)%s", job_id,
                 base_of(self.reader, job["baseModelId"]), job["datanetId"], job["version"], job["seed"],
                 f", resuming from {done[-1].stem}" if done else "")
        record = train(self.reader, job, out, self.device, progress)
        manifest = store_run(self.reader, out)
        log.info("training job %d: run stored (record 0x%s, manifest 0x%s)", job_id, record.record_hash().hex(),
                 manifest.hex())
        return record, manifest

    def _finalise(self, job: dict, entry: dict, signer: Client) -> float | None:
        """Once the verification window closes on an undecided job, finalise it."""
        job_id = job["id"]
        fin = entry.setdefault("finalise", {})
        if "tx" not in fin:
            if job["statusName"] != "submitted":
                log.info("training job %d: %s%s", job_id, job["statusName"],
                         f" (run {job['runId']} registered)" if job["runId"] else "")
                return None
            if job["deadline"] > self._now():
                return time.time() + 1.0  # votes may decide it first: look again shortly
            self._record(fin, signer.build("TrainingJobs", "finalise", job_id))
        receipt = self._settle(fin)
        outcome = [e["event"] for e in decode_events(receipt["logs"])
                   if e["event"] in ("TrainingCompleted", "TrainingFailed")]
        log.info("training job %d: finalised in block %d: %s", job_id, int(receipt["blockNumber"], 16),
                 ", ".join(outcome))
        return None

    # -- verifying -----------------------------------------------------------------------------
    def _verify_run(self, job_id: int, entry: dict) -> float | None:
        """Replay each of this process's other keys' segments and attest with that key."""
        attests = entry.setdefault("attests", {})
        job = job_of(self.reader, job_id)
        pending = [s for s in self.signers if s.address.lower() != job["trainer"].lower()
                   and not attests.get(s.address, {}).get("done")]
        for signer in pending:
            rec = attests.setdefault(signer.address, {})
            if "tx" not in rec:
                job = job_of(self.reader, job_id)
                if job["statusName"] != "submitted":
                    log.info("training job %d: %s before %s attested", job_id, job["statusName"], signer.address)
                    return None
                if self.reader.call("TrainingJobs", "attestation", job_id, signer.address):
                    rec["done"] = True
                    continue
                if job["deadline"] <= self._now():
                    log.info("training job %d: verification window closed before %s attested", job_id, signer.address)
                    return None
                if int(self.reader.rpc("eth_blockNumber"), 16) <= job["submitBlock"] + 1:
                    return time.time() + 0.5  # the challenge block is not sealed yet
                if "valid" not in rec:
                    segments = list(self.reader.call("TrainingJobs", "challengeSegments", job_id, signer.address))
                    started = time.monotonic()
                    valid, reason, evidence = check_run(self.reader, job, self.folder / "verify" / f"job-{job_id}",
                                                        segments, self.device)
                    evidence.update(job=job_id, validator=signer.address, valid=valid, reason=reason,
                                    replay_s=round(time.monotonic() - started, 3))
                    evidence_hash = self.reader.put_blob(json.dumps(evidence, sort_keys=True).encode(), public=True)
                    rec.update(valid=valid, reason=reason, segments=segments, evidence="0x" + evidence_hash.hex())
                    self.state.save()
                    log.info("training job %d: run by %s replayed segments %s for %s: %s (%s)", job_id, job["trainer"],
                             segments, signer.address, "valid" if valid else "invalid", reason)
                self._record(rec, signer.build("TrainingJobs", "attest", job_id, rec["valid"], rec["segments"],
                                               bytes.fromhex(rec["evidence"][2:])))
            receipt = self._settle(rec)
            rec["done"] = True
            self.state.save()
            log.info("training job %d: %s attested %s in block %d (tx %s)", job_id, signer.address,
                     "valid" if rec["valid"] else "invalid", int(receipt["blockNumber"], 16), rec["tx"])
        shutil.rmtree(self.folder / "verify" / f"job-{job_id}", ignore_errors=True)
        return None


def config_blob(config) -> bytes:
    """The bytes a builder stores for its config: canonical JSON, the seed left to the chain."""
    return dataclasses.replace(config, seed=0).canonical_json()


def evidence_of(client: Client, evidence_hash: bytes) -> dict | None:
    """A verifier's replay report (segments, deviation, reason), if the node holds it."""
    try:
        return json.loads(client.get_object(evidence_hash))
    except (SdkError, ValueError):
        return None



def report(client: Client, job_id: int) -> dict:
    """A job as the builder sees it: its state, the registered run, each verifier's vote and replayed
    segments, and the fee split (data-use fees by contributor, trainer, verifiers, treasury dust)."""
    from node.sdk import ADDRESSES

    job = job_of(client, job_id)
    out = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in job.items()}
    logs = client.rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["TrainingJobs"],
                                      "topics": [None, "0x" + job_id.to_bytes(32, "big").hex()]})
    events = decode_events(logs)
    out["attestations"] = [{"validator": e["args"]["validator"], "valid": e["args"]["valid"],
                            "segments": list(e["args"]["segments"]), "evidence": "0x" + e["args"]["evidenceHash"].hex(),
                            "verdict": evidence_of(client, e["args"]["evidenceHash"])}
                           for e in events if e["event"] == "RunAttested"]
    out["dataUse"] = [{"contributor": e["args"]["contributor"], "amount": e["args"]["amount"]}
                      for e in events if e["event"] == "DataUseFeePaid"]
    done = [e["args"] for e in events if e["event"] == "TrainingCompleted"]
    if done:
        out["split"] = {k: done[0][k] for k in ("trainerFee", "verifierFee", "dataUseFee", "treasuryDust")}
    if job["runId"]:
        run = client.call("Models", "getTrainingRun", job["runId"])
        out["run"] = {"id": job["runId"], "owner": run[0], "dataRoot": "0x" + run[3].hex(),
                      "adapterHash": "0x" + run[7].hex(), "attributionIndexRoot": "0x" + run[9].hex()}
    return out


def data_use_earnings(client: Client, contributor: str) -> list[dict]:
    """Every data-use fee paid to `contributor` (DataUseFeePaid logs, by its indexed contributor):
    [{jobId, datanetId, version, amount, blockNumber}], the "data use" source of its earnings."""
    from node.sdk import ADDRESSES

    topic = "0x" + bytes.fromhex(contributor[2:].lower()).rjust(32, b"\x00").hex()
    logs = client.rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["TrainingJobs"],
                                      "topics": [None, None, topic]})
    out = []
    for log_entry in logs:
        for e in decode_events([log_entry]):
            if e["event"] == "DataUseFeePaid":
                out.append({k: e["args"][k] for k in ("jobId", "datanetId", "version", "amount")}
                           | {"blockNumber": int(log_entry["blockNumber"], 16)})
    return out


__all__ = ["TrainingServices", "check_run", "config_blob", "config_of", "data_use_earnings", "dataset_of",
           "evidence_of", "fetch_run", "job_of", "report", "store_run", "submit_args", "train"]
