"""`openledger gov wrap|unwrap|delegate|propose|vote|queue|execute|show` and `openledger params`:
OPEN governance through the predeployed GOPEN, Governor and Timelock (docs/governance.md).

A proposal is written as actions in words ("set dispute_window_s to 3600", "pay 1000 OPEN to
0x..."), encoded here into the Governor's (targets, values, calldatas). The Governor keeps only a
proposal's hash, so queue, execute and show read the actions back from its ProposalCreated event.
"""
from __future__ import annotations

import argparse
import json
import re
import sys

from eth_utils import keccak, to_checksum_address

from genesis.governance import GOVERNABLE_PARAMS
from node.cli.common import CliError
from node.cli.native import _add_client_flags, _address, _amount, _client, _send
from node.sdk import ADDRESSES, Client, SdkError, decode_events, encode_call
from vm.modules.system import PARAM_FIELDS

STATES = ("pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed")
SUPPORT = {"against": 0, "for": 1, "abstain": 2}
LOG_CHUNK = 10_000  # blocks per eth_getLogs request (the node's default range cap)

_SET = re.compile(r"^set\s+(\w+)\s+to\s+(.+)$", re.I)
_PAY = re.compile(r"^pay\s+(.+?)\s+to\s+(0x[0-9a-fA-F]{40})$", re.I)


def parse_action(text: str) -> tuple[str, int, bytes]:
    """(target, value, calldata) of one action in words; CliError naming what is wrong."""
    text = " ".join(text.split())
    if m := _SET.match(text):
        name, raw = m.group(1), m.group(2)
        if name not in GOVERNABLE_PARAMS:
            raise CliError(f"cannot govern {name!r}: governable parameters are {', '.join(sorted(GOVERNABLE_PARAMS))}")
        try:
            value = _amount(raw)
        except argparse.ArgumentTypeError as e:
            raise CliError(f"set {name}: {e}") from None
        low, high = GOVERNABLE_PARAMS[name]
        if not low <= value <= high:
            raise CliError(f"set {name}: {value} is outside the chain's bounds [{low}, {high}]")
        return ADDRESSES["Economics"], 0, encode_call("Economics", "setParam", name, value)
    if m := _PAY.match(text):
        try:
            amount = _amount(m.group(1))
        except argparse.ArgumentTypeError as e:
            raise CliError(f"pay: {e}") from None
        return to_checksum_address(m.group(2)), amount, b""
    raise CliError(f"cannot read the action {text!r}: write 'set NAME to VALUE' or 'pay AMOUNT to 0xADDRESS'")


def describe_action(target: str, value: int, calldata: bytes) -> str:
    """The words `parse_action` reads, for an action read back from the chain."""
    import eth_abi

    set_param = encode_call("Economics", "setParam", "", 0)[:4]
    if to_checksum_address(target) == ADDRESSES["Economics"] and calldata[:4] == set_param:
        name, new = eth_abi.decode(["string", "uint256"], calldata[4:])
        return f"set {name} to {new}"
    if not calldata:
        return f"pay {value / 10**18:g} OPEN to {to_checksum_address(target)}"
    return f"call {to_checksum_address(target)} with {len(calldata)} bytes and {value} wei"


def proposals(client: Client) -> list[dict]:
    """Every proposal from the Governor's ProposalCreated events, oldest first."""
    head = int(client.rpc("eth_blockNumber"), 16)
    out = []
    for start in range(0, head + 1, LOG_CHUNK):
        logs = client.rpc("eth_getLogs", {"address": ADDRESSES["Governor"], "fromBlock": hex(start),
                                          "toBlock": hex(min(head, start + LOG_CHUNK - 1))})
        out += [e["args"] for e in decode_events(logs) if e["event"] == "ProposalCreated"]
    return out


def _find(client: Client, proposal_id: int) -> dict:
    for p in proposals(client):
        if p["proposalId"] == proposal_id:
            return p
    raise CliError(f"no proposal {proposal_id} on this chain (see `openledger gov show`)")


