"""`openledger bridge deploy|deposit|force|withdraw|prove|finalize|status` and `openledger derive`: the
L1 side of settlement from the command line (docs/settlement.md), and the `--l1 ...` flags that
`devnet` and `run` take to post batches and output roots and to relay deposits."""
from __future__ import annotations

import argparse
import contextlib
import pathlib
import shutil
import subprocess
import time
from collections.abc import Iterator

import plyvel

import genesis as genesis_mod
from node.cli.common import CliError, positive
from node.cli.native import _add_client_flags, _address, _amount, _client, _hash32

DEPLOYMENT_FILE = "l1-deployment.json"
"""In the node's data dir: where `devnet --l1` keeps the deployment it made (and reuses)."""
DEVNET_DEPLOYER, DEVNET_BATCHER = 0, 1  # anvil's dev accounts: the same keys as ours
DEVNET_FINALIZATION_S = 10
ANVIL_BIN = pathlib.Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "anvil"
LOCAL_L1_PORT, LOCAL_L1_CHAIN_ID = 8546, 31337
LOCAL_L1_STATE = "l1-anvil-state.json"  # in the data dir: anvil's --state


def _key(text: str) -> str:
    """A 0x private key, or a file whose first line is one."""
    t = text.strip()
    if not t.startswith("0x"):
        try:
            t = pathlib.Path(t).read_text().splitlines()[0].strip()
        except (OSError, IndexError):
            raise argparse.ArgumentTypeError(f"invalid key {text!r}: want 0x and 64 hex digits, or a file "
                                             "whose first line is one") from None
    try:
        if len(bytes.fromhex(t[2:])) == 32 and t.startswith("0x"):
            return t
    except ValueError:
        pass
    raise argparse.ArgumentTypeError("invalid key: want 0x and 64 hex digits (the value is not echoed)")


def _raw_tx(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text[2:]) if text.startswith("0x") else b""
    except ValueError:
        raw = b""
    if not raw:
        raise argparse.ArgumentTypeError(f"invalid transaction {text[:20]!r}: want 0x and the signed transaction's hex")
    return raw


def _dev_key(n: int) -> str:
    accounts = genesis_mod.dev_accounts()
    if not 0 <= n < len(accounts):
        raise CliError(f"--l1.dev-account {n} out of range 0..{len(accounts) - 1}")
    return accounts[n][1]


def _add_l1_signer(p: argparse.ArgumentParser) -> None:
    p.add_argument("--l1.key", dest="l1_key", type=_key, metavar="KEY|FILE", help="L1 signing key (0x hex or a file)")
    p.add_argument("--l1.dev-account", dest="l1_dev_account", type=int, metavar="N",
                   help="sign on the L1 with dev account N (anvil's public keys)")


def _l1(args: argparse.Namespace, signing: bool = True):
    from node.settlement import L1

    key = args.l1_key if getattr(args, "l1_key", None) else (
        _dev_key(args.l1_dev_account) if getattr(args, "l1_dev_account", None) is not None else None)
    if signing and key is None:
        raise CliError("no L1 signing key: pass --l1.key KEY|FILE or --l1.dev-account N")
    return L1(args.l1, key)


def _deployment(path: str):
    from node.settlement import Deployment, L1Error

    try:
        return Deployment.load(path)
    except L1Error as e:
        raise CliError(str(e)) from None


def _add_common(p: argparse.ArgumentParser, signing: bool = True) -> None:
    p.add_argument("--l1", required=True, metavar="URL", help="L1 JSON-RPC URL")
    p.add_argument("--deployment", required=True, metavar="FILE",
                   help=f"the L1 deployment file (`bridge deploy --out`; devnet: DATADIR/{DEPLOYMENT_FILE})")
    if signing:
        _add_l1_signer(p)


