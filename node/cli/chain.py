"""`openledger devnet|init|run|export|import|keys`: start, fill and dump a chain; manage keys."""
import argparse
import ipaddress
import math
import os
import pathlib
import re
import sys
from collections.abc import Iterator

import plyvel
import rlp
from eth_utils import big_endian_to_int, encode_hex
from rich.progress import Progress

import genesis as genesis_mod
from node.cli import bridge, services
from node.cli.config import add_operator_flags, operator_config
from node.cli.common import DEFAULT_DATADIR, CliError, port, positive, read_password, seconds


def _apis(text: str) -> tuple[str, ...]:
    apis = tuple(a.strip() for a in text.split(",") if a.strip())
    if not apis:
        raise argparse.ArgumentTypeError(f"invalid --http.api {text!r}: want a comma-separated list")
    return apis


def _add_datadir(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--datadir", default=default, required=default is None, metavar="DIR",
                   help="data directory" + (f" (default {default})" if default else ""))


def _add_rpc_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--http.addr", dest="http_addr", default="127.0.0.1", metavar="ADDR",
                   help="HTTP-RPC listening interface (default 127.0.0.1)")
    p.add_argument("--http.port", dest="http_port", type=port, default=8545, metavar="PORT",
                   help="HTTP-RPC port; WebSocket is served on the same port (default 8545)")
    p.add_argument("--http.api", dest="http_api", type=_apis, default=None, metavar="LIST",
                   help="APIs offered over HTTP and WebSocket (default eth,net,web3; devnet: "
                        + ",".join(DEVNET_APIS) + ")")
    p.add_argument("--block-time", dest="block_time", type=seconds, default=None, metavar="S",
                   help="seconds between blocks; 0 mines each transaction at once")
    p.add_argument("--blobs.maxsize", dest="blobs_maxsize", type=positive, default=None, metavar="BYTES",
                   help="cap on all blobs stored through ol_putBlob together (default 16 GiB)")


# -- browsers and the transaction pool (#21, #11): go-ethereum's flags; the devnet lets any
#    origin in, as anvil does, but still answers only loopback Host names unless told otherwise.

