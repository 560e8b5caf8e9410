"""The inference, verification and attribution services: a loop over the chain's InferenceJobs
events that serves jobs (generate, store result and proof, submitResult), re-checks other
validators' results (one prefill, then attest valid or invalid) and attributes succeeded jobs
(post the proof, then finalise it once its dispute window closes), signing with the validator's keys.

It runs beside the node as its own process and talks to it over JSON-RPC with node.sdk.Client,
the interface any validator's tools use: the model work then never holds the node's event loop or
its GIL, a crash in it leaves the node running, and the same code serves a remote node.

Exactly once: progress lives in `State`. Events are taken in together with the last block handled
(one atomic save), so no job is lost; a transaction is signed and recorded before it is sent, so
after a kill -9 the same bytes are sent again (one nonce: at most one lands) instead of the job
being done twice; before any work the job's on-chain status is read, so a job already served or
settled is dropped. A refused transaction or an unreachable node is retried with a growing delay.
"""
from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable, Sequence

from node.sdk import ADDRESSES, Client, SdkError, decode_events
from node.services import attribution, model
from node.services.model import JobError, ModelOptions, Runtime
from node.services.state import State

log = logging.getLogger("node.services")  # --log.vmodule node.services=LEVEL

BLOCKS_PER_QUERY = 1000
BACKOFF_S = (1, 2, 4, 8, 15, 30, 60)
MINED_WITHIN_S = 60


