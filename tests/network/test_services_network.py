"""The validator services on a network of four validators (#14): four `openledger run` processes
as `openledger testnet --gpu` starts them, and beside each one `openledger services` signing with
that validator's keystore key (serve, verify, attribute; objects its node lacks fetched from the
other three), a Datanet, tiny-llama and an adapter trained with its attribution index as
tests/node/test_services.py sets them up, and six paid jobs. While they run, one validator (its
node and its services) is killed with SIGKILL and restarted.

Every job ends served, verified, attributed and paid, each step once on chain (one result, one
proof, one fee split; nobody slashed, no proof disputed), no fee is left in escrow, the OPEN
supply identity holds at every block, and the four nodes hold the same chain. Slow: four nodes,
four services processes and a training run (make test-all)."""
from __future__ import annotations

import json
import subprocess
import time

import pytest

import genesis
from node.cli import testnet
from node.sdk import ADDRESSES, Client, decode_events
from tests.network.test_validators import _report, _same_chain
from tests.node.test_services import _wait, set_up
from tests.rpc.nodes import ROOT, NodeProcess, free_port, openledger

pytestmark = pytest.mark.slow
DEV = genesis.dev_accounts()
USER = 7
PROMPTS = ("The capital of France is", "Bees carry", "Ice melts at", "Bread rises because", "The moon orbits",
           "Honey is made")
VICTIM = 2  # the GPU validators' job id mod 4-th serves: validator 2 serves jobs 2 and 6


class Services:
    """`openledger services` beside validator `m`: all three roles, its key, the other nodes as peers."""

    def __init__(self, m: testnet.Member, members: list[testnet.Member], root, run) -> None:
        self.log = m.datadir / "services.log"
        self.cmd = openledger("services", "--rpc", m.rpc, "--datadir", str(m.datadir), "--serve-inference",
                              "--verify-inference", "--attribute", "--attribution-run", str(run), "--keyfile",
                              str(m.key_file), "--password", str(root / testnet.PASSWORD_FILE), "--poll", "0.2",
                              *(f for o in members if o is not m for f in ("--peer-rpc", o.rpc)))
        self.start()

    def start(self) -> None:
        self.starts = self.text().count("services: started (")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def started(self) -> bool:
        return self.text().count("services: started (") > self.starts

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL
        self.proc.wait()


@pytest.fixture
def network(tmp_path, request):
    """Four GPU validators (1 s blocks) with the Datanet, base model and adapter 1 of set_up."""
    root = tmp_path / "net"
    members = testnet._setup(root, 4, [free_port() for _ in range(4)], [free_port() for _ in range(4)], gpu=True)
    nodes = [NodeProcess(testnet._command(m, members, root, 1.0), int(m.rpc.rsplit(":", 1)[1]), m.datadir / "node.log")
             for m in members]
    services: list[Services] = []
    try:
        for n in nodes:
            n.wait_ready(180)
        set_up(nodes[0].url, tmp_path, validators=())  # the four are GPU validators from genesis
        services += [Services(m, members, root, tmp_path / "run") for m in members]
        yield members, nodes, services
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            logs = "\n".join(f"===== services {i}\n{s.text()[-4000:]}" for i, s in enumerate(services))
            report.sections.append(("validator and services logs", _report(members, nodes) + "\n" + logs))
    finally:
        for s in services:
            s.kill()
        for n in nodes:
            n.stop()


def _events(client: Client, module: str, job_id: int) -> list[dict]:
    logs = client.rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES[module],
                                      "topics": [None, "0x%064x" % job_id]})
    return decode_events(logs)


@pytest.mark.timeout(2400)  # the set-up alone (four nodes, training) takes minutes on a shared CPU
def test_paid_jobs_are_served_verified_attributed_and_paid_while_a_validator_is_killed_and_restarted(network):
    members, nodes, services = network
    for s in services:
        _wait("the services started", s.started, 180)
    user = Client(nodes[0].url, DEV[USER][1])
    started = time.monotonic()
    jobs = [user.request_inference(1, p)["jobId"] for p in PROMPTS]
    first_block = user.inference(jobs[0])["requestBlock"]

    # the victim is killed once it has generated an output: between storing it and its receipt
    victim, victim_services = nodes[VICTIM], services[VICTIM]
    _wait("the victim serving", lambda: "output " in victim_services.text(), 300)
    victim_services.kill()
    victim.kill()
    killed_at = time.monotonic() - started
    live = [n for i, n in enumerate(nodes) if i != VICTIM]
    height = min(int(n.rpc("eth_blockNumber"), 16) for n in live)
    _wait("three validators finalising without the fourth",
          lambda: min(int(n.rpc("eth_blockNumber"), 16) for n in live) >= height + 3, 60)
    victim.start(180)
    victim_services.start()

    reader = Client(nodes[0].url)
    for j in jobs:
        _wait(f"job {j} paid out", lambda j=j: reader.inference(j)["done"], 600)
    paid_in = time.monotonic() - started
    outcomes = {j: reader.inference(j) for j in jobs}  # read after the last payout: nothing moves now
    _wait("the victim caught up", lambda: int(victim.rpc("eth_blockNumber"), 16) >=
          max(o["payoutBlock"] for o in outcomes.values()), 120)

    for j, o in outcomes.items():
        assert o["status"] == "succeeded" and o["attribution"]["status"] == "paid", o
        inference, attribution = _events(reader, "InferenceJobs", j), _events(reader, "Attribution", j)
        names = [e["event"] for e in inference + attribution]
        assert names.count("ResultSubmitted") == 1 and names.count("JobFinalised") == 1, (j, names)  # served once
        assert names.count("ProofPosted") == 1 and names.count("FeeSplit") == 1, (j, names)  # attributed, paid once
        assert "ProofDisputed" not in names, (j, names)
        votes = [e["args"]["valid"] for e in inference if e["event"] == "Attested"]
        assert len(votes) >= 2 and all(votes), (j, votes)  # the quorum of two other validators, all valid
        assert sum(p["amount"] for p in o["payments"]) == o["fee"] == 10**18, o  # the whole fee, no more
    staking = reader.rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["Staking"]})
    assert not [e for e in decode_events(staking) if e["event"] == "Slashed"]
    assert int(reader.rpc("eth_getBalance", ADDRESSES["InferenceJobs"], "latest"), 16) == 0  # no fee left in escrow

    head = min(int(n.rpc("eth_blockNumber"), 16) for n in nodes)
    for n in range(first_block - 1, head + 1):
        audit = reader.ol("getSupply", True, hex(n))["audit"]
        assert audit["holds"] is True and int(audit["sum"], 16) == genesis.TOTAL_SUPPLY, (n, audit)
    for node in nodes:
        assert Client(node.url).ol("getSupply", True, hex(head))["audit"]["holds"] is True
    _same_chain(nodes, head)

    blocks = sorted(o["payoutBlock"] - o["requestBlock"] for o in outcomes.values())
    print(json.dumps({"killed_after_s": round(killed_at, 1), "all_paid_after_s": round(paid_in, 1),
                      "blocks_to_payout": blocks, "victim": members[VICTIM].address,
                      "servers": {j: o["submitter"] for j, o in outcomes.items()},
                      "posters": {j: o["attribution"]["poster"] for j, o in outcomes.items()},
                      "victim_restarts_with_jobs_in_flight": [line.split("; ")[-1] for line in
                                                               victim_services.text().splitlines()
                                                               if "services: started (" in line]}))