def _proposal_id(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid proposal id {text!r}: want an integer") from None


def _status(client: Client, p: dict) -> dict:
    pid = p["proposalId"]
    against, for_, abstain = client.call("Governor", "proposalVotes", pid)
    head = int(client.rpc("eth_blockNumber"), 16)
    return {
        "id": str(pid),
        "state": STATES[client.call("Governor", "state", pid)],
        "proposer": p["proposer"],
        "description": p["description"],
        "actions": [describe_action(t, v, c) for t, v, c in zip(p["targets"], p["values"], p["calldatas"])],
        "votes": {"for": for_, "against": against, "abstain": abstain},
        # the quorum is a share of GOPEN supply at the snapshot, known once the snapshot is past
        "quorum": client.call("Governor", "quorum", p["voteStart"]) if p["voteStart"] < head else None,
        "voteStart": p["voteStart"], "voteEnd": p["voteEnd"],
        "eta": client.call("Governor", "proposalEta", pid),
    }


# -- commands --------------------------------------------------------------------------------

def cmd_wrap(args: argparse.Namespace) -> int:
    _send(_client(args), "GOPEN", "deposit", value=args.amount)
    return 0


def cmd_unwrap(args: argparse.Namespace) -> int:
    _send(_client(args), "GOPEN", "withdraw", args.amount)
    return 0


def cmd_delegate(args: argparse.Namespace) -> int:
    client = _client(args)
    _send(client, "GOPEN", "delegate", args.to or client.address)
    votes = client.call("GOPEN", "getVotes", args.to or client.address)
    print(f"votes of {args.to or client.address}: {votes / 10**18:g} GOPEN")
    return 0


def cmd_propose(args: argparse.Namespace) -> int:
    actions = [parse_action(a) for a in args.actions]
    description = args.description or "; ".join(" ".join(a.split()) for a in args.actions)
    client = _client(args)
    targets, values, calldatas = ([a[i] for a in actions] for i in range(3))
    _send(client, "Governor", "propose", targets, values, calldatas, description)
    pid = client.call("Governor", "hashProposal", targets, values, calldatas, keccak(text=description))
    print(f"proposal {pid}")
    return 0


def cmd_vote(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.reason:
        _send(client, "Governor", "castVoteWithReason", args.id, SUPPORT[args.support], args.reason)
    else:
        _send(client, "Governor", "castVote", args.id, SUPPORT[args.support])
    return 0


def _lifecycle(fn: str):
    def cmd(args: argparse.Namespace) -> int:
        client = _client(args)
        p = _find(client, args.id)
        _send(client, "Governor", fn, p["targets"], p["values"], p["calldatas"], keccak(text=p["description"]))
        return 0
    return cmd


def cmd_show(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        found = [_find(client, args.id)] if args.id is not None else proposals(client)
        shown = [_status(client, p) for p in found]
    except SdkError as e:
        raise CliError(str(e.reason or e)) from None
    if args.json:
        json.dump(shown, sys.stdout, indent=2)
        print()
        return 0
    if not shown:
        print("no proposals yet")
    for s in shown:
        v = s["votes"]
        quorum = "not yet known" if s["quorum"] is None else f"{s['quorum'] / 1e18:g} GOPEN"
        print(f"proposal {s['id']}: {s['state']} — {s['description']}")
        for a in s["actions"]:
            print(f"  {a}")
        print(f"  votes for {v['for'] / 1e18:g}, against {v['against'] / 1e18:g}, abstain {v['abstain'] / 1e18:g}"
              f" (quorum {quorum}); voting blocks {s['voteStart']}..{s['voteEnd']}"
              + (f"; executable at {s['eta']}" if s["eta"] else ""))
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        current = {name: client.call("Economics", "getParam", name) for name in PARAM_FIELDS}
        pending = [s for s in map(lambda p: _status(client, p), proposals(client))
                   if s["state"] in ("pending", "active", "succeeded", "queued")
                   and any(a.startswith("set ") for a in s["actions"])]
    except SdkError as e:
        raise CliError(str(e.reason or e)) from None
    if args.json:
        json.dump({"params": current, "governable": {k: list(b) for k, b in GOVERNABLE_PARAMS.items()},
                   "pending": pending}, sys.stdout, indent=2)
        print()
        return 0
    for name, value in current.items():
        bounds = GOVERNABLE_PARAMS.get(name)
        print(f"{name:28} {value}" + (f"   (governable, {bounds[0]}..{bounds[1]})" if bounds else ""))
    for s in pending:
        print(f"pending: proposal {s['id']} ({s['state']}): {'; '.join(s['actions'])}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    gov = subparsers.add_parser("gov", help="OPEN governance: GOPEN, proposals, votes",
                                description="Wrap OPEN into GOPEN, delegate votes, and propose, vote, queue and "
                                            "execute changes to chain parameters and treasury grants.")
    sub = gov.add_subparsers(dest="gov_command", metavar="COMMAND", required=True)

    def add(name: str, helptext: str, func, signing: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        _add_client_flags(p, signing=signing)
        p.set_defaults(func=func)
        return p

    add("wrap", "wrap OPEN into GOPEN 1:1", cmd_wrap).add_argument("amount", type=_amount, metavar="AMOUNT",
                                                                     help="wei, or e.g. 100OPEN")
    add("unwrap", "unwrap GOPEN back into OPEN", cmd_unwrap).add_argument("amount", type=_amount, metavar="AMOUNT")
    add("delegate", "delegate your GOPEN votes (to yourself by default)", cmd_delegate).add_argument(
        "--to", type=_address, metavar="ADDRESS", help="delegate (default: yourself)")
    p = add("propose", "propose actions for the Governor", cmd_propose)
    p.add_argument("actions", nargs="+", metavar="ACTION",
                   help="'set NAME to VALUE' (a governable parameter) or 'pay AMOUNT to 0xADDRESS' (treasury)")
    p.add_argument("--description", help="the proposal's text (default: the actions)")
    p = add("vote", "vote on an active proposal", cmd_vote)
    p.add_argument("id", type=_proposal_id, metavar="ID")
    p.add_argument("support", choices=sorted(SUPPORT), metavar="for|against|abstain")
    p.add_argument("--reason", help="a reason recorded with the vote")
    for name, fn, helptext in (("queue", "queue", "queue a succeeded proposal in the Timelock"),
                               ("execute", "execute", "execute a queued proposal after the Timelock's delay")):
        add(name, helptext, _lifecycle(fn)).add_argument("id", type=_proposal_id, metavar="ID")
    p = add("show", "list proposals with state, tallies and deadlines", cmd_show, signing=False)
    p.add_argument("id", type=_proposal_id, nargs="?", metavar="ID")
    p.add_argument("--json", action="store_true")

    p = subparsers.add_parser("params", help="the chain's parameters and pending changes",
                              description="Current parameters (from the Economics module's state), which of "
                                          "them governance may change and within what bounds, and open "
                                          "proposals that would change them.")
    _add_client_flags(p, signing=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_params)
