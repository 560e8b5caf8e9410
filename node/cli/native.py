"""CLI for the native modules: `openledger datanet|model|stake|rewards ...`, signing with a v3
keystore key (or a dev account on a devnet) and sending over JSON-RPC through `node.sdk`."""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
from decimal import Decimal, InvalidOperation

from eth_utils import is_hex_address, keccak, to_checksum_address
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from node.cli.common import CliError, read_password, uint
from node.sdk import Client, SdkError

DATA_TYPES = {"text": 0, "image": 1, "audio": 2}
ACCESS = {"public": 0, "allowlist": 1}
STATUS = {1: "pending", 2: "accepted", 3: "rejected"}
IMPORT_BATCH = 200  # transactions in flight at once during `datanet import`


# -- argument types ----------------------------------------------------------------------------

def _amount(text: str) -> int:
    """Wei as an integer, or OPEN with a suffix: `1.5OPEN` / `2 OPEN`."""
    t = text.strip()
    try:
        if t.upper().endswith("OPEN"):
            value = Decimal(t[:-4].strip()) * 10**18
            if value != value.to_integral_value():
                raise ValueError
            result = int(value)
        else:
            result = int(t, 0)
    except (ValueError, InvalidOperation):
        raise argparse.ArgumentTypeError(f"invalid amount {text!r}: want wei (an integer) or e.g. 1.5OPEN") from None
    if result < 0:
        raise argparse.ArgumentTypeError(f"invalid amount {text!r}: must be >= 0")
    return result


def _address(text: str) -> str:
    if not is_hex_address(text):
        raise argparse.ArgumentTypeError(f"invalid address {text!r}: want 0x and 40 hex digits")
    return to_checksum_address(text)


def _hash32(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise argparse.ArgumentTypeError(f"invalid hash {text!r}: want 32 bytes as hex")
    return raw



def _file(text: str) -> pathlib.Path:
    p = pathlib.Path(text)
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"no such file {text!r}")
    return p


# -- client ------------------------------------------------------------------------------------

def _add_show_flags(p: argparse.ArgumentParser) -> None:
    """What every `show` takes: the node, and `--json` (these print JSON always; job and proof
    show print lines for people unless --json)."""
    p.add_argument("--json", action="store_true", help="print JSON (the default for this command)")
    _add_client_flags(p, signing=False)


def _add_client_flags(p: argparse.ArgumentParser, signing: bool = True) -> None:
    p.add_argument("--rpc", default="http://127.0.0.1:8545", metavar="URL", help="node JSON-RPC URL")
    if signing:
        p.add_argument("--keyfile", type=_file, metavar="FILE", help="v3 keystore file of the signing account")
        p.add_argument("--password", dest="password_file", metavar="FILE", help="file whose first line is the password")
        p.add_argument("--dev-account", type=int, metavar="N", help="sign with devnet account N (public dev keys)")


def _client(args: argparse.Namespace) -> Client:
    if getattr(args, "dev_account", None) is not None:
        import genesis
        accounts = genesis.dev_accounts()
        if not 0 <= args.dev_account < len(accounts):
            raise CliError(f"--dev-account {args.dev_account} out of range 0..{len(accounts) - 1}")
        return Client(args.rpc, accounts[args.dev_account][1])
    if getattr(args, "keyfile", None) is not None:
        return Client.from_keystore(args.rpc, str(args.keyfile), read_password(args.password_file))
    if hasattr(args, "keyfile"):
        raise CliError("no signing key: pass --keyfile FILE (v3 keystore) or --dev-account N")
    return Client(args.rpc)


def _send(client: Client, module: str, fn: str, *fn_args, value: int = 0, gas: int | None = None) -> dict:
    try:
        receipt = client.send(module, fn, *fn_args, value=value, gas=gas)
    except SdkError as e:
        raise CliError(f"{module}.{fn} failed: {e.reason or e}") from None
    for ev in receipt["events"]:
        print(f"{ev['module']}.{ev['event']}: " + ", ".join(f"{k}={_show(v)}" for k, v in ev["args"].items()))
    print(f"tx {receipt['transactionHash']} in block {int(receipt['blockNumber'], 16)}, gas {int(receipt['gasUsed'], 16)}")
    return receipt


def _show(value) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


