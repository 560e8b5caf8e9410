"""The faults of issue #14 that need a chain of their own (short job and proof timeouts, a dispute
window long enough to dispute in): a validator that takes a job and goes offline (the job times out
and a verifier's service refunds it), a dishonest attributor (weights inflated towards one row:
re-checked and disputed by a quorum, so rejected and its poster slashed, replaced by the honest proof,
which is paid), adapter bytes that no longer match their hash (nobody serves the job; refunded at its
timeout), a job whose attribution proof never comes (settled without one at its proof timeout, the
contributors' part to the treasury). Nothing is lost: every refunded fee is back with its requester
and the escrow holds only the fees of open jobs.

Real node and services processes, tiny-llama and an adapter trained with `openledger train`, as in
tests/node/test_services.py. Slow (several job timeouts and dispute windows of chain time)."""
import json
import subprocess

import pytest

import genesis
from node.sdk import ADDRESSES, Client, decode_events
from tests.node.test_services import VALIDATORS, _cli, _wait, set_up
from tests.rpc.nodes import ROOT, devnet_process, openledger

pytestmark = pytest.mark.slow
DEV = genesis.dev_accounts()
TIMEOUT_S, WINDOW_S, PROOF_TIMEOUT_S = 120, 60, 150  # generous: the machine running the tests may be loaded


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    node = devnet_process(tmp / ".devnet", "--block-time", "0", "--param", f"job_timeout_s={TIMEOUT_S}",
                          "--param", f"dispute_window_s={WINDOW_S}",
                          "--param", f"proof_timeout_s={PROOF_TIMEOUT_S}").wait_ready(90)
    try:
        set_up(node.url, tmp)
        # the dishonest attributor: a staked validator with an accepted row of its own in the Datanet
        _cli(node.url, tmp, "stake", "register", "--amount", "200OPEN", "--dev-account", "9")
        (tmp / "rows-9.jsonl").write_text(json.dumps({"text": "Validator nine is always right."}) + "\n")
        _cli(node.url, tmp, "datanet", "import", "1", "rows-9.jsonl", "--column", "text", "--dev-account", "9")
        _cli(node.url, tmp, "datanet", "curate", "1", "accept", "--all-pending", "--score", "80", "--dev-account", "0")
        yield node, tmp
    finally:
        node.stop()


class _Services:
    """`openledger services` with the given role flags and dev accounts, its log in tmp."""

    def __init__(self, node, tmp, name: str, *flags: str, accounts=VALIDATORS) -> None:
        self.log = tmp / f"{name}.log"
        cmd = openledger("services", "--rpc", node.url, "--datadir", str(tmp / name), "--poll", "0.2", *flags,
                         *(f for v in accounts for f in ("--dev-account", v)))
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        self.wait("the services started", lambda: "services: started (" in self.text())

    def wait(self, what: str, predicate, timeout: float = 240):
        """_wait, with this process's log in the failure."""
        try:
            return _wait(what, predicate, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}; {self.log.name}:\n{self.text()[-4000:]}") from None

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _status(url: str, job_id: int) -> str:
    return Client(url).inference(job_id)["status"]


def _refunded(node, tmp, services: _Services, job_id: int) -> None:
    """The job fails at its timeout, finalised by the verifier's service, and the requester has its fee
    back (its balance fell by the gas of its request only)."""
    client = Client(node.url)
    job = services.wait(f"job {job_id} finalised", lambda: (o := client.inference(job_id))["status"] == "failed" and o,
                        timeout=TIMEOUT_S + 120)
    assert job["verification"] == "not served or settled in time: refunded"
    said = services.wait("the refund logged", lambda: [line for line in services.text().splitlines()
                                                      if f"job {job_id}: finalised after its timeout in block" in line])
    assert said[0].endswith(": refunded"), said
    logs = client.rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["InferenceJobs"],
                                      "topics": [None, "0x%064x" % job_id]})
    final = [e for e in decode_events(logs) if e["event"] == "JobFinalised"]
    assert [(e["args"]["success"], e["args"]["fee"]) for e in final] == [(False, 10**18)]


def _balance(url: str, who: str, block: str | int = "latest") -> int:
    return int(Client(url).rpc("eth_getBalance", who, block if isinstance(block, str) else hex(block)), 16)


