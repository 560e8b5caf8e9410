"""`openledger job request|submit|attest|finalise|show` and `openledger infer`: paid OpenLoRA inference from the
command line (`infer` pays, waits, and prints the output, verification, contributors and fee split).

The model work (loading, generating with an activation commitment, re-checking) lives in
node/services/model.py, which the validator services run too; this module is its command line.
"""
from __future__ import annotations

import argparse
import json

from node.cli.common import CliError, positive, uint
from node.cli.native import _add_client_flags, _amount, _client, _print_json, _send
from node.sdk import MAX_PROMPT_BYTES, SdkError
from node.services import model
from node.services.model import DEFAULT_STORE, JobError, ModelOptions, job_of


# -- commands -----------------------------------------------------------------------------------

def _request(args) -> tuple:
    """(client, prompt bytes): the prompt is checked before any key is opened."""
    prompt = args.prompt.encode()
    if not prompt:
        raise CliError("--prompt is empty")
    if len(prompt) > MAX_PROMPT_BYTES:
        raise CliError(f"--prompt of {len(prompt)} bytes exceeds the {MAX_PROMPT_BYTES}-byte limit")
    return _client(args), prompt


def cmd_request(args) -> int:
    c, prompt = _request(args)
    try:
        request = c.request_inference(args.adapter, prompt, args.max_fee)
    except SdkError as e:
        raise CliError(str(e)) from None  # the SDK's message names the adapter, fee or prompt
    print(f"InferenceJobs.InferenceRequested: jobId={request['jobId']}, fee={request['fee']}")
    print(f"tx {request['transactionHash']} in block {request['block']}")
    print(f"job {request['jobId']}")
    return 0


def _open(wei: int) -> str:
    return f"{wei / 10**18:.6f} OPEN"


def print_outcome(out: dict) -> None:
    """A paid job as a person reads it: output, verification, contributors credited, payments."""
    print(f"job {out['jobId']}: {out['status']}, adapter {out['adapterId']}, fee {_open(out['fee'])}")
    if out["output"] is not None:
        print(f"output: {out['output']!r}")
    votes = f"{out['validVotes']} valid, {out['invalidVotes']} invalid"
    print(f"verification: {out['verification']} (served by {out['submitter'] or 'nobody'}; votes {votes})")
    proof = out["attribution"]
    if proof is None:
        print("attribution: no proof posted yet")
    else:
        print(f"attribution: proof {proof['status']} by {proof['poster']} (method {proof['methodId']})")
    if out["contributors"]:
        print("contributors credited:")
        for c in out["contributors"]:
            paid = f", paid {_open(c['paid'])}" if "paid" in c else ""
            print(f"  {c['contributor']}  {c['weightPpm'] / 10**4:6.2f}%  row {c['contentHash'][:18]}...{paid}")
    if out["payments"]:
        print(f"fee split paid in block {out['payoutBlock']} "
              f"({out['payoutBlock'] - out['requestBlock']} blocks after the request):")
        for p in out["payments"]:
            print(f"  {p['role']:<12} {p['account']}  {_open(p['amount'])}")


def cmd_infer(args) -> int:
    c, prompt = _request(args)

    def progress(out: dict) -> None:
        if not args.json:
            stage = out["status"] if out["attribution"] is None else f"{out['status']}, proof {out['attribution']['status']}"
            print(f"job {out['jobId']}: {stage}", flush=True)

    try:
        out = c.infer(args.adapter, prompt, args.max_fee, wait=args.wait, timeout=args.timeout, on_progress=progress)
    except SdkError as e:
        raise CliError(str(e)) from None  # the SDK's message names the adapter, fee or prompt
    if args.json:
        _print_json(out)
    else:
        print_outcome(out)
        if args.wait and not out["done"]:
            print(f"not paid out within {args.timeout:g}s; follow it with `openledger job show {out['jobId']}`")
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
    p.add_argument("--adapter", type=uint, required=True, metavar="ID", help="on-chain adapter id")
    p.add_argument("--prompt", required=True, help="the prompt (UTF-8 text)")
    p.add_argument("--max-fee", type=_amount, metavar="AMOUNT", help="wei or xOPEN (default: the adapter's price)")
    p.set_defaults(func=cmd_request)

    p = sub.add_parser("submit", help="run a requested job as a GPU validator and post its result",
                       description="Fetch the prompt and adapter from the node, generate greedily with an "
                                   "activation commitment, store result and proof, send submitResult.")
    p.add_argument("job", type=uint)
    p.add_argument("--max-new-tokens", type=positive, default=24, help="tokens to generate (default 24)")
    _add_model_flags(p)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("attest", help="vote on a submitted result (by default after re-checking it)",
                       description="Recompute the result's prefill and compare it with its activation "
                                   "commitment, then send attest(job, verdict).")
    p.add_argument("job", type=uint)
    p.add_argument("--vote", choices=("check", "valid", "invalid"), default="check",
                   help="check (recompute, the default) or vote without checking")
    _add_model_flags(p)
    p.set_defaults(func=cmd_attest)

    p = sub.add_parser("finalise", help="close a job after its timeout (refund, or success by majority)")
    p.add_argument("job", type=uint)
    p.set_defaults(func=cmd_finalise)
    for action in sub.choices.values():
        _add_client_flags(action)

    p = sub.add_parser("show", help="print a job, its prompt and output")
    p.add_argument("job", type=uint)
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_client_flags(p, signing=False)
    p.set_defaults(func=cmd_show)

    p = subparsers.add_parser("infer", help="pay for an inference and (with --wait) print its output, "
                                            "verification, contributors credited and fee split",
                              description="Store the prompt on the node, request a paid job on the adapter, and "
                                          "with --wait follow it until the validators' services have served, "
                                          "verified and attributed it and its fee is paid out (or refunded).")
    p.add_argument("--adapter", type=uint, required=True, metavar="ID", help="on-chain adapter id")
    p.add_argument("--prompt", required=True, help="the prompt (UTF-8 text)")
    p.add_argument("--max-fee", type=_amount, metavar="AMOUNT", help="wei or xOPEN (default: the adapter's price)")
    p.add_argument("--wait", action="store_true", help="wait until the fee is paid out or refunded")
    p.add_argument("--timeout", type=positive, default=300, metavar="S", help="--wait at most S seconds (default 300)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_client_flags(p)
    p.set_defaults(func=cmd_infer)
