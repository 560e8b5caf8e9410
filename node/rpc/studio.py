"""OpenLedger Studio's static files, served at `/studio` on the JSON-RPC port (issue #16).

The app is built by `make` from `studio/` (npm project, bundled by esbuild) into `studio/dist/`.
Every file is read once, when the server starts, into memory: a request names a file by exact
path, never a path the filesystem resolves, so `..` and links cannot reach anything else. The
page talks only to this node's JSON-RPC (same origin); the Content-Security-Policy holds it to
that (no script, style or connection elsewhere) and forbids framing (a wallet page must not be
clickjacked).
"""
from __future__ import annotations

import logging
import mimetypes
import pathlib

log = logging.getLogger(__name__)

PREFIX = b"/studio"
DIST = pathlib.Path(__file__).resolve().parents[2] / "studio" / "dist"
MAX_FILES = 256
_TYPES = {".js": b"text/javascript; charset=utf-8", ".css": b"text/css; charset=utf-8",
          ".html": b"text/html; charset=utf-8", ".txt": b"text/plain; charset=utf-8", ".png": b"image/png",
          ".svg": b"image/svg+xml", ".json": b"application/json"}
HEADERS = (b"Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
           b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\n"
           b"X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
           b"Cache-Control: no-cache\r\n")
NOT_BUILT = (b"OpenLedger Studio is not built on this machine: run `make studio` (npm install and build in studio/), "
             b"then restart the node")


def is_studio(target: bytes) -> bool:
    """Whether a request target is the studio's (`/studio`, `/studio/...`, with or without a query)."""
    path = target.split(b"?", 1)[0]
    return path == PREFIX or path.startswith(PREFIX + b"/")


class StudioFiles:
    """The built app in memory; `answer(target)` gives (status, content type, body, extra headers)."""

    def __init__(self, root: pathlib.Path = DIST) -> None:
        self.files: dict[bytes, tuple[bytes, bytes]] = {}
        if not (root / "index.html").is_file():
            log.warning("studio: %s has no index.html; /studio answers 404 until `make studio` builds it", root)
            return
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and len(self.files) < MAX_FILES:
                name = "/" + path.relative_to(root).as_posix()
                ctype = _TYPES.get(path.suffix) or (mimetypes.guess_type(name)[0] or "application/octet-stream").encode()
                self.files[name.encode()] = (ctype, path.read_bytes())
        self.files[b"/"] = self.files[b"/index.html"]

    def answer(self, target: bytes) -> tuple[int, bytes, bytes, bytes]:
        if not self.files:
            return 404, b"text/plain; charset=utf-8", NOT_BUILT, b""
        path = target.split(b"?", 1)[0][len(PREFIX):] or b"/"
        found = self.files.get(path)
        if found is None:
            return 404, b"text/plain; charset=utf-8", b"no such file in the studio: " + path[:200], HEADERS
        return 200, found[0], found[1], HEADERS
