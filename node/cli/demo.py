"""`openledger demo` (`make demo`): the whole AI data economy on a fresh devnet in a few minutes on
a CPU, every step an ordinary `openledger` command (printed as it runs, so it can be typed again):

a devnet with the validator services (inference, verification, attribution); a Datanet built
from a small bundled text set by three contributor accounts, curated and published; a tiny LoRA
adapter trained on it with its attribution index, committed and registered; three GPU validators
staked; paid inferences sent together (the inference service serves them in one batch), each
served, verified, attributed and paid; the Datanet owner prices the version's data use and a
builder hires a training run on it (`train request --wait`: a validator's training service claims,
trains and submits it, the others replay segments and attest, the contributors are paid the data-use
fee); then a table of who earned what and why, and the OPEN supply identity audited over the whole
state. The devnet keeps running afterwards, for a wallet or more
`openledger` commands; `make demo-stop` (or the printed kill) stops it.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

from node.cli.common import CliError, port as _port

OPEN = 10**18
CONTRIBUTORS = {  # dev account -> the rows it contributes (first-hour rows: their attribution has scores)
    1: ["The river Thames flows through London and reaches the North Sea.",
        "Bread rises because yeast turns sugar into gas.",
        "A triangle has three sides and its angles add up to 180 degrees.",
        "The heart pumps blood through the arteries to every organ."],
    2: ["Paris is the capital of France and sits on the Seine.",
        "Bees carry pollen from flower to flower.",
        "Ice melts at zero degrees Celsius at sea level.",
        "The moon orbits the Earth about once a month."],
    8: ["Rome is the capital of Italy and sits on the Tiber.",
        "Honey is made by bees from the nectar of flowers.",
        "Water boils at one hundred degrees Celsius at sea level.",
        "The Earth orbits the Sun about once a year."],
}
CURATOR, MODEL_OWNER, USER = 0, 3, 7
VALIDATORS = (4, 5, 6)
PROMPTS = ("The capital of France is", "Bees carry", "Ice melts at")
BUILDER = USER
DATA_USE_PRICE, TRAINING_FEE = "0.3OPEN", "2OPEN"  # 0.1 OPEN a contributor: each gave 4 of the 12 rows


class Demo:
    def __init__(self, args: argparse.Namespace, console) -> None:
        self.args, self.console = args, console
        self.dir = pathlib.Path(args.datadir).resolve()
        self.url = f"http://127.0.0.1:{args.port}"
        self.log = self.dir / "demo.log"

    # -- helpers ---------------------------------------------------------------------------------
    def cli(self, *argv: str, follow: str | None = None) -> str:
        """One `openledger` command, as a user types it (shown), its output kept in demo.log; the
        lines starting with `follow` are shown as they come (a command that waits shows progress)."""
        shown = "openledger " + " ".join(a if " " not in a else repr(a) for a in argv)
        self.console.print(f"  [dim]$ {shown}[/dim]")
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen([sys.executable, "-m", "node.cli", *argv, "--rpc", self.url], cwd=self.dir,
                                    stdout=subprocess.PIPE, stderr=err, text=True)
            out = []
            for line in proc.stdout:
                out.append(line)
                if follow and line.startswith(follow):
                    self.console.print(f"  {line.rstrip()}", markup=False, highlight=False)
            proc.wait()
            err.seek(0)
            stdout, stderr = "".join(out), err.read()
        with open(self.log, "a") as f:
            f.write(f"$ {shown}\n{stdout}{stderr}\n")
        if proc.returncode != 0:
            raise CliError(f"`{shown}` failed:\n{(stdout + stderr)[-2000:]}")
        return stdout

    def client(self, account: int | None = None):
        import genesis
        from node.sdk import Client

        return Client(self.url, None if account is None else genesis.dev_accounts()[account][1])

    # -- the steps -------------------------------------------------------------------------------
    def start_devnet(self) -> None:
        from node.sdk import SdkError

        try:
            self.client().rpc("eth_blockNumber")
            raise CliError(f"a node already answers at {self.url}: stop it (`make demo-stop`) or pass --port")
        except SdkError:
            pass
        if (self.dir / "chain").exists() or (self.dir / "devnet.pid").exists():
            raise CliError(f"{self.dir} holds an earlier demo: `make demo-stop` removes it (or pass --datadir)")
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "node.cli", "devnet", "--datadir", str(self.dir / "chain"),
               "--http.port", str(self.args.port), "--block-time", "1",  # a verifier waits for blocks
               "--serve-inference", "--verify-inference", "--attribute", "--attribution-run", str(self.dir / "run"),
               "--serve-training", "--verify-training",
               *(a for v in VALIDATORS for a in ("--service-account", str(v))),
               *getattr(self.args, "devnet_flags", ())]  # what a benchmark adds (bench/bench_services.py)
        self.console.print("  [dim]$ openledger " + " ".join(cmd[3:]) + "[/dim]")
        with open(self.dir / "devnet.log", "ab") as out:
            proc = subprocess.Popen(cmd, cwd=self.dir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)  # it outlives the demo
        (self.dir / "devnet.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + 120
        while True:
            try:
                self.client().rpc("eth_blockNumber")
                return
            except SdkError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise CliError(f"the devnet did not start; see {self.dir / 'devnet.log'}") from None
                time.sleep(0.3)

    def datanet(self) -> None:
        self.cli("datanet", "create", "--name", "facts", "--description", "Short facts, one a row",
                 "--license", "CC-BY-4.0", "--dev-account", str(CURATOR))

    def contribute(self) -> None:
        for account, rows in CONTRIBUTORS.items():
            path = self.dir / f"rows-{account}.jsonl"
            path.write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
            self.cli("datanet", "import", "1", str(path), "--column", "text", "--dev-account", str(account))

    def curate(self) -> None:
        self.cli("datanet", "curate", "1", "accept", "--all-pending", "--score", "80", "--dev-account", str(CURATOR))
        self.cli("datanet", "publish", "1", "--dev-account", str(CURATOR))

    def base_model(self) -> None:
        self.cli("model", "register-base", "tiny-llama", "--dev-account", str(MODEL_OWNER))

    def train(self) -> None:
        self.cli("train", "init", "run.toml")
        config = self.dir / "run.toml"  # a random tiny model needs more steps to learn anything
        config.write_text(config.read_text().replace("epochs = 1", "epochs = 8").replace("lr = 0.001", "lr = 0.02")
                          .replace("batch_size = 8", "batch_size = 4"))
        self.cli("train", "--datanet", "1:1", "--base", "tiny-llama", "--config", "run.toml", "--out", "run",
                 "--commit", "--base-model-id", "1", "--price", "1OPEN", "--dev-account", str(MODEL_OWNER))

    def stake(self) -> None:
        for v in VALIDATORS:
            self.cli("stake", "register", "--amount", "200OPEN", "--gpu", "--dev-account", str(v))

    def infer(self) -> None:
        """Send the prompts together (one batch for the inference service), then follow each job."""
        user = self.client(USER)
        jobs = []
        for prompt in PROMPTS:
            self.console.print(f"  [dim]$ openledger infer --adapter 1 --prompt {prompt!r} --dev-account {USER}[/dim]")
            jobs.append(user.request_inference(1, prompt)["jobId"])
        self.first_job_block = user.inference(jobs[0])["requestBlock"]
        outcomes, deadline = {}, time.monotonic() + 420
        while len(outcomes) < len(jobs):
            for job in jobs:
                if job not in outcomes and (o := user.inference(job))["done"]:
                    outcomes[job] = o
            if time.monotonic() > deadline:
                raise CliError(f"jobs {sorted(set(jobs) - set(outcomes))} not paid out within 7 minutes; "
                               f"see {self.dir / 'devnet.log'}")
            time.sleep(0.5)
        for o in (outcomes[j] for j in jobs):
            self.console.print(f"  job {o['jobId']}: [bold]{o['output']!r}[/bold] - {o['verification']}, "
                               f"{len(o['contributors'])} rows credited, paid in block {o['payoutBlock']} "
                               f"({o['payoutBlock'] - o['requestBlock']} blocks after the request)")
        self.outcomes = [outcomes[j] for j in jobs]

    def price(self) -> None:
        self.cli("datanet", "price", "1", "1", DATA_USE_PRICE, "--dev-account", str(CURATOR))

    def hire(self) -> None:
        """A builder hires a run on version 1; the devnet's training services train and verify it."""
        self.cli("train", "init", "hire.toml")
        config = self.dir / "hire.toml"  # 6 steps, a checkpoint every 2: three segments to replay
        config.write_text(config.read_text().replace("epochs = 1", "epochs = 2").replace("lr = 0.001", "lr = 0.02")
                          .replace("batch_size = 8", "batch_size = 4").replace("checkpoint_every = 10", "checkpoint_every = 2"))
        out = self.cli("train", "request", "--datanet", "1:1", "--base", "tiny-llama", "--config", "hire.toml",
                       "--max-fee", TRAINING_FEE, "--wait", "--dev-account", str(BUILDER), follow="training job")
        report = json.loads(out[out.index("\n{") + 1:])
        split = report["split"]
        for a in report["attestations"]:
            self.console.print(f"  {a['validator']} replayed segments {a['segments']}: "
                               f"{'valid' if a['valid'] else 'invalid'} ({a['verdict']['reason']})")
        self.console.print(f"  run {report['run']['id']} registered for the builder; paid: data use "
                           f"{split['dataUseFee'] / OPEN:.4f} to {len(report['dataUse'])} contributors, trainer "
                           f"{split['trainerFee'] / OPEN:.4f}, verifiers {split['verifierFee'] / OPEN:.4f}")

    def earnings(self):
        """A table: who earned what, by source, from the first paid inference on; and why."""
        from rich.table import Table

        import genesis
        from node.rewards import SOURCES

        dev = genesis.dev_accounts()
        treasury = self.client().ol("getParams")["params"]["treasury"]
        who = [(dev[a][0], f"contributor (dev {a}, {len(rows)} rows)") for a, rows in CONTRIBUTORS.items()]
        who += [(dev[MODEL_OWNER][0], f"model owner (dev {MODEL_OWNER})")]
        who += [(dev[v][0], f"GPU validator (dev {v})") for v in VALIDATORS]
        who += [(genesis.dev_validator()[0], "block proposer"), ("0x" + int(treasury, 16).to_bytes(20, "big").hex(), "treasury")]
        first, last = self.first_job_block, int(self.client().rpc("eth_blockNumber"), 16)
        table = Table(title=f"OPEN earned in blocks {first}..{last} ({len(self.outcomes)} paid inferences of 1 OPEN "
                            f"each, 1 hired training run of {TRAINING_FEE} with a data-use price of {DATA_USE_PRICE})")
        table.add_column("who")
        table.add_column("account")
        table.add_column("OPEN", justify="right")
        table.add_column("earned for")
        rows = []
        for address, role in who:
            r = self.client().ol("getRewards", address, hex(first), hex(last))
            by = {k: int(v, 16) for k, v in r["bySource"].items()}
            rows.append((address, role, by))
            why = ", ".join(f"{k} {v / OPEN:.4f}" for k, v in by.items() if v)
            table.add_row(role, address[:6] + "…" + address[-4:], f"{sum(by.values()) / OPEN:.4f}", why or "-")
        self.console.print(table)
        for name, what in SOURCES.items():
            self.console.print(f"  [bold]{name}[/bold]: {what}")
        return rows

    def supply(self) -> dict:
        audit = self.client().ol("getSupply", True)["audit"]
        parts = {k: int(v, 16) if isinstance(v, str) else v for k, v in audit.items()}
        self.console.print(f"  {parts['accounts']} accounts walked: circulating {parts['circulating'] / OPEN:,.4f} + "
                           f"reserve {parts['reserve'] / OPEN:,.4f} + locked {parts['locked'] / OPEN:,.4f} + burned "
                           f"{parts['burned'] / OPEN:,.6f} = {parts['sum'] / OPEN:,.4f} OPEN")
        if not parts["holds"]:
            raise CliError(f"the OPEN supply identity does not hold: {parts}")
        self.console.print("  [green]the supply identity holds: 1,000,000,000 OPEN, no more, no less[/green]")
        return parts


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    demo = Demo(args, console)
    started = time.monotonic()
    steps = [
        ("start a devnet with the inference, verification and attribution services", demo.start_devnet),
        ("create the Datanet 'facts'", demo.datanet),
        (f"{len(CONTRIBUTORS)} contributors add {sum(map(len, CONTRIBUTORS.values()))} rows", demo.contribute),
        ("curate: accept every row, publish version 1", demo.curate),
        ("register the base model tiny-llama", demo.base_model),
        ("train a LoRA adapter with its attribution index; commit and register it (1 OPEN a job)", demo.train),
        (f"{len(VALIDATORS)} validators stake 200 OPEN each as GPU validators", demo.stake),
        (f"{len(PROMPTS)} paid inferences: served, verified, attributed, paid", demo.infer),
        (f"the Datanet owner prices version 1's data use at {DATA_USE_PRICE} a training run", demo.price),
        (f"a builder hires a training run ({TRAINING_FEE}): trained, replayed, attested, registered, paid", demo.hire),
    ]
    with Progress(TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("demo", total=len(steps) + 2)
        for title, step in steps:
            progress.update(task, description=title)
            console.print(f"[bold]{title}[/bold]")
            step()
            progress.advance(task)
        progress.update(task, description="who earned what, and why")
        console.print("[bold]who earned what, and why[/bold]")
        demo.earnings()
        progress.advance(task)
        progress.update(task, description="the OPEN supply identity over the whole state")
        console.print("[bold]the OPEN supply identity over the whole state[/bold]")
        demo.supply()
        progress.advance(task)
    pid = (demo.dir / "devnet.pid").read_text().strip()
    console.print(f"\ndone in {time.monotonic() - started:.0f} s. The devnet keeps running at {demo.url} "
                  f"(chain id {int(demo.client().rpc('eth_chainId'), 16)}, pid {pid}, log {demo.dir / 'devnet.log'}).")
    console.print(f"  more:  openledger infer --adapter 1 --prompt 'Bread rises because' --wait --dev-account {USER} "
                  f"--rpc {demo.url}")
    console.print(f"         openledger rewards {demo.client(2).address} --rpc {demo.url}")
    console.print(f"         openledger train status 1 --rpc {demo.url}")
    console.print(f"  stop:  make demo-stop   (or: kill {pid}; rm -rf {demo.dir})")
    return 0


def cmd_demo_stop(args: argparse.Namespace) -> int:
    """Stop the demo's devnet (its services stop with it) and remove its data dir."""
    import shutil

    folder = pathlib.Path(args.datadir)
    pid_file = folder / "devnet.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(200):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        print(f"stopped the demo devnet (pid {pid})")
    if folder.exists():
        shutil.rmtree(folder)
        print(f"removed {folder}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="the whole AI data economy on a fresh devnet, step by step (make demo)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--datadir", default=".demo", metavar="DIR", help="where the demo keeps its devnet and files")
    p.add_argument("--port", type=_port, default=8545, help="the devnet's JSON-RPC port (default 8545)")
    p.add_argument("--stop", action="store_true", help="stop the devnet an earlier demo left running, remove DIR")
    p.set_defaults(func=lambda a: cmd_demo_stop(a) if a.stop else cmd_demo(a))
