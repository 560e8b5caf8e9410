"""`openledger serve` as a real process: imports adapters, answers over its socket, and names bad values."""
import http.client
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained_base_adapter(tmp_path_factory):
    """An adapter for training's tiny-llama base (the model `openledger train` produces adapters for)."""
    import training
    from inference.models import random_adapter

    base = training.load_base("tiny-llama")
    return random_adapter(base.model, tmp_path_factory.mktemp("cli") / "adapter", rank=4, seed=9)


def _serve(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "node.cli", "serve", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_serve_process_answers_completions(tmp_path, trained_base_adapter):
    proc = _serve("--base", "tiny-llama", "--store", str(tmp_path / "store"), "--add", str(trained_base_adapter),
                  "--port", "0", cwd=tmp_path)
    try:
        added = proc.stdout.readline()
        assert added.startswith("added 0x"), added + proc.stderr.read() if proc.poll() is not None else added
        adapter_id = added.split()[1]
        ready = proc.stdout.readline()
        port = int(ready.rsplit(":", 1)[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        body = {"model": adapter_id, "prompt": "hello", "max_tokens": 8, "temperature": 0}
        conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
        answer = json.loads(conn.getresponse().read())
        conn.close()
        choice = answer["choices"][0]
        assert len(choice["tokens"]) == 8 or choice["finish_reason"] == "stop"
        assert isinstance(choice["text"], str) and answer["openledger"]["commitment"].startswith("0x")
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize("args, match", [
    (["--add", "/no/such/adapter"], "--add '/no/such/adapter': not a directory"),
    (["--base", "gpt-17"], "--base 'gpt-17'"),
    (["--targets", "c_attn"], "--targets 'c_attn'"),
    (["--port", "70000"], "invalid port 70000"),
    (["--max-batch", "0"], "invalid value 0"),
])
def test_bad_values_are_named(tmp_path, capsys, args, match):
    from node.cli import main

    try:
        base = [] if "--base" in args else ["--base", "tiny-llama"]  # the default, smollm2, takes long to load
        status = main(["serve", "--store", str(tmp_path / "store"), *base, *args])
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    assert status != 0 and match in capsys.readouterr().err
