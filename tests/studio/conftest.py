"""Fixtures for the studio's browser tests: one devnet with content for the module (tests/studio/
scene.py), the test wallet bundled for the page, a folder for screenshots (kept as artefacts), and
chromium windows that are closed at the end."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

from node.rpc.studio import DIST
from tests.rpc.nodes import ROOT
from tests.studio import scene
from tests.studio.browser import CHROMIUM, StudioBrowser

ESBUILD = ROOT / "studio" / "node_modules" / ".bin" / "esbuild"

needs_browser = pytest.mark.skipif(
    CHROMIUM is None or not (DIST / "index.html").exists() or not ESBUILD.exists(),
    reason="needs Debian's chromium (`apt-get install chromium`) and the built studio (`make studio`)")


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory) -> pathlib.Path:
    """Where screenshots go: $STUDIO_ARTEFACTS, or a pytest temp folder (its path is printed)."""
    path = pathlib.Path(os.environ.get("STUDIO_ARTEFACTS") or tmp_path_factory.mktemp("studio-screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    print(f"studio screenshots: {path}")
    return path


@pytest.fixture(scope="session")
def wallet_bundle(tmp_path_factory) -> str:
    """tests/studio/wallet.js with viem, as one script for Page.addScriptToEvaluateOnNewDocument."""
    out = tmp_path_factory.mktemp("wallet") / "wallet.js"
    subprocess.run([str(ESBUILD), str(pathlib.Path(__file__).with_name("wallet.js")), "--bundle", "--format=iife",
                    "--log-level=warning", f"--outfile={out}"], check=True, cwd=ROOT, timeout=120)
    return out.read_text()


@pytest.fixture(scope="session")
def chain(tmp_path_factory):
    """A devnet with content, 1 s blocks as `make run`; shared by the studio's tests (each adds to it,
    and asserts only what the others cannot change)."""
    node = scene.start(tmp_path_factory.mktemp("studio"))
    try:
        content = scene.fill(node.url)
        yield node, content
    finally:
        node.stop()


@pytest.fixture
def open_studio(chain, wallet_bundle):
    """open_studio(key=None, chain_id=..., chains=..., can_switch=True, width=1280, height=900, mobile=False):
    a chromium on the studio, with the test wallet injected when `key` is given."""
    node, _ = chain
    browsers = []

    def start(key: str | None = None, chain_id: int = scene.genesis.devnet().chain_id, chains=None,
              can_switch: bool = True, width: int = 1280, height: int = 900, mobile: bool = False) -> StudioBrowser:
        b = StudioBrowser(width, height, mobile)
        browsers.append(b)
        if key is not None:
            settings = {"key": key, "chainId": chain_id, "chains": list(chains or [chain_id]), "canSwitch": can_switch}
            b.inject(f"window.__walletSettings = {json.dumps(settings)};\n{wallet_bundle}")
        b.open(node.url + "/studio/")
        b.wait_for("document.querySelector('#page').dataset.ready === '1'")
        return b

    yield start
    for b in browsers:
        b.close()
