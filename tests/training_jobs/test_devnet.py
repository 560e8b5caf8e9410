"""Paid training jobs on a devnet (docs/training-jobs.md): a builder hires a run with `openledger
train request --wait`; the node's training services (three staked validators) claim, train, store,
submit, replay and attest; the run is registered for the builder and the version's contributors
paid in proportion to their accepted contributions. A dishonest trainer (edited weights, skipped
steps, another seed) is caught by replay, refunded and slashed; a kill -9 of the training service
mid-run resumes from its checkpoints and does the job exactly once.

Real node and services processes, the real `tiny-llama` model and the rows of the first-hour walk."""
import dataclasses
import json
import subprocess
import time

import pytest

import genesis
from node.sdk import ADDRESSES, Client, decode_events
from node.services import training as svc
from tests.node.test_first_hour import ROWS
from tests.rpc.nodes import ROOT, devnet_process, openledger
from training import TrainingConfig

DEV = genesis.dev_accounts()
OPEN = 10**18
VALIDATORS = ("4", "5", "6")  # run by the node's training services
DISHONEST = 9  # a staked validator outside the services
BUILDER = 7
PRICE = 1_000_003  # wei per run of version 1: dev2 contributed 6 of its 8 rows, dev8 2
SERVICE_FLAGS = ("--serve-training", "--verify-training", "--min-training-fee", "1OPEN",
                 *(f for v in VALIDATORS for f in ("--service-account", v)))
CONFIG = {"epochs": 2, "batch_size": 4, "checkpoint_every": 2, "lr": 0.02}  # 4 steps, segments 0->2 and 2->4


