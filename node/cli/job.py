"""`openledger job request|submit|attest|finalise|show`: paid OpenLoRA inference from the command line.

Every byte the chain names by hash goes to the node's blob store as a public object first, so any
validator can fetch and check it: the prompt (`promptHash`), the result (`outputHash`: canonical
JSON of the prompt's and output's token ids, the output text and the sampling settings) and the
activation-commitment proof (`activationCommitment` is its keccak256). The adapter comes from the
node too, by the hash its training run committed (`openledger train --commit` stores it).
"""
from __future__ import annotations

import argparse
import json
import tempfile

from node.cli.common import CliError, positive
from node.cli.native import _add_client_flags, _amount, _client, _print_json, _read, _send, _uint
from node.sdk import Client, SdkError

STATUS = {1: "requested", 2: "submitted", 3: "succeeded", 4: "failed"}
DEFAULT_STORE = ".openlora/adapters"
MAX_PROMPT_BYTES = 64 * 1024
"""Prompts above this are refused before anything is paid: no served model has a context that long."""


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _h(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def job_of(client: Client, job_id: int) -> dict:
    job = _read(client, "getJob", hex(job_id))
    return {**job, "statusName": STATUS.get(int(job["status"], 16), "?")}


def lineage(client: Client, adapter_id: int) -> dict:
    """The adapter's training run and base model as the chain records them."""
    adapter = _read(client, "getAdapter", hex(adapter_id))
    run = _read(client, "getTrainingRun", adapter["runId"])
    base = _read(client, "getBaseModel", run["baseModelId"])
    return {"adapter": adapter, "run": run, "base": base}


def result_of(client: Client, job: dict) -> dict:
    """The result object a submitter stored under the job's outputHash."""
    try:
        return json.loads(client.get_object(_h(job["outputHash"])))
    except SdkError as e:
        raise CliError(f"job {int(job['id'], 16)}: its result {job['outputHash']} is not on this node ({e})") from None


# -- the model, for submit and attest -------------------------------------------------------------

class _Runtime:
    """The base model named on chain (or --base) with the job's adapter fetched from the node."""

    def __init__(self, client: Client, args: argparse.Namespace, adapter_id: int) -> None:
        import torch

        import inference
        import training

        torch.set_num_threads(args.threads)
        chain = lineage(client, adapter_id)
        name = args.base or chain["base"]["name"]
        try:
            self.base = training.load_base(name, device=args.device)
        except (training.ConfigError, OSError) as e:
            raise CliError(f"base model {name!r} (model {int(chain['run']['baseModelId'], 16)} on chain): {e}; "
                           "pass --base NAME") from None
        self.adapter_hash = chain["run"]["adapterHash"]
        model = self.base.model.eval()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                folder = client.fetch_adapter(_h(self.adapter_hash), tmp)
            except SdkError as e:
                raise CliError(f"adapter {self.adapter_hash} is not on this node ({e.reason or e}); "
                               "`openledger train --commit` stores it") from None
            config = json.loads((folder / "adapter_config.json").read_text())
            try:
                self.store = inference.AdapterStore(args.store, inference.BaseSpec.of(model),
                                                    targets=tuple(config["target_modules"]), max_rank=int(config["r"]))
                self.store.add(folder)
            except inference.InferenceError as e:
                raise CliError(f"adapter {self.adapter_hash} does not fit {name}: {e}") from None
        self.model = model

    def tokens(self, text: str) -> list[int]:
        return list(self.base.tokenizer.encode(text))

    def close(self) -> None:
        self.store.close()


def _prompt(client: Client, job: dict) -> str:
    try:
        return client.get_object(_h(job["promptHash"])).decode("utf-8")
    except SdkError as e:
        raise CliError(f"the prompt {job['promptHash']} of job {int(job['id'], 16)} is not on this node ({e})") from None
    except UnicodeDecodeError:
        raise CliError(f"the prompt {job['promptHash']} is not UTF-8 text") from None


# -- commands -----------------------------------------------------------------------------------

def cmd_request(args) -> int:
    prompt = args.prompt.encode()
    if not prompt:
        raise CliError("--prompt is empty")
    if len(prompt) > MAX_PROMPT_BYTES:
        raise CliError(f"--prompt of {len(prompt)} bytes exceeds the {MAX_PROMPT_BYTES}-byte limit")
    c = _client(args)
    price = int(_read(c, "getAdapter", hex(args.adapter))["pricePerInference"], 16)
    max_fee = price if args.max_fee is None else args.max_fee
    if max_fee < price:
        raise CliError(f"--max-fee {max_fee} wei is below adapter {args.adapter}'s price {price} wei")
    try:
        prompt_hash = c.put_blob(prompt, public=True)
    except SdkError as e:
        raise CliError(f"blob store refused the prompt: {e}") from None
    receipt = _send(c, "InferenceJobs", "requestInference", args.adapter, prompt_hash, max_fee, value=max_fee)
    job_id = next(e["args"]["jobId"] for e in receipt["events"] if e["event"] == "InferenceRequested")
    print(f"job {job_id}")
    return 0


def cmd_submit(args) -> int:
    c = _client(args)
    job = job_of(c, args.job)
    if job["statusName"] != "requested":
        raise CliError(f"job {args.job} is {job['statusName']}, not awaiting a result")
    from inference import Engine, InferenceError, SamplingParams  # torch: only once there is work

    prompt = _prompt(c, job)
    rt = _Runtime(c, args, int(job["adapterId"], 16))
    try:
        params = SamplingParams(max_new_tokens=args.max_new_tokens)
        engine = Engine(rt.model, rt.store, max_batch=1, max_seq_len=args.max_seq_len, pool_slots=2)
        prompt_tokens = rt.tokens(prompt)
        try:
            gen = engine.generate(rt.adapter_hash, prompt_tokens, params)
        finally:
            engine.close()
    except InferenceError as e:
        raise CliError(f"job {args.job}: {e}") from None
    finally:
        rt.close()
    text = rt.base.tokenizer.decode(list(gen.tokens), skip_special_tokens=True)
    result = canonical({"job": args.job, "promptHash": job["promptHash"], "promptTokens": prompt_tokens,
                        "tokens": list(gen.tokens), "text": text, "maxNewTokens": params.max_new_tokens,
                        "temperature": params.temperature})
    try:
        output_hash = c.put_blob(result, public=True)
        commitment = c.put_blob(gen.commitment.to_bytes(), public=True)
    except SdkError as e:
        raise CliError(f"blob store refused the result: {e}") from None
    print(f"output: {text}")
    _send(c, "InferenceJobs", "submitResult", args.job, output_hash, commitment)
    return 0


ATTEST_GAS = 400_000
"""A floor for an attestation's gas limit that also covers settling the job: measured in
tests/native/test_flow.py, a first attestation uses 109,100 gas and the settling one 142,937."""


def cmd_attest(args) -> int:
    c = _client(args)
    job = job_of(c, args.job)
    if job["statusName"] != "submitted":
        raise CliError(f"job {args.job} is {job['statusName']}, not a result awaiting attestation")
    if args.vote == "check":
        valid, reason = _check(c, job, args)
        print(f"verdict: {'valid' if valid else 'invalid'} ({reason})")
    else:
        valid = args.vote == "valid"
    # Validators attest at once, and the attestation that completes the quorum also settles the job
    # (pays the server, records its work): an estimate made while another attestation is still in
    # flight misses that part, so the limit covers it (unused gas is not charged).
    estimate = c.estimate("InferenceJobs", "attest", args.job, valid)
    _send(c, "InferenceJobs", "attest", args.job, valid, gas=max(2 * estimate, ATTEST_GAS))
    return 0


def _check(c: Client, job: dict, args) -> tuple[bool, str]:
    """Recompute the submitted result: the prompt it used, then its tokens and activation commitment."""
    from inference import InferenceError, SamplingParams, Verifier

    result = result_of(c, job)
    prompt = _prompt(c, job)
    try:
        proof = c.get_object(_h(job["activationCommitment"]))
    except SdkError as e:  # missing is not wrong: say so, and let the validator decide
        raise CliError(f"cannot check job {int(job['id'], 16)}: its activation proof {job['activationCommitment']} is not on "
                       f"this node ({e}); vote with --vote valid|invalid") from None
    rt = _Runtime(c, args, int(job["adapterId"], 16))
    try:
        if result.get("promptTokens") != rt.tokens(prompt):
            return False, "the result was computed on another prompt"
        if not isinstance(result.get("tokens"), list) or result.get("temperature") != 0.0:
            return False, "the result object is malformed (tokens, temperature 0 expected)"
        if rt.base.tokenizer.decode(result["tokens"], skip_special_tokens=True) != result.get("text"):
            return False, "the result's text is not its tokens"
        verifier = Verifier(rt.model, rt.store, max_seq_len=args.max_seq_len, max_batch=1)
        verdict = verifier.verify(rt.adapter_hash, result["promptTokens"], result["tokens"],
                                  SamplingParams(max_new_tokens=int(result["maxNewTokens"])), proof,
                                  _h(job["activationCommitment"]))
        return verdict.ok, verdict.reason
    except (InferenceError, KeyError, TypeError, ValueError) as e:
        return False, f"cannot check the result: {e}"
    finally:
        rt.close()


def cmd_finalise(args) -> int:
    _send(_client(args), "InferenceJobs", "finalise", args.job)
    return 0


def cmd_show(args) -> int:
    c = _client(args)
    job = job_of(c, args.job)
    out = {**job}
    if job["statusName"] in ("submitted", "succeeded", "failed") and int(job["outputHash"], 16):
        try:
            out["output"] = json.loads(c.get_object(_h(job["outputHash"])))["text"]
        except (SdkError, ValueError, KeyError):
            out["output"] = None  # not on this node
    try:
        out["prompt"] = c.get_object(_h(job["promptHash"])).decode("utf-8", errors="replace")
    except SdkError:
        out["prompt"] = None
    if args.json:
        _print_json(out)
        return 0
    fee = int(job["fee"], 16) / 10**18
    print(f"job {args.job}: {job['statusName']}, adapter {int(job['adapterId'], 16)}, fee {fee:g} OPEN, "
          f"requester {job['requester']}")
    print(f"prompt: {out['prompt']!r}")
    if "output" in out:
        print(f"output: {out['output']!r} (by {job['submitter']}; votes {int(job['validVotes'], 16)} valid, "
              f"{int(job['invalidVotes'], 16)} invalid)")
    return 0


# -- registration ------------------------------------------------------------------------------------

def _add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", metavar="MODEL", help="base model to load (default: the name registered on chain)")
    p.add_argument("--store", default=DEFAULT_STORE, metavar="DIR", help=f"adapter store (default {DEFAULT_STORE})")
    p.add_argument("--max-seq-len", type=positive, default=512, help="prompt + output tokens (default 512)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=positive, default=1, help="torch CPU threads (default 1)")


def register(subparsers: argparse._SubParsersAction) -> None:
    job = subparsers.add_parser("job", help="paid inference jobs: request, submit, attest, finalise, show (OpenLoRA)")
    sub = job.add_subparsers(dest="job_command", metavar="ACTION", required=True)

    p = sub.add_parser("request", help="pay for an inference with an adapter (escrowed until attributed)",
                       description="Store the prompt on the node and send InferenceJobs.requestInference.")
    p.add_argument("--adapter", type=_uint, required=True, metavar="ID", help="on-chain adapter id")
    p.add_argument("--prompt", required=True, help="the prompt (UTF-8 text)")
    p.add_argument("--max-fee", type=_amount, metavar="AMOUNT", help="wei or xOPEN (default: the adapter's price)")
    p.set_defaults(func=cmd_request)

    p = sub.add_parser("submit", help="run a requested job as a GPU validator and post its result",
                       description="Fetch the prompt and adapter from the node, generate greedily with an "
                                   "activation commitment, store result and proof, send submitResult.")
    p.add_argument("job", type=_uint)
    p.add_argument("--max-new-tokens", type=positive, default=24, help="tokens to generate (default 24)")
    _add_model_flags(p)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("attest", help="vote on a submitted result (by default after re-checking it)",
                       description="Recompute the result's prefill and compare it with its activation "
                                   "commitment, then send attest(job, verdict).")
    p.add_argument("job", type=_uint)
    p.add_argument("--vote", choices=("check", "valid", "invalid"), default="check",
                   help="check (recompute, the default) or vote without checking")
    _add_model_flags(p)
    p.set_defaults(func=cmd_attest)

    p = sub.add_parser("finalise", help="close a job after its timeout (refund, or success by majority)")
    p.add_argument("job", type=_uint)
    p.set_defaults(func=cmd_finalise)
    for action in sub.choices.values():
        _add_client_flags(action)

    p = sub.add_parser("show", help="print a job, its prompt and output")
    p.add_argument("job", type=_uint)
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_client_flags(p, signing=False)
    p.set_defaults(func=cmd_show)
