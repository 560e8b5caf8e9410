"""The model work of a paid inference job, shared by `openledger job submit|attest` and the
validator services: load the base model named on chain with the job's adapter fetched by hash,
generate greedily with an activation commitment, or re-check someone else's result (one prefill).

Every byte the chain names by hash lives in the node's blob store as a public object: the prompt
(`promptHash`), the result (`outputHash`: canonical JSON of the prompt's and output's token ids,
the output text and the sampling settings) and the activation-commitment proof
(`activationCommitment` is its keccak256).
"""
from __future__ import annotations

import dataclasses
import json
import tempfile

from eth_utils import keccak

from node.sdk import JOB_STATUS as STATUS
from node.sdk import Client, SdkError

DEFAULT_STORE = ".openlora/adapters"
ATTEST_GAS = 400_000
"""A floor for an attestation's gas limit that also covers settling the job: measured in
tests/native/test_flow.py, a first attestation uses 109,100 gas and the settling one 162,937
(it also keeps the success time for the proof timeout)."""


class JobError(Exception):
    """A job that cannot be served or checked here (missing object, unloadable model): said plainly.
    `transient` when the node did not answer at all, so a later try may succeed."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """How to run the model: the CLI's --base, --store, --max-seq-len, --device, --threads."""

    base: str | None = None  # None: the name registered on chain
    store: str = DEFAULT_STORE
    max_seq_len: int = 512
    device: str = "cpu"
    threads: int = 1

    @classmethod
    def of(cls, args) -> "ModelOptions":
        return cls(args.base, args.store, args.max_seq_len, args.device, args.threads)


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def h(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _read(client: Client, method: str, *params):
    try:
        return client.ol(method, *params)
    except SdkError as e:
        raise JobError(f"ol_{method}: {e.reason or e}", transient=e.code is None) from None


def job_of(client: Client, job_id: int) -> dict:
    job = _read(client, "getJob", hex(job_id))
    return {**job, "statusName": STATUS.get(int(job["status"], 16), "?")}


def lineage(client: Client, adapter_id: int) -> dict:
    """The adapter's training run and base model as the chain records them."""
    adapter = _read(client, "getAdapter", hex(adapter_id))
    run = _read(client, "getTrainingRun", adapter["runId"])
    base = _read(client, "getBaseModel", run["baseModelId"])
    return {"adapter": adapter, "run": run, "base": base}


def prompt_of(client: Client, job: dict) -> str:
    try:
        return client.get_object(h(job["promptHash"])).decode("utf-8")
    except SdkError as e:
        raise JobError(f"the prompt {job['promptHash']} of job {int(job['id'], 16)} is not on this node ({e})") from None
    except UnicodeDecodeError:
        raise JobError(f"the prompt {job['promptHash']} is not UTF-8 text") from None


def result_of(client: Client, job: dict) -> dict:
    """The result object a submitter stored under the job's outputHash."""
    try:
        return json.loads(client.get_object(h(job["outputHash"])))
    except SdkError as e:
        raise JobError(f"job {int(job['id'], 16)}: its result {job['outputHash']} is not on this node ({e})") from None


class Runtime:
    """The base model named on chain (or options.base) with one adapter fetched from the node."""

    def __init__(self, client: Client, options: ModelOptions, adapter_id: int) -> None:
        import torch

        import inference
        import training

        torch.set_num_threads(options.threads)
        self.options = options
        chain = lineage(client, adapter_id)
        name = options.base or chain["base"]["name"]
        try:
            self.base = training.load_base(name, device=options.device)
        except (training.ConfigError, OSError) as e:
            raise JobError(f"base model {name!r} (model {int(chain['run']['baseModelId'], 16)} on chain): {e}; "
                           "pass --base NAME") from None
        self.adapter_hash = chain["run"]["adapterHash"]
        model = self.base.model.eval()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                folder = client.fetch_adapter(h(self.adapter_hash), tmp)
            except SdkError as e:
                raise JobError(f"adapter {self.adapter_hash} is not on this node ({e.reason or e}); "
                               "`openledger train --commit` stores it") from None
            config = json.loads((folder / "adapter_config.json").read_text())
            try:
                self.store = inference.AdapterStore(options.store, inference.BaseSpec.of(model),
                                                    targets=tuple(config["target_modules"]), max_rank=int(config["r"]))
                self.store.add(folder)
            except inference.InferenceError as e:
                raise JobError(f"adapter {self.adapter_hash} does not fit {name}: {e}") from None
        self.model = model
        self._verifier = None

    def verifier(self):
        """The OpenLoRA verifier of this model, made once (it holds its adapter pool and caches)."""
        if self._verifier is None:
            from inference import Verifier

            self._verifier = Verifier(self.model, self.store, max_seq_len=self.options.max_seq_len, max_batch=1)
        return self._verifier

    def tokens(self, text: str) -> list[int]:
        return list(self.base.tokenizer.encode(text))

    def close(self) -> None:
        self.store.close()


@dataclasses.dataclass(frozen=True)
class Served:
    result: bytes  # canonical JSON, stored under outputHash
    proof: bytes  # activation-commitment proof, stored under activationCommitment
    text: str


def serve(rt: Runtime, job: dict, prompt: str, max_new_tokens: int) -> Served:
    """Generate greedily for `job` with an activation commitment."""
    served = serve_batch(rt, [(job, prompt)], max_new_tokens)[0]
    if isinstance(served, JobError):
        raise served
    return served


def serve_batch(rt: Runtime, jobs: list[tuple[dict, str]], max_new_tokens: int) -> list[Served | JobError]:
    """Generate for several (job, prompt) of one adapter in one batch of the OpenLoRA engine (one
    batched prefill, then one decode step for all at a time); each job gets its own result and
    activation commitment, or the JobError that refused it."""
    from inference import Engine, InferenceError, SamplingParams  # torch: only once there is work

    params = SamplingParams(max_new_tokens=max_new_tokens)
    out: list[Served | JobError | None] = [None] * len(jobs)
    engine = Engine(rt.model, rt.store, max_batch=len(jobs), max_seq_len=rt.options.max_seq_len, pool_slots=2)
    try:
        futures = {}
        for i, (job, prompt) in enumerate(jobs):
            try:
                prompt_tokens = rt.tokens(prompt)
                futures[i] = (prompt_tokens, engine.submit(rt.adapter_hash, prompt_tokens, params))
            except InferenceError as e:
                out[i] = JobError(f"job {int(job['id'], 16)}: {e}")
        engine.run_until_idle()
        for i, (prompt_tokens, future) in futures.items():
            job = jobs[i][0]
            try:
                gen = future.result()
            except InferenceError as e:
                out[i] = JobError(f"job {int(job['id'], 16)}: {e}")
                continue
            text = rt.base.tokenizer.decode(list(gen.tokens), skip_special_tokens=True)
            result = canonical({"job": int(job["id"], 16), "promptHash": job["promptHash"], "promptTokens": prompt_tokens,
                                "tokens": list(gen.tokens), "text": text, "maxNewTokens": params.max_new_tokens,
                                "temperature": params.temperature})
            out[i] = Served(result, gen.commitment.to_bytes(), text)
    finally:
        engine.close()
    return out  # type: ignore[return-value]


def sampled(block_hash: bytes, job_id: int, sample_ppm: int) -> bool:
    """Whether the result of `job_id`, submitted in the block `block_hash`, is one the verifiers
    re-check (a share `sample_ppm` of results, the genesis parameter verify_sample_ppm). The seed is
    the chain's, so every verifier draws the same: all re-check the job, or none does."""
    return int.from_bytes(keccak(block_hash + job_id.to_bytes(32, "big")), "big") % 1_000_000 < sample_ppm


def store_served(client: Client, served: Served) -> tuple[bytes, bytes]:
    """(outputHash, activationCommitment): the result and its proof stored as public objects."""
    try:
        return client.put_blob(served.result, public=True), client.put_blob(served.proof, public=True)
    except SdkError as e:
        raise JobError(f"blob store refused the result: {e}") from None


def check(client: Client, job: dict, options: ModelOptions, rt: Runtime | None = None,
          prefill: bool = True) -> tuple[bool, str]:
    """Recompute the submitted result: the prompt it used, then its tokens and activation commitment
    (one prefill; without `prefill`, for a result not sampled, only the first two). `rt` reuses a
    loaded runtime for the job's adapter; without one it is loaded."""
    from inference import InferenceError, SamplingParams

    result = result_of(client, job)
    prompt = prompt_of(client, job)
    try:
        proof = client.get_object(h(job["activationCommitment"]))
    except SdkError as e:  # missing is not wrong: say so, and let the validator decide
        raise JobError(f"cannot check job {int(job['id'], 16)}: its activation proof {job['activationCommitment']} is "
                       f"not on this node ({e})") from None
    own = rt is None
    if own:
        rt = Runtime(client, options, int(job["adapterId"], 16))
    try:
        if result.get("promptTokens") != rt.tokens(prompt):
            return False, "the result was computed on another prompt"
        if not isinstance(result.get("tokens"), list) or result.get("temperature") != 0.0:
            return False, "the result object is malformed (tokens, temperature 0 expected)"
        if rt.base.tokenizer.decode(result["tokens"], skip_special_tokens=True) != result.get("text"):
            return False, "the result's text is not its tokens"
        if not prefill:
            return True, "well-formed; not sampled for re-computation (verify_sample_ppm)"
        verdict = rt.verifier().verify(rt.adapter_hash, result["promptTokens"], result["tokens"],
                                       SamplingParams(max_new_tokens=int(result["maxNewTokens"])), proof,
                                       h(job["activationCommitment"]))
        return verdict.ok, verdict.reason
    except (InferenceError, KeyError, TypeError, ValueError) as e:
        return False, f"cannot check the result: {e}"
    finally:
        if own:
            rt.close()


def attest_gas(client: Client, job_id: int, valid: bool) -> int:
    """Validators attest at once, and the attestation that completes the quorum also settles the job
    (pays the server, records its work): an estimate made while another attestation is still in
    flight misses that part, so the limit covers it (unused gas is not charged)."""
    return max(2 * client.estimate("InferenceJobs", "attest", job_id, valid), ATTEST_GAS)