class Services:
    """Serve (`serve`), verify (`verify`) and attribute (`attribute_runs`: the training run
    directories of the adapters to attribute) jobs with the accounts of `keys`: a job is served and
    attributed by one of them (by job id), and every other one attests its result."""

    MODULE = "InferenceJobs"
    """The native module whose events start jobs (node.services.training serves TrainingJobs)."""

    def __init__(self, url: str, keys: Sequence[bytes | str], folder, *, serve: bool, verify: bool,
                 options: ModelOptions, max_new_tokens: int = 24,
                 attribute_runs: Sequence[pathlib.Path] | None = None) -> None:
        if not keys:
            raise JobError("the services need a signing key")
        self.reader = Client(url)
        self.signers = [Client(url, k) for k in keys]
        self.serving, self.verifying = serve, verify
        self.attribute_runs = attribute_runs
        self.options, self.max_new_tokens = options, max_new_tokens
        self.state = State(folder)
        self._runtimes: dict[int, Runtime] = {}
        self._away = False

    def run(self, poll_s: float = 0.5, keep_running: Callable[[], bool] = lambda: True) -> None:
        log.info("started (%s) as %s; %d jobs in flight from before", ", ".join(
            n for n, on in (("serving", self.serving), ("verifying", self.verifying),
                            ("attributing", self.attribute_runs is not None)) if on),
            ", ".join(s.address for s in self.signers), len(self.state.jobs))
        try:
            while keep_running():
                self.step()
                time.sleep(poll_s)
        finally:
            self.close()

    def close(self) -> None:
        for rt in self._runtimes.values():
            rt.close()
        self.state.close()

    # -- one round -----------------------------------------------------------------------------
    def step(self) -> None:
        """Take in new events, then work on every job in flight whose retry time has come."""
        try:
            self._take_in(int(self.reader.rpc("eth_blockNumber"), 16))
        except SdkError as e:
            if not self._away:  # said once per outage (a node still starting, or restarting)
                log.warning("node unreachable or refusing: %s; trying again", e)
            self._away = True
            return
        if self._away:
            log.info("node answering at %s", self.reader.url)
        self._away = False
        for key in sorted(self.state.jobs, key=int):
            for role, work in self._roles():
                entry = self.state.jobs.get(key, {}).get(role)
                if entry is not None and entry.get("retry_at", 0) <= time.time():
                    self._attempt(int(key), role, entry, work)

    def _take_in(self, head: int) -> None:
        while self.state.last_block < head:
            first = self.state.last_block + 1
            last = min(head, first + BLOCKS_PER_QUERY - 1)
            logs = self.reader.rpc("eth_getLogs", {"fromBlock": hex(first), "toBlock": hex(last),
                                                   "address": ADDRESSES[self.MODULE]})
            for ev in decode_events(logs):
                role = self._role_of(ev)
                if role is not None:
                    self.state.jobs.setdefault(str(ev["args"]["jobId"]), {}).setdefault(role, {})
                    log.info("job %d: %s seen in block range %d..%d", ev["args"]["jobId"], ev["event"], first, last)
            self.state.last_block = last
            self.state.save()

    def _roles(self) -> tuple[tuple[str, Callable[[int, dict], float | None]], ...]:
        """(role, work) in the order a job's roles are worked on (a subclass serves another module)."""
        return ("serve", self._serve), ("verify", self._verify), ("attribute", self._attribute)

    def _role_of(self, ev: dict) -> str | None:
        """The role an event of `MODULE` starts for this process, if any."""
        return {"InferenceRequested": "serve" if self.serving else None,
                "ResultSubmitted": "verify" if self.verifying else None,
                "JobFinalised": "attribute" if self.attribute_runs is not None and ev["args"].get("success")
                else None}.get(ev["event"])

    def _attempt(self, job_id: int, role: str, entry: dict, work: Callable[[int, dict], float | None]) -> None:
        try:
            later = work(job_id, entry)  # a time to come back (a window still open), or None: done
            if later is not None:
                entry["retry_at"] = later
            done = later is None
        except (SdkError, JobError) as e:
            if isinstance(e, JobError) and not e.transient:  # nothing a retry would change
                log.error("job %d: cannot %s it: %s; dropped", job_id, role, e)
                done = True
            else:  # the chain refused or the node is away: later, with a longer wait
                done = self._back_off(job_id, role, entry, e)
        if done:
            jobs = self.state.jobs[str(job_id)]
            del jobs[role]
            if not jobs:
                del self.state.jobs[str(job_id)]
        self.state.save()

    @staticmethod
    def _back_off(job_id: int, role: str, entry: dict, e: Exception) -> bool:
        entry["tries"] = entry.get("tries", 0) + 1
        delay = BACKOFF_S[min(entry["tries"], len(BACKOFF_S)) - 1]
        entry["retry_at"] = time.time() + delay
        log.warning("job %d: %s refused (%s); retry %d in %d s", job_id, role, getattr(e, "reason", None) or e,
                    entry["tries"], delay)
        return False

    # -- the two services ------------------------------------------------------------------------
    def _serve(self, job_id: int, entry: dict) -> None:
        """Generate, store result and proof, submitResult."""
        if "tx" not in entry:
            job = model.job_of(self.reader, job_id)
            if job["statusName"] != "requested":
                log.info("job %d: %s, nothing to serve", job_id, job["statusName"])
                return
            if int(job["deadline"], 16) <= int(self.reader.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16):
                log.info("job %d: timed out before it was served (`job finalise` refunds it)", job_id)
                return
            signer = self.signers[job_id % len(self.signers)]
            adapter_id = int(job["adapterId"], 16)
            log.info("job %d: serving adapter %d as %s", job_id, adapter_id, signer.address)
            served = model.serve(self._runtime(adapter_id), job, model.prompt_of(self.reader, job), self.max_new_tokens)
            output_hash, commitment = model.store_served(self.reader, served)
            log.info("job %d: output %r stored as 0x%s", job_id, served.text, output_hash.hex())
            self._record(entry, signer.build("InferenceJobs", "submitResult", job_id, output_hash, commitment))
        receipt = self._settle(entry)
        log.info("job %d: result submitted in block %d (tx %s)", job_id, int(receipt["blockNumber"], 16), entry["tx"])

    def _verify(self, job_id: int, entry: dict) -> None:
        """Re-check once, then attest with every key but the submitter's."""
        attests = entry.setdefault("attests", {})  # address -> {raw, tx} once signed
        job = model.job_of(self.reader, job_id)
        pending = [s for s in self.signers if s.address.lower() != job["submitter"].lower()
                   and not attests.get(s.address, {}).get("done")]
        if job["statusName"] != "submitted" and not any("tx" in attests.get(s.address, {}) for s in pending):
            log.info("job %d: %s, no attestation needed", job_id, job["statusName"])
            return
        if "valid" not in entry:
            valid, reason = model.check(self.reader, job, self.options, self._runtime(int(job["adapterId"], 16)))
            entry.update(valid=valid, reason=reason)
            self.state.save()
            log.info("job %d: result by %s checked: %s (%s)", job_id, job["submitter"],
                     "valid" if valid else "invalid", reason)
        for signer in pending:
            rec = attests.setdefault(signer.address, {})
            if "tx" not in rec:
                job = model.job_of(self.reader, job_id)
                if job["statusName"] != "submitted":
                    log.info("job %d: %s before %s attested", job_id, job["statusName"], signer.address)
                    return
                if self.reader.call("InferenceJobs", "attestation", job_id, signer.address):
                    rec["done"] = True
                    continue
                gas = model.attest_gas(signer, job_id, entry["valid"])
                self._record(rec, signer.build("InferenceJobs", "attest", job_id, entry["valid"], gas=gas))
            receipt = self._settle(rec)
            rec["done"] = True
            self.state.save()
            log.info("job %d: %s attested %s in block %d (tx %s)", job_id, signer.address,
                     "valid" if entry["valid"] else "invalid", int(receipt["blockNumber"], 16), rec["tx"])

    def _attribute(self, job_id: int, entry: dict) -> float | None:
        """Post the proof (unless one is), then finalise it once its dispute window has closed."""
        signer = self.signers[job_id % len(self.signers)]
        post = entry.setdefault("post", {})
        if not post.get("done"):
            if "tx" not in post and self._proof(job_id) is None:
                job = model.job_of(self.reader, job_id)
                proof, args = attribution.prove(self.reader, job, self._run_of(int(job["adapterId"], 16)))
                self.reader.put_blob(proof, public=True)
                log.info("job %d: attributed to %d contributions (method %d)", job_id, len(args[4]), args[3])
                self._record(post, signer.build("Attribution", "postProof", *args))
            if "tx" in post:
                receipt = self._settle(post)
                log.info("job %d: proof posted in block %d (tx %s)", job_id, int(receipt["blockNumber"], 16), post["tx"])
            post["done"] = True
            self.state.save()
        fin = entry.setdefault("finalise", {})
        if "tx" not in fin:
            proof = self._proof(job_id)
            if proof is None or int(proof["status"], 16) != 1:
                log.info("job %d: proof %s, nothing to finalise", job_id, "missing" if proof is None else "already paid")
                return None
            deadline = int(proof["disputeDeadline"], 16)
            ready, gas = attribution.finalise_gas(self.reader, deadline)
            if not ready:
                return float(deadline)
            self._record(fin, signer.build("Attribution", "finaliseProof", job_id, gas=gas))
        receipt = self._settle(fin)
        paid = [e for e in decode_events(receipt["logs"]) if e["event"] == "RewardPaid"]
        log.info("job %d: proof finalised in block %d, fee split paid to %d accounts (tx %s)", job_id,
                 int(receipt["blockNumber"], 16), len(paid), fin["tx"])
        return None

    def _proof(self, job_id: int) -> dict | None:
        try:
            return self.reader.ol("getProof", hex(job_id))
        except SdkError as e:
            if e.code is None:  # no answer: retried
                raise
            return None  # "no proof for job N"

    def _run_of(self, adapter_id: int) -> pathlib.Path:
        """The training run directory (of --attribution-run) that trained `adapter_id`."""
        from training import TrainingRun

        adapter_hash = model.lineage(self.reader, adapter_id)["run"]["adapterHash"]
        for run in self.attribute_runs or ():
            try:
                record = TrainingRun.from_json((run / "record.json").read_bytes())
            except (OSError, ValueError):
                continue
            if "0x" + record.adapter_hash.hex() == adapter_hash:
                return run
        raise JobError(f"no --attribution-run directory holds the training run of adapter {adapter_id} ({adapter_hash})")

    # -- transactions sent exactly once ----------------------------------------------------------
    def _record(self, entry: dict, signed: tuple[bytes, bytes]) -> None:
        """Keep the signed transaction before it is sent: a restart sends these bytes, not new ones."""
        raw, tx_hash = signed
        entry.update(raw="0x" + raw.hex(), tx="0x" + tx_hash.hex())
        self.state.save()

    def _settle(self, entry: dict) -> dict:
        """The recorded transaction's receipt, sending it first if the node has not seen it. A
        transaction that reverted, or whose nonce another one took, is forgotten (SdkError): the
        next try starts from the job's state on chain."""
        receipt = self.reader.rpc("eth_getTransactionReceipt", entry["tx"])
        if receipt is None:
            try:
                self.reader.rpc("eth_sendRawTransaction", entry["raw"])
            except SdkError as e:
                if "already known" not in str(e):
                    if "nonce too low" in str(e):
                        self._forget(entry)
                    raise
            deadline = time.monotonic() + MINED_WITHIN_S
            while (receipt := self.reader.rpc("eth_getTransactionReceipt", entry["tx"])) is None:
                if time.monotonic() > deadline:
                    raise SdkError(f"transaction {entry['tx']} not mined within {MINED_WITHIN_S} s")
                time.sleep(0.1)
        if receipt["status"] != "0x1":
            tx = entry["tx"]
            self._forget(entry)
            raise SdkError(f"transaction {tx} reverted")
        return receipt

    def _forget(self, entry: dict) -> None:
        entry.pop("raw", None)
        entry.pop("tx", None)
        self.state.save()

    def _runtime(self, adapter_id: int) -> Runtime:
        """The model with `adapter_id`, loaded once per process."""
        if adapter_id not in self._runtimes:
            self._runtimes[adapter_id] = Runtime(self.reader, self.options, adapter_id)
        return self._runtimes[adapter_id]
