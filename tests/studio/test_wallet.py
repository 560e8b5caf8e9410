"""Signing in the studio through an injected EIP-1193 wallet (tests/studio/wallet.js: a dev key,
viem's privateKeyToAccount): create a Datanet, contribute a file, curate and publish as its owner,
request an inference and watch it go through result, votes, attribution and the split paid. Bad
input (a wrong file, a fee the account cannot pay, a wrong network, what the chain would refuse)
shows a clear message and sends nothing: no request reaches the wallet to sign, the nonce stays."""
from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_utils import keccak

import genesis
from node.sdk import Client
from tests.rpc.nodes import call
from tests.studio import scene
from tests.studio.conftest import needs_browser
from tests.studio.scene import DEV, WEIGHTS

pytestmark = needs_browser
CHAIN_ID = genesis.devnet().chain_id


def message(b, form: str, timeout: float = 30) -> str:
    """The outcome a form shows once it has one (ok or error)."""
    return b.wait_for(f"(() => {{ const m = document.querySelector('{form} .msg');"
                      f" return /\\b(ok|error)\\b/.test(m.className) && m.className + ': ' + m.textContent; }})()",
                      timeout, what=f"{form} to answer")


def nonce(url: str, address: str) -> int:
    return int(call(url, "eth_getTransactionCount", address, "pending")["result"], 16)


def signing_requests(b) -> list[str]:
    return b.evaluate("window.__wallet.log.map(r => r.method).filter(m => m === 'eth_sendTransaction')")


def test_create_contribute_curate_publish(chain, open_studio, tmp_path, artefacts):
    node, _ = chain
    b = open_studio(key=DEV[0][1])
    # create a Datanet as account 0
    b.page("#/datanets", "Create a Datanet")
    b.evaluate("document.querySelector('#create').open = true")
    b.fill("#create-form [name=name]", "street sounds")
    b.fill("#create-form [name=description]", "Recordings of streets")
    b.fill("#create-form [name=curators]", DEV[1][0])
    b.click("#create-form button[type=submit]")
    assert "ok: Created in block" in message(b, "#create-form")
    created = call(node.url, "ol_getDatanet", hex(Client(node.url).call("Datanets", "datanetCount")))["result"]
    assert (created["name"], created["owner"]) == ("street sounds", DEV[0][0])
    assert call(node.url, "ol_getBlob", created["descriptionHash"])["result"] == "0x" + b"Recordings of streets".hex()

    # contribute a text file to Datanet 1 as account 2
    b.evaluate(f"window.__wallet.use({json.dumps(DEV[2][1])})")
    b.page("#/datanets/1", "Contribute a file")
    row = tmp_path / "row.txt"
    row.write_text("Owls hunt at night and sleep by day.")
    b.set_file("#contribute-form input[type=file]", row)
    b.click("#contribute-form button[type=submit]")
    assert "ok: Contributed row.txt (36 bytes" in message(b, "#contribute-form")
    h = "0x" + keccak(row.read_bytes()).hex()
    record = call(node.url, "ol_getContribution", "0x1", h)["result"]
    assert (record["contributor"], record["status"]) == (DEV[2][0], "0x1")  # pending
    assert call(node.url, "ol_getBlob", h, "0x1")["result"] == "0x" + row.read_bytes().hex()
    b.wait_for(f"document.querySelector('#contributions').innerText.includes('{h[:8]}')", 15)

    # curate as the owner: the curation panel appears, with the row's text to read
    b.evaluate(f"window.__wallet.use({json.dumps(DEV[0][1])})")
    b.wait_for("!document.querySelector('#curation').hidden && "
               "document.querySelector('#pending').innerText.includes('Owls hunt at night')", 15)
    assert "owner" in b.text("#role")
    b.evaluate(f"document.querySelector('#pending button[data-hash=\"{h}\"][data-accept=\"1\"]').closest('tr')"
               ".querySelector('input').value = '75'")
    b.click(f"#pending button[data-hash=\"{h}\"][data-accept=\"1\"]")
    b.wait_for("document.querySelector('#curate-msg').className.includes('ok')", 30)
    assert call(node.url, "ol_getContribution", "0x1", h)["result"]["status"] == "0x2"
    assert call(node.url, "ol_getContribution", "0x1", h)["result"]["score"] == hex(75)
    b.click("#publish-form button[type=submit]")
    assert "ok: Published in block" in message(b, "#publish-form")
    assert call(node.url, "ol_getDatanet", "0x1")["result"]["versionCount"] == "0x3"
    b.wait_for("document.querySelector('#versions').innerText.includes('v3')", 15)
    b.screenshot(artefacts / "wallet-curated.png")
    b.evaluate(f"window.__wallet.use({json.dumps(DEV[1][1])})")  # Datanet 1's curator may curate too
    b.wait_for("document.querySelector('#role').innerText === 'curator'", 15)
    b.evaluate(f"window.__wallet.use({json.dumps(DEV[5][1])})")  # anyone else may not: no panel
    b.wait_for("document.querySelector('#curation').hidden", 15)


