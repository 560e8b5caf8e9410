"""The first hour (docs/first-hour.md) as a newcomer runs it: a devnet started as `make run` starts
it, then the whole AI economy from the `openledger` command line only, no SDK script. Datanet,
import, curation, version; base model, training run with its attribution index, verification;
validators; a paid job requested, served, attested; its attribution proof posted and finalised,
and the fee split paid (the devnet's dispute window is 10 s, so within a minute of chain time).

The tutorial uses SmolLM2 (answers in words); this walk uses `tiny-llama` to stay fast."""
import json
import re
import subprocess

import pytest
from eth_utils import keccak

import genesis
from node.rpc.dispatch import Dispatcher, method_table
from node.rpc.namespaces import load_namespaces
from node.sdk import Client, SdkError
from tests.rpc.nodes import call, devnet_process, openledger

OPEN = 10**18
DEV = genesis.dev_accounts()
ROWS = [
    "The river Thames flows through London and reaches the North Sea.",
    "Bread rises because yeast turns sugar into gas.",
    "A triangle has three sides and its angles add up to 180 degrees.",
    "The heart pumps blood through the arteries to every organ.",
    "Paris is the capital of France and sits on the Seine.",
    "Bees carry pollen from flower to flower.",
    "Ice melts at zero degrees Celsius at sea level.",
    "The moon orbits the Earth about once a month.",
]


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("firsthour")
    node = devnet_process(tmp / ".devnet", "--block-time", "1")  # as `make run` starts it
    try:
        yield node.wait_ready(90).url, tmp
    finally:
        node.stop()


