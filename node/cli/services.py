"""`openledger services`: the validator services (node/services/) as a process beside a node, and
the `--serve-inference --verify-inference --attribute` flags of `devnet` and `run`, which start it
(and `--serve-training --verify-training`, which start the training services as a second process).

A separate process rather than trio tasks in the node: the model work is CPU/GPU-bound torch code
that would hold the node's GIL and event loop, a crash or kill -9 of it must not take the chain
down, and over JSON-RPC it drives the node exactly as an operator's own tools would.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

from node.cli.common import DEFAULT_DATADIR, CliError, positive, read_password, seconds
from node.cli.config import add_log_flags, log_flags
from node.cli.job import _add_model_flags
from node.cli.native import _amount, _file

SERVICES_DIR = "services"
"""Under the node's data dir: the services' state.json and their adapter store."""
TRAINING_DIR = "training"
"""Under SERVICES_DIR: the training services' state.json, their runs and their replays."""


def _keys(args: argparse.Namespace) -> list[str | bytes]:
    import genesis

    accounts = genesis.dev_accounts()
    keys: list[str | bytes] = []
    for n in args.dev_account:
        if not 0 <= n < len(accounts):
            raise CliError(f"--dev-account {n} out of range 0..{len(accounts) - 1}")
        keys.append(accounts[n][1])
    if args.keyfile:
        from node.keystore import load_key

        password = read_password(args.password_file)
        keys += [load_key(str(f), password) for f in args.keyfile]
    from node.logs import register_secret

    for key in keys:
        register_secret(bytes.fromhex(key.removeprefix("0x")) if isinstance(key, str) else key)
    if not keys:
        raise CliError("the services sign their transactions: pass --keyfile FILE (v3 keystore) or --dev-account N")
    return keys


def cmd_services(args: argparse.Namespace) -> int:
    from node.services.jobs import Services
    from node.services.model import ModelOptions
    from node.services.state import StateError

    training = args.serve_training or args.verify_training
    if not (args.serve_inference or args.verify_inference or args.attribute or training):
        raise CliError("nothing to run: pass --serve-inference, --verify-inference, --attribute, --serve-training "
                       "and/or --verify-training")
    if training and (args.serve_inference or args.verify_inference or args.attribute):
        raise CliError("run the training services (--serve-training, --verify-training) as their own process: "
                       "a run that trains for an hour must not hold up inference jobs")
    if args.attribute and not args.attribution_run:
        raise CliError("--attribute needs the training runs to attribute with: --attribution-run DIR")
    folder = pathlib.Path(args.datadir) / SERVICES_DIR
    if args.store is None:
        args.store = str(folder / "adapters")
    try:
        if training:
            from node.services.training import TrainingServices

            services = TrainingServices(args.rpc, _keys(args), folder / TRAINING_DIR, serve=args.serve_training,
                                        verify=args.verify_training, device=args.device,
                                        min_fee=args.min_training_fee)
        else:
            services = Services(args.rpc, _keys(args), folder, serve=args.serve_inference,
                                verify=args.verify_inference, options=ModelOptions.of(args),
                                max_new_tokens=args.max_new_tokens,
                                attribute_runs=args.attribution_run if args.attribute else None,
                                peers=args.peer_rpc)
    except StateError as e:
        raise CliError(str(e)) from None
    parent = args.parent_pid
    services.run(args.poll, keep_running=lambda: parent is None or os.getppid() == parent)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("services", help="serve and verify paid inference jobs as a validator",
                              description="Watch the node's InferenceJobs events: serve jobs (generate, store result "
                                          "and proof, submitResult) and re-check other validators' results (attest "
                                          "valid or invalid). Progress is kept in DATADIR/services/.")
    p.add_argument("--rpc", default="http://127.0.0.1:8545", metavar="URL", help="node JSON-RPC URL (with ol_)")
    p.add_argument("--datadir", default=DEFAULT_DATADIR, metavar="DIR",
                   help=f"the node's data dir; state goes to DIR/{SERVICES_DIR} (default {DEFAULT_DATADIR})")
    _add_role_flags(p)
    p.add_argument("--dev-account", type=int, action="append", default=[], metavar="N",
                   help="sign with devnet account N (repeatable: each is one validator)")
    p.add_argument("--keyfile", type=_file, action="append", default=[], metavar="FILE",
                   help="v3 keystore file of a validator account (repeatable)")
    p.add_argument("--password", dest="password_file", metavar="FILE", help="file whose first line is the password")
    p.add_argument("--peer-rpc", action="append", default=[], metavar="URL",
                   help="another validator's node JSON-RPC (repeatable): prompts, results and adapters this node "
                        "lacks are fetched from it, checked by hash and kept here")
    p.add_argument("--max-new-tokens", type=positive, default=24, help="tokens to generate per job (default 24)")
    p.add_argument("--poll", type=seconds, default=0.5, metavar="S", help="seconds between looks at the chain")
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)  # exit with the node that started it
    _add_model_flags(p)
    add_log_flags(p)
    p.set_defaults(func=cmd_services, store=None)


