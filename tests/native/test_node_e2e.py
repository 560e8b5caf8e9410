"""The native modules end to end on a real node process: web3.py `contract.functions...` with the
committed ABIs, events from eth_getLogs, `ol_` reads, the blob store, and the CLI.

The node runs `openledger init` + `openledger run --http.api eth,net,web3,ol --block-time 0`
on a devnet genesis with short inference/dispute windows (genesis economics parameters)."""
import dataclasses
import json
import os
import subprocess
import time

import pytest
from tests.native.conftest import OPEN, H
from tests.rpc.nodes import NodeProcess, free_port, openledger
from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractLogicError

import genesis
from node.sdk import Client, SdkError
from vm.merkle import merkle_root
from vm.modules import MODULES, load_abi
from vm.modules.system import VESTING

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DISPUTE_WINDOW_S = 2


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    d = tmp_path_factory.mktemp("olnode")
    g = genesis.devnet()
    g = dataclasses.replace(g, economics=dataclasses.replace(g.economics, dispute_window_s=DISPUTE_WINDOW_S,
                                                             job_timeout_s=60))
    (d / "genesis.json").write_text(genesis.to_json(g))
    subprocess.run(openledger("init", str(d / "genesis.json"), "--datadir", str(d / "data")),
                   cwd=ROOT, check=True, capture_output=True)
    port = free_port()
    node = NodeProcess(openledger("run", "--datadir", str(d / "data"), "--http.port", str(port),
                                  "--http.api", "eth,net,web3,ol", "--block-time", "0"), port, d / "node.log")
    try:
        yield node.wait_ready(60).url, Web3(Web3.HTTPProvider(node.url)), g
    finally:
        node.stop()


class Actor:
    """A dev account driving contracts through web3.py."""

    def __init__(self, w3: Web3, index: int) -> None:
        self.w3 = w3
        self.address, self.key = genesis.dev_accounts()[index]

    def c(self, module: str):
        m = next(m for m in MODULES if m.name == module)
        return self.w3.eth.contract(address=Web3.to_checksum_address(m.address), abi=load_abi(module))

    def send(self, module: str, fn: str, *args, value: int = 0, gas: int | None = None):
        call = getattr(self.c(module).functions, fn)(*args)
        tx = call.build_transaction({"from": self.address, "value": value,
                                     "nonce": self.w3.eth.get_transaction_count(self.address, "pending"),
                                     **({"gas": gas} if gas else {})})
        signed = Account.sign_transaction(tx, self.key)
        receipt = self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(signed.raw_transaction),
                                                            timeout=30, poll_latency=0.05)
        return receipt


