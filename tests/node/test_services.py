"""The validator services (docs/services.md) on a devnet: a job a user requests with the CLI is
served, verified, settled, attributed and its fee split paid with no other step; a kill -9 of the
services mid-job and a restart do it exactly once; a dishonest server's result (an edited output,
a perturbed adapter, another precision) is attested invalid, the server slashed and the job refunded.

Real node and services processes, the real `tiny-llama` model and an adapter trained with
`openledger train --commit`, as tests/node/test_first_hour.py sets them up."""
import json
import subprocess
import time

import pytest

import genesis
from node.sdk import ADDRESSES, Client, decode_events
from tests.node.test_first_hour import ROWS  # the walk's rows, config and prompt: its attribution has scores
from tests.rpc.nodes import ROOT, call, devnet_process, free_port, openledger

DEV = genesis.dev_accounts()
VALIDATORS = ("4", "5", "6")  # staked GPU validators, all three run by the services
SERVICE_FLAGS = ("--serve-inference", "--verify-inference",
                 *(f for v in VALIDATORS for f in ("--service-account", v)))


def _cli(url: str, tmp, *args: str) -> str:
    r = subprocess.run(openledger(*args, "--rpc", url), cwd=tmp, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, f"openledger {' '.join(args)}:\n{r.stdout}{r.stderr}"
    return r.stdout


def _wait(what: str, predicate, timeout: float = 240):
    """Poll until `predicate()` is truthy (a generous bound, only so a hang fails)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def _events(url: str, name: str, job_id: int) -> list[dict]:
    logs = Client(url).rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["InferenceJobs"]})
    return [e for e in decode_events(logs) if e["event"] == name and e["args"]["jobId"] == job_id]


def set_up(url: str, tmp, validators=VALIDATORS) -> None:
    """Datanet 1 of the walk's rows (imported by dev 2), tiny-llama as base model 1, adapter 1 trained
    on it with its attribution index in tmp/run (price 1 OPEN, by dev 3), GPU validators 4, 5, 6
    (`validators`: the dev accounts staked as GPU validators)."""
    (tmp / "rows.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in ROWS))
    _cli(url, tmp, "datanet", "create", "--name", "facts", "--description", "facts", "--license", "CC-BY-4.0",
         "--dev-account", "0")
    _cli(url, tmp, "datanet", "import", "1", "rows.jsonl", "--column", "text", "--dev-account", "2")
    _cli(url, tmp, "datanet", "curate", "1", "accept", "--all-pending", "--score", "80", "--dev-account", "0")
    _cli(url, tmp, "datanet", "publish", "1", "--dev-account", "0")
    _cli(url, tmp, "model", "register-base", "tiny-llama", "--dev-account", "3")
    _cli(url, tmp, "train", "init", "run.toml")
    config = tmp / "run.toml"  # as the first-hour walk: a random tiny model needs more steps to learn anything
    config.write_text(config.read_text().replace("epochs = 1", "epochs = 8").replace("lr = 0.001", "lr = 0.02")
                      .replace("batch_size = 8", "batch_size = 4"))
    _cli(url, tmp, "train", "--datanet", "1:1", "--base", "tiny-llama", "--config", "run.toml", "--out", "run",
         "--commit", "--base-model-id", "1", "--price", "1OPEN", "--dev-account", "3")
    for v in validators:
        _cli(url, tmp, "stake", "register", "--amount", "200OPEN", "--gpu", "--dev-account", v)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A devnet started with the services on, an adapter of tiny-llama registered, three GPU validators."""
    tmp = tmp_path_factory.mktemp("services")
    metrics_port = free_port()
    node = devnet_process(tmp / ".devnet", "--block-time", "0", *SERVICE_FLAGS,
                          "--attribute", "--attribution-run", str(tmp / "run"),
                          "--metrics", "--metrics.port", str(metrics_port)).wait_ready(90)
    node.metrics_port = metrics_port
    try:
        set_up(node.url, tmp)
        yield node, tmp
    finally:
        node.stop()


def _job(url: str, tmp, job_id: int) -> dict:
    return json.loads(_cli(url, tmp, "job", "show", str(job_id), "--json"))


def test_a_requested_job_is_served_verified_settled_and_attributed_by_the_services(chain):
    node, tmp = chain
    assert "job 1" in _cli(node.url, tmp, "job", "request", "--adapter", "1", "--prompt", "The capital of France is",
                           "--dev-account", "7")
    job = _wait("job 1 settled", lambda: (j := _job(node.url, tmp, 1))["statusName"] in ("succeeded", "failed") and j)
    assert job["statusName"] == "succeeded", job
    assert job["submitter"].lower() == DEV[5][0].lower()  # job 1 of three validators: the second serves it
    assert (job["validVotes"], job["invalidVotes"]) == (2, 0)  # the other two attested
    assert job["output"] is not None  # stored on the node, with its activation proof
    # an attestation is logged when the services see its receipt, on their pass after its block
    said = [f"services: job 1: {DEV[v][0]} attested valid in block" for v in (4, 6)]

    def logged() -> str | None:
        text = node.log.read_text()
        return text if all(line in text for line in said) else None

    log = _wait("the attestations logged", logged)
    assert "services: job 1: serving adapter 1 as " + DEV[5][0] in log
    assert "services: job 1: result by " in log and ": valid (" in log

    # then attributed by the same validator, and paid once the devnet's 10 s dispute window closed
    _wait("job 1's fee split paid",
          lambda: int(call(node.url, "ol_getProof", "0x1").get("result", {}).get("status", "0x0"), 16) == 2)
    proof = json.loads(_cli(node.url, tmp, "proof", "show", "1", "--json"))
    assert proof["poster"].lower() == DEV[5][0].lower() and proof["methodId"] == 2  # datainf-v1, the run's index
    _wait("the finalisation logged", lambda: "services: job 1: proof finalised in block" in node.log.read_text())
    assert json.loads(_cli(node.url, tmp, "rewards", DEV[2][0], "--json"))["rewards"] > 0  # the contributor

    # the node's metrics counted each step as its block committed (docs/operating.md)
    from prometheus_client.parser import text_string_to_metric_families
    from tests.ops.conftest import get

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(
        get(node.metrics_port, "/metrics")[1].decode()) for s in f.samples}

    def jobs(service: str, action: str) -> float:
        return samples[("openledger_service_jobs_total", (("action", action), ("service", service)))]

    assert jobs("inference", "requested") >= 1 and jobs("inference", "served") >= 1
    assert jobs("verification", "attested_valid") >= 2 and jobs("attribution", "attributed") >= 1
    assert jobs("attribution", "paid") >= 1 and jobs("attribution", "reward_paid") >= 3
    earned = {src: samples[("openledger_open_earned_wei_total", (("source", src),))]
              for src in ("contributor", "model_owner", "validator", "treasury")}
    assert earned["contributor"] > 0 and earned["validator"] > 0, earned


