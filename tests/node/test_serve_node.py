"""`openledger serve --node URL`: the OpenAI-compatible endpoint serving a validator's adapters for
free local use. A devnet with adapters registered on chain (their bytes in its blob store); the
server is a real process answering a real HTTP client (urllib: the openai package is not installed
here); a bad URL, an unknown adapter and a node that serves bytes not matching their registered
hash are refused with the value named."""
import http.server
import json
import subprocess
import threading
import urllib.request

import pytest

import genesis
from node.sdk import Client
from tests.rpc.nodes import ROOT, devnet_process, free_port, openledger

DEV = genesis.dev_accounts()
OPEN = 10**18
H = lambda n: n.to_bytes(32, "big")  # noqa: E731


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A devnet with tiny-llama as base model 1 and two adapters of it registered (1 and 2, random
    LoRA weights stored on the node by `put_adapter`), and base model 2 with adapter 3 on it."""
    import training
    from inference.models import random_adapter

    tmp = tmp_path_factory.mktemp("serve-node")
    node = devnet_process(tmp / ".devnet", "--block-time", "0").wait_ready(90)
    try:
        owner, trainer = Client(node.url, DEV[0][1]), Client(node.url, DEV[3][1])
        owner.send("Datanets", "createDatanet", "facts", H(100), 0, "CC-BY-4.0", 0, 0, 10**6, [])
        Client(node.url, DEV[2][1]).send("Datanets", "contribute", 1, H(1), 1000)
        owner.send("Datanets", "curate", 1, H(1), True, 90)
        owner.send("Datanets", "publishVersion", 1)
        trainer.send("Models", "registerBaseModel", "tiny-llama", H(200))
        trainer.send("Models", "registerBaseModel", "another-base", H(201))
        base = training.load_base("tiny-llama").model
        hashes = []
        for run, (seed, base_id) in enumerate([(9, 1), (10, 1), (11, 2)], start=1):
            adapter_hash = trainer.put_adapter(random_adapter(base, tmp / f"adapter-{run}", rank=4, seed=seed))
            trainer.send("Models", "commitTrainingRun", 1, 1, base_id, H(300 + run), 7, adapter_hash, H(400), H(500))
            trainer.send("Models", "registerAdapter", run, OPEN)
            hashes.append("0x" + adapter_hash.hex())
        node.hashes = hashes
        yield node, tmp
    finally:
        node.stop()


def _post(port: int, body: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())


def test_serve_node_serves_the_chains_adapters_as_registered(chain, tmp_path):
    from inference import SamplingParams, Verifier
    from node.services import model

    node, _ = chain
    proc = subprocess.Popen(openledger("serve", "--node", node.url, "--store", str(tmp_path / "store"), "--port", "0"),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        said = []
        while not (said and said[-1].startswith("serving ")):
            line = proc.stdout.readline()
            assert line, "".join(said) + proc.stderr.read()
            said.append(line)
        assert said[:3] == [f"adapter 1 ({node.hashes[0]}) from {node.url} as adapter-1\n",
                            f"adapter 2 ({node.hashes[1]}) from {node.url} as adapter-2\n",
                            "adapter 3: skipped, its base model is 'another-base', not 'tiny-llama' "
                            "(serve it with --base another-base --adapter 3)\n"], said
        assert said[3].startswith("serving 2 adapters on tiny-llama at http://127.0.0.1:")
        port = int(said[3].rsplit(":", 1)[1].split("/")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30) as answer:
            listed = [m["id"] for m in json.loads(answer.read())["data"]]
        assert listed == ["base", "adapter-1", "adapter-2", *sorted(node.hashes[:2])]
        body = {"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}
        by_name = _post(port, {**body, "model": "adapter-2"})
        by_hash = _post(port, {**body, "model": node.hashes[1]})
        other = _post(port, {**body, "model": "adapter-1"})
    finally:
        proc.terminate()
        proc.wait(30)
    assert by_name["choices"][0]["tokens"] == by_hash["choices"][0]["tokens"]
    assert by_name["model"] == "adapter-2" and other["choices"][0]["tokens"] != by_name["choices"][0]["tokens"]

    # what it served is the registered adapter: a verifier holding adapter 2 as the chain names it accepts it
    rt = model.Runtime(Client(node.url), model.ModelOptions(store=str(tmp_path / "verifier")), 2)
    try:
        verdict = Verifier(rt.model, rt.store).verify(
            rt.adapter_hash, rt.tokens(body["prompt"]), by_name["choices"][0]["tokens"],
            SamplingParams(max_new_tokens=8, temperature=0.0), bytes.fromhex(by_name["openledger"]["proof"][2:]),
            bytes.fromhex(by_name["openledger"]["commitment"][2:]))
    finally:
        rt.close()
    assert verdict.ok, verdict.reason


@pytest.mark.parametrize("args, message", [
    (["--node", "localhost:8545"], "--node 'localhost:8545': not an http(s) URL of a node's JSON-RPC endpoint"),
    (["--node", "ftp://127.0.0.1/"], "--node 'ftp://127.0.0.1/': not an http(s) URL"),
    (["--node", "http://127.0.0.1:{free}"], "--node http://127.0.0.1:{free}: cannot reach http://127.0.0.1:{free}"),
    (["--node", "{url}", "--adapter", "9"], "--node {url}: adapter 9: ol_getAdapter: unknown adapter 9"),
    (["--adapter", "1"], "--adapter ID picks adapters registered on a chain: give --node URL too"),
])
def test_serve_node_names_a_bad_url_or_adapter(chain, tmp_path, capsys, args, message):
    from node.cli import main

    node, _ = chain
    free = free_port()
    args = [a.format(free=free, url=node.url) for a in args]
    assert main(["serve", "--store", str(tmp_path / "store"), "--port", "0", *args]) == 1
    err = capsys.readouterr().err
    assert message.format(free=free, url=node.url) in err and "Traceback" not in err, err


def test_serve_node_refuses_adapter_bytes_that_do_not_match_their_registered_hash(chain, tmp_path, capsys):
    """A node (here a proxy in front of the devnet) that serves adapter 1's weights with one bit
    flipped: nothing is served, and the adapter, its hash and the mismatch are named."""
    from node.cli import main

    node, _ = chain
    manifest = Client(node.url).get_object(bytes.fromhex(node.hashes[0][2:]))
    weights = "0x" + manifest[manifest.index(b"adapter_model.safetensors\x00") + 26:][:32].hex()

    class Tamper(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = urllib.request.Request(node.url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as upstream:
                answer = json.loads(upstream.read())
            call = json.loads(body)
            if call["method"] == "ol_getBlob" and call["params"][0] == weights:
                data = bytearray.fromhex(answer["result"][2:])
                data[-1] ^= 1
                answer["result"] = "0x" + data.hex()
            out = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tamper)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    try:
        assert main(["serve", "--node", url, "--adapter", "1", "--store", str(tmp_path / "store"), "--port", "0"]) == 1
    finally:
        proxy.shutdown()
        proxy.server_close()
    err = capsys.readouterr().err
    assert f"--node {url}: adapter 1 ({node.hashes[0]}) cannot be fetched: object served for {weights} does not " \
           "match its hash" in err, err
    assert not list((tmp_path / "store").glob("0x*"))  # nothing stored