def test_full_flow_over_json_rpc(node):
    url, w3, g = node
    a = [Actor(w3, i) for i in range(8)]
    first_block = w3.eth.block_number
    assert a[0].send("Datanets", "createDatanet", "wiki", H(100), 0, "CC-BY-4.0", 0, 0, 10**6, [a[1].address]).status == 1
    rows = [b"row one", b"row two", b"row three"]
    client = Client(url, a[2].key)
    for row in rows:
        assert client.put_blob(row) == keccak(row)
        assert a[2].send("Datanets", "contribute", 1, keccak(row), len(row)).status == 1
    for row in rows[:2]:
        assert a[1].send("Datanets", "curate", 1, keccak(row), True, 80).status == 1
    assert a[0].send("Datanets", "publishVersion", 1).status == 1
    assert a[0].send("Models", "registerBaseModel", "tiny-gpt2", H(200)).status == 1
    assert a[3].send("Models", "commitTrainingRun", 1, 1, 1, H(201), 7, H(202), H(203), H(204)).status == 1
    assert a[3].send("Models", "registerAdapter", 1, OPEN).status == 1
    for v in (4, 5, 6):
        assert a[v].send("Staking", "registerValidator", 50_000, 1, value=200 * OPEN).status == 1
    assert a[7].send("InferenceJobs", "requestInference", 1, H(301), 2 * OPEN, value=2 * OPEN).status == 1
    assert a[4].send("InferenceJobs", "submitResult", 1, H(302), H(303)).status == 1
    assert a[5].send("InferenceJobs", "attest", 1, True).status == 1
    assert a[6].send("InferenceJobs", "attest", 1, True).status == 1
    hashes = [keccak(r) for r in rows[:2]]
    posted = a[4].send("Attribution", "postProof", 1, H(302), H(400), 1, hashes, [600_000, 400_000])
    deadline = a[4].c("Attribution").events.ProofPosted().process_receipt(posted)[0].args.disputeDeadline
    time.sleep(max(0, deadline - time.time()) + 1)  # automined blocks may run ahead of the clock
    before = {x.address: w3.eth.get_balance(x.address) for x in a}
    treasury = Web3.to_checksum_address(g.treasury)
    treasury_before = w3.eth.get_balance(treasury)
    # explicit gas: an estimate would run at the latest block's timestamp, still inside the window
    finaliser = Actor(w3, 9)  # any account; the proposer (paid tips and the release) is the devnet's validator
    finaliser_before = w3.eth.get_balance(finaliser.address)
    receipt = finaliser.send("Attribution", "finaliseProof", 1, gas=500_000)
    assert receipt.status == 1
    fee_cost = receipt.gasUsed * receipt.effectiveGasPrice

    # events through eth_getLogs, decoded by web3 with the committed ABI
    contributed = a[0].c("Datanets").events.Contributed.get_logs(from_block=first_block)
    assert [e.args.contentHash for e in contributed] == [keccak(r) for r in rows]
    assert all(e.args.contributor == a[2].address for e in contributed)
    version = a[0].c("Datanets").events.VersionPublished.get_logs(from_block=first_block)[0].args
    assert version.root == merkle_root(hashes) and version.count == 2
    split = a[0].c("Attribution").events.FeeSplit.get_logs(from_block=receipt.blockNumber)[0].args
    assert (split.contributors, split.modelOwner, split.validators, split.treasury) == (
        OPEN // 2, OPEN // 5, OPEN // 5 - 2, OPEN // 10 + 2)  # 0.2 OPEN / 3 leaves 2 wei to the treasury

    # fee split visible in balances (validators also earn the block's reserve release)
    assert w3.eth.get_balance(a[2].address) - before[a[2].address] == OPEN // 2
    assert w3.eth.get_balance(a[3].address) - before[a[3].address] == OPEN // 5
    assert w3.eth.get_balance(finaliser.address) - finaliser_before == -fee_cost
    assert w3.eth.get_balance(treasury) - treasury_before == OPEN // 10 + 2

    # ... and in ol_ reads and the view functions
    rewards = client.ol("getRewards", a[2].address)
    assert int(rewards["rewards"], 16) == OPEN // 2
    proof = client.ol("getProof", "0x1")
    assert proof["status"] == "0x2" and [e["weightPpm"] for e in proof["entries"]] == ["0x927c0", "0x61a80"]
    assert client.ol("getJob", "0x1")["status"] == "0x3"
    d = client.ol("getDatanet", "0x1")
    assert d["name"] == "wiki" and d["contributionCount"] == "0x3" and d["versionCount"] == "0x1"
    assert client.ol("getVersion", "0x1", "0x1")["root"] == "0x" + merkle_root(hashes).hex()
    assert [c["contentHash"] for c in client.ol("getContributions", "0x1")] == ["0x" + h.hex() for h in map(keccak, rows)]
    assert client.get_blob(keccak(rows[0]), 1) == rows[0]
    assert a[0].c("Models").functions.getAdapter(1).call() == [a[3].address, 1, OPEN]
    assert a[0].c("Economics").functions.rewardsOf(a[2].address).call() == OPEN // 2
    assert a[0].c("InferenceJobs").functions.getJob(1).call()[4] == 3  # succeeded
    assert a[0].c("Staking").functions.totalStake().call() == 600 * OPEN
    reserve, locked, burned, released = a[0].c("Economics").functions.supply().call()
    assert released > 0 and locked == g.group_total("team") + g.group_total("investors")
    assert len(client.ol("getValidators")) == 3
    # the supply identity from real balances: every account that holds OPEN on this chain
    supply = {k: int(v, 16) for k, v in client.ol("getSupply").items()}
    holders = {Web3.to_checksum_address(x) for x in g.accounts} | {x for x, _ in genesis.dev_accounts()} | {
        Web3.to_checksum_address(m.address) for m in MODULES} | {treasury, Web3.to_checksum_address(VESTING),
                                                                 genesis.dev_validator()[0]}
    held = sum(w3.eth.get_balance(x) for x in holders)
    assert held == supply["reserve"] + supply["locked"] + supply["circulating"]
    assert held + supply["burned"] == genesis.TOTAL_SUPPLY


def test_reverts_reach_web3_with_their_reason(node):
    url, w3, _ = node
    user = Actor(w3, 8)
    with pytest.raises(ContractLogicError, match="unknown datanet 77"):
        user.c("Datanets").functions.contribute(77, H(1), 10).call({"from": user.address})
    receipt = user.send("Datanets", "contribute", 77, H(1), 10, gas=100_000)  # mined, reverted, gas charged
    assert receipt.status == 0 and 21_000 < receipt.gasUsed < 100_000
    with pytest.raises(SdkError) as e:
        Client(url, user.key).send("Staking", "withdraw")
    assert e.value.reason == "nothing unbonding"


def test_blob_store_checks_hashes_and_access(node):
    url, w3, _ = node
    owner, stranger, member = Client(url, genesis.dev_accounts()[0][1]), Client(url, genesis.dev_accounts()[9][1]), \
        Client(url, genesis.dev_accounts()[8][1])
    with pytest.raises(SdkError, match="blob hash mismatch"):
        owner.ol("putBlob", "0x" + b"abc".hex(), "0x" + H(5).hex())
    with pytest.raises(SdkError, match="exceeds"):
        owner.ol("putBlob", "0x" + (b"x" * (2 * 1024 * 1024 + 1)).hex())
    with pytest.raises(SdkError, match="invalid argument"):
        owner.ol("putBlob", "0xzz")
    count = owner.call("Datanets", "datanetCount")
    owner.send("Datanets", "createDatanet", "private", H(1), 0, "proprietary", 1, 0, 10**6, [])
    private = count + 1
    owner.send("Datanets", "setAllowed", private, member.address, True)
    secret = b"members only"
    member.put_blob(secret)
    member.send("Datanets", "contribute", private, keccak(secret), len(secret))
    assert member.get_blob(keccak(secret), private) == secret
    assert owner.get_blob(keccak(secret), private) == secret
    with pytest.raises(SdkError, match="may not read datanet"):
        stranger.get_blob(keccak(secret), private)
    with pytest.raises(SdkError, match="allowlist-only"):
        Client(url).get_blob(keccak(secret), private)
    with pytest.raises(SdkError, match="unknown contribution"):
        owner.get_blob(keccak(b"never contributed"), private)
    # objects the chain names outside Datanets (adapters, prompts, outputs, proofs) are public by hash;
    # a Datanet row is not served by its hash alone, so an allowlist row stays behind its rule
    with pytest.raises(SdkError, match="no public object"):
        Client(url).get_object(keccak(secret))
    assert stranger.put_blob(b"an output", public=True) == keccak(b"an output")
    assert Client(url).get_object(keccak(b"an output")) == b"an output"
    with pytest.raises(SdkError, match="blob hash mismatch"):
        owner.ol("putBlob", "0x" + b"abc".hex(), "0x" + H(5).hex(), True)


def test_ol_rejects_bad_params(node):
    url, _, _ = node
    c = Client(url)
    for params, message in [((1,), "invalid argument 0"), (("0x01",), "invalid argument 0"),
                            (("0x1", "0x0", "0x65"), "limit 101 above 100"), ((), "missing value")]:
        with pytest.raises(SdkError, match=message) as e:
            c.ol("getContributions", *params)
        assert e.value.code == -32602
    with pytest.raises(SdkError, match="header not found"):
        c.ol("getDatanet", "0x1", "0xffffff")
    with pytest.raises(SdkError) as e:
        c.ol("getJob", "0x" + "f" * 64)
    assert e.value.code == 3 and e.value.reason.startswith("unknown job")


@pytest.mark.slow  # about a minute of CLI processes; the same flow runs over JSON-RPC in the fast suite
def test_cli_datanet_flow(node, tmp_path):
    url, w3, _ = node
    def cli(*args, ok=True):
        r = subprocess.run(openledger(*args, "--rpc", url), cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert (r.returncode == 0) == ok, r.stdout + r.stderr
        assert "Traceback" not in r.stderr, r.stderr  # errors are one clear line
        return r.stdout + r.stderr
    c = Client(url)
    next_id = c.call("Datanets", "datanetCount") + 1
    out = cli("datanet", "create", "--name", "cli-set", "--license", "MIT", "--curator", genesis.dev_accounts()[1][0],
              "--dev-account", "0")
    assert "Datanets.DatanetCreated" in out
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps({"text": f"sentence {i}", "label": i % 2}) for i in range(5)) + "\n")
    out = cli("datanet", "import", str(next_id), str(rows), "--column", "text", "--dev-account", "2")
    assert "imported 5 rows" in out
    first = keccak(b"sentence 0")
    cli("datanet", "curate", str(next_id), "0x" + first.hex(), "accept", "--score", "90", "--dev-account", "1")
    cli("datanet", "publish", str(next_id), "--dev-account", "0")
    shown = json.loads(cli("datanet", "show", str(next_id), "--contributions", "5"))
    assert shown["contributionCount"] == 5 and shown["acceptedCount"] == 1
    assert shown["versions"][0]["root"] == "0x" + merkle_root([first]).hex()
    assert shown["contributions"][0]["status"] == "accepted"
    assert "unknown datanet 999" in cli("datanet", "publish", "999", "--dev-account", "0", ok=False)
    assert "invalid amount 'lots'" in cli("stake", "register", "--amount", "lots", "--dev-account", "3", ok=False)
    assert "nothing unbonding" in cli("stake", "withdraw", "--dev-account", "3", ok=False)
    table = tmp_path / "rows.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"text": ["pq a", "pq b", "pq a"], "n": [1, 2, 3]}), table)
    assert "imported 2 rows" in cli("datanet", "import", str(next_id), str(table), "--column", "text",
                                    "--dev-account", "4")  # the repeated row is skipped, not sent
    assert c.call("Datanets", "getContribution", next_id, keccak(b"pq b"))[1] == 4
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n')
    assert f"{bad}:2: not JSON" in cli("datanet", "import", str(next_id), str(bad), "--dev-account", "2", ok=False)
    assert "has no column 'body'" in cli("datanet", "import", str(next_id), str(rows), "--column", "body",
                                         "--dev-account", "2", ok=False)
    assert "invalid hash" in cli("datanet", "curate", "1", "0x1234", "accept", "--dev-account", "1", ok=False)
    cli("stake", "register", "--amount", "150OPEN", "--gpu", "--dev-account", "3")
    assert "no rewards to claim" in cli("stake", "claim", genesis.dev_accounts()[3][0], "--dev-account", "5", ok=False)
    rewards = json.loads(cli("rewards", genesis.dev_accounts()[3][0]))
    assert rewards["address"] == genesis.dev_accounts()[3][0]
    assert json.loads(cli("stake", "show", genesis.dev_accounts()[3][0]))["selfStake"] == 150 * OPEN
