"""`openledger train` and `openledger verify-run`: ModelFactory from the command line.

`train` reads a Datanet version (its accepted rows from the node, by content hash, or a local
JSONL/Parquet file), checks every row hash and the version root, trains a LoRA adapter with the
seed the chain gives (block hash + run id) and writes the adapter, checkpoints, metrics and the
TrainingRun record; `--commit` then sends `Models.commitTrainingRun` and `registerAdapter` through
the SDK. `verify-run` replays k checkpoint segments of a run directory against its record.
"""
import argparse
import dataclasses
import json
from pathlib import Path

from rich.progress import track

from node.cli.common import CliError, add_ray_flags, positive, ray_workers, uint
from node.cli.native import _add_client_flags, _amount, _client, _hash32, _send
from node.sdk import Client, SdkError


def _version(text: str) -> tuple[int, int]:
    """`ID:VERSION` of a published Datanet version."""
    datanet, sep, version = text.partition(":")
    try:
        ids = int(datanet, 0), int(version, 0)
    except ValueError:
        ids = (0, 0)
    if not sep or min(ids) < 1:
        raise argparse.ArgumentTypeError(f"invalid Datanet version {text!r}: want ID:VERSION, e.g. 1:2")
    return ids


def _add_data_flags(p: argparse.ArgumentParser, required: bool = False) -> None:
    source = p.add_mutually_exclusive_group(required=required)
    source.add_argument("--data", metavar="FILE", help="the version's rows as a local .jsonl or .parquet file")
    source.add_argument("--datanet", type=_version, metavar="ID:VERSION",
                        help="a published Datanet version, read from the node (--rpc)")
    p.add_argument("--root", type=_hash32, metavar="HASH", help="expected version root of --data")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a LoRA adapter on a Datanet version (ModelFactory)",
                              description="Train a LoRA adapter deterministically and write adapter/, checkpoints/, "
                                          "metrics.json, config.json and record.json into --out. "
                                          "`openledger train init [FILE]` writes a commented sample config.")
    p.add_argument("action", nargs="?", choices=("init", "request", "status", "finalise"),
                   help="init: write a sample config (default run.toml); request: hire a validator to train "
                        "(a paid TrainingJobs run, docs/training-jobs.md); status JOB: a job's state, votes and fee "
                        "split; finalise JOB: settle a job whose window has closed")
    p.add_argument("file", nargs="?", metavar="FILE", help="with init: where to write the sample config; "
                                                           "with status and finalise: the job id")
    p.add_argument("--remote", action="store_true", help="the same as `train request`")
    p.add_argument("--max-fee", type=_amount, metavar="FEE",
                   help="with request: the fee offered and escrowed (wei or xOPEN); the data-use price of the "
                        "version goes to its contributors, the rest to the trainer and verifiers")
    p.add_argument("--wait", action="store_true", help="with request: wait until the job is settled")
    _add_data_flags(p)
    p.add_argument("--base", metavar="MODEL",
                   help="base model: tiny-llama, tiny-gpt2, minilm, smollm2 or a local model directory")
    p.add_argument("--config", metavar="CONFIG.toml", help="training config (TOML; `train init` writes one)")
    p.add_argument("--sweep", metavar="SWEEP.toml",
                   help="train every run of a sweep (configs x seeds, see training/sweep.py) as Ray tasks "
                        "into --out/run-K, and tabulate their metrics (needs --ray)")
    p.add_argument("--out", metavar="DIR", help="output directory")
    p.add_argument("--seed-block", type=_hash32, metavar="HASH",
                   help="block hash the run seed derives from (default with --datanet: the node's latest block; "
                        "else the config's seed)")
    p.add_argument("--run-id", type=uint, metavar="N",
                   help="run id for the seed (default with --datanet: the next on-chain run id; else 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=positive, metavar="N", help="torch threads (part of what makes a run exact)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--commit", action="store_true",
                   help="commit the run (Models.commitTrainingRun) and register its adapter (needs --datanet)")
    p.add_argument("--base-model-id", type=positive, metavar="N", help="on-chain base model id (with --commit)")
    p.add_argument("--price", type=_amount, default=0, help="adapter price per inference, wei or xOPEN (default 0)")
    p.add_argument("--attribution", metavar="METHOD",
                   help="build the attribution index with METHOD: graddot-v1, datainf-v1, span-v1 or semantic-v1 "
                        "(datainf-v1 by default with --commit, whose record needs the index root)")
    add_ray_flags(p, "the attribution index build, or a --sweep's runs")
    _add_client_flags(p)
    p.set_defaults(func=cmd_train)

    v = subparsers.add_parser("verify-run", help="check a training run by replaying k checkpoint segments",
                              description="Re-check a run directory's record: data root, config, checkpoints, "
                                          "seeded init, and k replayed segments chosen by --challenge. "
                                          "Exit status 0 accepted, 2 rejected, 1 bad input.")
    v.add_argument("--run", required=True, metavar="DIR", help="run directory (record.json, config.json, checkpoints/)")
    v.add_argument("--chain-run", type=positive, metavar="N",
                   help="on-chain run id: record.json must match Models.getTrainingRun(N), whose Datanet version "
                        "is then read from the node unless --data is given")
    _add_data_flags(v, required=False)
    v.add_argument("-k", type=positive, default=3, help="segments to replay (default 3)")
    v.add_argument("--challenge", type=_hash32, metavar="HASH", help="block hash that seeds the segment choice")
    v.add_argument("--tolerance", type=float, default=None,
                   help="relative deviation accepted (default: the calibrated 1e-3; 0 = bit identical)")
    v.add_argument("--device", default="cpu", help="torch device (default cpu)")
    v.add_argument("--threads", type=positive, metavar="N", help="torch threads")
    _add_client_flags(v, signing=False)
    v.set_defaults(func=cmd_verify)