def test_the_first_hour_from_the_cli(devnet):
    url, tmp = devnet

    def cli(*args: str, ok: bool = True) -> str:
        r = subprocess.run(openledger(*args, "--rpc", url), cwd=tmp, capture_output=True, text=True, timeout=300)
        out = r.stdout + r.stderr
        assert (r.returncode == 0) == ok, f"openledger {' '.join(args)}:\n{out}"
        assert "Traceback" not in out, out
        return r.stdout if ok else out  # warnings of the ML libraries go to stderr

    def txs(out: str) -> list[str]:
        return re.findall(r"^tx (0x[0-9a-f]{64}) in block", out, re.MULTILINE)

    banner = (tmp / ".devnet.log").read_text()  # the validator apart from the ten user accounts, as anvil's coinbase
    validator = genesis.dev_validator()[0]
    assert banner.index("Private Keys") < banner.index(f"not a user account)\n==================\n{validator}")
    assert validator not in banner[:banner.index("Private Keys")]
    assert "dispute_window_s=10" in banner

    first_account_txs = []
    rows = tmp / "rows.jsonl"
    rows.write_text("".join(json.dumps({"text": t}) + "\n" for t in ROWS))

    # Datanet: create, import, curate every pending row, publish version 1
    first_account_txs += txs(cli("datanet", "create", "--name", "facts", "--description", "Short facts, one a row",
                                 "--license", "CC-BY-4.0", "--dev-account", "0"))
    assert call(url, "ol_getBlob", "0x" + keccak(b"Short facts, one a row").hex())["result"] == \
        "0x" + b"Short facts, one a row".hex()
    assert f"imported {len(ROWS)} rows" in cli("datanet", "import", "1", str(rows), "--column", "text",
                                                 "--dev-account", "2")
    out = cli("datanet", "curate", "1", "accept", "--all-pending", "--score", "80", "--dev-account", "0")
    assert f"accepted {len(ROWS)} contributions" in out
    first_account_txs += txs(cli("datanet", "publish", "1", "--dev-account", "0"))

    # ModelFactory: base model (hash computed), a sample config, train + commit, verify
    assert "weights hash 0x" in cli("model", "register-base", "tiny-llama", "--dev-account", "3")
    cli("train", "init", "run.toml")
    config = tmp / "run.toml"  # a random tiny model needs more steps than the sample's to learn anything
    config.write_text(config.read_text().replace("epochs = 1", "epochs = 8").replace("lr = 0.001", "lr = 0.02")
                      .replace("batch_size = 8", "batch_size = 4"))
    out = cli("train", "--datanet", "1:1", "--base", "tiny-llama", "--config", "run.toml", "--out", "run",
              "--commit", "--base-model-id", "1", "--price", "1OPEN", "--dev-account", "3")
    summary = json.loads(out[out.index("\n{") + 1:])
    assert (summary["chain_run_id"], summary["adapter_id"]) == (1, 1)
    assert json.loads(cli("verify-run", "--run", "run", "--chain-run", "1", "-k", "1"))["accepted"]
    run = json.loads(cli("model", "show", "run", "1", "--json"))
    assert run["adapterHash"] == summary["adapter_hash"]
    # every object the run names is served by hash (ol_getBlob without a datanet id)
    for field in ("adapter_hash", "config_hash", "metrics_hash"):
        assert "result" in call(url, "ol_getBlob", summary[field]), field
    assert "result" in call(url, "ol_getBlob", summary["record_hash"])

    # three GPU validators, a paid job, served and attested by recomputation
    for v in (4, 5, 6):
        cli("stake", "register", "--amount", "200OPEN", "--gpu", "--dev-account", str(v))
    assert "job 1" in cli("job", "request", "--adapter", "1", "--prompt", "The capital of France is",
                          "--dev-account", "7")
    assert "output: " in cli("job", "submit", "1", "--max-new-tokens", "8", "--dev-account", "4")
    attesters = [subprocess.Popen(openledger("job", "attest", "1", "--dev-account", str(v), "--rpc", url), cwd=tmp,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for v in (5, 6)]
    for p in attesters:  # two validators re-check the result at once, as on a network
        out = p.communicate(timeout=300)[0]
        assert p.returncode == 0 and "verdict: valid" in out, out
    job = json.loads(cli("job", "show", "1", "--json"))
    assert job["statusName"] == "succeeded" and job["prompt"] == "The capital of France is"
    assert "result" in call(url, "ol_getBlob", job["outputHash"]) and "result" in call(url, "ol_getBlob",
                                                                                         job["activationCommitment"])

    # Proof of Attribution: post, then finalise after the devnet's 10 s window; the fee is split
    cli("proof", "post", "1", "--run", "run", "--dev-account", "4")
    proof = json.loads(cli("proof", "show", "1", "--json"))
    assert proof["statusName"] == "posted" and proof["methodId"] == 2  # datainf-v1
    assert "result" in call(url, "ol_getBlob", proof["proofHash"])
    out = cli("proof", "finalise", "1", "--dev-account", "9")
    assert "Attribution.FeeSplit" in out and "contributor" in out
    assert json.loads(cli("proof", "show", "1", "--json"))["statusName"] == "paid"
    posted_at = int(call(url, "eth_getBlockByNumber", hex(_block_of(url, "ProofPosted")), False)["result"]["timestamp"], 16)
    paid_at = int(call(url, "eth_getBlockByNumber", hex(_block_of(url, "FeeSplit")), False)["result"]["timestamp"], 16)
    assert proof["disputeDeadline"] - posted_at == 10 <= paid_at - posted_at  # the devnet's window, then paid
    rewards = json.loads(cli("rewards", DEV[2][0], "--json"))
    assert rewards["rewards"] >= OPEN // 2 * 99 // 100  # the contributors' half of the 1 OPEN fee

    # the first dev account paid only its own gas: the validator has a key of its own
    assert len(first_account_txs) == 2
    curate_gas = _gas_of(url, DEV[0][0], exclude=first_account_txs)
    spent = sum(_cost(url, h) for h in first_account_txs) + curate_gas
    balance = int(call(url, "eth_getBalance", DEV[0][0], "latest")["result"], 16)
    assert balance == 10_000 * OPEN - spent
    assert int(call(url, "eth_getBalance", DEV[8][0], "latest")["result"], 16) == 10_000 * OPEN
    assert int(call(url, "eth_getBalance", validator, "latest")["result"], 16) > 0  # tips and block rewards

    # refusals in plain words (an SDK client sending what the CLI never would: a method id no method has)
    with pytest.raises(SdkError) as refused:
        Client(url, DEV[4][1]).send("Attribution", "postProof", 1, bytes.fromhex(job["outputHash"][2:]), keccak(b"p"),
                                    9, [keccak(ROWS[0].encode())], [10**6])
    assert refused.value.reason == "unknown attribution method id 9 (this chain accepts 1 graddot-v1, 2 datainf-v1, " \
                                   "3 span-v1, 4 semantic-v1, 5 ensemble-v1)"
    assert "invalid amount '-1OPEN': must be >= 0" in cli("model", "register-adapter", "1", "--price", "-1OPEN",
                                                          "--dev-account", "3", ok=False)
    assert "job 1 is succeeded, not awaiting a result" in cli("job", "submit", "1", "--dev-account", "4", ok=False)


def _block_of(url: str, event: str) -> int:
    from node.sdk import ADDRESSES, _EVENTS

    topic = next(t for (_, t), (_, name, _) in _EVENTS.items() if name == event)
    logs = call(url, "eth_getLogs", {"fromBlock": "0x0", "address": ADDRESSES["Attribution"],
                                     "topics": ["0x" + topic.hex()]})["result"]
    return int(logs[0]["blockNumber"], 16)


def _cost(url: str, tx_hash: str) -> int:
    r = call(url, "eth_getTransactionReceipt", tx_hash)["result"]
    return int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16)