def _list(text: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in text.split(",") if a.strip())


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def _duration(text: str) -> float:
    """Seconds, or a go-ethereum duration such as 1h, 30m, 90s, 1h30m."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        match = _DURATION.fullmatch(text)
        value = sum(float(x or 0) * k for x, k in zip(match.groups(), (3600, 60, 1))) if match and text else 0.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: want seconds or e.g. 1h, 30m")
    return value


def _add_browser_and_pool_flags(p: argparse.ArgumentParser, devnet: bool) -> None:
    any_origin = " (devnet default *: any origin, as anvil)" if devnet else " (default none)"
    p.add_argument("--http.corsdomain", dest="http_corsdomain", type=_list, default=("*",) if devnet else (),
                   metavar="LIST", help="origins browsers may send requests from" + any_origin)
    p.add_argument("--http.vhosts", dest="http_vhosts", type=_list, default=("localhost",), metavar="LIST",
                   help="Host names the server answers (IP addresses always; * for any; default localhost)")
    p.add_argument("--ws.origins", dest="ws_origins", type=_list, default=("*",) if devnet else (), metavar="LIST",
                   help="origins allowed to open a WebSocket" + (any_origin if devnet else
                                                                   " (default: http://localhost and this host)"))
    p.add_argument("--txpool.journal", dest="txpool_journal", default="transactions.rlp", metavar="FILE",
                   help="journal of local transactions, re-admitted at start (in the data dir; default "
                        "transactions.rlp; empty: none)")
    p.add_argument("--txpool.rejournal", dest="txpool_rejournal", type=_duration, default=3600.0, metavar="DUR",
                   help="time between journal rewrites (default 1h)")
    p.add_argument("--txpool.nolocals", dest="txpool_nolocals", action="store_true",
                   help="do not track or journal transactions sent through this node")
    for name, default, what in (("accountslots", 16, "executable transactions kept per account under pressure"),
                                ("globalslots", 5120, "executable transaction slots for all accounts"),
                                ("accountqueue", 64, "non-executable transactions per account"),
                                ("globalqueue", 1024, "non-executable transactions for all accounts")):
        p.add_argument(f"--txpool.{name}", dest=f"txpool_{name}", type=positive, default=default, metavar="N",
                       help=f"{what} (default {default})")


def _pool_config(args: argparse.Namespace):
    from node.mempool import PoolConfig

    return PoolConfig(account_slots=args.txpool_accountslots, global_slots=args.txpool_globalslots,
                      account_queue=args.txpool_accountqueue, global_queue=args.txpool_globalqueue,
                      journal=args.txpool_journal or None, rejournal=args.txpool_rejournal,
                      no_locals=args.txpool_nolocals)


def _multiaddr(text: str) -> str:
    import multiaddr

    try:
        multiaddr.Multiaddr(text)
    except Exception as e:
        raise argparse.ArgumentTypeError(f"invalid multiaddr {text!r}: {e}") from None
    return text


def _bootnodes(text: str) -> tuple[str, ...]:
    out = []
    for address in _list(text):
        _multiaddr(address)
        if "/p2p/" not in address:
            raise argparse.ArgumentTypeError(f"invalid --bootnodes entry {address!r}: want .../p2p/PEER_ID")
        out.append(address)
    return tuple(out)


def _announce(text: str) -> tuple[str, ...]:
    out = []
    for address in _list(text):
        _multiaddr(address)
        if "/p2p/" in address:
            raise argparse.ArgumentTypeError(f"invalid --p2p.announce entry {address!r}: leave out /p2p/PEER_ID "
                                             "(the node adds its own)")
        out.append(address)
    return tuple(out)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("devnet", help="run a single-validator development chain",
                              description="Start (or resume) a devnet with the ten well-known dev accounts funded, "
                                          "every loopback-safe API on (" + ",".join(DEVNET_APIS) + ") and short "
                                          "dispute/job/unbonding windows.")
    _add_datadir(p, DEFAULT_DATADIR)
    _add_rpc_flags(p)
    _add_devnet_flags(p)
    p.add_argument("--ui", action=argparse.BooleanOptionalAction, default=True,
                   help="serve OpenLedger Studio, the web app, at /studio on the HTTP port (default on)")
    _add_browser_and_pool_flags(p, devnet=True)
    services.add_node_flags(p, devnet=True)
    bridge.add_l1_flags(p, devnet=True)
    add_operator_flags(p)
    p.set_defaults(func=cmd_devnet)

    p = subparsers.add_parser("init", help="create a data dir from a genesis file",
                              description="Create the chain's block 0 in DIR from GENESIS (our JSON format).")
    p.add_argument("genesis", metavar="GENESIS", help="genesis JSON file")
    _add_datadir(p)
    p.set_defaults(func=cmd_init)

    p = subparsers.add_parser("run", help="run a node on an initialised data dir",
                              description="Run the node on DIR (see `openledger init`).")
    _add_datadir(p)
    _add_rpc_flags(p)
    _add_browser_and_pool_flags(p, devnet=False)
    p.add_argument("--ws", action="store_true",
                   help="accept WebSocket JSON-RPC (on the HTTP port, as anvil does; on by default)")
    p.add_argument("--ws.port", dest="ws_port", type=port, default=None, metavar="PORT",
                   help="an extra listener for WebSocket (and HTTP) JSON-RPC")
    p.add_argument("--ui", action="store_true",
                   help="serve OpenLedger Studio, the web app, at /studio on the HTTP port (it reads the ol API: "
                        "add ol to --http.api)")
    p.add_argument("--validator-key", dest="validator_key", default=None, metavar="FILE",
                   help="the validator's staking key (an encrypted v3 key file, `openledger keys new`): "
                        "the node signs proposals and votes with it; without one it follows only")
    p.add_argument("--validator-password", dest="validator_password", default=None, metavar="FILE",
                   help="file whose first line is the key file's password (default: ask)")
    p.add_argument("--p2p.listen", dest="p2p_listen", type=_multiaddr, default=None, metavar="MULTIADDR",
                   help="join the validator network, listening here (e.g. /ip4/0.0.0.0/tcp/30333); the peer "
                        "key is kept in DIR/p2p_key")
    p.add_argument("--bootnodes", type=_bootnodes, default=(), metavar="LIST",
                   help="comma-separated peers to keep connected to, each /ip4/HOST/tcp/PORT/p2p/PEER_ID")
    p.add_argument("--p2p.announce", dest="p2p_announce", type=_announce, default=(), metavar="LIST",
                   help="comma-separated addresses peers should dial, told to them instead of --p2p.listen's "
                        "(behind NAT or a proxy: e.g. /ip4/203.0.113.7/tcp/30333)")
    services.add_node_flags(p, devnet=False)
    bridge.add_l1_flags(p, devnet=False)
    add_operator_flags(p)
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("export", help="write the chain to a file as concatenated RLP blocks",
                              description="Export blocks FIRST..LAST (default: 1..head) as concatenated RLP.")
    p.add_argument("file", metavar="FILE")
    _add_datadir(p)
    p.add_argument("--first", type=int, default=1, metavar="N", help="first block (default 1)")
    p.add_argument("--last", type=int, default=None, metavar="N", help="last block (default head)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("import", help="import concatenated RLP blocks from a file",
                              description="Validate and import each block in FILE; blocks already present are skipped.")
    p.add_argument("file", metavar="FILE")
    _add_datadir(p)
    p.set_defaults(func=cmd_import)

    keys = subparsers.add_parser("keys", help="manage encrypted key files (Ethereum v3 keystore)",
                                 description="Create and list encrypted key files.")
    sub = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    for name, helptext, func in (("new", "create a new key", cmd_keys_new), ("list", "list keys", cmd_keys_list)):
        k = sub.add_parser(name, help=helptext, description=helptext.capitalize() + ".")
        k.add_argument("--keystore", default=None, metavar="DIR", help="key directory (default DATADIR/keystore)")
        k.add_argument("--datadir", default=DEFAULT_DATADIR, metavar="DIR", help=f"data directory (default {DEFAULT_DATADIR})")
        if name == "new":
            k.add_argument("--password", dest="password_file", default=None, metavar="FILE",
                           help="file whose first line is the password (default: ask)")
            k.add_argument("--lightkdf", action="store_true", help="weaker, faster scrypt (geth's --lightkdf)")
        k.set_defaults(func=func)


# -- devnet: every loopback-safe API, genesis parameter overrides, its own validator key -------

DEVNET_APIS = ("eth", "net", "web3", "ol", "txpool", "debug", "ots")
"""What a devnet serves unless --http.api says otherwise (as anvil serves everything); `run` keeps
geth's eth,net,web3."""


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"invalid --param {text!r}: want NAME=VALUE, e.g. dispute_window_s=10")
    return name.strip(), value.strip()


