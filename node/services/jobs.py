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

One pass does everything due: a transaction is sent and the pass goes on to the next job's step
(`Pending`), its receipt is looked at on the next pass, so the results, attestations, proofs and
finalisations due in one block go out together (each key's nonces from the node's pending count).

Several validators, each its own services process, share the work by turns read from the chain
(`_turn`): a job is served by the active GPU validators' `job id mod n`-th (Staking's order), its
proof posted by its server and finalised by its poster; the next validator in that order takes a
step over once a tenth of `job_timeout_s` has passed without it if the one before is not signing
blocks (down), half of it if it is (up, but slow), so a validator that is down delays its jobs
but loses none, and two validators rarely do the same step (the chain refuses the second).
"""
from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable, Sequence

from node.sdk import ADDRESSES, Client, SdkError, decode_events
from node.services import attribution, model
from node.services.model import JobError, ModelOptions, Runtime
from node.services.peers import PeerClient
from vm.modules.staking import CAP_GPU_INFERENCE
from node.services.state import State

log = logging.getLogger("node.services")  # --log.vmodule node.services=LEVEL

BLOCKS_PER_QUERY = 1000
BACKOFF_S = (1, 2, 4, 8, 15, 30, 60)
MINED_WITHIN_S = 60
EXPIRE_POLL_S = 2
TAKEOVER_SHARE = 10
"""A step is taken over by the next validator in turn after job_timeout_s / TAKEOVER_SHARE seconds
when the validators before it are not signing blocks (down: 30 s on a devnet), after
job_timeout_s / LIVE_TAKEOVER_SHARE when they are (up, but its services slow or stopped: a CPU
validator's first job, loading the model under load, can take minutes). A taker-over's duplicate
result is refused by the chain, so too early wastes work; it never pays twice."""
LIVE_TAKEOVER_SHARE = 2
SYNC_SLACK = 2
"""A node more blocks than this behind the best it knows (eth_syncing: a validator restarting,
catching up) gets no work from its services until it has caught up."""
SIGNED_WITHIN = 3
"""A validator that signed one of the last SIGNED_WITHIN commits is up (a commit needs only 2/3)."""


class Pending(Exception):
    """A step's transaction is sent and not mined yet: the pass goes on, and the step comes back."""


class Services:
    """Serve (`serve`), verify (`verify`) and attribute (`attribute_runs`: the training run
    directories of the adapters to attribute) jobs with the accounts of `keys`, each one validator:
    a job is served and attributed by the validator whose turn it is (`_turn`), and every other
    one attests its result. `peers`: other validators' JSON-RPC URLs, for objects the node lacks."""

    MODULES = ("InferenceJobs", "Attribution")
    """The native modules whose events start work (node.services.training watches TrainingJobs)."""

    def __init__(self, url: str, keys: Sequence[bytes | str], folder, *, serve: bool, verify: bool,
                 options: ModelOptions, max_new_tokens: int = 24,
                 attribute_runs: Sequence[pathlib.Path] | None = None, peers: Sequence[str] = ()) -> None:
        if not keys:
            raise JobError("the services need a signing key")
        self.reader = PeerClient(url, peers)  # objects the node lacks: from the other validators' nodes
        self.signers = [Client(url, k) for k in keys]
        self.serving, self.verifying = serve, verify
        self.attribute_runs = attribute_runs
        self.options, self.max_new_tokens = options, max_new_tokens
        self.state = State(folder)
        self._runtimes: dict[int, Runtime] = {}
        self._away = self._syncing = False
        self._runs: dict[int, pathlib.Path] = {}  # adapter id -> its --attribution-run directory
        self._lineages: dict[int, dict] = {}  # adapter id -> model.lineage
        self._sent: dict[str, float] = {}  # tx hash -> when this process sent it (monotonic)
        self._head: tuple[int, int] = (-1, 0)  # (number, timestamp) of the head this pass works at
        self._views: dict[str, object] = {}  # chain reads shared by this pass's jobs (params, validators)

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
            syncing = self.reader.rpc("eth_syncing")
            if syncing and int(syncing["highestBlock"], 16) - int(syncing["currentBlock"], 16) > SYNC_SLACK:
                if not self._syncing:  # its state is old: a job served there may be long done
                    log.info("node syncing (block %d of %d); no work until it has caught up",
                             int(syncing["currentBlock"], 16), int(syncing["highestBlock"], 16))
                self._syncing = True
                return
            self._syncing = False
            head = self.reader.rpc("eth_getBlockByNumber", "latest", False)
            if int(head["number"], 16) != self._head[0]:
                self._head, self._views = (int(head["number"], 16), int(head["timestamp"], 16)), {}
            self._take_in(self._head[0])
        except SdkError as e:
            if not self._away:  # said once per outage (a node still starting, or restarting)
                log.warning("node unreachable or refusing: %s; trying again", e)
            self._away = True
            return
        if self._away:
            log.info("node answering at %s", self.reader.url)
        self._away = False
        due = [(int(key), role, work) for key in sorted(self.state.jobs, key=int) for role, work in self._work()
               if role in self.state.jobs[key]]
        light = [d for d in due if self._light(self.state.jobs[str(d[0])][d[1]])]
        self._attempt_all(light)
        self._before_jobs()  # model work last
        self._attempt_all([d for d in due if d not in light])

    def _attempt_all(self, due: list) -> None:
        for job_id, role, work in due:
            entry = self.state.jobs.get(str(job_id), {}).get(role)
            if entry is not None and entry.get("retry_at", 0) <= time.time():
                self._attempt(job_id, role, entry, work)

    @staticmethod
    def _light(entry: dict) -> bool:
        """A step with no model work left: a transaction in flight, or a proof awaiting its
        finalisation. These go first in a pass, before any generation (`_before_jobs`, then each
        job's), so a job's payout never waits behind another's generation or attribution."""
        return ("tx" in entry or entry.get("post", {}).get("done", False)
                or any("tx" in e for e in entry.values() if isinstance(e, dict))  # post, finalise, dispute
                or any("tx" in a for a in entry.get("attests", {}).values()))

    def _roles(self, ev: dict) -> list[str]:
        """What this process does about an event: serve a request (and, as a verifier, watch it for
        its timeout), check a result, attribute a succeeded job (and watch it for its proof timeout)
        or re-check another's proof, post anew after a dispute or a rejection."""
        attributing = self.attribute_runs is not None
        ours = {s.address.lower() for s in self.signers}
        return {
            "InferenceRequested": ["serve"] * self.serving + ["expire"] * self.verifying,
            "ResultSubmitted": ["verify"] * self.verifying,
            "JobFinalised": ["attribute", "lapse"] * (attributing and bool(ev["args"].get("success"))),
            "ProofPosted": ["attribute"] * (attributing and ev["args"].get("poster", "").lower() not in ours),
            "ProofDisputed": ["attribute"] * attributing,
            "ProofRejected": ["attribute"] * attributing,
        }.get(ev["event"], [])

    def _take_in(self, head: int) -> None:
        while self.state.last_block < head:
            first = self.state.last_block + 1
            last = min(head, first + BLOCKS_PER_QUERY - 1)
            logs = self.reader.rpc("eth_getLogs", {"fromBlock": hex(first), "toBlock": hex(last),
                                                   "address": [ADDRESSES[m] for m in self.MODULES]})
            for ev in decode_events(logs):
                for role in self._roles(ev):
                    entry = self.state.jobs.setdefault(str(ev["args"]["jobId"]), {}).setdefault(role, {})
                    entry.pop("retry_at", None)  # news: worked on in this pass (a re-check must not wait for a turn)
                    if ev["event"] == "ResultSubmitted":  # the seed of the verification sample
                        entry["seed"] = ev.get("blockHash")
                    if ev["event"] == "ProofPosted":  # another's proof: re-check it
                        entry.pop("checked", None)
                    if ev["event"] in ("ProofDisputed", "ProofRejected"):  # a proof cleared (ours, maybe): anew
                        for done in ("checked", "post", "finalise"):
                            entry.pop(done, None)
                    if ev["event"] in ("JobFinalised", "ProofDisputed"):  # when a proof became due
                        entry["since"] = ev["block"]
                    if ev["event"] == "JobFinalised":  # no proof to re-check yet (a ProofPosted after it clears this)
                        entry["checked"] = True
                    log.info("job %d: %s seen in block range %d..%d", ev["args"]["jobId"], ev["event"], first, last)
            self.state.last_block = last
            self.state.save()

    def _work(self) -> tuple[tuple[str, Callable[[int, dict], float | None]], ...]:
        """(role, work) in the order a job's roles are worked on (a subclass serves another module)."""
        return (("serve", self._serve), ("verify", self._verify), ("expire", self._expire),
                ("attribute", self._attribute), ("lapse", self._lapse))

    def _before_jobs(self) -> None:
        """Work across jobs before each job's own: requests for one adapter served as one batch."""
        if self.serving:
            self._serve_together()

    def _attempt(self, job_id: int, role: str, entry: dict, work: Callable[[int, dict], float | None]) -> None:
        try:
            later = work(job_id, entry)  # a time to come back (a window still open), or None: done
            if later is not None:
                entry["retry_at"] = later
            done = later is None
        except Pending:
            return  # sent: its receipt is looked at on the next pass (no back-off, nothing to save)
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

    # -- the services ----------------------------------------------------------------------------
    def _servable(self, job_id: int, say: bool = True) -> dict | None:
        """The job if it still awaits a result and has not timed out (else None, said if `say`)."""
        job = model.job_of(self.reader, job_id)
        if job["statusName"] != "requested":
            if say:
                log.info("job %d: %s, nothing to serve", job_id, job["statusName"])
            return None
        if int(job["deadline"], 16) <= self._head[1]:  # the head this pass works at
            if say:
                log.info("job %d: timed out before it was served (finalised and refunded by a verifier)", job_id)
            return None
        return job

    # -- turns: which validator does a step ------------------------------------------------------
    def _params(self) -> dict:
        if "params" not in self._views:
            self._views["params"] = self.reader.ol("getParams")["params"]
        return self._views["params"]  # type: ignore[return-value]

    def _validators(self, gpu: bool = False) -> list[str]:
        """The active validators (with `gpu`: those that may serve inference), lower-case, in the
        Staking module's registration order: the order every services process reads the same."""
        key = "gpu" if gpu else "active"
        if key not in self._views:
            active, serving = [], []
            for i in range(self.reader.call("Staking", "validatorCount")):
                address = self.reader.call("Staking", "validatorAt", i).lower()
                _, _, _, capabilities, is_active, _ = self.reader.call("Staking", "getValidator", address)
                if is_active:
                    active.append(address)
                    if capabilities & CAP_GPU_INFERENCE:
                        serving.append(address)
            self._views.update(active=active, gpu=serving)
        return self._views[key]  # type: ignore[return-value]

    def _turn(self, order: list[str], first: str, since: int | Callable[[], int]) -> tuple[Client | None, float | None]:
        """Which of our keys does a step that is `first`'s from chain time `since` (validators
        `order`; a callable: read only if needed): `first` at once, the next in order a takeover
        period later, and so on (the ones before it presumed away). (signer, None) when one of ours
        has its turn; (None, when to look again) while not yet; (None, None) when none of our keys
        is in `order`."""
        mine = {s.address.lower(): s for s in self.signers}
        start = order.index(first) if first in order else 0
        timeout = int(self._params()["job_timeout_s"], 16)
        for rank in range(len(order)):
            signer = mine.get(order[(start + rank) % len(order)])
            if signer is not None:
                if rank == 0:
                    return signer, None
                before = {order[(start + r) % len(order)] for r in range(rank)}
                share = LIVE_TAKEOVER_SHARE if before & self._signing() else TAKEOVER_SHARE
                due = (since() if callable(since) else since) + rank * (timeout // share)
                return (signer, None) if max(time.time(), self._head[1]) >= due else (None, float(due))
        return None, None

    def _signing(self) -> set[str]:
        """The validators (lower-case) that signed one of the last SIGNED_WITHIN commits: up."""
        if "signing" not in self._views:
            signing: set[str] = set()
            for height in range(max(1, self._head[0] - SIGNED_WITHIN + 1), self._head[0] + 1):
                commit = self.reader.ol("getCommit", hex(height))
                signing.update(s["validator"].lower() for s in (commit or {}).get("signatures", ()))
            self._views["signing"] = signing
        return self._views["signing"]  # type: ignore[return-value]

    def _timestamp(self, number: int) -> int:
        return int(self.reader.rpc("eth_getBlockByNumber", hex(number), False)["timestamp"], 16)

    def _server(self, job_id: int, job: dict) -> tuple[Client | None, float | None]:
        """Our key that serves `job` now (the GPU validators' job id mod n-th, or the next after a
        takeover period): `_turn`'s answer."""
        order = self._validators(gpu=True)
        if not order:
            return None, None
        since = int(job["deadline"], 16) - int(self._params()["job_timeout_s"], 16)  # the request's time
        return self._turn(order, order[job_id % len(order)], since)

    def _serve_together(self) -> None:
        """Jobs that arrived together for one adapter share one batch of the OpenLoRA engine: their
        results are generated at once and kept (stored on the node) for `_serve` to submit."""
        waiting: dict[int, list[tuple[int, dict]]] = {}
        for key, roles in self.state.jobs.items():
            entry = roles.get("serve")
            if entry is not None and not {"tx", "served"} & entry.keys() and entry.get("retry_at", 0) <= time.time():
                try:
                    job = self._servable(int(key), say=False)
                except (SdkError, JobError):
                    continue  # `_serve` says why, and backs off
                if job is not None and self._server(int(key), job)[0] is not None:  # our turn
                    waiting.setdefault(int(job["adapterId"], 16), []).append((int(key), job))
        for adapter_id, jobs in waiting.items():
            if len(jobs) < 2:
                continue  # one job: `_serve` runs it as it is
            try:
                batch = [(job, model.prompt_of(self.reader, job)) for _, job in jobs]
                results = model.serve_batch(self._runtime(adapter_id), batch, self.max_new_tokens)
            except (SdkError, JobError) as e:
                log.warning("adapter %d: batch of %d jobs not served together (%s); one by one", adapter_id, len(jobs), e)
                continue
            log.info("jobs %s: served together in one batch on adapter %d", ", ".join(str(j) for j, _ in jobs), adapter_id)
            for (job_id, _), served in zip(jobs, results):
                if isinstance(served, model.Served):
                    self._keep_served(job_id, self.state.jobs[str(job_id)]["serve"], served)
            self.state.save()

    def _keep_served(self, job_id: int, entry: dict, served: model.Served) -> None:
        output_hash, commitment = model.store_served(self.reader, served)
        entry["served"] = {"outputHash": "0x" + output_hash.hex(), "commitment": "0x" + commitment.hex()}
        log.info("job %d: output %r stored as 0x%s", job_id, served.text, output_hash.hex())

    def _serve(self, job_id: int, entry: dict) -> float | None:
        """Generate (unless done in a batch), store result and proof, submitResult: when it is the
        turn of one of our keys."""
        if "tx" not in entry:
            job = self._servable(job_id)
            if job is None:
                return None
            signer, later = self._server(job_id, job)
            if signer is None:
                if later is None:
                    log.info("job %d: none of this process's keys is an active GPU validator; not served here", job_id)
                return later
            adapter_id = int(job["adapterId"], 16)
            if "served" not in entry:
                log.info("job %d: serving adapter %d as %s", job_id, adapter_id, signer.address)
                served = model.serve(self._runtime(adapter_id), job, model.prompt_of(self.reader, job),
                                     self.max_new_tokens)
                self._keep_served(job_id, entry, served)
            output_hash, commitment = (model.h(entry["served"][k]) for k in ("outputHash", "commitment"))
            self._record(entry, self._build(signer, "InferenceJobs", "submitResult", job_id, output_hash, commitment))
        receipt = self._settle(entry)
        log.info("job %d: result submitted in block %d (tx %s)", job_id, int(receipt["blockNumber"], 16), entry["tx"])
        return None

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
            disputed = int(job["invalidVotes"], 16) > 0  # someone found it wrong: every verifier re-checks
            sample_ppm = int(self._params()["verify_sample_ppm"], 16)
            full = disputed or not entry.get("seed") or model.sampled(model.h(entry["seed"]), job_id, sample_ppm)
            valid, reason = model.check(self.reader, job, self.options, self._runtime(int(job["adapterId"], 16)),
                                        prefill=full)
            entry.update(valid=valid, reason=reason)
            self.state.save()
            log.info("job %d: result by %s checked: %s (%s)", job_id, job["submitter"],
                     "valid" if valid else "invalid", reason)
            job = model.job_of(self.reader, job_id)  # the check took a while: where the job stands now
        for signer in pending:  # every key's attestation signed and sent, then their receipts
            rec = attests.setdefault(signer.address, {})
            if "tx" not in rec:
                if job["statusName"] != "submitted":
                    log.info("job %d: %s before %s attested", job_id, job["statusName"], signer.address)
                    return
                if self.reader.call("InferenceJobs", "attestation", job_id, signer.address):
                    rec["done"] = True
                    continue
                # a fixed limit, no estimate: the status was read just now, and the limit covers settling
                self._record(rec, self._build(signer, "InferenceJobs", "attest", job_id, entry["valid"],
                                              gas=model.ATTEST_GAS))
                self._send(rec)
        waiting = False
        for signer in pending:
            rec = attests[signer.address]
            if rec.get("done"):
                continue
            receipt = self._settled(rec)
            if receipt is None:
                waiting = True
                continue
            log.info("job %d: %s attested %s in block %d (tx %s)", job_id, signer.address,
                     "valid" if entry["valid"] else "invalid", int(receipt["blockNumber"], 16), rec["tx"])
        if waiting:
            raise Pending

    def _expire(self, job_id: int, entry: dict) -> float | None:
        """A job nobody served or settled in time (its server went offline, say) is finalised once
        `job_timeout_s` has passed: refunded, or settled by the votes it has. Until then, looked at
        again every few seconds (and dropped once it is settled)."""
        if "tx" not in entry:
            job = model.job_of(self.reader, job_id)
            if job["statusName"] not in ("requested", "submitted"):
                return None
            deadline = int(job["deadline"], 16)
            ready, gas = attribution.finalise_gas(self.reader, deadline)
            if not ready:
                return min(float(deadline), time.time() + EXPIRE_POLL_S)
            signer = self.signers[job_id % len(self.signers)]
            log.info("job %d: %s past its deadline; finalising as %s", job_id, job["statusName"], signer.address)
            self._record(entry, self._build(signer, "InferenceJobs", "finalise", job_id, gas=gas))
        receipt = self._settle(entry)
        settled = [e for e in decode_events(receipt["logs"]) if e["event"] == "JobFinalised"]
        log.info("job %d: finalised after its timeout in block %d: %s", job_id, int(receipt["blockNumber"], 16),
                 "succeeded by its votes" if settled and settled[0]["args"]["success"] else "refunded")
        return None

    def _attribute(self, job_id: int, entry: dict) -> float | None:
        """Post the proof (unless one is), then finalise it once its dispute window has closed: the
        job's server posts, its poster finalises (`_turn`: another validator after a takeover period)."""
        post = entry.setdefault("post", {})
        if not post.get("done"):
            if "tx" not in post and (not entry.get("checked") or entry.get("dispute")):  # a dispute sent: its receipt
                self._recheck(job_id, entry)
            if "tx" not in post and self._proof(job_id) is None:
                job = model.job_of(self.reader, job_id)
                since = entry.get("since")  # the block the job succeeded (or its proof was disputed) in
                signer, later = self._turn(self._validators(), job["submitter"].lower(),
                                           lambda: 0 if since is None else self._timestamp(since))
                if signer is None:
                    if later is None:
                        log.info("job %d: none of this process's keys is an active validator; not attributed here",
                                 job_id)
                    return later
                adapter_id = int(job["adapterId"], 16)
                proof, args = attribution.prove(self.reader, job, self._run_of(adapter_id), self._lineage(adapter_id))
                self.reader.put_blob(proof, public=True)
                log.info("job %d: attributed to %d contributions (method %d)%s", job_id, len(args[4]), args[3],
                         "" if args[4] else ": no positive score, the contributors' part goes to the treasury")
                self._record(post, self._build(signer, "Attribution", "postProof", *args))
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
            signer, later = self._turn(self._validators(), proof["poster"].lower(), deadline)
            if signer is None:
                return later  # None: no key of ours validates; the poster or another finalises
            self._record(fin, self._build(signer, "Attribution", "finaliseProof", job_id, gas=gas))
        receipt = self._settle(fin)
        rejected = [e for e in decode_events(receipt["logs"]) if e["event"] == "ProofRejected"]
        if rejected:  # disputed short of a quorum: the ProofRejected event brings the job back to be attributed
            log.warning("job %d: proof by %s rejected as its window closed (%d dispute(s), short of the quorum; "
                        "nobody slashed) in block %d (tx %s)", job_id, rejected[0]["args"]["poster"],
                        rejected[0]["args"]["disputes"], int(receipt["blockNumber"], 16), fin["tx"])
            return None
        paid = [e for e in decode_events(receipt["logs"]) if e["event"] == "RewardPaid"]
        log.info("job %d: proof finalised in block %d, fee split paid to %d accounts (tx %s)", job_id,
                 int(receipt["blockNumber"], 16), len(paid), fin["tx"])
        return None

    def _recheck(self, job_id: int, entry: dict) -> None:
        """Re-check an open proof another validator posted: attribute the job here and compare; a
        proof whose contributions or weights differ beyond the tolerance is disputed (with the
        comparison stored as its reason) by every key here but the poster's, each a vote:
        `attestation_quorum` of them reject it at once and slash its poster, fewer reject it when its
        window closes. Either way the job is then attributed again."""
        disputes = entry.setdefault("disputes", {})  # address -> {raw, tx, done} once signed
        if not disputes:
            proof = self._proof(job_id)
            ours = {s.address.lower() for s in self.signers}
            if proof is None or int(proof["status"], 16) != 1 or proof["poster"].lower() in ours:
                return self._checked(entry)
            job = model.job_of(self.reader, job_id)
            adapter_id = int(job["adapterId"], 16)
            _, args = attribution.prove(self.reader, job, self._run_of(adapter_id), self._lineage(adapter_id))
            fault = attribution.compare(proof, args)
            if fault is None:
                log.info("job %d: proof by %s re-checked: agrees", job_id, proof["poster"])
                return self._checked(entry)
            head = int(self.reader.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
            if head >= int(proof["disputeDeadline"], 16):
                log.warning("job %d: proof by %s re-checked: %s; too late to dispute (window closed)", job_id,
                            proof["poster"], fault)
                return self._checked(entry)
            reason = model.canonical({"job": job_id, "poster": proof["poster"], "fault": fault})
            reason_hash = self.reader.put_blob(reason, public=True)
            voters = [s for s in self.signers if s.address.lower() != proof["poster"].lower()]
            log.warning("job %d: proof by %s re-checked: %s; disputing as %s", job_id, proof["poster"], fault,
                        ", ".join(s.address for s in voters))
            disputes.update({s.address: {} for s in voters})
            entry["dispute"] = {"poster": proof["poster"], "reason": "0x" + reason_hash.hex()}
            self.state.save()
        waiting = False
        for signer in self.signers:  # every vote sent in this pass; their receipts looked at as they come
            rec = disputes.get(signer.address)
            if rec is None or rec.get("done"):
                continue
            if "tx" not in rec:
                proof = self._proof(job_id)
                if proof is None or int(proof["status"], 16) != 1 or proof["poster"] != entry["dispute"]["poster"]:
                    log.info("job %d: the disputed proof is no longer open (rejected or settled)", job_id)
                    break
                head = int(self.reader.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
                if head >= int(proof["disputeDeadline"], 16):
                    log.warning("job %d: dispute window closed before %s disputed", job_id, signer.address)
                    break
                if self.reader.call("Attribution", "hasDisputed", job_id, signer.address):
                    rec["done"] = True
                    continue
                reason_hash = model.h(entry["dispute"]["reason"])
                gas = attribution.dispute_gas(signer, job_id, reason_hash)
                self._record(rec, self._build(signer, "Attribution", "disputeProof", job_id, reason_hash, gas=gas))
            receipt = self._settled(rec)
            if receipt is None:
                waiting = True
                continue
            rejected = [e for e in decode_events(receipt["logs"]) if e["event"] == "ProofRejected"]
            log.info("job %d: %s disputed the proof in block %d (tx %s)%s", job_id, signer.address,
                     int(receipt["blockNumber"], 16), rec["tx"],
                     f": upheld, the poster slashed {rejected[0]['args']['slashed']} wei" if rejected else "")
        if waiting:
            raise Pending
        self._checked(entry)

    def _checked(self, entry: dict) -> None:
        entry["checked"] = True
        entry.pop("disputes", None)
        entry.pop("dispute", None)
        self.state.save()

    def _lapse(self, job_id: int, entry: dict) -> float | None:
        """A succeeded job whose attribution never came (no attributor holds its adapter's run, or
        every proof was rejected) is settled without a proof once `proof_timeout_s` has passed since
        it succeeded (Attribution.finaliseWithoutProof: the contributors' part to the treasury).
        Until its fee is paid either way, looked at again every few seconds."""
        if "tx" not in entry:
            proof = self._proof(job_id)
            if proof is not None and int(proof["status"], 16) != 1:
                return None  # paid, or already settled without a proof
            deadline = self.reader.call("Attribution", "proofDeadline", job_id)
            if deadline == 0:
                return None  # this chain has no proof timeout
            if proof is not None:  # open: paid or rejected when its window closes
                return time.time() + EXPIRE_POLL_S
            ready, gas = attribution.finalise_gas(self.reader, deadline)
            if not ready:
                return min(float(deadline), time.time() + EXPIRE_POLL_S)
            signer = self.signers[job_id % len(self.signers)]
            log.warning("job %d: no attribution proof by its deadline %d (proof_timeout_s); settling it without one "
                        "as %s", job_id, deadline, signer.address)
            self._record(entry, self._build(signer, "Attribution", "finaliseWithoutProof", job_id, gas=gas))
        receipt = self._settle(entry)
        log.info("job %d: settled without a proof in block %d, the contributors' part to the treasury (tx %s)", job_id,
                 int(receipt["blockNumber"], 16), entry["tx"])
        return None

    def _proof(self, job_id: int) -> dict | None:
        try:
            return self.reader.ol("getProof", hex(job_id))
        except SdkError as e:
            if e.code is None:  # no answer: retried
                raise
            return None  # "no proof for job N"

    def _lineage(self, adapter_id: int) -> dict:
        """model.lineage, read once: an adapter's training run and base model do not change."""
        if adapter_id not in self._lineages:
            self._lineages[adapter_id] = model.lineage(self.reader, adapter_id)
        return self._lineages[adapter_id]

    def _run_of(self, adapter_id: int) -> pathlib.Path:
        """The training run directory (of --attribution-run) that trained `adapter_id` (found once:
        an adapter's training run on chain does not change)."""
        if adapter_id not in self._runs:
            self._runs[adapter_id] = self._find_run(adapter_id)
        return self._runs[adapter_id]

    def _find_run(self, adapter_id: int) -> pathlib.Path:
        from training import TrainingRun

        adapter_hash = self._lineage(adapter_id)["run"]["adapterHash"]
        for run in self.attribute_runs or ():
            try:
                record = TrainingRun.from_json((run / "record.json").read_bytes())
            except (OSError, ValueError):
                continue
            if "0x" + record.adapter_hash.hex() == adapter_hash:
                return run
        raise JobError(f"no --attribution-run directory holds the training run of adapter {adapter_id} ({adapter_hash})")

    # -- transactions sent exactly once ----------------------------------------------------------
    def _build(self, signer: Client, module: str, fn: str, *args, gas: int | None = None) -> tuple[bytes, bytes]:
        """signer.build with the nonce and fees read once per block: the pending nonce, counted on
        here for each further transaction of the key in this block (each is sent as soon as it is
        recorded; a stale count is read afresh at the next block, and a nonce taken twice ends in
        one "nonce too low", which `_send` forgets)."""
        key = "nonce " + signer.address
        if key not in self._views:
            self._views[key] = int(self.reader.rpc("eth_getTransactionCount", signer.address, "pending"), 16)
        if "fees" not in self._views:
            self._views["fees"] = self.reader.fees()
        signed = signer.build(module, fn, *args, gas=gas, nonce=self._views[key], fees=self._views["fees"])
        self._views[key] += 1  # type: ignore[operator]
        return signed

    def _record(self, entry: dict, signed: tuple[bytes, bytes]) -> None:
        """Keep the signed transaction before it is sent: a restart sends these bytes, not new ones."""
        raw, tx_hash = signed
        entry.update(raw="0x" + raw.hex(), tx="0x" + tx_hash.hex())
        self.state.save()

    def _send(self, entry: dict) -> None:
        """Send the recorded transaction (again, after a restart: the same bytes); a nonce another
        transaction took forgets it (SdkError): the next try starts from the job's state on chain."""
        try:
            self.reader.rpc("eth_sendRawTransaction", entry["raw"])
        except SdkError as e:
            if "already known" not in str(e):
                if "nonce too low" in str(e):
                    self._forget(entry)
                raise
        self._sent[entry["tx"]] = time.monotonic()

    def _settle(self, entry: dict) -> dict:
        """The recorded transaction's receipt; `Pending` while it is not mined (sent first if this
        process has not sent it). A transaction that reverted, or is not mined within
        MINED_WITHIN_S, is SdkError (a reverted one forgotten; a slow one sent again on the retry)."""
        tx = entry["tx"]
        receipt = self.reader.rpc("eth_getTransactionReceipt", tx)
        if receipt is None:
            sent = self._sent.get(tx)
            if sent is None:
                self._send(entry)
                raise Pending
            if time.monotonic() - sent > MINED_WITHIN_S:
                del self._sent[tx]
                raise SdkError(f"transaction {tx} not mined within {MINED_WITHIN_S} s")
            raise Pending
        self._sent.pop(tx, None)
        if receipt["status"] != "0x1":
            self._forget(entry)
            raise SdkError(f"transaction {tx} reverted")
        return receipt

    def _settled(self, rec: dict) -> dict | None:
        """One of a step's several transactions (each key's vote): its receipt, the record marked
        done; None while it is not mined, so the others are looked at in the same pass."""
        try:
            receipt = self._settle(rec)
        except Pending:
            return None
        rec["done"] = True
        self.state.save()
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