def _dataset(args: argparse.Namespace, client: Client):
    """(rows, contributor of each row or None): from --data, or from the node's accepted list and
    blob store (every row checked against its hash and the version root)."""
    from eth_utils import to_canonical_address

    from training import Dataset

    if args.data:
        return Dataset.from_file(args.data, expected_root=args.root), None
    datanet_id, version = args.datanet
    if args.root is not None:
        raise CliError("--root is for --data; a --datanet version's root comes from the chain")
    root, count, _ = client.call("Datanets", "getVersion", datanet_id, version)
    hashes, owners = [], []
    for i in track(range(count), description=f"reading Datanet {datanet_id} v{version}", transient=True):
        hashes.append(client.call("Datanets", "acceptedAt", datanet_id, i))
        owners.append(to_canonical_address(client.call("Datanets", "getContribution", datanet_id, hashes[-1])[0]))
    rows = Dataset.from_blobs(hashes, lambda h: client.get_blob(h, datanet_id), expected_root=root)
    return rows, owners


def _threads(args: argparse.Namespace) -> None:
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)


def sample_config() -> str:
    """A run config with every field, its default and its help text as comments."""
    import tomli_w

    from training import TrainingConfig

    lines = ["# A training run config for `openledger train --config FILE` (TOML). Every field is optional;",
             "# the values below are the defaults. The run record commits to keccak256 of this config's",
             "# canonical JSON (configHash on chain), so a verifier replays the run with exactly these settings.",
             "[training]"]
    for f in dataclasses.fields(TrainingConfig):
        value = getattr(TrainingConfig(), f.name)
        value = list(value) if isinstance(value, tuple) else value
        line = f"{f.name} = {json.dumps(value)}" if isinstance(value, list) else tomli_w.dumps({f.name: value}).strip()
        lines.append(f"# {f.metadata['help']}")
        if f.name == "labels":
            lines.append('# labels = ["negative", "positive"]')
        elif f.name == "seed":
            lines.append(f"# {line}  (with --datanet the chain gives the seed: latest block hash + run id)")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.file or "run.toml")
    if path.exists():
        raise CliError(f"{path} exists: remove it or name another file")
    path.write_text(sample_config())
    print(f"wrote {path}; train with: openledger train --config {path} --base tiny-llama --datanet ID:VERSION "
          "--out runs/1")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from attribution import AttributionError
    from training import ConfigError, DataError, TrainingConfig, derive_seed, run

    if args.action == "init":
        return cmd_init(args)
    if args.action in ("request", "status", "finalise") or args.remote:
        from node.cli.train_jobs import cmd_job
        return cmd_job(args)
    if args.file is not None:
        raise CliError(f"unexpected argument {args.file!r} (only `train init` takes a file)")
    if args.config is not None and args.sweep is not None:
        raise CliError("name one of --config CONFIG.toml (one run) or --sweep SWEEP.toml (many runs), not both")
    missing = [flag for flag, value in (("--base", args.base), ("--config or --sweep", args.config or args.sweep),
                                        ("--out", args.out), ("--data or --datanet", args.data or args.datanet))
               if not value]
    if missing:
        raise CliError(f"train needs {', '.join(missing)} (`openledger train init` writes a sample config)")
    if args.sweep is not None:
        return _cmd_sweep(args)
    if args.commit and (args.datanet is None or args.base_model_id is None):
        raise CliError("--commit needs --datanet ID:VERSION (the chain records the version) and --base-model-id N")
    _threads(args)
    client = _client(args) if args.commit else Client(args.rpc)
    try:
        config = TrainingConfig.from_toml(args.config)
        run_id = args.run_id or 0
        seed_block = args.seed_block
        if args.datanet is not None and seed_block is None:  # the chain gives the seed
            seed_block = bytes.fromhex(client.rpc("eth_getBlockByNumber", "latest", False)["hash"][2:])
            run_id = args.run_id if args.run_id is not None else client.call("Models", "runCount") + 1
        if seed_block is not None:
            config = dataclasses.replace(config, seed=derive_seed(seed_block, run_id))
        data, owners = _dataset(args, client)
        record = run(config, data, args.base, args.out, run_id=run_id, device=args.device, resume=args.resume,
                     attribution=_index_builder(args, owners))
    except (ConfigError, DataError, AttributionError, OSError) as exc:
        raise CliError(str(exc)) from None
    except SdkError as exc:
        raise CliError(f"node: {exc.reason or exc}") from None
    summary = {"record_hash": "0x" + record.record_hash().hex(), **record.to_dict()}
    if seed_block is not None:
        summary["seed_block"] = "0x" + seed_block.hex()
    if args.commit:
        summary.update(_commit(client, args, record))
    print(json.dumps(summary, indent=1))
    return 0


