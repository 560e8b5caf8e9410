"""Browsers as go-ethereum and anvil treat them (#21 case 6).

`openledger run` has go-ethereum's defaults: no CORS headers unless `--http.corsdomain` lists the
origin, Host names other than `localhost` (and IP addresses) refused with 403 (`--http.vhosts`),
WebSocket origins other than http://localhost and this host refused (`--ws.origins`). The devnet
lets any origin in, as anvil does (a dapp on localhost:3000 can call it), but still answers only
loopback Host names, so a DNS-rebinding page cannot reach it.

The HTTP-level tests run everywhere; the browser tests run the same cases from a page of another
origin in Debian's headless chromium (skipped where it is not installed: `apt-get install
chromium`), including a DNS rebinding done the way an attacker does it: the page is loaded from
evil.example, whose address then serves the node."""
from __future__ import annotations

import json

import pytest

from tests.hostile.browser import CHROMIUM, Browser, PageServer, fetch_js, websocket_js
from tests.hostile.conftest import RawWebSocket, body, http, post, rpc, start_devnet, start_run_node
from tests.rpc.nodes import free_port

CHAIN = b'"result":"0x1bff"'
PREFLIGHT = ("OPTIONS / HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\n"
             "Access-Control-Request-Headers: content-type\r\n\r\n")


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    n = start_devnet(tmp_path_factory.mktemp("browsers") / "devnet")
    yield n
    n.stop()


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    n = start_run_node(tmp_path_factory.mktemp("browsers") / "run")
    yield n
    n.stop()


def _chain_id(devnet) -> bytes:
    return json.dumps(devnet.rpc("eth_chainId")).encode()


@pytest.mark.parametrize("host, status", [
    ("localhost", 200), ("localhost:8545", 200), ("LOCALHOST", 200), ("127.0.0.1:8545", 200), ("[::1]:8545", 200),
    ("10.1.2.3", 200), ("evil.example", 403), ("evil.example:8545", 403), ("localhost.evil.example", 403),
    ("localhost.", 403),
])
def test_host_names_outside_vhosts_are_refused(devnet, production, host, status):
    for n in (devnet, production):
        got, headers, answer = http(n, post(body(rpc("eth_chainId")), host=host))
        assert got == status, (host, answer)
        if status == 403:
            assert answer == b"invalid host specified"
        else:
            assert b'"result"' in answer


def test_vhosts_flag_and_requests_without_a_host(tmp_path):
    n = start_devnet(tmp_path / "d", "--http.vhosts", "node.internal,localhost")
    try:
        assert http(n, post(body(rpc("eth_chainId")), host="node.internal"))[0] == 200
        assert http(n, post(body(rpc("eth_chainId")), host="evil.example"))[0] == 403
        raw = b"POST / HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body(rpc("eth_chainId")))
        assert http(n, raw + body(rpc("eth_chainId")))[0] == 200  # no Host at all: not a browser
    finally:
        n.stop()
    n = start_devnet(tmp_path / "any", "--http.vhosts", "*")
    try:
        assert http(n, post(body(rpc("eth_chainId")), host="evil.example"))[0] == 200
    finally:
        n.stop()


def test_devnet_cors_any_origin_and_preflight(devnet):
    status, headers, answer = http(devnet, PREFLIGHT.format(origin="http://localhost:3000").encode())
    assert status == 204
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-methods"] == "POST"
    assert headers["access-control-allow-headers"] == "content-type"
    assert headers["access-control-max-age"] == "600"
    status, headers, answer = http(devnet, post(body(rpc("eth_chainId")), "Content-Type: application/json\r\n"
                                                "Origin: http://localhost:3000\r\n"))
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    # a WebSocket from any origin
    ws = RawWebSocket(devnet.port, headers=[(b"Origin", b"https://dapp.example")])
    assert ws.accepted
    ws.close()