def _read(client: Client, method: str, *params):
    try:
        return client.ol(method, *params)
    except SdkError as e:
        raise CliError(f"ol_{method}: {e.reason or e}") from None


def _print_json(obj) -> None:
    def plain(v):
        if isinstance(v, str) and v.startswith("0x") and len(v) <= 66 and len(v) not in (42, 66):
            return int(v, 16)  # quantities as decimal for people; hashes and addresses stay hex
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v
    json.dump(plain(obj), sys.stdout, indent=2)
    print()


# -- datanet -----------------------------------------------------------------------------------

def cmd_datanet_create(args) -> int:
    c = _client(args)
    desc = keccak(args.description.encode())
    if args.description:  # the chain names it by hash: the node serves it (ol_getBlob)
        try:
            c.put_blob(args.description.encode(), public=True)
        except SdkError as e:
            raise CliError(f"blob store refused the description: {e.reason or e}") from None
    _send(c, "Datanets", "createDatanet", args.name, desc, DATA_TYPES[args.type], args.license, ACCESS[args.access],
          args.fee, args.daily_limit, args.curator or [])
    return 0


def _contribute_bytes(c: Client, datanet_id: int, data: bytes, fee: int) -> dict:
    try:
        blob_hash = c.put_blob(data)
    except SdkError as e:
        raise CliError(f"blob store refused the file: {e}") from None
    return _send(c, "Datanets", "contribute", datanet_id, blob_hash, len(data), value=fee)


def _fee(c: Client, datanet_id: int) -> int:
    return int(_read(c, "getDatanet", hex(datanet_id))["contributionFee"], 16)


def cmd_datanet_contribute(args) -> int:
    c = _client(args)
    data = args.file.read_bytes()
    if not data:
        raise CliError(f"{args.file} is empty")
    _contribute_bytes(c, args.datanet, data, _fee(c, args.datanet))
    return 0


def _pending(c: Client, datanet_id: int) -> list[bytes]:
    count = int(_read(c, "getDatanet", hex(datanet_id))["contributionCount"], 16)
    out = []
    for offset in range(0, count, 100):
        rows = _read(c, "getContributions", hex(datanet_id), hex(offset), hex(100))
        out += [bytes.fromhex(r["contentHash"][2:]) for r in rows if int(r["status"], 16) == 1]
    return out


def _pipeline(c: Client, label: str, calls: list[tuple]) -> tuple[int, list[str]]:
    """Send many calls from one account with consecutive nonces, IMPORT_BATCH in flight at a time;
    returns (mined, revert notes)."""
    done, failed = 0, []
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task(label, total=len(calls))
        for start in range(0, len(calls), IMPORT_BATCH):
            batch = calls[start:start + IMPORT_BATCH]
            try:
                nonce = int(c.rpc("eth_getTransactionCount", c.address, "pending"), 16)
                hashes = []
                for i, (module, fn, fn_args, value) in enumerate(batch):
                    raw, _ = c.build(module, fn, *fn_args, value=value, nonce=nonce + i, gas=200_000)
                    hashes.append(c.rpc("eth_sendRawTransaction", "0x" + raw.hex()))
                for h in hashes:
                    try:
                        c.wait(h)
                        done += 1
                    except SdkError as e:
                        failed.append(str(e))
                    bar.advance(task)
            except SdkError as e:
                raise CliError(f"{label} stopped after {done}: {e.reason or e}") from None
    return done, failed


def cmd_datanet_curate(args) -> int:
    if args.score > 100:
        raise CliError(f"--score {args.score} out of range 0..100")
    c = _client(args)
    hashes = list(args.hash)
    if args.all_pending:
        if hashes:
            raise CliError("give contribution hashes or --all-pending, not both")
        hashes = _pending(c, args.datanet)
        if not hashes:
            raise CliError(f"datanet {args.datanet} has no pending contributions")
    if not hashes:
        raise CliError("name the contributions: HASH ... or --all-pending")
    accept = args.decision == "accept"
    if len(hashes) == 1:
        _send(c, "Datanets", "curate", args.datanet, hashes[0], accept, args.score)
        return 0
    done, failed = _pipeline(c, "curating", [("Datanets", "curate", (args.datanet, h, accept, args.score), 0)
                                             for h in hashes])
    print(f"{'accepted' if accept else 'rejected'} {done} contributions of datanet {args.datanet}"
          + (f"; {len(failed)} refused on chain" if failed else ""))
    return 0 if not failed else 1