def _gas_of(url: str, sender: str, exclude: list[str]) -> int:
    """What `sender` paid for its other transactions (the pipelined curation), from every block."""
    head = int(call(url, "eth_blockNumber")["result"], 16)
    total = 0
    for n in range(head + 1):
        for tx in call(url, "eth_getBlockByNumber", hex(n), True)["result"]["transactions"]:
            if tx["from"].lower() == sender.lower() and tx["hash"] not in exclude:
                total += _cost(url, tx["hash"])
    return total


def test_a_namespace_that_is_off_names_its_flag():
    """geth's text, plus which --http.api entry turns the namespace on (the devnet serves ol by default)."""
    import trio

    load_namespaces()
    d = Dispatcher(method_table({"eth_chainId": lambda: "0x1"}))
    body = b'{"jsonrpc":"2.0","id":1,"method":"ol_getDatanet","params":["0x1"]}'
    error = json.loads(trio.run(d.handle_body, body))["error"]
    assert error == {"code": -32601, "message": "the method ol_getDatanet does not exist/is not available "
                                                "(the ol API is off: add ol to --http.api)"}
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_nope","params":[]}'  # namespace on, method unknown: geth's text
    assert json.loads(trio.run(d.handle_body, body))["error"]["message"] == \
        "the method eth_nope does not exist/is not available"


def test_smaller_detours_answer_in_plain_words(tmp_path, capsys):
    """Each refused before any node, model or network is touched, with the limit or the bad value named."""
    from node.chain import Node
    from node.cli import main

    assert main(["attribute", "--run", str(tmp_path), "--prompt", "a" * 100_000, "--output", "b"]) == 1
    assert "100001 bytes together, above the 65536-byte limit" in capsys.readouterr().err
    assert main(["train", "--base", "tiny-llama"]) == 1
    assert "train needs --config or --sweep, --out, --data or --datanet (`openledger train init`" in capsys.readouterr().err
    assert main(["devnet", "--datadir", str(tmp_path / "d"), "--param", "dispute_window=5"]) == 1
    assert "--param dispute_window: unknown parameter; known: fee_split_contributors_ppm" in capsys.readouterr().err
    assert main(["devnet", "--datadir", str(tmp_path / "d"), "--param", "attestation_quorum=0"]) == 1
    assert "attestation_quorum=0: economics.attestationQuorum must be >= 1" in capsys.readouterr().err
    Node.init(tmp_path / "d", genesis.devnet()).close()  # a devnet made with the default windows ...
    assert main(["devnet", "--datadir", str(tmp_path / "d"), "--param", "dispute_window_s=5"]) == 1  # ... restarted
    assert "holds a chain started with other parameters (dispute_window_s 10 -> 5)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["devnet", "--param", "dispute_window_s"])
    assert "invalid --param 'dispute_window_s': want NAME=VALUE" in capsys.readouterr().err


def test_the_sdk_names_the_adapter_files_training_hashes():
    """The SDK stores adapters without importing torch, so it names peft's files itself."""
    from node.sdk import ADAPTER_FILES
    from training.record import ADAPTER_FILES as TRAINING_FILES

    assert ADAPTER_FILES == TRAINING_FILES
