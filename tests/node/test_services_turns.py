"""How validators' services share the work without talking to each other (docs/services.md "On a
network of validators"): the turn order read from the Staking module of a real node over JSON-RPC,
the objects a node lacks fetched from peers, checked by hash (a hostile peer's bytes refused), and
`openledger testnet --gpu --param` that makes such a network."""
import dataclasses
import http.server
import json
import subprocess
import threading
import time

import pytest
from eth_utils import keccak

import genesis
from node.chain import Node
from node.cli import testnet
from node.sdk import Client, SdkError
from node.services.jobs import TAKEOVER_SHARE, Services
from node.services.model import ModelOptions
from node.services.peers import PeerClient
from tests.node.serving import web3_for
from tests.rpc.nodes import free_port, openledger

DEV = genesis.dev_accounts()
APIS = ("eth", "net", "web3", "ol")


def _url(w3) -> str:
    return w3.provider.endpoint_uri


@pytest.fixture
def network_node(tmp_path):
    """A node of a four-validator genesis (dev accounts 0..3 staked): 0, 1, 2 serve inference, 3 does not."""
    g = testnet.testnet_genesis([DEV[i][0] for i in range(4)], gpu=True)
    g = dataclasses.replace(g, validators=g.validators[:3] + (dataclasses.replace(g.validators[3], capabilities=0),))
    with Node.init(tmp_path / "data", g) as node, web3_for(node, APIS) as w3:
        yield _url(w3), tmp_path


def _services(url: str, folder, *accounts: int) -> Services:
    return Services(url, [DEV[a][1] for a in accounts], folder, serve=True, verify=True, options=ModelOptions())


def test_the_turn_order_is_the_staking_modules_and_passes_on_after_the_takeover_period(network_node):
    url, tmp = network_node
    svc = _services(url, tmp / "s1", 1)
    try:
        addresses = [DEV[i][0].lower() for i in range(4)]
        assert svc._validators(gpu=True) == addresses[:3]  # registration order; 3 may not serve
        assert svc._validators() == addresses
        timeout = int(svc._params()["job_timeout_s"], 16)
        takeover = timeout // TAKEOVER_SHARE
        now = int(time.time())

        def job(requested_at: int) -> dict:
            return {"deadline": hex(requested_at + timeout)}

        signer, later = svc._server(4, job(now))  # 4 mod 3 = 1: validator 1's own job, at once
        assert signer is not None and signer.address == DEV[1][0] and later is None
        signer, later = svc._server(3, job(now))  # validator 0's job: 1 is next in turn, a period later
        assert signer is None and later == now + takeover
        signer, _ = svc._server(3, job(now - takeover))  # 0 has been away a whole period: 1 takes it
        assert signer is not None and signer.address == DEV[1][0]
        assert svc._server(2, job(now - takeover))[0] is None  # validator 2's: 0 comes before 1 (two periods)
        # the proof: its server (here 3, no GPU but a validator) posts first; 1 is second after it
        assert svc._turn(svc._validators(), addresses[3], now) == (None, float(now + 2 * takeover))
    finally:
        svc.close()
    outsider = _services(url, tmp / "s2", 7)  # a key no validator holds: no turn ever
    try:
        assert outsider._server(1, job(0)) == (None, None)
    finally:
        outsider.close()


class _Hostile(http.server.BaseHTTPRequestHandler):
    """A peer answering every ol_getBlob with other bytes than those asked for."""

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "0x" + b"not the object".hex()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_object_the_node_lacks_comes_from_a_peer_checked_and_kept(tmp_path):
    hostile = http.server.HTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=hostile.serve_forever, daemon=True).start()
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: a validator that is down
    with Node.init(tmp_path / "a", genesis.devnet()) as a, Node.init(tmp_path / "b", genesis.devnet()) as b, \
            web3_for(a, APIS) as wa, web3_for(b, APIS) as wb:
        data = b"a prompt stored on node a only"
        blob_hash = Client(_url(wa)).put_blob(data, public=True)
        with pytest.raises(SdkError):
            Client(_url(wb)).get_object(blob_hash)
        client = PeerClient(_url(wb), [dead, f"http://127.0.0.1:{hostile.server_port}", _url(wa)])
        assert client.get_object(blob_hash) == data  # the dead and the hostile peers skipped
        assert Client(_url(wb)).get_object(blob_hash) == data  # kept on b: served from there now

        with pytest.raises(SdkError, match="no public object"):  # nobody has it: the own node's answer
            client.get_object(keccak(b"nowhere"))

        # what a client stored or read is kept in memory: read again with no node asked
        stored = client.put_blob(b"a result this validator stored", public=True)
        blob_file = tmp_path / "b" / "blobs" / stored.hex()[:2] / stored.hex()
        blob_file.unlink()
        assert client.get_object(stored) == b"a result this validator stored"
        with pytest.raises(SdkError):
            Client(_url(wb)).get_object(stored)
    hostile.shutdown()


@pytest.mark.parametrize("param, message", [
    ("nonsense=1", "--param nonsense: unknown parameter"),
    ("dispute_window_s=soon", "not an integer"),
    ("dispute_window_s", "want NAME=VALUE"),
])
def test_testnet_names_a_bad_param_and_starts_nothing(tmp_path, param, message):
    r = subprocess.run(openledger("testnet", "--validators", "1", "--datadir", str(tmp_path / "net"), "--gpu",
                                  "--param", param, "--once"), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "net" / "genesis.json").exists()


def test_testnet_gpu_makes_every_validator_a_gpu_inference_validator(tmp_path):
    members = testnet._setup(tmp_path / "net", 2, [free_port(), free_port()], [free_port(), free_port()], gpu=True,
                             params={"dispute_window_s": "4"})
    g = genesis.load(tmp_path / "net" / testnet.GENESIS_FILE)
    assert [v.capabilities for v in g.validators] == [1, 1] and g.economics.dispute_window_s == 4
    assert [v.address for v in g.validators] == [bytes.fromhex(m.address[2:]) for m in members]
