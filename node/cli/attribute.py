"""`openledger attribute`: which contributions shaped an output of a training run's model."""
import argparse
import json
import sys

from node.cli.common import add_ray_flags, ray_workers

MAX_QUERY_BYTES = 64 * 1024
"""Prompt + output above this are refused before a model loads: no run reads that many tokens."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "attribute", help="attribute a model output to Datanet contributions",
        description="Load the run's committed attribution index (checked against its record), attribute "
                    "OUTPUT given PROMPT, and print the top contributions with their parts per million.")
    p.add_argument("--run", required=True, metavar="DIR", help="training run directory (holds record.json)")
    p.add_argument("--prompt", required=True, help="the prompt (UTF-8 text)")
    p.add_argument("--output", required=True, help="the model output to attribute (a label for classifiers)")
    p.add_argument("--json", action="store_true", help="print the proof as JSON instead of a table")
    add_ray_flags(p, "the query over the index's shards")
    p.set_defaults(func=cmd_attribute)


def cmd_attribute(args: argparse.Namespace) -> int:
    size = len(args.prompt.encode()) + len(args.output.encode())
    if size > MAX_QUERY_BYTES:
        print(f"error: --prompt and --output are {size} bytes together, above the {MAX_QUERY_BYTES}-byte limit "
              "(a run attributes at most its max_length tokens of them)", file=sys.stderr)
        return 1
    from attribution import AttributionError
    from attribution.runs import open_run

    try:
        proof = open_run(args.run, workers=ray_workers(args)).attribute(args.prompt.encode(), args.output.encode())
    except AttributionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    shares = [{"contribution": "0x" + s.contribution_id.hex(), "contributor": "0x" + s.contributor.hex(), "ppm": s.ppm}
              for s in proof.shares]
    if args.json:
        print(json.dumps({"method": proof.method, "index_root": "0x" + proof.index_root.hex(),
                          "proof_hash": "0x" + proof.hash().hex(), "proof": "0x" + proof.encode().hex(), "shares": shares}))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{proof.method} attribution (proof 0x{proof.hash().hex()[:16]}...)")
    for column in ("contribution", "contributor", "ppm"):
        table.add_column(column, justify="right" if column == "ppm" else "left")
    for s in shares:
        table.add_row(s["contribution"], s["contributor"], f"{s['ppm']:,}")
    Console().print(table)
    return 0