def test_infer_pays_waits_and_prints_output_verification_contributors_and_payments(chain):
    """`openledger infer --wait` (the SDK's `infer`): one command from a prompt to its fee split."""
    node, tmp = chain
    out = _cli(node.url, tmp, "infer", "--adapter", "1", "--prompt", "Bread rises because", "--max-fee", "2OPEN",
               "--wait", "--dev-account", "8")
    assert "job 2: succeeded, adapter 1, fee 1.000000 OPEN" in out  # the excess over the price refunded
    assert "verification: valid (served by " in out and "votes 2 valid, 0 invalid" in out
    assert "contributors credited:" in out and f"  {DEV[2][0]}  " in out  # the rows' importer
    outcome = Client(node.url).inference(2)
    assert outcome["done"] and outcome["output"] and outcome["output"] in out
    assert sum(p["amount"] for p in outcome["payments"]) == outcome["fee"] == 10**18  # the whole fee, no more
    assert sum(c["weightPpm"] for c in outcome["contributors"]) == 10**6
    assert sum(c["paid"] for c in outcome["contributors"]) == \
        sum(p["amount"] for p in outcome["payments"] if p["role"] == "contributor")
    assert {p["role"] for p in outcome["payments"]} == {"contributor", "model owner", "validator", "treasury"}
    assert outcome["payoutBlock"] - outcome["requestBlock"] <= 10  # the target