def _add_role_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--serve-inference", action="store_true", help="serve jobs for adapters this node can run")
    p.add_argument("--verify-inference", action="store_true", help="re-check submitted results and attest")
    p.add_argument("--attribute", action="store_true",
                   help="post the attribution proof of succeeded jobs and finalise it after the dispute window")
    p.add_argument("--attribution-run", type=pathlib.Path, action="append", default=[], metavar="DIR",
                   help="a training run directory (record.json, attribution index) of an adapter to attribute "
                        "(repeatable)")
    p.add_argument("--serve-training", action="store_true",
                   help="claim paid training jobs, train them, store and submit the run (docs/training-jobs.md)")
    p.add_argument("--verify-training", action="store_true",
                   help="replay the chain-chosen segments of submitted training runs and attest")
    p.add_argument("--min-training-fee", type=_amount, default=0, metavar="WEI",
                   help="claim only training jobs paying the trainer and verifiers at least this (wei or xOPEN)")


# -- the flags of `devnet` and `run` -------------------------------------------------------------

def add_node_flags(p: argparse.ArgumentParser, devnet: bool) -> None:
    """--serve-inference, --verify-inference, --attribute and the services' keys, on `devnet` or `run`."""
    g = p.add_argument_group("validator services (a process beside the node; see docs/services.md)")
    _add_role_flags(g)
    if devnet:
        g.add_argument("--service-account", type=int, action="append", default=[], metavar="N",
                       help="dev account the services sign with (repeatable: each is one validator)")
    else:
        g.add_argument("--service-keyfile", type=_file, action="append", default=[], metavar="FILE",
                       help="v3 keystore file the services sign with (repeatable)")
        g.add_argument("--service-password", metavar="FILE", help="file whose first line is its password")


@contextlib.contextmanager
def started(args: argparse.Namespace, apis: tuple[str, ...]) -> Iterator[None]:
    """Run the services' process (if asked for) while the node runs; it waits for the node's RPC."""
    if not (args.serve_inference or args.verify_inference or args.attribute or args.serve_training
            or args.verify_training):
        yield
        return
    if args.attribute and not args.attribution_run:
        raise CliError("--attribute needs the training runs to attribute with: --attribution-run DIR")
    if "ol" not in apis:
        raise CliError("the services read jobs and blobs through ol_: add ol to --http.api")
    signing = [f"--dev-account={n}" for n in getattr(args, "service_account", [])]
    signing += [f"--keyfile={f}" for f in getattr(args, "service_keyfile", [])]
    if getattr(args, "service_password", None):
        signing.append(f"--password={args.service_password}")
    if not signing:
        raise CliError("the services sign their transactions: pass "
                       + ("--service-account N" if hasattr(args, "service_account") else "--service-keyfile FILE"))
    host = "127.0.0.1" if args.http_addr in ("0.0.0.0", "::") else args.http_addr
    base = [sys.executable, "-m", "node.cli", "services", "--rpc", f"http://{host}:{args.http_port}",
            "--datadir", str(args.datadir), "--parent-pid", str(os.getpid()), *signing, *log_flags(args)]
    inference = [*(["--serve-inference"] if args.serve_inference else []),
                 *(["--verify-inference"] if args.verify_inference else []),
                 *(["--attribute"] if args.attribute else []), *(f"--attribution-run={d}" for d in args.attribution_run)]
    training = [*(["--serve-training"] if args.serve_training else []),
                *(["--verify-training"] if args.verify_training else [])]
    training += [f"--min-training-fee={args.min_training_fee}"] if training and args.min_training_fee else []
    procs = [subprocess.Popen(base + flags) for flags in (inference, training) if flags]  # each its own process
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