def _add_devnet_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", dest="params", type=_param, action="append", default=[], metavar="NAME=VALUE",
                   help="override a genesis parameter (repeatable): any economics field of genesis/params.py "
                        "(dispute_window_s, job_timeout_s, attestation_quorum, min_validator_stake=10OPEN, ...) "
                        "or chain_id, gas_limit, base_fee, base_fee_sink")


def _devnet_genesis(args: argparse.Namespace) -> genesis_mod.Genesis:
    from node.chain import GENESIS_FILE

    g = genesis_mod.with_params(genesis_mod.devnet(bridge_escrow=bridge.devnet_bridge_escrow(args)), dict(args.params))
    stored = pathlib.Path(args.datadir) / GENESIS_FILE
    if stored.exists():
        old = genesis_mod.load(stored)
        changed = [f"{k} {getattr(old.economics, k)} -> {v}" for k, v in vars(g.economics).items()
                   if getattr(old.economics, k) != v]
        if old != g:
            raise CliError(f"data dir {args.datadir!r} holds a chain started with other parameters"
                           f"{' (' + ', '.join(changed) + ')' if changed else ''}: start it with the --param flags it "
                           f"was made with, or use a fresh --datadir (`make clean` removes .devnet)")
    return g


def _loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return addr == "localhost"


def _print_devnet(g: genesis_mod.Genesis) -> None:
    """After the user accounts: the validator apart, the chain id, the parameters that differ from production."""
    address, key = genesis_mod.dev_validator()
    print(f"\nValidator (proposer, receives tips and block rewards; not a user account)\n==================\n"
          f"{address}\nkey {key}")
    real = genesis_mod.Economics()
    short = [f"{k}={v}" for k, v in vars(g.economics).items() if getattr(real, k) != v]
    print(f"\nChain ID\n==================\n{g.chain_id}\n")
    print(f"Devnet parameters (--param NAME=VALUE)\n==================\n{' '.join(short) or 'as production'}\n",
          flush=True)


# -- serving -------------------------------------------------------------------------------