def request_inference(node, open_studio, prompt: str):
    """Request an inference on adapter 1 in the page as dev account 7; (browser, job id)."""
    b = open_studio(key=DEV[7][1])
    b.page("#/jobs/request/1", "Request an inference")
    b.fill("#request-form [name=prompt]", prompt)
    before = int(call(node.url, "eth_getBalance", DEV[7][0], "latest")["result"], 16)
    b.click("#request-form button[type=submit]")
    job_id = int(b.wait_for("/^#\\/jobs\\/\\d+$/.test(location.hash) && location.hash.split('/')[2]", 30))
    b.wait_for("document.querySelector('#page').dataset.ready === '1' && !!document.querySelector('#prompt')", 15)
    assert prompt in b.text("#prompt")
    job = call(node.url, "ol_getJob", hex(job_id))["result"]
    assert (job["requester"], job["fee"], job["status"]) == (DEV[7][0], hex(10**18), "0x1")
    assert before - int(call(node.url, "eth_getBalance", DEV[7][0], "latest")["result"], 16) > 10**18  # fee + gas
    assert call(node.url, "ol_getBlob", job["promptHash"])["result"] == "0x" + prompt.encode().hex()
    return b, job_id


def test_request_an_inference(chain, open_studio, artefacts):
    node, _ = chain
    b, job_id = request_inference(node, open_studio, "Ice melts at")
    assert "waiting for a GPU validator" in b.text("#job")
    b.screenshot(artefacts / "wallet-job-requested.png")


@pytest.mark.slow
def test_watch_an_inference_to_the_split(chain, open_studio, artefacts):
    node, content = chain
    b, job_id = request_inference(node, open_studio, "Bees carry")
    # validators serve it; the page follows each step as blocks come, without a reload
    c = {i: Client(node.url, DEV[i][1]) for i in (4, 5, 6, 9)}
    out = c[4].put_blob(json.dumps({"job": job_id, "text": " pollen from flower to flower."}).encode(), public=True)
    c[4].send("InferenceJobs", "submitResult", job_id, out, c[4].put_blob(b"act %d" % job_id, public=True))
    b.wait_for("document.querySelector('#answer').innerText.includes('pollen from flower')", 15)
    for v in (5, 6):
        c[v].send("InferenceJobs", "attest", job_id, True)
    b.wait_for("document.querySelector('#job').innerText.includes('2 valid, 0 invalid')", 15)
    hashes = [bytes.fromhex(h[2:]) for h in content["hashes"][:3]]
    c[4].send("Attribution", "postProof", job_id, out, c[4].put_blob(b"proof %d" % job_id, public=True), 2, hashes, WEIGHTS)
    b.wait_for("document.querySelector('#job').innerText.includes('Attribution of this answer')", 15)
    scene.finalise(node.url, job_id)
    b.wait_for("document.querySelector('#job').innerText.includes('see the split')", 15)
    b.screenshot(artefacts / "wallet-job.png")
    text = b.page(f"#/attribution/{job_id}", "Fee split")
    assert "contributors 0.5 OPEN" in text and "50.00%" in text
    assert f"answer {job_id} (paid)" in b.evaluate("document.querySelector('svg.flow').textContent")


