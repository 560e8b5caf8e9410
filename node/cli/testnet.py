"""`openledger testnet`: N validators on this machine, each its own `openledger run` process.

It makes (once) a key per validator, a shared genesis naming them, a data dir per validator
with its p2p key; starts the processes on 127.0.0.1 (validator i serves JSON-RPC on BASE + i
and p2p on P2P_BASE + i, with every other validator as a boot node); writes DIR/testnet.json;
shows heights, rounds and peers live; and stops them all on Ctrl-C. Run again on the same DIR,
it resumes the same network. Each validator's command line is the one an operator uses on a
machine of its own (docs/validators.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

from node.cli.chain import _param
from node.cli.common import CliError, port, positive, seconds

MAX_VALIDATORS = 64
PASSWORD_FILE = "password"
GENESIS_FILE = "genesis.json"
STATE_FILE = "testnet.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("testnet", help="run N validators on this machine",
                              description="Generate keys and a shared genesis, start N validator processes on "
                                          "127.0.0.1, show their heights, rounds and peers; Ctrl-C stops them all.")
    p.add_argument("--validators", type=positive, default=4, metavar="N", help="how many validators (default 4)")
    p.add_argument("--datadir", required=True, metavar="DIR", help="where keys, genesis and data dirs go")
    p.add_argument("--http.port", dest="http_port", type=port, default=8545, metavar="BASE",
                   help="validator i serves JSON-RPC on BASE + i (default 8545)")
    p.add_argument("--p2p.port", dest="p2p_port", type=port, default=30300, metavar="BASE",
                   help="validator i listens for peers on BASE + i (default 30300)")
    p.add_argument("--block-time", dest="block_time", type=seconds, default=1.0, metavar="S",
                   help="seconds between blocks (default 1)")
    p.add_argument("--once", action="store_true", help="print the table once the network is up and exit "
                                                        "(stopping the validators)")
    p.add_argument("--gpu", action="store_true",
                   help="register the validators as GPU inference validators, so their services may serve paid "
                        "jobs (docs/services.md); a new network only")
    p.add_argument("--param", dest="params", type=_param, action="append", default=[], metavar="NAME=VALUE",
                   help="override a genesis parameter, as `devnet --param` (repeatable; a new network only)")
    p.set_defaults(func=cmd_testnet)


@dataclasses.dataclass
class Member:
    index: int
    address: str
    key_file: pathlib.Path
    datadir: pathlib.Path
    rpc: str
    p2p: str
    pid: int | None = None


def _setup(root: pathlib.Path, n: int, http_ports: list[int], p2p_ports: list[int], gpu: bool = False,
           params: dict[str, str] | None = None) -> list[Member]:
    """Keys, genesis and data dirs, made once; a later run on the same DIR reuses them.
    Validator i serves JSON-RPC on http_ports[i] and p2p on p2p_ports[i]. A new genesis has the
    validators GPU inference validators with `gpu`, and the parameter overrides `params`."""
    import genesis as genesis_mod
    from libp2p.peer.id import ID

    from node.chain import Node
    from node.keystore import new_key
    from node.p2p import load_or_create_key

    root.mkdir(parents=True, exist_ok=True)
    password = root / PASSWORD_FILE
    if not password.exists():
        password.write_text(os.urandom(16).hex() + "\n")
        password.chmod(0o600)
    members = []
    for i in range(n):
        keys = root / f"v{i}" / "keystore"
        existing = sorted(keys.glob("UTC--*")) if keys.is_dir() else []
        key_file = existing[0] if existing else new_key(keys, password.read_text().splitlines()[0], light_kdf=True)[1]
        address = "0x" + json.loads(key_file.read_text())["address"]
        members.append(Member(i, address, key_file, root / f"v{i}",
                              f"http://127.0.0.1:{http_ports[i]}", ""))
    spec = root / GENESIS_FILE
    if spec.exists():
        g = genesis_mod.load(spec)
        if [v.address for v in g.validators] != [bytes.fromhex(m.address[2:]) for m in members]:
            raise CliError(f"{spec} names other validators than the keys in {root}: use a fresh --datadir")
    else:
        g = testnet_genesis([bytes.fromhex(m.address[2:]) for m in members], gpu)
        try:
            g = genesis_mod.with_params(g, params or {})
        except genesis_mod.GenesisError as e:
            raise CliError(str(e)) from None
        spec.write_text(genesis_mod.to_json(g))
    for m in members:
        Node.init(m.datadir, g).close()
        peer = ID.from_pubkey(load_or_create_key(m.datadir).public_key)
        m.p2p = f"/ip4/127.0.0.1/tcp/{p2p_ports[m.index]}/p2p/{peer}"
    return members


def testnet_genesis(addresses: list[bytes], gpu: bool = False):
    """The devnet's funded accounts and parameters with these validators (equal power), each with
    the GPU inference capability if `gpu` (staked at genesis, they cannot register it later). The
    VM side's N-validator builder (stake in the Staking module) replaces this once it lands."""
    import genesis as genesis_mod
    from vm.modules.staking import CAP_GPU_INFERENCE

    builder = getattr(genesis_mod, "testnet", None)
    if builder is not None:
        g = builder(addresses)
    else:
        g = dataclasses.replace(genesis_mod.devnet(), validators=tuple(genesis_mod.Validator(a, 1) for a in addresses))
    if gpu:
        g = dataclasses.replace(g, validators=tuple(dataclasses.replace(v, capabilities=CAP_GPU_INFERENCE)
                                                    for v in g.validators))
    return g


