"""`openledger demo` (`make demo`): the whole run on a fresh devnet with the tiny model, a hired
training run paying the contributors' data-use fee included (slow), and
its refusals (fast): a port a node already answers on, a data dir an earlier demo left."""
import os
import re
import subprocess

import pytest

import genesis
from node.sdk import Client, SdkError
from tests.rpc.nodes import ROOT, devnet_process, free_port, openledger


def _demo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250"}  # rich wraps at 80 columns without a terminal
    return subprocess.run(openledger("demo", *args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_the_demo_runs_the_economy_and_leaves_the_devnet_running(tmp_path):
    port, folder = free_port(), tmp_path / ".demo"
    try:
        r = _demo("--datadir", str(folder), "--port", str(port), timeout=900)
        out = r.stdout + r.stderr
        assert r.returncode == 0 and "Traceback" not in out, out[-4000:]
        for step in ("create the Datanet 'facts'", "3 contributors add 12 rows", "train a LoRA adapter",
                     "3 paid inferences", "prices version 1's data use at 0.3OPEN", "a builder hires a training run",
                     "who earned what, and why"):
            assert step in out
        jobs = re.findall(r"job (\d+): .* - valid, (\d+) rows credited, paid in block \d+ \((\d+) blocks after", out)
        assert [j for j, _, _ in jobs] == ["1", "2", "3"] and all(int(rows) > 0 for _, rows, _ in jobs), out[-4000:]
        assert "the supply identity holds" in out
        assert "data contribution" in out and "contributor (dev 8, 4 rows)" in out
        assert "training job 1: claimed by" in out and "training job 1: completed" in out, out[-4000:]
        assert len(re.findall(r"replayed segments \[\d+, \d+\]: valid", out)) == 2  # the two other validators
        # each contributor's row in the table shows its 0.1 OPEN data-use fee (beside the data contribution
        # its rows earned in the inferences that credited them)
        rows = [next(line for line in out.splitlines() if f"contributor (dev {a}, 4 rows)" in line) for a in (1, 2, 8)]
        assert all("data use 0.1000" in row for row in rows), rows
        assert any("data contribution" in row and "data use" in row for row in rows), rows
        assert "training work" in out  # the trainer's and verifiers' share of the fee
        client = Client(f"http://127.0.0.1:{port}")
        assert int(client.rpc("eth_blockNumber"), 16) > 0  # still running after the demo exited
        outcome = client.inference(1)
        assert outcome["done"] and sum(p["amount"] for p in outcome["payments"]) == 10**18
        for account in (1, 2, 8):  # the data-use fee as the chain credits it: 0.3 OPEN over 12 rows, 4 each
            rewards = client.rpc("ol_getRewards", genesis.dev_accounts()[account][0])
            assert int(rewards["bySource"]["data use"], 16) == 10**17
    finally:
        stop = _demo("--stop", "--datadir", str(folder))
    assert stop.returncode == 0 and "stopped the demo devnet" in stop.stdout and not folder.exists()
    with pytest.raises(SdkError):
        Client(f"http://127.0.0.1:{port}", timeout=5).rpc("eth_blockNumber")


def test_the_demo_refuses_a_data_dir_an_earlier_demo_left(tmp_path):
    (tmp_path / ".demo" / "chain").mkdir(parents=True)
    r = _demo("--datadir", str(tmp_path / ".demo"), "--port", str(free_port()))
    assert r.returncode == 1 and "holds an earlier demo: `make demo-stop` removes it" in r.stderr, r.stderr
    stop = _demo("--stop", "--datadir", str(tmp_path / ".demo"))
    assert stop.returncode == 0 and not (tmp_path / ".demo").exists()


def test_the_demo_refuses_a_port_a_node_already_answers_on(tmp_path):
    node = devnet_process(tmp_path / "other").wait_ready(90)
    try:
        r = _demo("--datadir", str(tmp_path / ".demo"), "--port", str(node.port))
    finally:
        node.stop()
    assert r.returncode == 1 and f"a node already answers at http://127.0.0.1:{node.port}" in r.stderr, r.stderr
    assert not (tmp_path / ".demo").exists()  # nothing started, nothing written