def register(subparsers: argparse._SubParsersAction) -> None:
    bridge = subparsers.add_parser("bridge", help="the OPEN bridge to the L1 and its contracts",
                                   description="Deploy the L1 contracts, move OPEN between L1 and L2.")
    sub = bridge.add_subparsers(dest="bridge_command", metavar="COMMAND", required=True)

    p = sub.add_parser("deploy", help="deploy the L1 contracts for an L2 data dir",
                       description="Deploy L1 OPEN, BatchInbox, OutputOracle and L1Bridge for the chain in DIR.")
    p.add_argument("--l1", required=True, metavar="URL", help="L1 JSON-RPC URL")
    _add_l1_signer(p)
    p.add_argument("--datadir", required=True, metavar="DIR", help="the L2 data dir (its genesis and validators)")
    p.add_argument("--batcher", type=_address, required=True, metavar="ADDR", help="L1 account allowed to post batches")
    p.add_argument("--finalization-period", type=positive, default=7 * 24 * 3600, metavar="S",
                   help="seconds from proving a withdrawal to claiming it (default a week, as OP Stack)")
    p.add_argument("--sequencing-window", type=positive, default=3600, metavar="N",
                   help="L1 blocks within which the L2 must relay a deposit (default 3600, as OP Stack)")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the deployment file")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("deposit", help="lock L1 OPEN for an L2 account",
                       description="Approve and lock AMOUNT L1 OPEN in the L1 bridge for --to on the L2.")
    p.add_argument("amount", type=_amount, metavar="AMOUNT", help="wei or xOPEN")
    p.add_argument("--to", type=_address, required=True, metavar="ADDR", help="L2 recipient")
    _add_common(p)
    p.set_defaults(func=cmd_deposit)

    p = sub.add_parser("force", help="send a signed L2 transaction through the L1 (forced inclusion)",
                       description="Queue RAW_TX (a signed L2 transaction, as eth_sendRawTransaction takes it) "
                                   "on the L1 bridge: the L2 must include it after the confirmations, or its "
                                   "chain no longer derives from the L1.")
    p.add_argument("raw", type=_raw_tx, metavar="RAW_TX", help="0x-hex signed L2 transaction")
    _add_common(p)
    p.set_defaults(func=cmd_force)

    p = sub.add_parser("withdraw", help="start a withdrawal of L2 OPEN to the L1",
                       description="Send AMOUNT OPEN to the L2 bridge for --to on the L1 (then prove and finalize).")
    p.add_argument("amount", type=_amount, metavar="AMOUNT", help="wei or xOPEN")
    p.add_argument("--to", type=_address, required=True, metavar="ADDR", help="L1 recipient")
    _add_client_flags(p)
    p.set_defaults(func=cmd_withdraw)

    for name, helptext, func in (("prove", "prove an L2 withdrawal on the L1 against a posted output root", cmd_prove),
                                 ("finalize", "claim a proven withdrawal once the finalization period passed",
                                  cmd_finalize)):
        p = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        p.add_argument("tx", type=_hash32, metavar="L2_TX", help="hash of the L2 withdraw transaction")
        _add_common(p)
        p.add_argument("--rpc", default="http://127.0.0.1:8545", metavar="URL", help="L2 node JSON-RPC URL")
        p.set_defaults(func=func)

    p = sub.add_parser("status", help="what the L1 holds of this L2",
                       description="Posted blocks, latest output root, deposits and the bridge's balance; with "
                                   "--rpc also the L2 escrow, which equals the L1 OPEN outside the bridge once "
                                   "every deposit and withdrawal is through.")
    _add_common(p, signing=False)
    p.add_argument("--rpc", metavar="URL", help="L2 node JSON-RPC URL (adds the L2 side)")
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser("derive", help="rebuild the L2 chain from L1 data alone",
                              description="Import into DIR every L2 block posted to the L1 inbox (op-node's "
                                          "derivation): the same block hashes and state as the validators'.")
    _add_common(p, signing=False)
    p.add_argument("--datadir", required=True, metavar="DIR", help="data dir to fill (created from --genesis if new)")
    p.add_argument("--genesis", metavar="FILE", help="the L2 genesis (needed for a new data dir)")
    p.add_argument("--follow", type=float, default=None, metavar="S",
                   help="keep following the L1: look for new batches every S seconds until interrupted")
    p.set_defaults(func=cmd_derive)


def _settlement_errors():
    from node.sdk import SdkError
    from node.settlement import L1Error

    return L1Error, SdkError


@contextlib.contextmanager
def _l1_errors() -> Iterator[None]:
    try:
        yield
    except _settlement_errors() as e:
        raise CliError(str(e)) from None


