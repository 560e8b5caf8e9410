"""Each studio page in a real headless chromium against a devnet with content, without a wallet
(reads need none): the page loads and shows what the chain holds, the pictures are drawn, a name
that is HTML stays text, and a phone-sized screen gets a layout that fits. Every page is
screenshotted (artefacts) and the PNG checked beside the DOM text of that moment."""
from __future__ import annotations

import struct

import pytest

from node.sdk import Client
from tests.studio.conftest import needs_browser
from tests.studio.scene import DEV, ROWS

pytestmark = needs_browser

PAGES = [  # route, text to wait for, texts that must be there too
    ("#/datanets", "facts", ["CC-BY-4.0", "Create a Datanet"]),
    ("#/datanets/1", "Growth by version", ["Short facts, one a row", "v2", "pending", "rejected", "accepted"]),
    ("#/models", "tiny-llama", ["record complete", "loss 1.2500 after 2 steps", "Datanet 1 v1", "1 OPEN"]),
    ("#/jobs", "Recent jobs", ["succeeded", "failed", "Request an inference"]),
    ("#/jobs/1", "Paris, on the Seine", ["The capital of France is", "fee split paid", "2 valid, 0 invalid"]),
    ("#/attribution/1", "Fee split", ["50.00%", "30.00%", "20.00%", "contributors 0.5 OPEN", "model owner 0.2 OPEN",
                                      "datainf-v1", "answer 1 (paid)"]),
    ("#/validators", "Delegators", ["active", "5.00%", "50 OPEN", "200 OPEN"]),
    (f"#/account/{DEV[2][0]}", "Earnings over time", ["0.5 OPEN", "contributor", "accepted"]),
    ("#/supply", "circulating", ["1,000,000,000 OPEN", "reserve", "burned"]),
]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def shoot(browser, artefacts, name: str, must: list[str]) -> str:
    """Screenshot the page now; the DOM text of the same moment must hold `must`."""
    text = browser.text()
    png = browser.screenshot(artefacts / f"{name}.png")
    width, height = png_size(png)
    assert len(png) > 5_000 and width > 300 and height > 300, (name, len(png), width, height)
    for word in must:
        assert word in text, f"{name}: {word!r} not on the page:\n{text[:3000]}"
    return text


def test_every_page_shows_the_chain_without_a_wallet(open_studio, artefacts):
    b = open_studio()
    assert b.text("#wallet") == "No wallet"
    for route, wait, must in PAGES:
        b.page(route, wait)
        name = route.strip("#/").split("/0x")[0].replace("/", "-")
        shoot(b, artefacts, name, must)
        assert b.evaluate("document.querySelector('#banner').hidden"), b.text("#banner")
    # the pictures: a Datanet's growth by version, earnings over time, the attribution graph
    b.page("#/datanets/1", "Growth by version")
    assert b.evaluate("document.querySelectorAll('#growth canvas').length") >= 1
    b.page(f"#/account/{DEV[2][0]}", "Earnings over time")
    b.wait_for("document.querySelectorAll('#earnings canvas').length >= 1")
    assert "block rewards" in b.text("#earnings")
    b.page("#/attribution/1", "Fee split")
    assert b.evaluate("document.querySelectorAll('svg.flow path').length") >= 4  # 3 contributions, answers
    # the validator that submitted the result two validators voted invalid was slashed
    text = b.page("#/validators", "Slashing")
    assert DEV[4][0][:8] in text.split("Slashing")[1]


@pytest.mark.slow
def test_search_and_live_update_on_a_new_block(chain, open_studio):
    node, _ = chain
    b = open_studio()
    b.page("#/datanets", "facts")
    Client(node.url, DEV[9][1]).send("Datanets", "createDatanet", "weather notes", bytes(32), 0, "CC0", 0, 0, 1000, [])
    b.wait_for("document.querySelector('#datanet-list').innerText.includes('weather notes')", 15,
               what="the list to show the Datanet created after the page loaded")
    b.fill("#search", "weath")
    listed = b.text("#datanet-list")
    assert "weather notes" in listed and "facts" not in listed
    b.fill("#search", "no such thing")
    assert 'No Datanet matches "no such thing"' in b.text("#datanet-list")


def test_a_name_that_is_html_stays_text(chain, open_studio):
    """Names and prompts are anyone's input: shown as text, never run (and the CSP forbids inline scripts)."""
    node, _ = chain
    name = '<img src=x onerror="window.__pwned=1">'
    Client(node.url, DEV[9][1]).send("Datanets", "createDatanet", name, bytes(32), 0, "<b>MIT</b>", 0, 0, 1000, [])
    b = open_studio()
    text = b.page("#/datanets", name)
    assert "<b>MIT</b>" in text
    assert b.evaluate("document.querySelectorAll('#datanet-list img, #datanet-list b').length") == 0
    assert b.evaluate("window.__pwned") is None


def test_phone_sized_screen(open_studio, artefacts):
    b = open_studio(width=390, height=844, mobile=True)
    for route, wait, must in PAGES[:2] + PAGES[4:6]:
        b.page(route, wait)
        # the page itself never scrolls sideways: wide tables scroll inside their own box
        assert b.evaluate("document.documentElement.scrollWidth") <= 390, route
        png = b.screenshot(artefacts / f"phone-{route.strip('#/').replace('/', '-')}.png", full_page=False)
        assert png_size(png) == (780, 1688)  # 390 x 844 at the phone's device pixel ratio 2
        assert all(word in b.text() for word in must[:2])
    assert b.evaluate("getComputedStyle(document.querySelector('nav')).flexBasis") == "100%"  # nav on its own row
