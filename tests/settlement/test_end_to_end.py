"""Settlement end to end as a user meets it: anvil as the L1, `openledger devnet --l1 URL` (which
deploys the contracts and runs batcher, proposer and deposit relay), and the `openledger bridge`
and `derive` commands as subprocesses. A deposit reaches the L2 balance, a withdrawal is proven
against a posted root and claimed after the window (not before, not twice), and a fresh data
dir derived from the L1 alone holds the same blocks."""
import re
import subprocess
import time

import pytest
from eth_account import Account

import genesis
from node.chain import Node
from node.sdk import Client
from node.settlement import L1, Contract, Deployment
from node.settlement.derive import derive
from tests.rpc.nodes import ANVIL, ROOT as ROOT_DIR, devnet_process, openledger
from tests.settlement.conftest import start_l1

L2_USER = genesis.dev_accounts()[5][0]
L1_RECEIVER = Account.create().address


def cli(*args, check=True):
    r = subprocess.run(openledger(*args), cwd=ROOT_DIR, capture_output=True, text=True, timeout=300)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def until(fn, what, timeout=90):
    """Poll `fn` until it returns something true (a wait for background work, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.25)
    return value


@pytest.fixture
def anvil_slow(tmp_path):
    """anvil mining a block every second (not on each transaction), so posts stay in flight."""
    if not ANVIL.exists():
        pytest.skip("anvil comes from npm: run `npm install` (make test does)")
    proc = start_l1(tmp_path, "--block-time", "1")
    yield proc
    proc.stop()


@pytest.fixture
def devnet(anvil, tmp_path):
    datadir = tmp_path / "l2"
    proc = devnet_process(datadir, "--l1", anvil.url, "--l1.output-interval", "3", "--l1.confirmations", "1",
                          "--l1.batch-interval", "1", "--block-time", "0.5",
                          "--l1.finalization-period", "3600").wait_ready()
    yield proc, Deployment.load(datadir / "l1-deployment.json")
    proc.stop()


@pytest.mark.slow  # about 75 s: a dozen CLI processes and a devnet
def test_deposit_withdraw_prove_finalize_and_derive(devnet, anvil, tmp_path):
    node, d = devnet
    common = ("--l1", anvil.url, "--deployment", str(tmp_path / "l2" / "l1-deployment.json"))
    before = int(node.rpc("eth_getBalance", L2_USER, "latest"), 16)
    cli("bridge", "deposit", "10OPEN", "--to", L2_USER, *common, "--l1.dev-account", "0")
    anvil.rpc("anvil_mine", "0x1")  # the confirmation
    until(lambda: int(node.rpc("eth_getBalance", L2_USER, "latest"), 16) == before + 10 * 10**18, "the deposit")

    out = cli("bridge", "withdraw", "4OPEN", "--to", L1_RECEIVER, "--rpc", node.url, "--dev-account", "5").stdout
    tx = re.search(r"tx (0x[0-9a-f]{64})", out).group(1)
    prove = ("bridge", "prove", tx, *common, "--rpc", node.url, "--l1.dev-account", "2")
    until(lambda: cli(*prove, check=False).returncode == 0, "an output root covering the withdrawal")
    finalize = ("bridge", "finalize", tx, *common, "--rpc", node.url, "--l1.dev-account", "2")
    early = cli(*finalize, check=False)
    assert early.returncode == 1 and "FinalizationPeriodNotOver" in early.stderr
    anvil.rpc("evm_increaseTime", hex(d.finalization_period))
    anvil.rpc("anvil_mine", "0x1")
    cli(*finalize)
    token = Contract(L1(anvil.url), "L1OpenToken", d.token)
    assert token.call("balanceOf", L1_RECEIVER) == 4 * 10**18
    again = cli(*finalize, check=False)
    assert again.returncode == 1 and "AlreadyFinalized" in again.stderr
    assert "AlreadyFinalized" in cli(*prove, check=False).stderr
    status = cli("bridge", "status", *common, "--rpc", node.url).stdout
    assert "deposits: 1" in status and "L2: deposits relayed 1, forced transactions 0, withdrawals 1" in status

    # a fresh node from L1 data alone reaches the validator's block hashes
    node.stop()
    head = Contract(L1(anvil.url), "BatchInbox", d.inbox).call("nextBlock") - 1
    (tmp_path / "genesis.json").write_text((tmp_path / "l2" / "genesis.json").read_text())
    out = cli("derive", *common, "--datadir", str(tmp_path / "derived"), "--genesis", str(tmp_path / "genesis.json"))
    assert re.search(r"imported (\d+) blocks", out.stdout).group(1) == str(head)
    with Node.open(tmp_path / "l2") as validator:
        assert f"head {head} 0x{validator.header_by_number(head).hash.hex()}" in out.stdout


def test_bridge_commands_name_bad_input(anvil, tmp_path):
    bad = tmp_path / "d.json"
    bad.write_text("{}")
    r = cli("bridge", "status", "--l1", anvil.url, "--deployment", str(bad), check=False)
    assert r.returncode == 1 and "is not an L1 deployment file" in r.stderr
    r = cli("bridge", "deposit", "1OPEN", "--to", "0x12", "--l1", anvil.url, "--deployment", str(bad), check=False)
    assert r.returncode == 2 and "invalid address '0x12'" in r.stderr
    r = cli("derive", "--l1", anvil.url, "--deployment", str(tmp_path / "missing.json"), "--datadir",
            str(tmp_path / "x"), check=False)
    assert r.returncode == 1 and "cannot read the L1 deployment file" in r.stderr
    r = cli("bridge", "force", "0xzz", "--l1", anvil.url, "--deployment", str(bad), check=False)
    assert r.returncode == 2 and "invalid transaction '0xzz'" in r.stderr


@pytest.mark.slow  # about 20 s: a devnet and three CLI processes
def test_forced_transaction_through_the_cli_and_derivation_says_what_it_waits_for(devnet, anvil, tmp_path):
    """`bridge force` with a transaction the L2 never saw: it gets an L2 receipt; `bridge force`
    of garbage is queued and consumed as failed; `derive` prints what it waits for."""
    node, d = devnet
    common = ("--l1", anvil.url, "--deployment", str(tmp_path / "l2" / "l1-deployment.json"), "--l1.dev-account", "2")
    sender = Account.from_key(genesis.dev_accounts()[6][1])
    raw = bytes(sender.sign_transaction({
        "type": 2, "chainId": int(node.rpc("eth_chainId"), 16), "nonce": 0, "to": L1_RECEIVER, "value": 10**18,
        "gas": 21_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}).raw_transaction)
    out = cli("bridge", "force", "0x" + raw.hex(), *common).stdout
    tx_hash = re.search(r"as (0x[0-9a-f]{64})", out).group(1)
    anvil.rpc("anvil_mine", "0x1")  # the confirmation
    receipt = until(lambda: node.rpc("eth_getTransactionReceipt", tx_hash), "the forced transaction's L2 receipt")
    assert receipt["status"] == "0x1" and receipt["from"].lower() == sender.address.lower()
    cli("bridge", "force", "0x02deadbeef", *common)
    anvil.rpc("anvil_mine", "0x1")
    until(lambda: Client(node.url).call("L2Bridge", "nextForcedId") == 2, "the garbage consumed as failed")
    status = cli("bridge", "status", *common[:4], "--rpc", node.url).stdout
    assert "forced transactions: 2" in status and "forced transactions 2" in status
    node.stop()
    (tmp_path / "genesis.json").write_text((tmp_path / "l2" / "genesis.json").read_text())
    out = cli("derive", *common[:4], "--datadir", str(tmp_path / "derived"), "--genesis",
              str(tmp_path / "genesis.json")).stdout
    assert re.search(r"waiting for L2 block \d+: the L1 inbox holds blocks up to \d+", out)


@pytest.mark.slow  # a minute or two: a devnet killed and restarted six times
def test_node_killed_again_and_again_posts_every_block_once(anvil_slow, tmp_path):
    """kill -9 at random moments while batches and roots are in flight (the L1 mines every second,
    so posts stay pending a while): afterwards every L2 block is on the L1 exactly once, the posting
    account sent nothing that reverted, and the L1 alone derives the validator's chain."""
    import random
    datadir = tmp_path / "l2"
    flags = ("--l1", anvil_slow.url, "--l1.batch-interval", "0", "--l1.output-interval", "4")
    node = devnet_process(datadir, *flags, "--block-time", "0.5").wait_ready()
    rng = random.Random(15)
    for _ in range(6):
        time.sleep(rng.uniform(1.5, 5))
        node.kill()
        node.start()
    node.stop()
    node = devnet_process(datadir, *flags, "--block-time", "3600").wait_ready()  # no new blocks: let it finish
    d = Deployment.load(datadir / "l1-deployment.json")
    l1 = L1(anvil_slow.url)
    inbox, oracle = Contract(l1, "BatchInbox", d.inbox), Contract(l1, "OutputOracle", d.oracle)

    def settled() -> int | None:
        """The head, once all of it is on the L1 (read each time: the restarted validator may
        still decide the height it stopped at after its RPC is up)."""
        head = int(node.rpc("eth_blockNumber"), 16)
        done = inbox.call("nextBlock") == head + 1 and oracle.call("latestBlockNumber") == head // 4 * 4
        return head if done else None

    head = until(settled, "the last batch and root", timeout=120)
    node.stop()
    ranges = [(e["args"]["firstBlock"], e["args"]["lastBlock"]) for e in inbox.events("BatchAppended", d.deploy_block)]
    assert [first for first, _ in ranges] == [1] + [last + 1 for _, last in ranges[:-1]] and ranges[-1][1] == head
    sent = int(l1.rpc("eth_getTransactionCount", d.batcher, "latest"), 16)
    assert sent == len(ranges) + oracle.call("outputCount")  # not one post repeated (it would have reverted)
    with Node.init(tmp_path / "derived", genesis.load(datadir / "genesis.json")) as fresh, \
            Node.open(datadir) as validator:
        assert derive(fresh, l1, d).imported == head
        assert fresh.head().hash == validator.header_by_number(head).hash
