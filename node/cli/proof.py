"""`openledger proof post|dispute|finalise|show`: Proof of Attribution for a succeeded job.

`post` attributes the job's output (fetched from the node by its outputHash) with the training
run's committed index, stores the proof's canonical bytes as a public object (its keccak256 is the
proofHash on chain) and sends `Attribution.postProof`. `finalise` waits out the dispute window,
then pays the fee split.
"""
from __future__ import annotations

import argparse
import pathlib
import time

from node.cli.common import CliError, uint
from node.cli.native import _add_client_flags, _client, _print_json, _read, _send
from node.sdk import SdkError
from node.services import attribution
from node.services.model import job_of

STATUS = {1: "posted", 2: "paid", 3: "settled without a proof"}
ROLES = ("contributor", "model owner", "validator", "treasury")


def cmd_post(args) -> int:
    c = _client(args)
    job = job_of(c, args.job)
    if job["statusName"] != "succeeded":
        raise CliError(f"job {args.job} is {job['statusName']}: a proof is posted for a succeeded job")
    proof, post_args = attribution.prove(c, job, args.run)  # a JobError is printed by node.cli.main
    try:
        c.put_blob(proof, public=True)
    except SdkError as e:
        raise CliError(f"blob store refused the proof: {e}") from None
    for h, w in zip(post_args[4], post_args[5]):
        print(f"  0x{h.hex()}  {w:>9,} ppm")
    _send(c, "Attribution", "postProof", *post_args)
    return 0


def cmd_dispute(args) -> int:
    c = _client(args)
    reason = args.reason.encode()
    if not reason:
        raise CliError("--reason is empty")
    try:
        reason_hash = c.put_blob(reason, public=True)
    except SdkError as e:
        raise CliError(f"blob store refused the reason: {e}") from None
    _send(c, "Attribution", "disputeProof", args.job, reason_hash)
    return 0


def cmd_finalise(args) -> int:
    c = _client(args)
    proof = _read(c, "getProof", hex(args.job))
    if int(proof["status"], 16) != 1:
        raise CliError(f"the proof of job {args.job} is {STATUS.get(int(proof['status'], 16), '?')}, not open")
    deadline, told = int(proof["disputeDeadline"], 16), False
    while not (ready := attribution.finalise_gas(c, deadline))[0]:
        if args.no_wait:
            raise CliError(f"dispute window open until {deadline}; wait or drop --no-wait")
        if not told:
            print(f"waiting {deadline - int(time.time())}s for the dispute window to close", flush=True)
            told = True
        time.sleep(0.5)
    gas = ready[1]
    receipt = _send(c, "Attribution", "finaliseProof", args.job, gas=gas)
    paid = [e for e in receipt["events"] if e["event"] == "RewardPaid"]
    rejected = [e for e in receipt["events"] if e["event"] == "ProofRejected"]
    if rejected:  # disputed, short of a quorum: cleared, nobody paid or slashed
        print(f"proof rejected ({rejected[0]['args']['disputes']} dispute(s), below the quorum): job {args.job} awaits "
              "a new proof")
    if paid:
        print("fee split:")
        for e in paid:
            print(f"  {ROLES[e['args']['role']]:<12} {e['args']['account']}  {e['args']['amount'] / 10**18:.6f} OPEN")
    return 0


def cmd_show(args) -> int:
    c = _client(args)
    proof = _read(c, "getProof", hex(args.job))
    out = {**proof, "statusName": STATUS.get(int(proof["status"], 16), "?")}
    if args.json:
        _print_json(out)
        return 0
    print(f"proof of job {args.job}: {out['statusName']}, method {int(proof['methodId'], 16)}, by {proof['poster']}, "
          f"dispute window until {int(proof['disputeDeadline'], 16)}")
    for e in proof["entries"]:
        print(f"  {e['contentHash']}  {e['contributor']}  {int(e['weightPpm'], 16):>9,} ppm")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    proof = subparsers.add_parser("proof", help="Proof of Attribution for a job: post, dispute, finalise, show")
    sub = proof.add_subparsers(dest="proof_command", metavar="ACTION", required=True)

    p = sub.add_parser("post", help="attribute a succeeded job's output and post the proof (active validator)")
    p.add_argument("job", type=uint)
    p.add_argument("--run", required=True, type=pathlib.Path, metavar="DIR",
                   help="the adapter's training run directory (record.json and its attribution index)")
    p.set_defaults(func=cmd_post)

    p = sub.add_parser("dispute", help="dispute an open proof within its window (another active validator)")
    p.add_argument("job", type=uint)
    p.add_argument("--reason", required=True, help="why (stored on the node; its hash goes on chain)")
    p.set_defaults(func=cmd_dispute)

    p = sub.add_parser("finalise", help="after the dispute window, pay the job's fee split (anyone)")
    p.add_argument("job", type=uint)
    p.add_argument("--no-wait", action="store_true", help="fail instead of waiting for the window to close")
    p.set_defaults(func=cmd_finalise)
    for action in sub.choices.values():
        _add_client_flags(action)

    p = sub.add_parser("show", help="print a job's proof and its entries")
    p.add_argument("job", type=uint)
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_client_flags(p, signing=False)
    p.set_defaults(func=cmd_show)