def cmd_datanet_price(args) -> int:
    _send(_client(args), "TrainingJobs", "setDataUsePrice", args.datanet, args.version, args.price)
    return 0


def cmd_datanet_publish(args) -> int:
    _send(_client(args), "Datanets", "publishVersion", args.datanet)
    return 0


def cmd_datanet_allow(args) -> int:
    _send(_client(args), "Datanets", "setAllowed", args.datanet, args.account, not args.revoke)
    return 0


def cmd_datanet_show(args) -> int:
    c = _client(args)
    d = _read(c, "getDatanet", hex(args.datanet))
    out = {**d, "dataType": next(k for k, v in DATA_TYPES.items() if v == int(d["dataType"], 16)),
           "accessPolicy": next(k for k, v in ACCESS.items() if v == int(d["accessPolicy"], 16))}
    versions = int(d["versionCount"], 16)
    out["versions"] = [_read(c, "getVersion", hex(args.datanet), hex(v)) for v in range(1, versions + 1)]
    if args.contributions:
        rows = _read(c, "getContributions", hex(args.datanet), "0x0", hex(min(args.contributions, 100)))
        out["contributions"] = [{**r, "status": STATUS.get(int(r["status"], 16), "?")} for r in rows]
    _print_json(out)
    return 0


def _rows(path: pathlib.Path, column: str | None) -> list[bytes]:
    """The bytes of each row: a JSONL line's `column` value (UTF-8), or the canonical JSON of the
    row; a Parquet row the same way."""
    def encode(row: dict) -> bytes:
        if column is not None:
            if column not in row:
                raise CliError(f"{path}: row has no column {column!r} (has {', '.join(map(str, row))})")
            value = row[column]
            return value.encode() if isinstance(value, str) else json.dumps(value, sort_keys=True).encode()
        return json.dumps(row, sort_keys=True, separators=(",", ":")).encode()

    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
            rows = pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several types for broken files
            raise CliError(f"{path}: not a readable Parquet file ({e})") from None
        return [encode(r) for r in rows]
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="strict").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CliError(f"{path}:{n}: not JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise CliError(f"{path}:{n}: a JSONL row must be an object")
        out.append(encode(row))
    return out


def cmd_datanet_import(args) -> int:
    """Each row: bytes into the blob store, hash and size on chain (transactions pipelined)."""
    c = _client(args)
    try:
        rows = _rows(args.file, args.column)
    except UnicodeDecodeError:
        raise CliError(f"{args.file}: not UTF-8 text (JSONL) nor .parquet") from None
    if not rows:
        raise CliError(f"{args.file}: no rows")
    fee = _fee(c, args.datanet)
    unique = list(dict.fromkeys(rows))  # identical rows would be rejected on chain as duplicates
    calls = []
    for data in unique:
        try:
            calls.append(("Datanets", "contribute", (args.datanet, c.put_blob(data), len(data)), fee))
        except SdkError as e:
            raise CliError(f"blob store refused row {len(calls) + 1}: {e.reason or e}") from None
    done, failed = _pipeline(c, "importing", calls)
    print(f"imported {done} rows into datanet {args.datanet} ({len(failed)} rejected on chain, "
          f"{len(rows) - len(unique)} duplicate rows skipped)")
    return 0 if not failed else 1


# -- model -------------------------------------------------------------------------------------

def base_weights_hash(name: str) -> bytes:
    """The hash a training record's `base_model_hash` carries for base model `name` (its tensors)."""
    import training

    try:
        return training.tensor_hash(training.load_base(name).model.state_dict())
    except (training.ConfigError, OSError) as e:
        raise CliError(f"base model {name!r}: {e}; or give --weights-hash HASH / --weights-file FILE") from None


def cmd_model_register_base(args) -> int:
    if args.weights_file is not None:
        weights_hash = keccak(args.weights_file.read_bytes())
    else:
        weights_hash = args.weights_hash or base_weights_hash(args.name)
        print(f"weights hash 0x{weights_hash.hex()}")
    _send(_client(args), "Models", "registerBaseModel", args.name, weights_hash)
    return 0


def cmd_model_commit_run(args) -> int:
    _send(_client(args), "Models", "commitTrainingRun", args.datanet, args.version, args.base_model, args.config_hash,
          args.seed, args.adapter_hash, args.metrics_hash, args.attribution_root)
    return 0


def cmd_model_register_adapter(args) -> int:
    _send(_client(args), "Models", "registerAdapter", args.run, args.price)
    return 0


def cmd_model_show(args) -> int:
    method = {"base": "getBaseModel", "run": "getTrainingRun", "adapter": "getAdapter"}[args.kind]
    _print_json(_read(_client(args), method, hex(args.id)))
    return 0


# -- stake / rewards ---------------------------------------------------------------------------

def cmd_stake_register(args) -> int:
    _send(_client(args), "Staking", "registerValidator", args.commission_ppm, 1 if args.gpu else 0, value=args.amount)
    return 0


def cmd_stake_delegate(args) -> int:
    _send(_client(args), "Staking", "delegate", args.validator, value=args.amount)
    return 0


def cmd_stake_undelegate(args) -> int:
    _send(_client(args), "Staking", "undelegate", args.validator, args.amount)
    return 0


def cmd_stake_withdraw(args) -> int:
    _send(_client(args), "Staking", "withdraw")
    return 0


def cmd_stake_claim(args) -> int:
    _send(_client(args), "Staking", "claimRewards", args.validator)
    return 0


def cmd_stake_show(args) -> int:
    c = _client(args)
    _print_json(_read(c, "getValidator", args.validator) if args.validator else _read(c, "getValidators"))
    return 0


def cmd_rewards(args) -> int:
    first = "earliest" if args.first is None else hex(args.first)
    _print_json(_read(_client(args), "getRewards", args.address, first,
                      "latest" if args.last is None else hex(args.last)))
    return 0


# -- registration ------------------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    dn = subparsers.add_parser("datanet", help="create, contribute to, curate and publish Datanets")
    sub = dn.add_subparsers(dest="datanet_command", metavar="ACTION", required=True)

    p = sub.add_parser("create", help="register a new Datanet")
    p.add_argument("--name", required=True)
    p.add_argument("--description", default="", help="description text (its keccak256 goes on chain)")
    p.add_argument("--type", choices=DATA_TYPES, default="text")
    p.add_argument("--license", required=True)
    p.add_argument("--access", choices=ACCESS, default="public")
    p.add_argument("--fee", type=_amount, default=0, help="contribution fee paid to the owner (wei or xOPEN)")
    p.add_argument("--daily-limit", type=uint, default=10 * 1024 * 1024, help="bytes per contributor per day")
    p.add_argument("--curator", type=_address, action="append", help="a curator address (repeatable)")
    p.set_defaults(func=cmd_datanet_create)

    p = sub.add_parser("contribute", help="store a file in the blob store and contribute its hash")
    p.add_argument("datanet", type=uint)
    p.add_argument("file", type=_file)
    p.set_defaults(func=cmd_datanet_contribute)

    p = sub.add_parser("curate", help="accept or reject contributions (hashes, or --all-pending) with a quality score")
    p.add_argument("datanet", type=uint)
    p.add_argument("hash", type=_hash32, nargs="*", help="contribution hashes (several are sent pipelined)")
    p.add_argument("decision", choices=("accept", "reject"))
    p.add_argument("--all-pending", action="store_true", help="every contribution still pending")
    p.add_argument("--score", type=uint, default=50, help="quality 0..100")
    p.set_defaults(func=cmd_datanet_curate)

    p = sub.add_parser("publish", help="publish a version (Merkle root of accepted contributions)")
    p.add_argument("datanet", type=uint)
    p.set_defaults(func=cmd_datanet_publish)

    p = sub.add_parser("price", help="set a published version's data-use price per paid training run "
                                     "(TrainingJobs; paid to its contributors, 0 = free)")
    p.add_argument("datanet", type=uint)
    p.add_argument("version", type=uint)
    p.add_argument("price", type=_amount, help="wei or xOPEN")
    p.set_defaults(func=cmd_datanet_price)

    p = sub.add_parser("allow", help="add (or --revoke) an account on an allowlist Datanet")
    p.add_argument("datanet", type=uint)
    p.add_argument("account", type=_address)
    p.add_argument("--revoke", action="store_true")
    p.set_defaults(func=cmd_datanet_allow)

    p = sub.add_parser("show", help="print a Datanet, its versions and (optionally) contributions")
    p.add_argument("datanet", type=uint)
    p.add_argument("--contributions", type=uint, default=0, metavar="N", help="also list the first N (<= 100)")
    _add_show_flags(p)
    p.set_defaults(func=cmd_datanet_show)

    p = sub.add_parser("import", help="load JSONL or Parquet rows as contributions (bytes to the blob store)")
    p.add_argument("datanet", type=uint)
    p.add_argument("file", type=_file)
    p.add_argument("--column", help="take this column's value as the row's bytes (default: the whole row as JSON)")
    p.set_defaults(func=cmd_datanet_import)
    for name, action in sub.choices.items():
        if name != "show":
            _add_client_flags(action)

    model = subparsers.add_parser("model", help="base models, training runs and adapters (ModelFactory)")
    sub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    p = sub.add_parser("register-base", help="register a base model by its weights hash",
                       description="Register base model NAME. Without --weights-hash/--weights-file, NAME is loaded "
                                   "(tiny-llama, smollm2, a local directory) and the hash of its tensors computed, the "
                                   "same hash training records carry.")
    p.add_argument("name")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--weights-hash", type=_hash32)
    weights.add_argument("--weights-file", type=_file)
    p.set_defaults(func=cmd_model_register_base)
    p = sub.add_parser("commit-run", help="commit a training run record")
    for flag, kind in (("--datanet", uint), ("--version", uint), ("--base-model", uint), ("--config-hash", _hash32),
                       ("--seed", uint), ("--adapter-hash", _hash32), ("--metrics-hash", _hash32),
                       ("--attribution-root", _hash32)):
        p.add_argument(flag, type=kind, required=True)
    p.set_defaults(func=cmd_model_commit_run)
    p = sub.add_parser("register-adapter", help="register a run's adapter for serving at a price")
    p.add_argument("run", type=uint)
    p.add_argument("--price", type=_amount, required=True, help="wei or xOPEN per inference")
    p.set_defaults(func=cmd_model_register_adapter)
    for action in sub.choices.values():
        _add_client_flags(action)
    p = sub.add_parser("show", help="print a base model, run or adapter")
    p.add_argument("kind", choices=("base", "run", "adapter"))
    p.add_argument("id", type=uint)
    _add_show_flags(p)
    p.set_defaults(func=cmd_model_show)

    stake = subparsers.add_parser("stake", help="validators, delegation, unbonding")
    sub = stake.add_subparsers(dest="stake_command", metavar="ACTION", required=True)
    p = sub.add_parser("register", help="register the signer as a validator")
    p.add_argument("--amount", type=_amount, required=True, help="self stake (wei or xOPEN)")
    p.add_argument("--commission-ppm", type=uint, default=0)
    p.add_argument("--gpu", action="store_true", help="serves OpenLoRA inference")
    p.set_defaults(func=cmd_stake_register)
    p = sub.add_parser("delegate", help="delegate OPEN to a validator")
    p.add_argument("validator", type=_address)
    p.add_argument("--amount", type=_amount, required=True)
    p.set_defaults(func=cmd_stake_delegate)
    p = sub.add_parser("undelegate", help="start unbonding OPEN from a validator")
    p.add_argument("validator", type=_address)
    p.add_argument("--amount", type=_amount, required=True)
    p.set_defaults(func=cmd_stake_undelegate)
    p = sub.add_parser("withdraw", help="withdraw OPEN whose unbonding period has passed")
    p.set_defaults(func=cmd_stake_withdraw)
    p = sub.add_parser("claim", help="claim delegation rewards accrued with a validator")
    p.add_argument("validator", type=_address)
    p.set_defaults(func=cmd_stake_claim)
    for action in sub.choices.values():
        _add_client_flags(action)
    p = sub.add_parser("show", help="print one validator, or all")
    p.add_argument("validator", type=_address, nargs="?")
    _add_show_flags(p)
    p.set_defaults(func=cmd_stake_show)

    p = subparsers.add_parser("rewards", help="an address's earnings by source (per block range), vesting, unbonding")
    p.add_argument("address", type=_address)
    p.add_argument("--from", dest="first", type=uint, metavar="B", help="first block of the range (default 0)")
    p.add_argument("--to", dest="last", type=uint, metavar="B", help="last block of the range (default latest)")
    _add_show_flags(p)
    p.set_defaults(func=cmd_rewards)