def _command(m: Member, members: list[Member], root: pathlib.Path, block_time: float) -> list[str]:
    script = pathlib.Path(sys.executable).with_name("openledger")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "node.cli"]
    others = ",".join(o.p2p for o in members if o is not m)
    return head + ["run", "--datadir", str(m.datadir), "--http.port", m.rpc.rsplit(":", 1)[1],
                   "--http.api", "eth,net,web3,ol,txpool", "--validator-key", str(m.key_file),
                   "--validator-password", str(root / PASSWORD_FILE), "--p2p.listen", m.p2p.split("/p2p/")[0],
                   "--bootnodes", others, "--block-time", str(block_time)]


def _rpc(url: str, method: str, timeout: float = 1.0):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read()).get("result")


def status(m: Member) -> dict:
    """Height, round and peers of one validator (or what failed)."""
    try:
        state = _rpc(m.rpc, "ol_consensusState") or {}
        return {"height": int(_rpc(m.rpc, "eth_blockNumber"), 16), "round": state.get("round"),
                "step": state.get("step"), "peers": int(_rpc(m.rpc, "net_peerCount"), 16)}
    except (OSError, ValueError, TypeError, AttributeError) as e:
        return {"error": type(e).__name__}


def _table(members: list[Member], procs: list[subprocess.Popen]):
    from rich.table import Table

    table = Table(title="openledger testnet")
    for column in ("#", "address", "RPC", "pid", "height", "round", "step", "peers"):
        table.add_column(column)
    for m, proc in zip(members, procs):
        s = status(m) if proc.poll() is None else {"error": f"exited {proc.returncode}"}
        table.add_row(str(m.index), m.address[:10] + "…", m.rpc, str(m.pid), str(s.get("height", s.get("error"))),
                      str(s.get("round", "")), str(s.get("step", "")), str(s.get("peers", "")))
    return table


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def cmd_testnet(args: argparse.Namespace) -> int:
    if args.validators > MAX_VALIDATORS:
        raise CliError(f"invalid --validators {args.validators}: at most {MAX_VALIDATORS} on one machine")
    root = pathlib.Path(args.datadir)
    signal.signal(signal.SIGTERM, _interrupt)  # stop the validators on SIGTERM as on Ctrl-C
    n = args.validators
    if args.http_port + n - 1 > 65535 or args.p2p_port + n - 1 > 65535:
        raise CliError(f"--http.port {args.http_port} / --p2p.port {args.p2p_port} leave no room for {n} validators")
    members = _setup(root, n, [args.http_port + i for i in range(n)], [args.p2p_port + i for i in range(n)],
                     args.gpu, dict(args.params))
    procs: list[subprocess.Popen] = []
    try:
        for m in members:
            log = open(m.datadir / "node.log", "ab")
            procs.append(subprocess.Popen(_command(m, members, root, args.block_time), stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
            m.pid = procs[-1].pid
        (root / STATE_FILE).write_text(json.dumps([
            {"index": m.index, "address": m.address, "rpc": m.rpc, "p2p": m.p2p, "pid": m.pid,
             "datadir": str(m.datadir)} for m in members], indent=2) + "\n")
        print(f"{len(members)} validators starting; {root / STATE_FILE} lists them; logs in DIR/v<i>/node.log",
              flush=True)
        if args.once:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and any("error" in status(m) for m in members):
                time.sleep(0.5)
            from rich.console import Console

            Console().print(_table(members, procs))
            return 0
        from rich.live import Live

        with Live(_table(members, procs), refresh_per_second=2) as live:
            while True:
                time.sleep(1)
                live.update(_table(members, procs))
    except KeyboardInterrupt:
        print("stopping the validators", flush=True)
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
