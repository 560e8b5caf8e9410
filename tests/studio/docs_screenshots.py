"""Regenerate docs/studio/*.png, the screenshots in docs/studio.md: the same devnet with content as
the tests (tests/studio/scene.py), each page in headless chromium at 1280x900, a Datanet as its
owner sees it (curation) through the test wallet, and two pages at phone size.

    PYTHONPATH=. .venv/bin/python -m tests.studio.docs_screenshots [OUT_DIR]   (default docs/studio)
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile

from tests.rpc.nodes import ROOT
from tests.studio import scene
from tests.studio.browser import StudioBrowser
from tests.studio.conftest import ESBUILD
from tests.studio.test_pages import PAGES


def main(argv: list[str]) -> int:
    out = pathlib.Path(argv[0]) if argv else ROOT / "docs" / "studio"
    out.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="studio-docs-"))
    wallet = tmp / "wallet.js"
    subprocess.run([str(ESBUILD), str(ROOT / "tests" / "studio" / "wallet.js"), "--bundle", "--format=iife",
                    "--log-level=warning", f"--outfile={wallet}"], check=True, cwd=ROOT)
    node = scene.start(tmp)
    try:
        scene.fill(node.url)
        b = StudioBrowser()
        owner = {"key": scene.DEV[0][1], "chainId": scene.genesis.devnet().chain_id, "chains": [], "canSwitch": True}
        owner["chains"] = [owner["chainId"]]
        b.inject(f"window.__walletSettings = {json.dumps(owner)};\n{wallet.read_text()}")
        b.open(node.url + "/studio/")
        for route, wait, _ in PAGES:
            b.page(route, wait)
            b.wait_for("!document.querySelector('#page').innerText.includes('Loading')")
            name = route.strip("#/").split("/0x")[0].replace("/", "-")
            b.screenshot(out / f"{name}.png")
            print(f"{out / name}.png")
        b.close()
        b = StudioBrowser(390, 844, mobile=True)
        b.open(node.url + "/studio/")
        for route, wait, _ in (PAGES[1], PAGES[5]):
            b.page(route, wait)
            name = "phone-" + route.strip("#/").replace("/", "-")
            b.screenshot(out / f"{name}.png", full_page=False)
            print(f"{out / name}.png")
        b.close()
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
