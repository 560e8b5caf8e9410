"""Driving the studio in Debian's headless chromium over the DevTools protocol (the same driver as
tests/hostile/browser.py, with what an app test needs on top: a script injected before the page's
own, a viewport, file inputs, screenshots, waiting for the page to settle)."""
from __future__ import annotations

import base64
import json
import pathlib
import time

from tests.hostile.browser import CHROMIUM, Browser

__all__ = ["CHROMIUM", "StudioBrowser"]


class StudioBrowser(Browser):
    def __init__(self, width: int = 1280, height: int = 900, mobile: bool = False) -> None:
        super().__init__(f"--window-size={width},{height}")
        self._send("Page.enable")
        self._send("DOM.enable")
        self.viewport(width, height, mobile)

    def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        self._send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                   deviceScaleFactor=2 if mobile else 1, mobile=mobile)

    def inject(self, source: str) -> None:
        """Run `source` in every page before its own scripts (the test wallet)."""
        self._send("Page.addScriptToEvaluateOnNewDocument", source=source)

    def open(self, url: str) -> None:
        self._send("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    def wait_for(self, expression: str, timeout: float = 30, what: str | None = None):
        """Poll `expression` in the page until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # the page is navigating
                value = None
            if value:
                return value
            time.sleep(0.1)
        text = self.evaluate("document.body ? document.body.innerText.slice(0, 3000) : ''")
        raise AssertionError(f"waited {timeout}s for {what or expression}; the page shows:\n{text}")

    def page(self, hash_route: str, expect: str, timeout: float = 30) -> str:
        """Go to a studio route, wait until it has loaded and shows `expect`; the page's text."""
        self.evaluate(f"location.hash = {json.dumps(hash_route)}")
        self.wait_for(f"document.querySelector('#page').dataset.ready === '1' && location.hash === {json.dumps(hash_route)}"
                      f" && document.querySelector('#page').innerText.includes({json.dumps(expect)})",
                      timeout, what=f"{hash_route} to show {expect!r}")
        return self.text()

    def text(self, selector: str = "body") -> str:
        return self.evaluate(f"document.querySelector({json.dumps(selector)}).innerText")

    def set_file(self, selector: str, path: pathlib.Path) -> None:
        root = self._send("DOM.getDocument", depth=0)["root"]["nodeId"]
        node = self._send("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        self._send("DOM.setFileInputFiles", files=[str(path)], nodeId=node)

    def fill(self, selector: str, value: str) -> None:
        self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.value = {json.dumps(value)};"
                      f" e.dispatchEvent(new Event('input', {{bubbles: true}})); }})()")

    def click(self, selector: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def screenshot(self, path: pathlib.Path, full_page: bool = True) -> bytes:
        """A PNG of the page (whole length unless `full_page` is false), written to `path`."""
        params = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            metrics = self._send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": metrics["width"], "height": metrics["height"], "scale": 1}
        data = base64.b64decode(self._send("Page.captureScreenshot", **params)["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data