def _index_builder(args: argparse.Namespace, owners: list[bytes] | None):
    """The attribution engine's index hook (rows credited to their on-chain contributors), or None."""
    method = args.attribution or ("datainf-v1" if args.commit else None)
    if method is None:
        return None
    from attribution.runs import index_hook
    workers = ray_workers(args)
    if owners is None:
        return index_hook(method, workers=workers)  # offline rows name their contributor in their JSON
    return index_hook(method, contributors=lambda index, _row: owners[index], workers=workers)


def _cmd_sweep(args: argparse.Namespace) -> int:
    """Every run of the sweep as a Ray task; a table (and --out/sweep.json) of their metrics."""
    from training import ConfigError, DataError
    from training.sweep import load_sweep, run_sweep

    if args.commit or args.resume or args.attribution:
        raise CliError("--sweep trains runs to compare them: --commit, --resume and --attribution are for one run")
    if not args.ray:
        raise CliError("--sweep runs on Ray: add --ray auto (a local instance) or --ray ADDRESS")
    try:
        runs = load_sweep(args.sweep)
        ray_workers(args)
        data, _ = _dataset(args, Client(args.rpc))
        records = run_sweep(runs, data, args.base, args.out, threads=args.threads or 1)
    except (ConfigError, DataError, OSError) as exc:
        raise CliError(str(exc)) from None
    rows = []
    for r, record in zip(runs, records):
        metrics = json.loads((Path(args.out) / f"run-{r.run_id}" / "metrics.json").read_text())
        rows.append({"run": r.run_id, **dict(r.changes), "train_loss": metrics[-1]["train_loss"],
                     "record_hash": "0x" + record.record_hash().hex()})
    (Path(args.out) / "sweep.json").write_text(json.dumps(rows, indent=1))
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sweep {args.sweep}: {len(rows)} runs (last-epoch train loss)")
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "record_hash" else "right")
    for row in sorted(rows, key=lambda r: r["train_loss"]):
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) and k == "train_loss" else str(v) for k, v in row.items()))
    Console().print(table)
    return 0


