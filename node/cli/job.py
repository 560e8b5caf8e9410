"""`openledger job request|submit|attest|finalise|show`: paid OpenLoRA inference from the command line.

The model work (loading, generating with an activation commitment, re-checking) lives in
node/services/model.py, which the validator services run too; this module is its command line.
"""
from __future__ import annotations

import argparse
import json

from node.cli.common import CliError, positive
from node.cli.native import _add_client_flags, _amount, _client, _print_json, _read, _send, _uint
from node.sdk import SdkError
from node.services import model
from node.services.model import DEFAULT_STORE, JobError, ModelOptions, job_of

MAX_PROMPT_BYTES = 64 * 1024
"""Prompts above this are refused before anything is paid: no served model has a context that long."""


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
    prompt = model.prompt_of(c, job)  # a JobError is printed by node.cli.main
    rt = model.Runtime(c, ModelOptions.of(args), int(job["adapterId"], 16))
    try:
        served = model.serve(rt, job, prompt, args.max_new_tokens)
    finally:
        rt.close()
    output_hash, commitment = model.store_served(c, served)
    print(f"output: {served.text}")
    _send(c, "InferenceJobs", "submitResult", args.job, output_hash, commitment)
    return 0


def cmd_attest(args) -> int:
    c = _client(args)
    job = job_of(c, args.job)
    if job["statusName"] != "submitted":
        raise CliError(f"job {args.job} is {job['statusName']}, not a result awaiting attestation")
    if args.vote == "check":
        try:
            valid, reason = model.check(c, job, ModelOptions.of(args))
        except JobError as e:
            raise CliError(f"{e}; vote with --vote valid|invalid") from None
        print(f"verdict: {'valid' if valid else 'invalid'} ({reason})")
    else:
        valid = args.vote == "valid"
    try:
        gas = model.attest_gas(c, args.job, valid)
    except SdkError as e:
        raise CliError(f"InferenceJobs.attest failed: {e.reason or e}") from None
    _send(c, "InferenceJobs", "attest", args.job, valid, gas=gas)
    return 0


def cmd_finalise(args) -> int:
    _send(_client(args), "InferenceJobs", "finalise", args.job)
    return 0


def cmd_show(args) -> int:
    c = _client(args)
    job = job_of(c, args.job)
    out = {**job}
    if job["statusName"] in ("submitted", "succeeded", "failed") and int(job["outputHash"], 16):
        try:
            out["output"] = json.loads(c.get_object(model.h(job["outputHash"])))["text"]
        except (SdkError, ValueError, KeyError):
            out["output"] = None  # not on this node
    try:
        out["prompt"] = c.get_object(model.h(job["promptHash"])).decode("utf-8", errors="replace")
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