def test_rewards_by_source_split_each_accounts_earnings(chain):
    """`openledger rewards ADDRESS [--from B --to B]` (ol_getRewards): the job's fee split and the work
    shares of its blocks, by source; over any range the sources sum to the ledger's growth."""
    node, tmp = chain
    outcome = Client(node.url).inference(2)
    payout = outcome["payoutBlock"]
    paid: dict[tuple[str, str], int] = {}  # a contributor is paid once per row credited
    for p in outcome["payments"]:
        paid[(p["account"].lower(), p["role"])] = paid.get((p["account"].lower(), p["role"]), 0) + p["amount"]

    def rewards(account: str, *block_range: int) -> dict:
        args = [a for b, flag in zip(block_range, ("--from", "--to")) for a in (flag, str(b))]
        return json.loads(_cli(node.url, tmp, "rewards", account, *args, "--json"))

    server, attester, contributor, owner = (DEV[n][0] for n in (6, 4, 2, 3))  # job 2: served by 6 (2 % 3)
    at_payout = {a: rewards(a, payout, payout)["bySource"] for a in (server, attester, contributor, owner)}
    assert at_payout[contributor]["data contribution"] == paid[(contributor.lower(), "contributor")]
    assert at_payout[owner]["model ownership"] == paid[(owner.lower(), "model owner")]
    assert at_payout[attester]["verification"] == paid[(attester.lower(), "validator")]
    assert at_payout[server]["inference work"] == paid[(server.lower(), "validator")]  # no job settled here
    assert at_payout[server]["attribution"] > 0  # the poster's work share of the payout block's release
    assert at_payout[server]["verification"] == at_payout[attester]["attribution"] == 0
    settled = _events(node.url, "JobFinalised", 2)[0]["block"]
    assert rewards(server, settled, settled)["bySource"]["inference work"] > 0  # the work share of that block
    first_payout = Client(node.url).inference(1)["payoutBlock"]
    assert rewards(contributor, 0, first_payout - 1)["bySource"]["data contribution"] == 0  # before any fee split
    for account in (server, attester, contributor, owner, genesis.dev_validator()[0]):
        whole = rewards(account)
        assert whole["fromBlock"] == 0 and sum(whole["bySource"].values()) == whole["rewards"]
    assert rewards(genesis.dev_validator()[0])["bySource"]["block rewards"] > 0  # the proposer


@pytest.mark.parametrize("params, message", [
    (["0x5", "0x2"], "block range 5..2 is empty"),
    (["0x0", "0xffffff"], "header not found"),
    (["0x0", "soon"], "invalid"),
])
def test_ol_get_rewards_refuses_a_bad_block_range(chain, params, message):
    node, _ = chain
    answer = call(node.url, "ol_getRewards", DEV[2][0], *params)
    assert answer["error"]["code"] == -32602 and message in answer["error"]["message"], answer