def test_bad_input_shows_a_clear_message_and_sends_nothing(chain, open_studio, tmp_path, artefacts):
    node, content = chain
    b = open_studio(key=DEV[2][1])
    start = nonce(node.url, DEV[2][0])
    b.page("#/datanets/1", "Contribute a file")

    def contribute(name: str, data: bytes) -> str:
        path = tmp_path / name
        path.write_bytes(data)
        b.set_file("#contribute-form input[type=file]", path)
        b.click("#contribute-form button[type=submit]")
        return message(b, "#contribute-form")

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    assert contribute("photo.png", png) == ("msg error: photo.png is not a text file (it is not UTF-8 text), and this "
                                            "Datanet takes text. Nothing was sent.")
    assert contribute("empty.txt", b"") == "msg error: empty.txt is empty. Nothing was sent."
    assert contribute("huge.txt", b"a" * (2 * 1024 * 1024 + 1)).startswith(
        "msg error: huge.txt is 2097153 bytes; a contribution is at most 2097152 bytes (2 MiB)")
    # a row already in the Datanet: the chain's own reason, from eth_estimateGas, before signing
    assert contribute("again.txt", content["rows"][0].encode()) == (
        "msg error: The chain would refuse this: duplicate contribution: contentHash already in this datanet. "
        "Nothing was sent.")
    assert "error" in call(node.url, "ol_getBlob", "0x" + keccak(png).hex(), "0x1")  # nothing was stored either
    b.screenshot(artefacts / "bad-file.png")

    # a fee the account cannot pay: a fresh account holding 0.01 OPEN asks for a 1 OPEN inference
    poor = Account.create()
    Client(node.url, DEV[9][1]).rpc("eth_sendRawTransaction", "0x" + bytes(Account.sign_transaction({
        "type": 2, "chainId": CHAIN_ID, "nonce": nonce(node.url, DEV[9][0]), "to": poor.address, "value": 10**16,
        "gas": 21_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}, DEV[9][1]).raw_transaction).hex())
    b.evaluate(f"window.__wallet.use({json.dumps('0x' + bytes(poor.key).hex())})")
    b.wait_for(f"(async () => (await window.ethereum.request({{method: 'eth_getBalance', params: ['{poor.address}', 'latest']}})) !== '0x0')()")
    b.page("#/jobs/request/1", "Request an inference")
    b.fill("#request-form [name=prompt]", "Ice melts")
    b.click("#request-form button[type=submit]")
    assert message(b, "#request-form") == (f"msg error: This needs 1 OPEN (plus gas), and {poor.address} holds 0.01 OPEN. "
                                           "Nothing was sent.")
    b.screenshot(artefacts / "bad-fee.png")
    # a number that is not an amount
    b.page("#/validators", "Delegate")
    b.fill("#delegate-form [name=amount]", "-5")
    b.click("#delegate-form button[type=submit]")
    assert message(b, "#delegate-form") == 'msg error: Amount: "-5" is not an amount of OPEN (e.g. 1.5). Nothing was sent.'
    assert signing_requests(b) == [] and nonce(node.url, poor.address) == 0 and nonce(node.url, DEV[2][0]) == start


def test_wrong_network_and_the_user_declines_to_switch(chain, open_studio, tmp_path):
    node, _ = chain
    row = tmp_path / "row.txt"
    row.write_text("Rain falls when clouds grow heavy.")
    # the wallet is on chain 1 and the user declines to switch: the page says so and sends nothing
    start = nonce(node.url, DEV[3][0])
    b = open_studio(key=DEV[3][1], chain_id=1, can_switch=False)
    b.click("#wallet")
    b.wait_for("document.querySelector('#banner').innerText.startsWith('Wrong network')", 15)
    assert b.text("#wallet") == "Wrong network (1)"
    b.page("#/datanets/1", "Contribute a file")
    b.set_file("#contribute-form input[type=file]", row)
    b.click("#contribute-form button[type=submit]")
    assert message(b, "#contribute-form") == (
        f"msg error: Wrong network: your wallet is on chain 1, this node is chain {CHAIN_ID} (OpenLedger devnet), and "
        "the wallet did not switch (declined). Nothing was sent.")
    assert signing_requests(b) == [] and nonce(node.url, DEV[3][0]) == start


