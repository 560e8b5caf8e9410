"""`openledger`: the node's command line, with go-ethereum's flag names where geth has one.

One module per command group; each has `register(subparsers)`, and a subcommand stores its
handler as `func(args) -> int`. A new group adds one line to COMMAND_MODULES.
"""
import argparse
import importlib
import re
import sys
from collections.abc import Sequence

import genesis as genesis_mod
from node.cli.common import CliError

COMMAND_MODULES = (
    "node.cli.chain",
    "node.cli.config",
    "node.cli.testnet",
    "node.cli.demo",
    "node.cli.attribute",
    "node.cli.bridge",
    "node.cli.gov",
    "node.cli.native",
    "node.cli.job",
    "node.cli.proof",
    "node.cli.serve",
    "node.cli.services",
    "node.cli.train",
)


class _Parser(argparse.ArgumentParser):
    """argparse takes `-1OPEN` for an unknown option (only plain numbers may start with `-`), so
    `--price -1OPEN` said "expected one argument"; amounts count as numbers, and the amount's
    own check answers "must be >= 0". Subparsers are built with this class too."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)(\s*open)?$", re.IGNORECASE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="openledger", description="A node of the OpenLedger-style AI-data appchain.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from node.cli import config

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        config.apply(parser, argv)  # --config FILE: its values become the command's defaults
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "extra_args", False):
        parser.parse_args(argv)  # argparse's own message for what it did not recognise
    args.extra = extra
    from node import logs
    from node.chain import DataDirError
    from node.keystore import KeystoreError
    from node.services.model import JobError

    if getattr(args, "log_level", None) is not None:
        logs.setup(args.log_level, args.log_vmodule, args.log_format)
    try:
        return args.func(args)
    except (CliError, genesis_mod.GenesisError, DataDirError, KeystoreError, JobError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


__all__ = ["CliError", "build_parser", "main"]
