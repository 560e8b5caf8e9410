"""`openledger serve`: the OpenLoRA OpenAI-compatible endpoint (/v1/completions) of a validator.

It is a separate listener from the node's JSON-RPC server: GPU serving scales and fails apart
from the chain. Adapters live in a content-addressed store directory; `--add` imports peft
adapter directories into it before serving. `--node URL` serves a validator's adapters for free
local use: the adapters registered on that node's chain, fetched from its blob store by the hash
their training runs commit to (every file checked), named `adapter-ID` by their on-chain id.
"""
import argparse
import pathlib
import tempfile
import urllib.parse

from node.cli.common import CliError, port, positive

DEFAULT_STORE = ".openlora/adapters"
DEFAULT_BASE = "smollm2"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve LoRA adapters over an OpenAI-compatible HTTP API",
                              description="Serve many LoRA adapters on one base model at /v1/completions "
                                          "(model = adapter id, streaming with stream=true), with an "
                                          "activation commitment in every answer.")
    p.add_argument("--base", metavar="NAME",
                   help="base model: smollm2 (SmolLM2-135M, installed by make run), tiny-llama (random weights, "
                        "for tests) or a local model directory (default smollm2; with --node, the base model the "
                        "chain names for the adapters)")
    p.add_argument("--node", metavar="URL",
                   help="serve the adapters registered on the chain of the node at URL (its JSON-RPC endpoint), "
                        "fetched from its blob store and checked against their registered hashes, as adapter-ID")
    p.add_argument("--adapter", type=positive, action="append", default=[], metavar="ID",
                   help="with --node: only this on-chain adapter id (repeatable; default every registered one)")
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

    if args.adapter and not args.node:
        raise CliError("--adapter ID picks adapters registered on a chain: give --node URL too")
    registered = _registered(args.node, args.adapter) if args.node else []
    only_on = None  # with --node and no --base: the chain's base model, and only adapters on it
    if args.base is None:
        args.base = only_on = registered[0][2] if registered else DEFAULT_BASE
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
    aliases = _fetch(args.node, registered, args.base, only_on, store) if args.node else {}
    engine = inference.Engine(model, store, max_batch=args.max_batch, max_seq_len=args.max_seq_len,
                              pool_slots=args.slots + 1).start()
    try:
        server = inference.make_server(engine, args.host, args.port, tokenizer=base.tokenizer, aliases=aliases)
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



def _registered(url: str, wanted: list[int]) -> list[tuple[int, str, str]]:
    """(on-chain id, adapter hash, base model name) of the adapters registered on `url`'s chain
    (only `wanted` ones, if any)."""
    from node.sdk import Client, SdkError
    from node.services.model import JobError, lineage

    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise CliError(f"--node {url!r}: not an http(s) URL of a node's JSON-RPC endpoint")
    client = Client(url)
    try:
        count = client.call("Models", "adapterCount")
    except SdkError as exc:
        raise CliError(f"--node {url}: {exc}") from None
    out = []
    for adapter_id in wanted or range(1, count + 1):
        try:
            chain = lineage(client, adapter_id)
        except JobError as exc:
            raise CliError(f"--node {url}: adapter {adapter_id}: {exc}") from None
        out.append((adapter_id, chain["run"]["adapterHash"], chain["base"]["name"]))
    if not out:
        raise CliError(f"--node {url}: no adapter is registered on its chain")
    return out


def _fetch(url: str, registered: list[tuple[int, str, str]], base: str, only_on: str | None, store) -> dict[str, str]:
    """Fetch the registered adapters (those on base model `only_on`, if given) into `store` (each
    file checked against its hash, the whole against the hash its training run committed);
    returns {"adapter-ID": hash}."""
    import inference
    from node.sdk import Client, SdkError

    client, aliases = Client(url), {}
    with tempfile.TemporaryDirectory() as tmp:
        for adapter_id, adapter_hash, on in registered:
            if only_on is not None and on != only_on:
                print(f"adapter {adapter_id}: skipped, its base model is {on!r}, not {base!r} "
                      f"(serve it with --base {on} --adapter {adapter_id})", flush=True)
                continue
            try:
                folder = client.fetch_adapter(bytes.fromhex(adapter_hash[2:]), pathlib.Path(tmp) / str(adapter_id))
                stored = store.add(folder)
            except SdkError as exc:
                raise CliError(f"--node {url}: adapter {adapter_id} ({adapter_hash}) cannot be fetched: {exc}") from None
            except inference.InferenceError as exc:
                raise CliError(f"--node {url}: adapter {adapter_id} ({adapter_hash}) does not fit {base}: {exc}") from None
            if stored != adapter_hash:  # fetch_adapter checked every part; the whole must be the registered hash
                raise CliError(f"--node {url}: adapter {adapter_id} fetched as {stored}, but its training run "
                               f"committed to {adapter_hash}")
            aliases[f"adapter-{adapter_id}"] = stored
            print(f"adapter {adapter_id} ({stored}) from {url} as adapter-{adapter_id}", flush=True)
    if not aliases:
        raise CliError(f"--node {url}: none of its adapters is on {base!r}")
    return aliases