@pytest.mark.parametrize("args, message", [
    (("--adapter", "9"), "unknown adapter 9"),
    (("--adapter", "1", "--max-fee", "1"), "below adapter 1's price"),
    (("--adapter", "1", "--prompt", "x" * (64 * 1024 + 1)), "exceeds the 65536-byte limit"),
    (("--adapter", "1", "--prompt", ""), "--prompt is empty"),
])
def test_infer_refuses_bad_requests_before_paying(chain, args, message):
    node, tmp = chain
    before = Client(node.url).rpc("eth_getTransactionCount", DEV[8][0], "latest")
    argv = ["infer", *args, "--wait", "--dev-account", "8", "--rpc", node.url]
    if "--prompt" not in args:
        argv[1:1] = ["--prompt", "hello"]
    r = subprocess.run(openledger(*argv), cwd=tmp, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert Client(node.url).rpc("eth_getTransactionCount", DEV[8][0], "latest") == before  # nothing sent


def test_a_kill_9_mid_job_then_a_restart_does_the_job_exactly_once(chain):
    node, tmp = chain
    node.stop()  # the same chain and services state, the services now run as their own process
    node.cmd = openledger("devnet", "--datadir", str(tmp / ".devnet"), "--http.port", str(node.port),
                          "--block-time", "0")
    node.start(90)
    log = tmp / "services.log"
    cmd = openledger("services", "--rpc", node.url, "--datadir", str(tmp / ".devnet"), "--serve-inference",
                     "--verify-inference", *(f for v in VALIDATORS for f in ("--dev-account", v)))

    def launch() -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    services = launch()
    try:
        assert "job 3" in _cli(node.url, tmp, "job", "request", "--adapter", "1", "--prompt", "Bees carry",
                               "--dev-account", "7")
        _wait("job 3 served", lambda: "job 3: output " in log.read_text())
        services.kill()  # SIGKILL: no clean-up, wherever it is between storing the output and the receipt
        services.wait()
        assert _job(node.url, tmp, 3)["statusName"] in ("requested", "submitted")
        services = launch()
        job = _wait("job 3 settled", lambda: (j := _job(node.url, tmp, 3))["statusName"] in ("succeeded", "failed") and j)
        state = tmp / ".devnet" / "services" / "state.json"
        _wait("no job in flight", lambda: json.loads(state.read_text())["jobs"] == {})
    finally:
        services.kill()
        services.wait()
    assert job["statusName"] == "succeeded" and job["submitter"].lower() == DEV[4][0].lower()
    assert len(_events(node.url, "ResultSubmitted", 3)) == 1  # one result, one attestation per other validator
    assert sorted(e["args"]["validator"].lower() for e in _events(node.url, "Attested", 3)) == \
        sorted(DEV[v][0].lower() for v in (5, 6))
    assert "job 3: result submitted in block" in log.read_text()


def test_a_dishonest_servers_result_is_attested_invalid_and_the_server_slashed(chain, tmp_path):
    """Validator 4 posts an edited output (one token changed, its text re-decoded to match, the honest
    activation proof kept): the verification service refuses it, the job fails and 4 is slashed."""
    from node.services import model

    node, tmp = chain  # after the kill -9 test: a devnet with no services of its own
    assert "job 4" in _cli(node.url, tmp, "job", "request", "--adapter", "1", "--prompt", "Ice melts at",
                           "--dev-account", "7")
    server = Client(node.url, DEV[4][1])
    job = model.job_of(server, 4)
    rt = model.Runtime(server, model.ModelOptions(store=str(tmp_path / "adapters")), 1)
    try:
        served = model.serve(rt, job, model.prompt_of(server, job), 8)
        result = json.loads(served.result)
        result["tokens"][-1] = (result["tokens"][-1] + 1) % 256  # another byte token
        result["text"] = rt.base.tokenizer.decode(result["tokens"], skip_special_tokens=True)
    finally:
        rt.close()
    edited = model.store_served(server, model.Served(model.canonical(result), served.proof, result["text"]))
    server.send("InferenceJobs", "submitResult", 4, *edited)

    log = tmp / "verifier.log"
    with open(log, "ab") as out:
        verifier = subprocess.Popen(openledger("services", "--rpc", node.url, "--datadir", str(tmp / ".devnet"),
                                               "--verify-inference", *(f for v in VALIDATORS for f in ("--dev-account", v))),
                                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        job = _wait("job 4 settled", lambda: (j := _job(node.url, tmp, 4))["statusName"] in ("succeeded", "failed") and j)
        _wait("the attestations logged (their receipts seen)", lambda: log.read_text().count("attested invalid") >= 2)
    finally:
        verifier.kill()
        verifier.wait()
    assert job["statusName"] == "failed" and (job["validVotes"], job["invalidVotes"]) == (0, 2), job
    assert "job 4: result by " + DEV[4][0] + " checked: invalid" in log.read_text()
    receipts = [Client(node.url).rpc("eth_getTransactionReceipt", h) for h in
                [line.rsplit("(tx ", 1)[1].rstrip(")") for line in log.read_text().splitlines() if "attested invalid" in line]]
    slashed = [e for r in receipts for e in decode_events(r["logs"]) if e["event"] == "Slashed"]
    assert [e["args"]["validator"].lower() for e in slashed] == [DEV[4][0].lower()]


class _DishonestServer:
    """Validator 4 serving a job as a cheat would, through the services' own model code: the job's
    adapter with its weights perturbed (`wrong_adapter`), or the committed float32 model run in
    bfloat16 (`precision`); the result and activation proof are stored and submitted as honest ones."""

    def __init__(self, url: str, folder) -> None:
        from node.services import model

        self.client = Client(url, DEV[4][1])
        self.rt = model.Runtime(self.client, model.ModelOptions(store=str(folder / "adapters")), 1)
        self.folder = folder

    def wrong_adapter(self) -> None:
        import torch
        from safetensors.torch import load_file, save_file

        honest = self.client.fetch_adapter(bytes.fromhex(self.rt.adapter_hash[2:]), self.folder / "honest")
        weights = load_file(honest / "adapter_model.safetensors")
        torch.manual_seed(0)
        perturbed = {k: w + 0.5 * w.std() * torch.randn_like(w) if "lora_B" in k else w for k, w in weights.items()}
        (self.folder / "perturbed").mkdir()
        (self.folder / "perturbed" / "adapter_config.json").write_bytes((honest / "adapter_config.json").read_bytes())
        save_file(perturbed, self.folder / "perturbed" / "adapter_model.safetensors")
        self.rt.adapter_hash = self.rt.store.add(self.folder / "perturbed")  # what the engine runs

    def precision(self) -> None:
        import torch

        self.rt.model.to(torch.bfloat16)

    def serve(self, job_id: int) -> None:
        from node.services import model

        job = model.job_of(self.client, job_id)
        served = model.serve(self.rt, job, model.prompt_of(self.client, job), 8)
        self.client.send("InferenceJobs", "submitResult", job_id, *model.store_served(self.client, served))

    def close(self) -> None:
        self.rt.close()


@pytest.mark.parametrize("cheat", ["wrong_adapter", "precision"])
def test_a_server_running_another_adapter_or_precision_is_attested_invalid_slashed_and_the_job_refunded(
        chain, tmp_path, cheat):
    """The dishonest servers the edited-output test above does not cover: the verification service
    re-computes the result (one prefill at the committed float32 path with the registered adapter),
    attests invalid, the job fails, the server is slashed and the requester has its whole fee back."""
    node, tmp = chain  # the kill -9 test's devnet: no services of its own
    client, user = Client(node.url, DEV[7][1]), DEV[7][0]
    escrow = _balance(node.url, ADDRESSES["InferenceJobs"])
    stake = int(client.ol("getValidator", DEV[4][0])["selfStake"], 16)
    before = _balance(node.url, user)
    request = client.request_inference(1, {"wrong_adapter": "Bread rises because", "precision": "Rain falls when"}[cheat])
    job_id, receipt = request["jobId"], client.rpc("eth_getTransactionReceipt", request["transactionHash"])
    gas = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    server = _DishonestServer(node.url, tmp_path)
    try:
        getattr(server, cheat)()
        server.serve(job_id)
    finally:
        server.close()

    log = tmp / f"verifier-{cheat}.log"
    with open(log, "ab") as out:
        verifier = subprocess.Popen(openledger("services", "--rpc", node.url, "--datadir", str(tmp / ".devnet"),
                                               "--verify-inference", *(f for v in VALIDATORS for f in ("--dev-account", v))),
                                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        outcome = _wait(f"job {job_id} settled", lambda: (o := Client(node.url).inference(job_id))["status"] in
                        ("succeeded", "failed") and o)
    finally:
        verifier.kill()
        verifier.wait()
    assert outcome["status"] == "failed" and (outcome["validVotes"], outcome["invalidVotes"]) == (0, 2), outcome
    assert outcome["verification"] == "invalid: refunded, the server slashed"
    said = [line for line in log.read_text().splitlines() if f"job {job_id}: result by {DEV[4][0]} checked: " in line]
    assert said and "checked: invalid (" in said[0], log.read_text()[-3000:]
    slashed = [e for e in decode_events(Client(node.url).rpc("eth_getLogs", {
        "fromBlock": hex(request["block"]), "address": ADDRESSES["Staking"]})) if e["event"] == "Slashed"]
    assert [(e["args"]["validator"].lower(), e["args"]["amount"]) for e in slashed] == [(DEV[4][0].lower(), stake // 10)]
    assert _balance(node.url, user) == before - gas  # the whole fee back
    assert _balance(node.url, ADDRESSES["InferenceJobs"]) == escrow  # nothing left in escrow, nothing taken from it


def _balance(url: str, who: str) -> int:
    return int(Client(url).rpc("eth_getBalance", who, "latest"), 16)


def test_the_supply_identity_held_after_every_block_of_the_flow(chain):
    """Served, refunded, slashed, paid: the OPEN supply identity over every block's whole state
    trie (ol_getSupply's audit), and a bad block named plainly."""
    node, _ = chain
    client = Client(node.url)
    for n in range(int(client.rpc("eth_blockNumber"), 16) + 1):
        audit = client.ol("getSupply", True, hex(n))["audit"]
        assert audit["holds"] is True and int(audit["sum"], 16) == genesis.TOTAL_SUPPLY, (n, audit)
    answer = call(node.url, "ol_getSupply", True, "0xffffff")
    assert answer["error"]["code"] == -32602, answer
