"""`openledger train --datanet ID:VERSION --commit` against a real node process: rows come from the
node's accepted list and blob store, the seed from its latest block, and the record lands on chain."""
import dataclasses
import json

import pytest
from eth_utils import keccak

import genesis
from node.cli import main
from node.sdk import Client
from tests.rpc.nodes import devnet_process
from tests.training.training_testdata import make_rows
from training import TrainingRun, derive_seed

CONFIG = "[training]\nrank = 4\nalpha = 8\nbatch_size = 4\nmax_length = 32\ncheckpoint_every = 2\n"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trainnode")
    node = devnet_process(tmp / "data", "--http.api", "eth,net,web3,ol", "--block-time", "0")
    try:
        yield node.wait_ready(90).url, tmp
    finally:
        node.stop()


@pytest.fixture(scope="module")
def version(node):
    """Datanet 1, version 1: ten rows contributed by account 2, eight accepted by the owner."""
    url, _ = node
    owner, contributor = (Client(url, genesis.dev_accounts()[i][1]) for i in (0, 2))
    owner.send("Datanets", "createDatanet", "reviews", keccak(b"reviews"), 0, "MIT", 0, 0, 10 * 1024 * 1024, [])
    datanet_id = owner.call("Datanets", "datanetCount")
    rows = make_rows(10)
    for row in rows:
        contributor.send("Datanets", "contribute", datanet_id, contributor.put_blob(row), len(row))
    accepted = [rows[i] for i in (3, 0, 1, 2, 4, 5, 6, 9)]  # acceptance order is the committed order
    for row in accepted:
        owner.send("Datanets", "curate", datanet_id, keccak(row), True, 80)
    owner.send("Datanets", "publishVersion", datanet_id)
    owner.send("Models", "registerBaseModel", "tiny-llama", keccak(b"tiny-llama"))
    return datanet_id, accepted


def test_train_from_chain_and_commit(node, version, tmp_path, capsys):
    url, tmp = node
    datanet_id, accepted = version
    (tmp_path / "run.toml").write_text(CONFIG)
    out = tmp_path / "run"
    code = main(["train", "--datanet", f"{datanet_id}:1", "--base", "tiny-llama", "--config", str(tmp_path / "run.toml"),
                 "--out", str(out), "--commit", "--base-model-id", "1", "--price", "1OPEN", "--dev-account", "1",
                 "--rpc", url])
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0, printed + captured.err
    summary = json.loads(printed[printed.index("\n{") + 1:])
    record = TrainingRun.from_json((out / "record.json").read_bytes())
    client = Client(url)
    root, count, _ = client.call("Datanets", "getVersion", datanet_id, 1)
    assert (record.datanet_root, record.row_count) == (root, count) and count == len(accepted)
    assert record.seed == derive_seed(bytes.fromhex(summary["seed_block"][2:]), record.run_id)
    run_id = summary["chain_run_id"]
    assert run_id == record.run_id == 1
    on_chain = client.ol("getTrainingRun", hex(run_id))
    assert on_chain["adapterHash"] == "0x" + record.adapter_hash.hex()
    assert on_chain["configHash"] == "0x" + record.config_hash.hex()
    assert on_chain["metricsHash"] == "0x" + record.metrics_hash.hex()
    assert int(on_chain["seed"], 16) == record.seed and on_chain["dataRoot"] == "0x" + root.hex()
    adapter = client.ol("getAdapter", hex(summary["adapter_id"]))
    assert int(adapter["runId"], 16) == run_id and int(adapter["pricePerInference"], 16) == 10**18

    assert main(["verify-run", "--run", str(out), "--datanet", f"{datanet_id}:1", "--rpc", url, "-k", "2",
                 "--tolerance", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["accepted"]
    assert main(["verify-run", "--run", str(out), "--chain-run", str(run_id), "--rpc", url, "-k", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["accepted"]
    forged = dataclasses.replace(record, metrics_hash=keccak(b"better metrics"))
    (out / "record.json").write_bytes(forged.canonical_json())
    assert main(["verify-run", "--run", str(out), "--chain-run", str(run_id), "--rpc", url]) == 2
    assert "differs from on-chain run 1 in metrics_hash" in capsys.readouterr().out
    assert main(["verify-run", "--run", str(out), "--rpc", url]) == 1
    assert "name the data" in capsys.readouterr().err


def test_chain_errors_are_named(node, version, tmp_path, capsys):
    url, _ = node
    datanet_id, _ = version
    (tmp_path / "run.toml").write_text(CONFIG)
    base = ["train", "--base", "tiny-llama", "--config", str(tmp_path / "run.toml"), "--out", str(tmp_path / "o"),
            "--rpc", url]
    assert main(base + ["--datanet", f"{datanet_id}:7"]) == 1
    assert "unknown version 7" in capsys.readouterr().err
    assert main(base + ["--data", "x.jsonl", "--commit", "--dev-account", "0"]) == 1
    assert "--commit needs --datanet" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