def _store_run(client: Client, out: Path) -> None:
    """Every object the run record names goes to the node's blob store as a public object, checked
    against the record: the adapter (its files and manifest), config, metrics and the record."""
    record = (out / "record.json").read_bytes()
    try:
        for name in ("config.json", "metrics.json"):
            client.put_blob((out / name).read_bytes(), public=True)
        client.put_blob(record, public=True)
        client.put_adapter(out / "adapter")
    except SdkError as exc:
        raise CliError(f"the node's blob store refused the run's files: {exc.reason or exc}") from None


def _commit(client: Client, args: argparse.Namespace, record) -> dict:
    """Store the run's objects, send the run record and the adapter registration; returns the ids the
    chain assigned."""
    _store_run(client, Path(args.out))
    datanet_id, version = args.datanet
    receipt = _send(client, "Models", "commitTrainingRun", datanet_id, version, args.base_model_id, record.config_hash,
                    record.seed, record.adapter_hash, record.metrics_hash, record.attribution_index_root)
    run_id = next(e["args"]["runId"] for e in receipt["events"] if e["event"] == "TrainingRunCommitted")
    if run_id != record.run_id:
        print(f"note: the chain assigned run id {run_id}; the seed was derived with run id {record.run_id}")
    receipt = _send(client, "Models", "registerAdapter", run_id, args.price)
    adapter_id = next(e["args"]["adapterId"] for e in receipt["events"] if e["event"] == "AdapterRegistered")
    return {"chain_run_id": run_id, "adapter_id": adapter_id}


def cmd_verify(args: argparse.Namespace) -> int:
    from training import ConfigError, DataError, TrainingConfig, TrainingRun, verify_run
    from training.verify import DEFAULT_TOLERANCE

    _threads(args)
    run_dir, client = Path(args.run), Client(args.rpc)
    try:
        record = TrainingRun.from_json((run_dir / "record.json").read_bytes())
        config = TrainingConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        if args.chain_run is not None:
            differing = _differs_from_chain(client, args.chain_run, record)
            if differing:
                print(json.dumps({"accepted": False, "reason": f"record.json differs from on-chain run "
                                                              f"{args.chain_run} in {', '.join(differing)}"}))
                return 2
            if args.data is None and args.datanet is None:
                args.datanet = tuple(client.call("Models", "getTrainingRun", args.chain_run)[1:3])
        if args.data is None and args.datanet is None:
            raise CliError("name the data: --data FILE, --datanet ID:VERSION or --chain-run N")
        verdict = verify_run(record, _dataset(args, client)[0], run_dir, args.k, config=config,
                             adapter_dir=run_dir / "adapter", challenge=args.challenge, device=args.device,
                             tolerance=DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance)
    except (ConfigError, DataError, ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    except SdkError as exc:
        raise CliError(f"node: {exc.reason or exc}") from None
    print(json.dumps({"accepted": verdict.accepted, "reason": verdict.reason, "segments": list(verdict.segments),
                      "max_deviation": verdict.max_deviation}))
    return 0 if verdict.accepted else 2


def _differs_from_chain(client: Client, run_id: int, record) -> list[str]:
    """Names of the record fields the chain's copy of run `run_id` disagrees with."""
    (_, _, _, data_root, _, config_hash, seed, adapter_hash, metrics_hash, index_root,
     _) = client.call("Models", "getTrainingRun", run_id)
    pairs = {"datanet_root": (data_root, record.datanet_root), "config_hash": (config_hash, record.config_hash),
             "seed": (seed, record.seed), "adapter_hash": (adapter_hash, record.adapter_hash),
             "metrics_hash": (metrics_hash, record.metrics_hash),
             "attribution_index_root": (index_root, record.attribution_index_root)}
    return [name for name, (chain, ours) in pairs.items() if chain != ours]
