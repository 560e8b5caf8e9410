"""`openledger train request|status|finalise`: hire a validator to train (TrainingJobs), as a builder.

`request` stores the config as a public object and escrows --max-fee; the validators' training
services claim, train, verify and settle it (docs/training-jobs.md). With --wait it follows the
job to the end (finalising it itself when a window closes with nobody acting) and prints the run,
its verification and the fee split.
"""
import argparse
import json
import time

from node.cli.common import CliError
from node.cli.native import _client, _send
from node.sdk import Client, SdkError

FINAL = ("completed", "failed", "refunded")
WAIT_POLL_S = 0.5


def _job_id(args: argparse.Namespace) -> int:
    try:
        job_id = int(args.file or "", 0)
    except ValueError:
        job_id = 0
    if job_id < 1:
        raise CliError(f"train {args.action} needs a job id (a positive integer), got {args.file!r}")
    return job_id


def _base_model_id(client: Client, args: argparse.Namespace) -> int:
    """--base-model-id, or the on-chain base model registered under the --base name."""
    if args.base_model_id is not None:
        return args.base_model_id
    if not args.base:
        raise CliError("train request needs the base model: --base NAME (as registered) or --base-model-id N")
    for model_id in range(1, client.call("Models", "baseModelCount") + 1):
        if client.call("Models", "getBaseModel", model_id)[1] == args.base:
            return model_id
    raise CliError(f"no base model named {args.base!r} is registered on chain (`openledger model register-base`)")


def cmd_job(args: argparse.Namespace) -> int:
    from node.services import training

    try:
        if args.action in ("status", "finalise"):
            job_id = _job_id(args)
            if args.action == "finalise":
                _send(_client(args), "TrainingJobs", "finalise", job_id)
            print(json.dumps(training.report(Client(args.rpc), job_id), indent=1))
            return 0
        return _request(args, training)
    except SdkError as e:
        raise CliError(f"node: {e.reason or e}") from None


def _request(args: argparse.Namespace, training) -> int:
    from training import ConfigError, TrainingConfig

    if args.file is not None:
        raise CliError(f"unexpected argument {args.file!r}: train request takes flags only")
    missing = [f for f, v in (("--datanet ID:VERSION", args.datanet), ("--config CONFIG.toml", args.config),
                              ("--max-fee FEE", args.max_fee)) if v is None]
    if missing:
        raise CliError(f"train request needs {', '.join(missing)}")
    if args.data or args.commit or args.out:
        raise CliError("train request hires a validator: --data, --out and --commit are for a run on this machine")
    try:
        config = TrainingConfig.from_toml(args.config)
    except ConfigError as e:
        raise CliError(str(e)) from None
    client = _client(args)
    datanet_id, version = args.datanet
    try:
        job_id = client.request_training(datanet_id, version, _base_model_id(client, args),
                                         training.config_blob(config), args.max_fee)
    except SdkError as e:
        raise CliError(f"TrainingJobs.requestTraining failed: {e.reason or e}") from None
    print(f"training job {job_id} requested (datanet {datanet_id} v{version}, fee {args.max_fee} wei escrowed)")
    if not args.wait:
        return 0
    shown = None
    while True:
        job = training.job_of(client, job_id)
        if job["statusName"] != shown:
            shown = job["statusName"]
            by = f" by {job['trainer']}" if shown == "claimed" else ""
            print(f"training job {job_id}: {shown}{by}", flush=True)
        if shown in FINAL:
            break
        now = int(client.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
        if now >= job["deadline"]:
            try:
                client.send("TrainingJobs", "finalise", job_id)
            except SdkError:
                pass  # another party settled it first: the next look shows how
        time.sleep(WAIT_POLL_S)
    print(json.dumps(training.report(client, job_id), indent=1))
    return 0 if shown == "completed" else 2