def _rpc_config(args: argparse.Namespace, **extra):
    from node.rpc import RpcConfig

    fields = {"host": args.http_addr, "port": args.http_port, "cors_origins": args.http_corsdomain,
              "vhosts": args.http_vhosts, "ws_origins": args.ws_origins, "studio": args.ui, **extra}
    if args.http_api is not None:
        fields["apis"] = args.http_api
    if args.blobs_maxsize is not None:
        fields["blob_store_bytes"] = args.blobs_maxsize
    try:
        return RpcConfig(**fields)
    except ValueError as e:
        raise CliError(str(e)) from None


def _print_studio(rpc) -> None:
    """The studio's address (an IP address passes the --http.vhosts check), or why it will not work."""
    from node.rpc.studio import DIST

    if not rpc.studio:
        return
    host = "[" + rpc.host + "]" if ":" in rpc.host else ("127.0.0.1" if rpc.host in ("0.0.0.0", "") else rpc.host)
    print(f"OpenLedger Studio\n==================\nhttp://{host}:{rpc.port}/studio/\n", flush=True)
    if not (DIST / "index.html").is_file():
        print(f"warning: the studio is not built ({DIST} is missing): run `make studio`", file=sys.stderr)
    if "ol" not in rpc.apis:
        print("warning: the studio reads the ol API, which is off: add ol to --http.api", file=sys.stderr)


def _print_dev_accounts(g: genesis_mod.Genesis) -> None:
    accounts = genesis_mod.dev_accounts()
    print("\nAvailable Accounts\n==================")
    for i, (address, _) in enumerate(accounts):
        balance = g.allocations.get(bytes.fromhex(address[2:]), 0) // 10**18
        print(f"({i}) {address} ({balance} OPEN)")
    print("\nPrivate Keys\n==================")
    for i, (_, key) in enumerate(accounts):
        print(f"({i}) {key}")


def cmd_devnet(args: argparse.Namespace) -> int:
    from node.app import NodeConfig, run_node

    if args.http_api is None:
        args.http_api = DEVNET_APIS
        if not _loopback(args.http_addr):
            print(f"warning: --http.addr {args.http_addr} is not loopback, and a devnet serves {','.join(DEVNET_APIS)} "
                  "to it (narrow with --http.api)", file=sys.stderr)
    g, rpc = _devnet_genesis(args), _rpc_config(args)
    _print_dev_accounts(g)
    _print_devnet(g)
    _print_studio(rpc)
    with bridge.local_l1(args):
        settlement = bridge.settlement_config(args, devnet=g)
        with services.started(args, rpc.apis):
            run_node(NodeConfig(datadir=args.datadir, genesis=g, block_time=args.block_time, rpc=rpc,
                                txpool=_pool_config(args), settlement=settlement, **operator_config(args)))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from node.app import NodeConfig, run_node

    rpc = _rpc_config(args, ws=True, ws_port=args.ws_port)
    _open(args.datadir).close()  # a clear error before the event loop starts
    _print_studio(rpc)
    settlement = bridge.settlement_config(args)
    key = None
    if args.validator_key is not None:
        from node.keystore import KeystoreError, load_key

        try:
            key = load_key(args.validator_key, read_password(args.validator_password))
        except KeystoreError as e:
            raise CliError(f"--validator-key: {e}") from None
    with services.started(args, rpc.apis):
        run_node(NodeConfig(datadir=args.datadir, block_time=args.block_time, rpc=rpc, txpool=_pool_config(args),
                            settlement=settlement, validator_key=key, p2p_listen=args.p2p_listen,
                            bootnodes=args.bootnodes, p2p_announce=args.p2p_announce, **operator_config(args)))
    return 0


# -- chain data ------------------------------------------------------------------------------

def _open(datadir: str):
    from node.chain import Node

    try:
        return Node.open(datadir)
    except plyvel.IOError as e:
        raise CliError(f"data dir {datadir!r} is in use by another process ({e})") from None


def cmd_init(args: argparse.Namespace) -> int:
    from node.chain import Node

    g = genesis_mod.load(args.genesis)
    try:
        node = Node.init(args.datadir, g)
    except plyvel.IOError as e:
        raise CliError(f"data dir {args.datadir!r} is in use by another process ({e})") from None
    with node:
        print(f"initialised {args.datadir}: chain id {g.chain_id}, genesis {encode_hex(node.resolve_block(0).hash)}")
    return 0


