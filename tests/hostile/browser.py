"""A real browser for the CORS / Host / WebSocket-origin tests: Debian's headless chromium,
driven over the DevTools protocol (a WebSocket; no client library needed), so the page's
requests are made, preflighted and refused by the browser's own rules."""
from __future__ import annotations

import http.server
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

from websockets.sync.client import connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Browser:
    """One headless chromium with one page; `evaluate` runs JS there and awaits its promise."""

    def __init__(self, *flags: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile}", *flags, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError("chromium exited before it listened")
            found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if found:
                port = int(found.group(1))
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # keep the pipe drained
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        page = next(p for p in pages if p.get("type") == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self._ids = itertools.count(1)

    def _send(self, method: str, **params) -> dict:
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == msg_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def goto(self, url: str) -> None:
        self._send("Page.enable")
        self._send("Page.navigate", url=url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.evaluate("document.readyState") == "complete" and self.evaluate("location.href") == url:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{url} did not load")

    def evaluate(self, expression: str):
        result = self._send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


class PageServer:
    """Serves one HTML page on 127.0.0.1 (another origin than the node's), until `close`."""

    def __init__(self, port: int = 0, html: str = "<html><body>dapp</body></html>") -> None:
        body = html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 0.5  # an idle connection (chromium opens spare ones) is closed soon

            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop listening, and let the connections chromium holds open time out (so that its
        next request to this address and port opens a new connection)."""
        self.server.shutdown()
        self.server.server_close()
        time.sleep(1.5)


FETCH = """fetch(%s, {method: "POST", headers: {"Content-Type": "application/json"},
                   body: JSON.stringify({jsonrpc: "2.0", id: 1, method: "eth_chainId", params: []})})
  .then(async r => r.status + " " + await r.text(), e => "blocked: " + e.message)"""

WEBSOCKET = """new Promise(done => {
  const ws = new WebSocket(%s);
  ws.onopen = () => ws.send(JSON.stringify({jsonrpc: "2.0", id: 1, method: "eth_chainId", params: []}));
  ws.onmessage = m => { done("message: " + m.data); ws.close(); };
  ws.onerror = () => done("refused");
  setTimeout(() => done("timeout"), 10000);
})"""


def fetch_js(url: str) -> str:
    return FETCH % json.dumps(url)


def websocket_js(url: str) -> str:
    return WEBSOCKET % json.dumps(url)


