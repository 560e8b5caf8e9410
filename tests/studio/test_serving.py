"""How the node serves the studio (no browser needed): at /studio on the JSON-RPC port, on by
default on `devnet` (`--no-ui` turns it off), with `--ui` on `run`; files by exact name from
memory (no path the filesystem resolves), a CSP that keeps the page on this node, the Host check
as for JSON-RPC, and a plain answer when the app is not built."""
from __future__ import annotations

import pytest

from node.cli import build_parser
from node.rpc.studio import DIST, NOT_BUILT, StudioFiles, is_studio
from tests.hostile.conftest import body, http, post, rpc, start_run_node

built = pytest.mark.skipif(not (DIST / "index.html").exists(), reason="the studio is not built: `make studio`")


def get(path: str, host: str = "localhost") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


@pytest.fixture
def app(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>studio</title>")
    (tmp_path / "app.js").write_text("console.log(1)")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.css").write_text("body{}")
    (tmp_path.parent / "secret.txt").write_text("not for the web")
    (tmp_path / "link.txt").symlink_to(tmp_path.parent / "secret.txt")
    return StudioFiles(tmp_path)


@pytest.mark.parametrize("target, status, ctype", [
    (b"/studio", 200, b"text/html; charset=utf-8"), (b"/studio/", 200, b"text/html; charset=utf-8"),
    (b"/studio/index.html", 200, b"text/html; charset=utf-8"), (b"/studio/app.js", 200, b"text/javascript; charset=utf-8"),
    (b"/studio/app.js?v=2", 200, b"text/javascript; charset=utf-8"), (b"/studio/sub/x.css", 200, b"text/css; charset=utf-8"),
    (b"/studio/../secret.txt", 404, None), (b"/studio/link.txt", 404, None), (b"/studio/sub/../app.js", 404, None),
    (b"/studio//app.js", 404, None), (b"/studio/%2e%2e/secret.txt", 404, None), (b"/studio/nope.js", 404, None),
])
def test_files_by_exact_name_only(app, target, status, ctype):
    got, content_type, content, headers = app.answer(target)
    assert got == status, target
    if ctype:
        assert content_type == ctype and b"frame-ancestors 'none'" in headers
    else:
        assert b"not for the web" not in content and content.startswith(b"no such file in the studio")


def test_which_targets_are_the_studios():
    assert [is_studio(t) for t in (b"/studio", b"/studio/", b"/studio?x=1", b"/studio/a.js")] == [True] * 4
    assert [is_studio(t) for t in (b"/", b"/studiox", b"/x/studio", b"/Studio")] == [False] * 4


def test_not_built_says_how_to_build(tmp_path):
    assert StudioFiles(tmp_path / "missing").answer(b"/studio/") == (404, b"text/plain; charset=utf-8", NOT_BUILT, b"")


def test_flags_devnet_on_by_default_run_off_by_default():
    parser = build_parser()
    assert parser.parse_args(["devnet"]).ui is True
    assert parser.parse_args(["devnet", "--no-ui"]).ui is False
    assert parser.parse_args(["run", "--datadir", "d"]).ui is False
    assert parser.parse_args(["run", "--datadir", "d", "--ui"]).ui is True


@built
def test_served_by_run_with_ui(tmp_path):
    n = start_run_node(tmp_path / "run", "--ui", "--http.api", "eth,net,web3,ol")
    try:
        status, headers, page = http(n, get("/studio/"))
        assert status == 200 and b'<script type="module" src="/studio/app.js">' in page
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert "connect-src 'self'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
        status, headers, script = http(n, get("/studio/app.js"))
        assert status == 200 and headers["content-type"] == "text/javascript; charset=utf-8" and len(script) > 100_000
        assert b"https://cdn" not in script and b"unpkg.com" not in script  # nothing loads from elsewhere
        assert http(n, get("/studio/", host="evil.example"))[:1] == (403,)  # DNS rebinding, as for JSON-RPC
        assert http(n, get("/studio/nope"))[0] == 404
        assert b'"result"' in http(n, post(body(rpc("eth_chainId"))))[2]  # JSON-RPC on the same port, unchanged
        assert f"OpenLedger Studio\n==================\nhttp://127.0.0.1:{n.port}/studio/" in n.log.read_text()
    finally:
        n.stop()