@pytest.mark.slow
def test_a_wallet_that_lacks_the_chain_gets_it_added(chain, open_studio, tmp_path):
    """The page adds the chain (EIP-3085), switches to it (EIP-3326), and sends."""
    node, _ = chain
    row = tmp_path / "row.txt"
    row.write_text("Snow is rain that froze on its way down.")
    b = open_studio(key=DEV[3][1], chain_id=1, chains=[1])
    b.page("#/datanets/1", "Contribute a file")
    b.set_file("#contribute-form input[type=file]", row)
    b.click("#contribute-form button[type=submit]")
    assert message(b, "#contribute-form").startswith("msg ok: Contributed row.txt")
    added = b.evaluate("window.__wallet.log.filter(r => r.method === 'wallet_addEthereumChain')[0].params[0]")
    assert added["chainId"] == hex(CHAIN_ID) and added["nativeCurrency"]["symbol"] == "OPEN"
    assert added["rpcUrls"] == [node.url + "/"]
    assert b.text("#wallet").startswith(DEV[3][0][:8])


@pytest.mark.slow
def test_an_allowlist_datanet_row_is_read_with_a_signature(chain, open_studio):
    """The owner reads a pending row of an allowlist Datanet by signing the node's EIP-191 message."""
    node, _ = chain
    row = b"Private: the door code changes on Mondays."
    Client(node.url, DEV[2][1]).put_blob(row)
    d = Client(node.url).call("Datanets", "datanetCount") + 1
    scene.rounds(node.url, [(0, "Datanets", "createDatanet", "private notes", bytes(32), 0, "none", 1, 0, 1000, [])],
                 [(0, "Datanets", "setAllowed", d, DEV[2][0], True)],
                 [(2, "Datanets", "contribute", d, keccak(row), len(row))])
    b = open_studio(key=DEV[0][1])
    b.page(f"#/datanets/{d}", "Contribute a file")
    b.wait_for("!document.querySelector('#curation').hidden && !!document.querySelector('#pending button[data-read]')", 15)
    assert not b.evaluate("document.querySelector('#allow-form').hidden")  # the owner manages the allowlist
    b.click("#pending button[data-read]")
    b.wait_for("document.querySelector('#pending').innerText.includes('the door code changes')", 15)
    signed = b.evaluate("window.__wallet.log.filter(r => r.method === 'personal_sign').map(r => r.params[0])")
    assert bytes.fromhex(signed[0][2:]).decode() == f"openledger ol_getBlob chain {CHAIN_ID} blob 0x{keccak(row).hex()}"


@pytest.mark.slow
def test_stake_register_delegate_undelegate(chain, open_studio):
    node, _ = chain
    fresh = Account.create()
    Client(node.url, DEV[9][1]).rpc("eth_sendRawTransaction", "0x" + bytes(Account.sign_transaction({
        "type": 2, "chainId": CHAIN_ID, "nonce": nonce(node.url, DEV[9][0]), "to": fresh.address, "value": 500 * 10**18,
        "gas": 21_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}, DEV[9][1]).raw_transaction).hex())
    b = open_studio(key="0x" + bytes(fresh.key).hex())
    b.wait_for(f"(async () => (await window.ethereum.request({{method: 'eth_getBalance', params: ['{fresh.address}', 'latest']}})) !== '0x0')()")
    b.page("#/validators", "Register as a validator")
    b.fill("#register-form [name=stake]", "150")
    b.fill("#register-form [name=commission]", "7.5")
    b.click("#register-form button[type=submit]")
    assert message(b, "#register-form").startswith("msg ok: Registered in block")
    v = call(node.url, "ol_getValidator", fresh.address)["result"]
    assert (v["selfStake"], v["commissionPpm"], v["active"]) == (hex(150 * 10**18), hex(75_000), True)
    b.wait_for(f"document.querySelector('#validator-list').innerText.includes('{fresh.address[:8]}')", 15)
    b.evaluate(f"window.__wallet.use({json.dumps(DEV[8][1])})")  # the delegator of validator 4
    b.evaluate(f"document.querySelector('#manage-validator').value = {json.dumps(DEV[4][0])}")
    b.fill("#manage-form [name=amount]", "10")
    b.click("#manage-form button[type=submit]")
    assert message(b, "#manage-form").startswith("msg ok: Done in block")
    assert Client(node.url).call("Staking", "delegation", DEV[8][0], DEV[4][0]) == 40 * 10**18
    assert call(node.url, "ol_getRewards", DEV[8][0])["result"]["unbonding"]["amount"] == hex(10 * 10**18)
