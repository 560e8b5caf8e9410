"""`openledger train request|status|finalise` and the training services' flags refuse bad input
with a message naming it, before any node is contacted (nothing listens on the --rpc port)."""
import subprocess

import pytest

from tests.rpc.nodes import ROOT, openledger

NOWHERE = ("--rpc", "http://127.0.0.1:9")


@pytest.mark.parametrize("args, message", [
    (("train", "request", "--datanet", "1:1", "--config", "run.toml", *NOWHERE), "train request needs --max-fee FEE"),
    (("train", "request", "--datanet", "1:0", "--max-fee", "1", *NOWHERE), "invalid Datanet version '1:0'"),
    (("train", "request", "--datanet", "1:1", "--config", "missing.toml", "--max-fee", "1", "--dev-account", "7",
      *NOWHERE), "cannot read missing.toml"),
    (("train", "request", "--datanet", "1:1", "--config", "run.toml", "--max-fee", "lots", *NOWHERE),
     "invalid amount 'lots'"),
    (("train", "status", "x", *NOWHERE), "train status needs a job id (a positive integer), got 'x'"),
    (("train", "finalise", "0", "--dev-account", "7", *NOWHERE), "train finalise needs a job id"),
    (("services", "--serve-training", "--serve-inference", "--dev-account", "4", *NOWHERE),
     "run the training services (--serve-training, --verify-training) as their own process"),
    (("services", "--verify-training", "--min-training-fee", "-1", "--dev-account", "4", *NOWHERE),
     "invalid amount '-1'"),
])
def test_bad_input_is_named(tmp_path, args, message):
    (tmp_path / "run.toml").write_text("[training]\nepochs = 1\n")
    r = subprocess.run(openledger(*args), cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and message in r.stdout + r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
