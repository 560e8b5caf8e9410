"""`openledger train request|status|finalise` and the training services' flags refuse bad input
with a message naming it, before any node is contacted (nothing listens on the --rpc port).
The CLI's own entry point, in process (a process per case would only add start-up time)."""
import pytest

from node.cli import main

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
def test_bad_input_is_named(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.toml").write_text("[training]\nepochs = 1\n")
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    out = capsys.readouterr()
    assert code != 0 and message in out.out + out.err, out