def _split_blocks(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(byte offset, raw block) for each RLP item in a concatenation of blocks."""
    offset = 0
    while offset < len(data):
        try:
            _, _, length, end = rlp.codec.consume_length_prefix(data, offset)
        except rlp.DecodingError as e:
            raise CliError(f"not an RLP block at byte {offset}: {e}") from None
        end += length
        if end > len(data):
            raise CliError(f"truncated block at byte {offset}: needs {end - offset} bytes, file has {len(data) - offset}")
        yield offset, data[offset:end]
        offset = end


def cmd_export(args: argparse.Namespace) -> int:
    with _open(args.datadir) as node:
        head = node.head().block_number
        last = head if args.last is None else args.last
        if not 0 <= args.first <= last <= head:
            raise CliError(f"invalid block range {args.first}..{last}: the chain has blocks 0..{head}")
        out = pathlib.Path(args.file)
        tmp = out.with_name(out.name + ".partial")
        with open(tmp, "wb") as f, Progress() as progress:
            task = progress.add_task("exporting blocks", total=last - args.first + 1)
            for number in range(args.first, last + 1):
                f.write(rlp.encode(node.block_by_number(number)))
                progress.advance(task)
        os.replace(tmp, out)
        print(f"exported blocks {args.first}..{last} to {out}")
    return 0


def _place_pending_forks(datadir: str, blocks: list[tuple[int, bytes]]) -> None:
    """A go-ethereum genesis schedules late forks by timestamp (and the merge by difficulty);
    py-evm needs block numbers, which the block file's headers give. Store them in the data
    dir's genesis before the blocks run (see genesis.geth)."""
    from genesis import geth
    from node.chain import GENESIS_FILE

    stored = pathlib.Path(datadir) / GENESIS_FILE
    if not stored.exists():
        return  # _open names the problem
    g = genesis_mod.load(stored)
    if g.ethereum is None or not g.ethereum.pending_forks(g.forks):
        return
    try:
        headers = [geth.HeaderFields.from_block_rlp(raw) for _, raw in blocks]
    except (rlp.DecodingError, IndexError, TypeError) as e:
        raise CliError(f"undecodable block header in the file: {e}") from None
    resolved = geth.resolve_forks(g, headers)
    if resolved != g:
        tmp = stored.with_suffix(".tmp")
        tmp.write_text(genesis_mod.to_json(resolved))
        os.replace(tmp, stored)
        placed = ", ".join(f"{name} at {number}" for number, name in resolved.forks if (number, name) not in g.forks)
        print(f"fork schedule: {placed}")


def cmd_import(args: argparse.Namespace) -> int:
    from eth_utils import ValidationError

    try:
        data = pathlib.Path(args.file).read_bytes()
    except OSError as e:
        raise CliError(f"cannot read {args.file!r}: {e.strerror}") from None
    blocks = list(_split_blocks(data))
    _place_pending_forks(args.datadir, blocks)
    imported = skipped = 0
    with _open(args.datadir) as node, Progress() as progress:
        task = progress.add_task("importing blocks", total=len(blocks))
        for offset, raw in blocks:
            try:
                number = big_endian_to_int(rlp.decode(raw)[0][8])
                block = rlp.decode(raw, sedes=node.block_class_at(number))
            except (rlp.DecodingError, rlp.DeserializationError, IndexError, TypeError) as e:
                raise CliError(f"undecodable block at byte {offset}: {e}") from None
            known = node.header_by_number(block.number)
            if known is not None and known.hash == block.hash:
                skipped += 1
            else:
                try:
                    node.import_block(block)
                except ValidationError as e:
                    raise CliError(f"block {block.number} ({encode_hex(block.hash)}) rejected: {e}") from None
                imported += 1
            progress.advance(task)
        print(f"imported {imported} blocks, skipped {skipped} already present; head is {node.head().block_number}")
    return 0


# -- keys ----------------------------------------------------------------------------------

def _keystore_dir(args: argparse.Namespace) -> pathlib.Path:
    return pathlib.Path(args.keystore) if args.keystore else pathlib.Path(args.datadir) / "keystore"


def cmd_keys_new(args: argparse.Namespace) -> int:
    from node import keystore

    password = read_password(args.password_file, confirm=True)
    address, path = keystore.new_key(_keystore_dir(args), password, light_kdf=args.lightkdf)
    print(f"Public address of the key: {address}\nPath of the secret key file: {path}")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from node import keystore

    for i, (address, path) in enumerate(keystore.list_keys(_keystore_dir(args))):
        print(f"Account #{i}: {address} keystore://{path}")
    return 0