def _request(node, tmp, prompt: str, account: str = "7") -> tuple[int, int]:
    """(job id, the requester's balance before its request less the request's gas)."""
    client, who = Client(node.url, DEV[int(account)][1]), DEV[int(account)][0]
    before = _balance(node.url, who)
    request = client.request_inference(1, prompt)
    receipt = client.rpc("eth_getTransactionReceipt", request["transactionHash"])
    gas = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    return request["jobId"], before - gas


def test_a_job_its_server_never_serves_is_refunded_at_its_timeout(chain):
    node, tmp = chain
    verifiers = _Services(node, tmp, "verifiers", "--verify-inference", accounts=("5", "6"))  # 4, the server, is off
    try:
        job_id, expected = _request(node, tmp, "Bees carry")
        _refunded(node, tmp, verifiers, job_id)
    finally:
        verifiers.stop()
    assert _balance(node.url, DEV[7][0]) == expected  # the whole fee back, nothing lost in escrow


def test_a_dishonest_attributors_inflated_proof_is_disputed_rejected_slashed_and_replaced(chain):
    from node.services import attribution, model

    node, tmp = chain
    services = _Services(node, tmp, "servers", "--serve-inference", "--verify-inference")
    try:
        job_id, _ = _request(node, tmp, "The capital of France is")
        services.wait(f"job {job_id} succeeded", lambda: _status(node.url, job_id) == "succeeded")
    finally:
        services.stop()
    cheat = Client(node.url, DEV[9][1])
    _, args = attribution.prove(cheat, model.job_of(cheat, job_id), tmp / "run")
    own = next(bytes.fromhex(c["contentHash"][2:]) for c in cheat.ol("getContributions", "0x1")
               if c["contributor"] == DEV[9][0])
    assert args[4] and own not in args[4]  # the honest attribution credits the trained rows only
    hashes = [own, *args[4]]
    inflated = [10**6 - len(args[4])] + [1] * len(args[4])  # nearly all on its own row
    cheat.send("Attribution", "postProof", job_id, args[1], args[2], args[3], hashes, inflated)
    stake = int(cheat.ol("getValidator", DEV[9][0])["selfStake"], 16)

    attributors = _Services(node, tmp, "attributors", "--attribute", "--attribution-run", str(tmp / "run"))
    try:
        paid = attributors.wait(f"job {job_id} paid out", lambda: (o := Client(node.url).inference(job_id))["done"] and o,
                                timeout=3 * WINDOW_S + 180)
    finally:
        attributors.stop()
    log = attributors.text()
    logs = Client(node.url).rpc("eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["Attribution"],
                                                "topics": [None, "0x%064x" % job_id]})
    disputes = [e for e in decode_events(logs) if e["event"] == "ProofDisputed"]
    assert len(disputes) == 2  # the quorum: two of the three validators' keys, then the proof was gone
    assert {e["args"]["disputer"].lower() for e in disputes} < {DEV[int(v)][0].lower() for v in VALIDATORS}
    rejected = [e["args"] for e in decode_events(logs) if e["event"] == "ProofRejected"]
    assert rejected == [{"jobId": job_id, "poster": DEV[9][0].lower(), "disputes": 2, "slashed": stake // 10}]
    upheld = hex(disputes[1]["block"])
    slashed = [e["args"] for e in decode_events(Client(node.url).rpc("eth_getLogs", {
        "fromBlock": upheld, "toBlock": upheld, "address": ADDRESSES["Staking"]})) if e["event"] == "Slashed"]
    assert [(e["validator"].lower(), e["amount"]) for e in slashed] == [(DEV[9][0].lower(), stake // 10)]  # Staking's
    assert int(cheat.ol("getValidator", DEV[9][0])["selfStake"], 16) == stake - stake // 10
    assert paid["attribution"]["poster"] in {DEV[int(v)][0] for v in VALIDATORS}  # the honest proof was paid
    assert [c["weightPpm"] for c in paid["contributors"]] == list(args[5])
    assert not any(p["account"] == DEV[9][0] for p in paid["payments"])  # the cheat earned nothing
    said = [line for line in log.splitlines() if f"job {job_id}: proof by {DEV[9][0]} re-checked:" in line]
    assert said and own.hex() in said[0] and "disputing as" in said[0], log[-4000:]
    assert [line for line in log.splitlines() if f"disputed the proof in block {disputes[1]['block']} (tx " in line
            and line.endswith(f"): upheld, the poster slashed {stake // 10} wei")], log[-4000:]


def test_adapter_bytes_that_no_longer_match_their_hash_are_not_served_and_the_job_refunded(chain):
    node, tmp = chain
    manifest = Client(node.url).get_object(bytes.fromhex(Client(node.url).ol("getTrainingRun", "0x1")["adapterHash"][2:]))
    weights_hash = manifest[manifest.index(b"adapter_model.safetensors\x00") + 26:][:32].hex()
    blob = tmp / ".devnet" / "blobs" / weights_hash[:2] / weights_hash
    original = blob.read_bytes()
    blob.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one bit flipped on the node's disk
    services = _Services(node, tmp, "fresh", "--serve-inference", "--verify-inference")
    try:
        job_id, expected = _request(node, tmp, "Ice melts at")
        services.wait("the job dropped", lambda: f"job {job_id}: cannot serve it:" in services.text())
        assert "corrupt" in services.text().split(f"job {job_id}: cannot serve it:")[1].splitlines()[0]
        _refunded(node, tmp, services, job_id)
    finally:
        services.stop()
        blob.write_bytes(original)
    assert _balance(node.url, DEV[7][0]) == expected


def test_a_job_whose_proof_never_comes_is_settled_without_one_at_its_proof_timeout(chain):
    """No attributor holds the adapter's training run: the attribution service cannot attribute the
    job, and once proof_timeout_s has passed since it succeeded it settles the job without a proof
    (Attribution.finaliseWithoutProof): the model owner and validators are paid their parts, the
    contributors' part goes to the treasury, and the whole fee leaves escrow."""
    node, tmp = chain
    client = Client(node.url)
    servers = _Services(node, tmp, "servers-2", "--serve-inference", "--verify-inference")
    try:
        job_id, _ = _request(node, tmp, "Salt dissolves in")
        servers.wait(f"job {job_id} succeeded", lambda: _status(node.url, job_id) == "succeeded")
    finally:
        servers.stop()
    escrow = _balance(node.url, ADDRESSES["InferenceJobs"])
    (tmp / "no-run").mkdir()
    attributors = _Services(node, tmp, "no-run-attributors", "--attribute", "--attribution-run", str(tmp / "no-run"))
    try:
        paid = attributors.wait(f"job {job_id} settled", lambda: (o := client.inference(job_id))["done"] and o,
                                timeout=PROOF_TIMEOUT_S + 180)
        attributors.wait("the settlement logged", lambda: f"job {job_id}: settled without a proof in block" in
                         attributors.text())
    finally:
        attributors.stop()
    log = attributors.text()
    assert f"job {job_id}: cannot attribute it: no --attribution-run directory holds the training run" in log, log[-3000:]
    assert f"job {job_id}: no attribution proof by its deadline" in log and \
        f"job {job_id}: settled without a proof in block {paid['payoutBlock']}" in log, log[-3000:]
    assert paid["attribution"]["status"] == "settled without a proof" and paid["contributors"] == []
    roles = {}
    for p in paid["payments"]:
        roles[p["role"]] = roles.get(p["role"], 0) + p["amount"]
    assert roles == {"model owner": 2 * 10**17, "validator": 3 * (2 * 10**17 // 3),
                     "treasury": 10**18 - 2 * 10**17 - 3 * (2 * 10**17 // 3)}  # the contributors' half with it
    assert escrow - _balance(node.url, ADDRESSES["InferenceJobs"]) == 10**18  # the whole fee, nothing stuck
    deadline = client.call("Attribution", "proofDeadline", job_id)
    settled = int(client.rpc("eth_getBlockByNumber", hex(paid["payoutBlock"]), False)["timestamp"], 16)
    assert settled >= deadline  # not before its time


def test_the_supply_identity_held_after_every_block(chain):
    """Over the whole state trie of every block of this chain of faults (ol_getSupply's audit)."""
    node, _ = chain
    client = Client(node.url)
    head = int(client.rpc("eth_blockNumber"), 16)
    assert head > 20  # four jobs' requests, results, votes, proofs, disputes and refunds
    for n in range(head + 1):
        audit = client.ol("getSupply", True, hex(n))["audit"]
        assert audit["holds"] is True and int(audit["sum"], 16) == genesis.TOTAL_SUPPLY, (n, audit)
