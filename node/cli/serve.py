"""`openledger serve`: the OpenLoRA OpenAI-compatible endpoint (/v1/completions) of a validator.

It is a separate listener from the node's JSON-RPC server: GPU serving scales and fails apart
from the chain. Adapters live in a content-addressed store directory; `--add` imports peft
adapter directories into it before serving.
"""
import argparse
import pathlib

from node.cli.common import CliError, port, positive

DEFAULT_STORE = ".openlora/adapters"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve LoRA adapters over an OpenAI-compatible HTTP API",
                              description="Serve many LoRA adapters on one base model at /v1/completions "
                                          "(model = adapter id, streaming with stream=true), with an "
                                          "activation commitment in every answer.")
    p.add_argument("--base", default="smollm2", metavar="NAME",
                   help="base model: smollm2 (SmolLM2-135M, installed by make run), tiny-llama (random weights, "
                        "for tests) or a local model directory (default smollm2)")
    p.add_argument("--store", default=DEFAULT_STORE, metavar="DIR", help=f"adapter store (default {DEFAULT_STORE})")
    p.add_argument("--add", action="append", default=[], metavar="ADAPTER_DIR",
                   help="import a peft adapter directory into the store first (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=8000, help="listen port (default 8000; 0 picks a free one)")
    p.add_argument("--targets", default="q_proj,v_proj", help="LoRA target modules served (default q_proj,v_proj)")
    p.add_argument("--max-rank", type=positive, default=16, help="largest adapter rank served (default 16)")
    p.add_argument("--max-batch", type=positive, default=16, help="requests decoded together (default 16)")
    p.add_argument("--max-seq-len", type=positive, default=512, help="prompt + output tokens (default 512)")
    p.add_argument("--slots", type=positive, default=64, help="adapters resident on the device (default 64)")
    p.add_argument("--cpu-budget-mb", type=positive, default=256, help="CPU adapter cache in MiB (default 256)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=positive, default=1, help="torch CPU threads (default 1)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import torch

    import inference
    import training

    torch.set_num_threads(args.threads)
    try:
        base = training.load_base(args.base, device=args.device)
    except (training.ConfigError, OSError) as exc:
        raise CliError(f"--base {args.base!r}: {exc}") from None
    model = base.model.eval()
    targets = tuple(t for t in args.targets.split(",") if t)
    try:
        store = inference.AdapterStore(args.store, inference.BaseSpec.of(model), targets=targets,
                                       max_rank=args.max_rank, cpu_budget_bytes=args.cpu_budget_mb << 20)
    except inference.InferenceError as exc:
        raise CliError(f"--targets {args.targets!r}: {exc}") from None
    for folder in args.add:
        if not pathlib.Path(folder).is_dir():
            raise CliError(f"--add {folder!r}: not a directory")
        try:
            print(f"added {store.add(folder)} from {folder}", flush=True)
        except inference.InferenceError as exc:
            raise CliError(f"--add {folder!r}: {exc}") from None
    engine = inference.Engine(model, store, max_batch=args.max_batch, max_seq_len=args.max_seq_len,
                              pool_slots=args.slots + 1).start()
    try:
        server = inference.make_server(engine, args.host, args.port, tokenizer=base.tokenizer)
    except OSError as exc:
        engine.close()
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    host, port = server.server_address[:2]
    print(f"serving {len(store.ids())} adapters on {args.base} at http://{host}:{port}/v1/completions", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        engine.close()
        store.close()
    return 0