def _cli(url: str, tmp, *args: str) -> str:
    r = subprocess.run(openledger(*args, "--rpc", url), cwd=tmp, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, f"openledger {' '.join(args)}:\n{r.stdout}{r.stderr}"
    return r.stdout


def _wait(what: str, predicate, timeout: float = 300):
    """Poll until `predicate()` is truthy (a generous bound, only so a hang fails)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def _config(tmp, name: str, **changes) -> str:
    text = "[training]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in {**CONFIG, **changes}.items())
    (tmp / name).write_text(text)
    return name


def _events(url: str, name: str, job_id: int) -> list[dict]:
    logs = Client(url).rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["TrainingJobs"]})
    return [e["args"] for e in decode_events(logs) if e["event"] == name and e["args"].get("jobId") == job_id]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A devnet (1 s blocks) with its training services on; Datanet 1 version 1 priced at PRICE wei."""
    tmp = tmp_path_factory.mktemp("training-jobs")
    node = devnet_process(tmp / ".devnet", "--block-time", "1", *SERVICE_FLAGS).wait_ready(120)
    try:
        url = node.url
        for name, rows in (("a.jsonl", ROWS[:6]), ("b.jsonl", ROWS[6:])):
            (tmp / name).write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
        _cli(url, tmp, "datanet", "create", "--name", "facts", "--description", "facts", "--license", "CC-BY-4.0",
             "--dev-account", "0")
        _cli(url, tmp, "datanet", "import", "1", "a.jsonl", "--column", "text", "--dev-account", "2")
        _cli(url, tmp, "datanet", "import", "1", "b.jsonl", "--column", "text", "--dev-account", "8")
        _cli(url, tmp, "datanet", "curate", "1", "accept", "--all-pending", "--score", "80", "--dev-account", "0")
        _cli(url, tmp, "datanet", "publish", "1", "--dev-account", "0")
        _cli(url, tmp, "datanet", "price", "1", "1", str(PRICE), "--dev-account", "0")
        _cli(url, tmp, "model", "register-base", "tiny-llama", "--dev-account", "3")
        for v in VALIDATORS:
            _cli(url, tmp, "stake", "register", "--amount", "200OPEN", "--gpu", "--dev-account", v)
        yield node, tmp
    finally:
        node.stop()


def test_a_hired_run_is_trained_verified_registered_and_pays_the_contributors(chain):
    node, tmp = chain
    out = _cli(node.url, tmp, "train", "request", "--datanet", "1:1", "--base", "tiny-llama", "--config",
               _config(tmp, "run.toml"), "--max-fee", "5OPEN", "--wait", "--dev-account", str(BUILDER))
    report = json.loads(out[out.index("\n{") + 1:])
    assert "training job 1 requested" in out and "training job 1: claimed by" in out
    assert report["statusName"] == "completed", report
    trainer = DEV[int(VALIDATORS[1])][0]  # job 1 of three keys: the second trains it
    assert report["trainer"].lower() == trainer.lower()
    assert sorted(a["validator"].lower() for a in report["attestations"]) == \
        sorted(DEV[int(v)][0].lower() for v in VALIDATORS if DEV[int(v)][0] != trainer)
    assert all(a["valid"] and a["segments"] == [0, 1] for a in report["attestations"])  # both segments replayed
    assert all(a["verdict"]["reason"] == "2 of 2 segments replayed" and a["verdict"]["max_deviation"] < 1e-3
               for a in report["attestations"])  # each verifier's evidence blob
    # the data-use fee: dev2 contributed 6 of the 8 accepted rows, dev8 2; the dust to the treasury
    paid = {d["contributor"].lower(): d["amount"] for d in report["dataUse"]}
    assert paid == {DEV[2][0].lower(): PRICE * 6 // 8, DEV[8][0].lower(): PRICE * 2 // 8}
    assert report["split"]["treasuryDust"] == PRICE - sum(paid.values()) == 1
    assert report["split"]["trainerFee"] + report["split"]["verifierFee"] == 5 * OPEN - PRICE
    for a, amount in ((DEV[2][0], PRICE * 6 // 8), (DEV[8][0], PRICE * 2 // 8)):
        assert [(e["jobId"], e["datanetId"], e["version"], e["amount"]) for e in svc.data_use_earnings(
            Client(node.url), a)] == [(1, 1, 1, amount)]  # the "data use" source of a contributor's earnings
        assert int(Client(node.url).rpc("ol_getRewards", a)["bySource"]["data use"], 16) == amount
    by_source = {k: int(v, 16) for k, v in Client(node.url).rpc("ol_getRewards", trainer)["bySource"].items()}
    assert by_source["training work"] >= report["split"]["trainerFee"]  # its fee, and the work share of the release
    verifier = report["attestations"][0]["validator"]
    verifier_work = int(Client(node.url).rpc("ol_getRewards", verifier)["bySource"]["training work"], 16)
    assert verifier_work == report["split"]["verifierFee"] // len(report["attestations"])

    # the registered run is the builder's, and serves like any committed run
    run = report["run"]
    assert run["owner"].lower() == DEV[BUILDER][0].lower() and run["attributionIndexRoot"] != "0x" + "00" * 32
    out = _cli(node.url, tmp, "model", "register-adapter", str(run["id"]), "--price", "1OPEN",
               "--dev-account", str(BUILDER))
    assert "AdapterRegistered" in out
    adapter = Client(node.url).fetch_adapter(bytes.fromhex(run["adapterHash"][2:]), tmp / "hired-adapter")
    from training import adapter_hash
    assert "0x" + adapter_hash(adapter).hex() == run["adapterHash"]

    log = node.log.read_text()
    assert "services: training job 1: step 2 of 4 checkpointed" in log  # progress while it trains
    assert "replayed segments [0, 1]" in log and ": valid (2 of 2 segments replayed)" in log


def _dishonest(url: str, tmp, job_id: int, how: str) -> None:
    """Validator 9 claims job `job_id`, trains it, then cheats `how`, stores the run and submits it."""
    import torch

    from training import run
    from training.trainer import checkpoint_path, load_checkpoint, save_checkpoint

    trainer = Client(url, DEV[DISHONEST][1])
    trainer.send("TrainingJobs", "claimJob", job_id)
    job = svc.job_of(trainer, job_id)
    honest = svc.config_of(trainer, job)
    data, _ = svc.dataset_of(trainer, job["datanetId"], job["version"])
    config = dataclasses.replace(honest, seed=honest.seed + 1) if how == "seed" else honest
    out = tmp / f"dishonest-{job_id}"
    record = run(config, data, "tiny-llama", out, run_id=job_id, progress=False, attribution=lambda _t: b"\x01" * 32)
    path = checkpoint_path(out, 2)
    hashes = list(record.checkpoint_hashes)
    if how == "weights":  # one adapter tensor nudged at the end of segment 0
        tensors = load_checkpoint(path, config, data.root)
        name = next(k for k in sorted(tensors) if k.startswith("adapter."))
        tensors[name] = tensors[name] + 0.01
        hashes[1] = save_checkpoint(path, tensors, config, data.root)
    elif how == "skip":  # segment 0 not trained: its end is its start
        tensors = load_checkpoint(checkpoint_path(out, 0), config, data.root)
        tensors["step"] = torch.full_like(tensors["step"], 2)
        hashes[1] = save_checkpoint(path, tensors, config, data.root)
    else:  # another seed, passed off as the chain's: the files relabelled with the honest config
        for step in record.checkpoint_steps:
            save_checkpoint(checkpoint_path(out, step), load_checkpoint(checkpoint_path(out, step), config, data.root),
                            honest, data.root)
        (out / "config.json").write_bytes(honest.canonical_json())
        record = dataclasses.replace(record, config_hash=honest.config_hash(), seed=honest.seed)
    record = dataclasses.replace(record, checkpoint_hashes=tuple(hashes))
    (out / "record.json").write_bytes(record.canonical_json())
    trainer.send("TrainingJobs", "submitRun", *svc.submit_args(job_id, record, svc.store_run(trainer, out)))


@pytest.mark.slow
def test_dishonest_trainers_are_caught_by_replay_refunded_and_slashed(chain):
    node, tmp = chain
    url = node.url
    _cli(url, tmp, "stake", "register", "--amount", "200OPEN", "--gpu", "--dev-account", str(DISHONEST))
    builder = Client(url, DEV[BUILDER][1])
    blob = svc.config_blob(TrainingConfig(**CONFIG))
    for how in ("weights", "skip", "seed"):
        fee = OPEN // 2  # below the services' --min-training-fee: left for validator 9 to claim
        job_id = builder.request_training(1, 1, 1, blob, fee)
        balance = int(builder.rpc("eth_getBalance", builder.address, "latest"), 16)
        _dishonest(url, tmp, job_id, how)
        job = _wait(f"job {job_id} settled",
                    lambda: (j := svc.job_of(builder, job_id))["statusName"] in ("completed", "failed", "refunded") and j)
        assert job["statusName"] == "failed" and job["invalidVotes"] >= 2 and job["validVotes"] == 0, (how, job)
        assert int(builder.rpc("eth_getBalance", builder.address, "latest"), 16) - balance == fee  # refunded in full
        failed = _events(url, "TrainingFailed", job_id)
        receipts = [e for e in decode_events(Client(url).rpc("eth_getLogs", {
            "fromBlock": "0x0", "address": ADDRESSES["Staking"]})) if e["event"] == "Slashed"]
        assert failed and receipts and all(e["args"]["validator"].lower() == DEV[DISHONEST][0].lower() for e in receipts)
        assert len(receipts) == ("weights", "skip", "seed").index(how) + 1  # one slash per dishonest run
        log = node.log.read_text()
        assert f"training job {job_id}: run by {DEV[DISHONEST][0].lower()} replayed segments" in log
    reasons = node.log.read_text()
    assert "does not replay" in reasons  # edited weights and skipped steps fail their segment's replay
    assert "step-0 checkpoint is not the LoRA init" in reasons  # the other seed fails before any replay
    self_stake = builder.call("Staking", "getValidator", DEV[DISHONEST][0])[0]
    Client(url, DEV[DISHONEST][1]).send("Staking", "undelegate", DEV[DISHONEST][0], self_stake)  # out of the set


@pytest.mark.slow
def test_a_kill_9_mid_run_resumes_from_its_checkpoints_and_does_the_job_once(chain):
    node, tmp = chain
    node.stop()  # the same chain, its training services now run as their own process
    node.cmd = openledger("devnet", "--datadir", str(tmp / ".devnet"), "--http.port", str(node.port),
                          "--block-time", "1")
    node.start(120)
    log = tmp / "services.log"
    cmd = openledger("services", "--rpc", node.url, "--datadir", str(tmp / ".devnet"), "--serve-training",
                     "--verify-training", *(f for v in VALIDATORS for f in ("--dev-account", v)))

    def launch() -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    builder = Client(node.url, DEV[BUILDER][1])
    long_run = svc.config_blob(TrainingConfig(**{**CONFIG, "epochs": 60}))  # 120 steps, a checkpoint every 2
    services = launch()
    try:
        job_id = builder.request_training(1, 1, 1, long_run, 5 * OPEN)
        _wait("the run training", lambda: f"training job {job_id}: step 4 of 120 checkpointed" in log.read_text())
        services.kill()  # SIGKILL mid-run
        services.wait()
        assert svc.job_of(builder, job_id)["statusName"] == "claimed"
        services = launch()
        job = _wait(f"job {job_id} settled",
                    lambda: (j := svc.job_of(builder, job_id))["statusName"] in ("completed", "failed", "refunded") and j)
        state = tmp / ".devnet" / "services" / "training" / "state.json"
        _wait("no job in flight", lambda: json.loads(state.read_text())["jobs"] == {})
    finally:
        services.kill()
        services.wait()
    assert job["statusName"] == "completed" and job["runId"] > 0, job
    text = log.read_text()
    assert f"training job {job_id}: training tiny-llama on datanet 1 v1" in text and ", resuming from step-" in text
    assert len(_events(node.url, "TrainingClaimed", job_id)) == 1 and len(_events(node.url, "RunSubmitted", job_id)) == 1
    assert len(_events(node.url, "DataUseFeePaid", job_id)) == 2