def test_run_has_go_ethereums_defaults(production):
    # no CORS headers for any origin, and the preflight gets none either
    status, headers, _ = http(production, PREFLIGHT.format(origin="http://localhost:3000").encode())
    assert status == 204 and not any(k.startswith("access-control") for k in headers)
    status, headers, _ = http(production, post(body(rpc("eth_chainId")), "Content-Type: application/json\r\n"
                                               "Origin: http://localhost:3000\r\n"))
    assert status == 200 and "access-control-allow-origin" not in headers
    # WebSocket: pages on http://localhost (any port) and clients without Origin only
    for origin, accepted in ((None, True), (b"http://localhost:3000", True), (b"http://localhost", True),
                             (b"https://localhost", False), (b"http://evil.example", False),
                             (b"http://127.0.0.1:3000", False)):
        ws = RawWebSocket(production.port, headers=[(b"Origin", origin)] if origin else [])
        assert ws.accepted == accepted, origin
        if not accepted:
            assert ws.refused.status_code == 403
        ws.close()


def test_run_with_corsdomain_and_ws_origins(tmp_path):
    n = start_run_node(tmp_path / "r", "--http.corsdomain", "https://wallet.example,https://*.dapp.example",
                       "--ws.origins", "https://wallet.example")
    try:
        for origin, allowed in (("https://wallet.example", True), ("https://app.dapp.example", True),
                                ("https://evil.example", False), ("http://wallet.example", False)):
            status, headers, _ = http(n, PREFLIGHT.format(origin=origin).encode())
            assert status == 204
            assert headers.get("access-control-allow-origin") == (origin if allowed else None), origin
        assert RawWebSocket(n.port, headers=[(b"Origin", b"https://wallet.example")]).accepted
        assert not RawWebSocket(n.port, headers=[(b"Origin", b"http://localhost")]).accepted
    finally:
        n.stop()


# -- a real browser -------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")


@needs_chromium
def test_a_page_on_another_origin_in_chromium(devnet, production):
    """A dapp page on http://127.0.0.1:<port> (not the node's origin): the devnet answers it,
    `run` does not give it CORS; WebSockets likewise; a Host name outside the list is 403."""
    page = PageServer()
    browser = Browser("--host-resolver-rules=MAP evil.example 127.0.0.1")
    try:
        browser.goto(f"http://127.0.0.1:{page.port}/")
        answer = browser.evaluate(fetch_js(f"http://localhost:{devnet.port}/"))
        assert answer.startswith("200 ") and '"result":"0x1bff"' in answer, answer
        assert browser.evaluate(fetch_js(f"http://localhost:{production.port}/")).startswith("blocked: ")
        assert browser.evaluate(fetch_js(f"http://evil.example:{devnet.port}/")).startswith("blocked: ")
        assert '"result":"0x1bff"' in browser.evaluate(websocket_js(f"ws://localhost:{devnet.port}/"))
        assert browser.evaluate(websocket_js(f"ws://localhost:{production.port}/")) == "refused"
    finally:
        browser.close()
        page.close()


@needs_chromium
def test_dns_rebinding_in_chromium(tmp_path):
    """The attack: a page from evil.example:P, after which evil.example:P reaches the node (here
    the page server goes away and the node takes its port: the browser sees the same name,
    address and port, so its requests are same-origin and need no CORS). The node refuses the
    Host name; before #21 it answered, and the page read the chain and could send transactions."""
    port = free_port()
    page = PageServer(port)
    browser = Browser("--host-resolver-rules=MAP evil.example 127.0.0.1")
    node = None
    try:
        browser.goto(f"http://evil.example:{port}/")
        page.close()
        node = start_devnet(tmp_path / "victim", port=port)
        answer = browser.evaluate(fetch_js("/"))  # same-origin now: no preflight, no CORS
        assert answer == "403 invalid host specified", answer
        assert browser.evaluate(fetch_js(f"http://localhost:{port}/")).startswith("200 ")  # the dapp way still works
    finally:
        browser.close()
        if node is not None:
            node.stop()