def cmd_deploy(args: argparse.Namespace) -> int:
    from node.chain import Node
    from node.settlement import deploy_all

    with Node.open(args.datadir) as node:
        g, genesis_hash = node.genesis, node.header_by_number(0).hash
    with _l1_errors():
        d = deploy_all(_l1(args), l2_chain_id=g.chain_id, l2_genesis_hash=genesis_hash,
                       validators=[(v.address, v.power) for v in g.validators], batcher=args.batcher,
                       escrow=g.accounts[genesis_mod.L2_BRIDGE_ADDRESS].balance
                       if genesis_mod.L2_BRIDGE_ADDRESS in g.accounts else 0,
                       finalization_period=args.finalization_period, sequencing_window=args.sequencing_window)
    d.save(args.out)
    _print_deployment(d)
    return 0


def _print_deployment(d) -> None:
    print(f"L1 chain {d.l1_chain_id}: L1 OPEN {d.token}  OutputOracle {d.oracle}  BatchInbox {d.inbox}  "
          f"L1Bridge {d.bridge}  (L2 bridge 0x{genesis_mod.L2_BRIDGE_ADDRESS.hex()})", flush=True)


def cmd_deposit(args: argparse.Namespace) -> int:
    from node.settlement.withdrawals import deposit

    with _l1_errors():
        receipt = deposit(_l1(args), _deployment(args.deployment), args.to, args.amount)
    print(f"deposit locked on the L1 in tx {receipt['transactionHash']} (block {int(receipt['blockNumber'], 16)}); "
          "the L2 relays it after the confirmations")
    return 0


def cmd_force(args: argparse.Namespace) -> int:
    from eth_utils import keccak

    from node.settlement.withdrawals import force

    with _l1_errors():
        receipt = force(_l1(args), _deployment(args.deployment), args.raw)
    print(f"queued on the L1 in tx {receipt['transactionHash']} (block {int(receipt['blockNumber'], 16)}); "
          f"the L2 includes it after the confirmations as 0x{keccak(args.raw).hex()}")
    return 0


def cmd_withdraw(args: argparse.Namespace) -> int:
    from node.cli.native import _send

    receipt = _send(_client(args), "L2Bridge", "withdraw", args.to, value=args.amount)
    print(f"prove it once an output root covers block {int(receipt['blockNumber'], 16)}: "
          f"openledger bridge prove {receipt['transactionHash']} ...")
    return 0


def _withdrawal(args):
    from node.sdk import Client
    from node.settlement.withdrawals import find

    l2 = Client(args.rpc)
    return l2, find(l2, "0x" + args.tx.hex())


def cmd_prove(args: argparse.Namespace) -> int:
    from node.settlement.withdrawals import prove

    with _l1_errors():
        l2, w = _withdrawal(args)
        d = _deployment(args.deployment)
        receipt = prove(_l1(args), d, l2, w)
    print(f"withdrawal 0x{w.hash.hex()} proven in L1 tx {receipt['transactionHash']}; finalize it in "
          f"{d.finalization_period} s")
    return 0


