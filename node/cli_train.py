"""`openledger train` and `openledger verify-run`: ModelFactory from the command line.

`train` reads a Datanet version (a local JSONL/Parquet file, or a version's rows from the node's
blob store), checks every row hash and the version root, trains a LoRA adapter with the seed the
chain gives (block hash + run id) and writes the adapter, checkpoints, metrics and the TrainingRun
record. `verify-run` replays k checkpoint segments of a run directory against its record.
"""
import argparse
import json
import sys
from pathlib import Path


def _hash32(text: str) -> bytes:
    body = text[2:] if text.startswith(("0x", "0X")) else text
    try:
        value = bytes.fromhex(body)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid hash {text!r}: want 32 bytes of hex") from None
    if len(value) != 32:
        raise argparse.ArgumentTypeError(f"invalid hash {text!r}: want 32 bytes, got {len(value)}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid value {value}: must be >= 0")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("invalid value 0: must be >= 1")
    return value


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="FILE", help="the version's rows as a local .jsonl or .parquet file")
    source.add_argument("--datanet", metavar="MANIFEST",
                        help="a Datanet version manifest (JSON: root and the accepted content hashes in committed "
                             "order); rows are read from --blobs")
    p.add_argument("--blobs", metavar="DIR", help="blob store directory holding the rows (with --datanet)")
    p.add_argument("--root", type=_hash32, metavar="HASH",
                   help="expected version root; training refuses rows that do not give it")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a LoRA adapter on a Datanet version (ModelFactory)",
                              description="Train a LoRA adapter deterministically and write adapter/, checkpoints/, "
                                          "metrics.json, config.json and record.json into --out.")
    _add_data_flags(p)
    p.add_argument("--base", required=True, metavar="MODEL",
                   help="base model: tiny-llama, tiny-gpt2, minilm, smollm2 or a local model directory")
    p.add_argument("--config", required=True, metavar="CONFIG.toml", help="training config (TOML)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--seed-block", type=_hash32, metavar="HASH",
                   help="block hash the run seed derives from (with --run-id); default: the config's seed")
    p.add_argument("--run-id", type=_non_negative, default=0, metavar="N", help="run id (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=_positive, metavar="N", help="torch threads (part of what makes a run exact)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.set_defaults(func=cmd_train)

    v = subparsers.add_parser("verify-run", help="check a training run by replaying k checkpoint segments",
                              description="Re-check a run directory's record: data root, config, checkpoints, "
                                          "seeded init, and k replayed segments chosen by --challenge.")
    v.add_argument("--run", required=True, metavar="DIR", help="run directory (record.json, config.json, checkpoints/)")
    _add_data_flags(v)
    v.add_argument("-k", type=_positive, default=3, help="segments to replay (default 3)")
    v.add_argument("--challenge", type=_hash32, metavar="HASH", help="block hash that seeds the segment choice")
    v.add_argument("--tolerance", type=float, default=None,
                   help="relative deviation accepted (default calibrated 1e-3; 0 = bit identical)")
    v.add_argument("--device", default="cpu", help="torch device (default cpu)")
    v.add_argument("--threads", type=_positive, metavar="N", help="torch threads")
    v.set_defaults(func=cmd_verify)


def _dataset(args: argparse.Namespace):
    from training import Dataset

    if args.data:
        return Dataset.from_file(args.data, expected_root=args.root)
    if not args.blobs:
        raise ValueError("--datanet needs --blobs DIR (the node's blob store directory)")
    try:
        manifest = json.loads(Path(args.datanet).read_text())
        root = _hash32(manifest["root"])
        hashes = [_hash32(h) for h in manifest["hashes"]]
    except (OSError, ValueError, KeyError, TypeError, argparse.ArgumentTypeError) as exc:
        raise ValueError(f"--datanet {args.datanet}: want a JSON manifest {{\"root\": HASH, \"hashes\": [HASH, ...]}} "
                         f"({exc})") from None
    if args.root is not None and args.root != root:
        raise ValueError(f"--root 0x{args.root.hex()} differs from the manifest's root 0x{root.hex()}")
    from node.blobstore import BlobError, BlobStore
    store = BlobStore(args.blobs)

    def fetch(content_hash: bytes) -> bytes | None:
        try:
            return store.get(content_hash)
        except BlobError:
            return None

    return Dataset.from_blobs(hashes, fetch, expected_root=root)


def _threads(args: argparse.Namespace) -> None:
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from training import ConfigError, DataError, TrainingConfig, derive_seed, run

    _threads(args)
    try:
        config = TrainingConfig.from_toml(args.config)
        if args.seed_block is not None:
            config = dataclasses.replace(config, seed=derive_seed(args.seed_block, args.run_id))
        record = run(config, _dataset(args), args.base, args.out, run_id=args.run_id, device=args.device,
                     resume=args.resume)
    except (ConfigError, DataError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"record_hash": "0x" + record.record_hash().hex(), **record.to_dict()}, indent=1))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from training import ConfigError, DataError, TrainingConfig, TrainingRun, verify_run
    from training.verify import DEFAULT_TOLERANCE

    _threads(args)
    run_dir = Path(args.run)
    try:
        record = TrainingRun.from_json((run_dir / "record.json").read_bytes())
        config = TrainingConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        verdict = verify_run(record, _dataset(args), run_dir, args.k, config=config, adapter_dir=run_dir / "adapter",
                             challenge=args.challenge, device=args.device,
                             tolerance=DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance)
    except (ConfigError, DataError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"accepted": verdict.accepted, "reason": verdict.reason, "segments": list(verdict.segments),
                      "max_deviation": verdict.max_deviation}))
    return 0 if verdict.accepted else 2