def cmd_finalize(args: argparse.Namespace) -> int:
    from node.settlement.withdrawals import finalize

    with _l1_errors():
        _, w = _withdrawal(args)
        receipt = finalize(_l1(args), _deployment(args.deployment), w)
    print(f"withdrawal of {w.amount} wei to {w.to} finalized in L1 tx {receipt['transactionHash']}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _l1_errors():
        d = _deployment(args.deployment)
        token, oracle, inbox, bridge = d.contracts(_l1(args, signing=False))
        print(f"L2 blocks posted: 1..{inbox.call('nextBlock') - 1} in {inbox.call('batchCount')} batches")
        print(f"output roots: {oracle.call('outputCount')}, latest of L2 block {oracle.call('latestBlockNumber')}")
        locked = token.call("balanceOf", bridge.address)
        print(f"deposits: {bridge.call('depositCount')}; forced transactions: {bridge.call('forcedCount')}; "
              f"OPEN locked in the L1 bridge: {locked} wei (outside it: {genesis_mod.TOTAL_SUPPLY - locked})")
        if args.rpc:
            from node.sdk import Client

            l2 = Client(args.rpc)
            escrow = int(l2.rpc("eth_getBalance", "0x" + genesis_mod.L2_BRIDGE_ADDRESS.hex(), "latest"), 16)
            print(f"L2: deposits relayed {l2.call('L2Bridge', 'nextDepositId')}, forced transactions "
                  f"{l2.call('L2Bridge', 'nextForcedId')}, withdrawals "
                  f"{l2.call('L2Bridge', 'withdrawalCount')}; escrow {escrow} wei")
    return 0


def cmd_derive(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from node.chain import GENESIS_FILE, Node
    from node.settlement.derive import DerivationError, derive

    d = _deployment(args.deployment)
    if args.genesis is not None:
        node = Node.init(args.datadir, genesis_mod.load(args.genesis))
    elif (pathlib.Path(args.datadir) / GENESIS_FILE).exists():
        node = Node.open(args.datadir)
    else:
        raise CliError(f"data dir {args.datadir!r} is new: pass --genesis FILE (the L2's genesis)")
    with node, _l1_errors():
        with Progress() as progress:
            task = progress.add_task("deriving L2 blocks from the L1", total=None)
            try:
                report = derive(node, _l1(args, signing=False), d, on_block=lambda _: progress.advance(task))
            except DerivationError as e:
                raise CliError(f"derivation stopped: {e}") from None
        print(f"derived from {report.batches} batches: imported {report.imported} blocks, skipped {report.skipped}; "
              f"head {node.head().block_number} 0x{node.head().hash.hex()}", flush=True)
        print(report.waiting, flush=True)
        waiting = report.waiting
        while args.follow:  # a withheld batch: derivation waits at the last posted block, and says so
            time.sleep(args.follow)
            try:
                report = derive(node, _l1(args, signing=False), d)
            except DerivationError as e:
                raise CliError(f"derivation stopped: {e}") from None
            if report.imported:
                print(f"imported {report.imported} blocks; head {node.head().block_number} "
                      f"0x{node.head().hash.hex()}", flush=True)
            if report.waiting != waiting:
                print(report.waiting, flush=True)
                waiting = report.waiting
    return 0


# -- `devnet --l1` and `run --l1` -----------------------------------------------------------------

def add_l1_flags(p: argparse.ArgumentParser, devnet: bool) -> None:
    p.add_argument("--l1", metavar="URL" + ("|anvil" if devnet else ""),
                   help="settle on this L1: post batches and output roots, relay deposits"
                        + (" ('anvil' starts one from node_modules on port 8546 and deploys the contracts)"
                           if devnet else ""))
    p.add_argument("--l1.deployment", dest="l1_deployment", metavar="FILE",
                   help="the L1 deployment file" + (f" (devnet default: DATADIR/{DEPLOYMENT_FILE}, deployed "
                                                    "if missing)" if devnet else " (`bridge deploy --out`)"))
    p.add_argument("--l1.batcher-key", dest="l1_batcher_key", type=_key, metavar="KEY|FILE",
                   help="L1 key that posts batches and output roots"
                        + (" (devnet: L1 dev account 1)" if devnet else "; without it the node signs output "
                           "roots with its validator key and gossips them to the proposer, posting nothing"))
    p.add_argument("--l1.validator-key", dest="l1_validator_key", type=_key, metavar="KEY|FILE",
                   help="the validator's key: signs output roots, relays deposits"
                        + (" (devnet: the dev validator's)" if devnet else ""))
    p.add_argument("--l1.output-interval", dest="l1_output_interval", type=positive, default=10, metavar="K",
                   help="an output root every K L2 blocks (default 10)")
    p.add_argument("--l1.confirmations", dest="l1_confirmations", type=int, default=2, metavar="F",
                   help="L1 blocks on top of a deposit before it is relayed (default 2)")
    if devnet:
        p.add_argument("--l1.finalization-period", dest="l1_finalization_period", type=positive,
                       default=DEVNET_FINALIZATION_S, metavar="S",
                       help=f"withdrawal finalization period of the contracts a devnet deploys (default "
                            f"{DEVNET_FINALIZATION_S} s; `bridge deploy` defaults to a week)")
    p.add_argument("--l1.batch-interval", dest="l1_batch_interval", type=float, default=10.0, metavar="S",
                   help="post a batch once its oldest block is S seconds old or it holds 100 blocks (default 10)")


def l1_wanted(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "l1", None))


def devnet_bridge_escrow(args: argparse.Namespace) -> int:
    """The devnet's L2 escrow: funded only for a devnet that settles (a plain devnet is as before)."""
    return genesis_mod.DEVNET_BRIDGE_ESCROW if l1_wanted(args) else 0


@contextlib.contextmanager
def local_l1(args: argparse.Namespace) -> Iterator[None]:
    """`--l1 anvil`: an anvil from node_modules for the life of the devnet, its state kept in the
    data dir (so a restarted devnet finds its contracts and batches again)."""
    if args.l1 != "anvil":
        yield
        return
    if not ANVIL_BIN.exists() or shutil.which("node") is None:
        raise CliError("--l1 anvil needs anvil from npm: run `npm install` (make test does)")
    pathlib.Path(args.datadir).mkdir(parents=True, exist_ok=True)
    state = pathlib.Path(args.datadir) / LOCAL_L1_STATE
    proc = subprocess.Popen([str(ANVIL_BIN), "--port", str(LOCAL_L1_PORT), "--chain-id", str(LOCAL_L1_CHAIN_ID),
                             "--state", str(state), "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    args.l1 = f"http://127.0.0.1:{LOCAL_L1_PORT}"
    try:
        from node.settlement import L1, L1Error

        deadline = time.monotonic() + 30
        while True:
            try:
                L1(args.l1).block_number()
                break
            except L1Error:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise CliError(f"anvil did not start on port {LOCAL_L1_PORT} (is the port taken?)") from None
                time.sleep(0.2)
        print(f"L1 (anvil, chain {LOCAL_L1_CHAIN_ID}): {args.l1}", flush=True)
        yield
    finally:
        proc.terminate()
        proc.wait()


def settlement_config(args: argparse.Namespace, devnet: genesis_mod.Genesis | None = None):
    """The node's SettlementConfig from the `--l1` flags, or None without --l1; on a devnet (its
    genesis given) the contracts are deployed on first use (DATADIR/l1-deployment.json)."""
    if not l1_wanted(args):
        return None
    from node.chain import Node
    from node.settlement import deploy_all
    from node.settlement.service import SettlementConfig

    devnet_keys = devnet is not None
    batcher = args.l1_batcher_key or (_dev_key(DEVNET_BATCHER) if devnet_keys else None)
    validator = args.l1_validator_key or (genesis_mod.dev_validator()[1] if devnet_keys else None)
    if batcher is not None and validator is None:
        raise CliError("--l1.batcher-key needs --l1.validator-key (the proposer's key, which relays deposits)")
    path = args.l1_deployment or (str(pathlib.Path(args.datadir) / DEPLOYMENT_FILE) if devnet_keys else None)
    if path is None:
        raise CliError("--l1 needs --l1.deployment FILE (written by `openledger bridge deploy`)")
    with _l1_errors():
        if devnet_keys and not pathlib.Path(path).exists():
            from node.settlement import L1
            try:
                with Node.init(args.datadir, devnet) as node:  # the contracts name its genesis hash
                    g, genesis_hash = node.genesis, node.header_by_number(0).hash
            except plyvel.IOError as e:
                raise CliError(f"data dir {args.datadir!r} is in use by another process ({e})") from None
            batcher_address = L1(args.l1, batcher).address
            d = deploy_all(L1(args.l1, _dev_key(DEVNET_DEPLOYER)), l2_chain_id=g.chain_id,
                           l2_genesis_hash=genesis_hash, validators=[(v.address, v.power) for v in g.validators],
                           batcher=batcher_address, escrow=devnet_bridge_escrow(args),
                           finalization_period=args.l1_finalization_period)
            d.save(path)
        d = _deployment(path)
        _print_deployment(d)
        if batcher is None:
            print("L1: signing output roots for the proposer; posting nothing (no --l1.batcher-key)", flush=True)
        try:
            return SettlementConfig(args.l1, d, batcher, (validator,) if validator else (),
                                    output_interval=args.l1_output_interval, confirmations=args.l1_confirmations,
                                    batch_interval_s=args.l1_batch_interval)
        except ValueError as e:
            raise CliError(str(e)) from None
