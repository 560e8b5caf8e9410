"""OpenAI-compatible `/v1/completions` (and `/v1/models`) for a validator's Engine.

A small threaded stdlib HTTP server: each connection's thread validates the request, submits it
to the engine (whose own thread batches everything) and waits on the result, or streams tokens
as Server-Sent Events. It is separate from the node's JSON-RPC server. Besides OpenAI's fields
the answer carries `openledger.commitment` (the digest for the chain) and `openledger.proof`.
"""
from __future__ import annotations

import http.server
import sys
import json
import queue
import time
import uuid

from inference.engine import Engine, SamplingParams
from inference.errors import BadRequest, InferenceError

MAX_BODY = 1 << 20
BASE_MODEL = "base"


def _params(body: dict) -> SamplingParams:
    """OpenAI fields -> SamplingParams (BadRequest names the bad field)."""
    known = {"model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stream", "n", "user"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadRequest(f"unsupported field(s): {', '.join(unknown)}")
    if body.get("n", 1) != 1:
        raise BadRequest(f"n={body['n']!r}: only n=1 is supported")
    return SamplingParams(max_new_tokens=body.get("max_tokens", 16), temperature=body.get("temperature", 1.0),
                          top_p=body.get("top_p", 1.0), seed=body.get("seed", 0))


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "openlora/0.1"
    protocol_version = "HTTP/1.1"
    engine: Engine
    tokenizer = None
    aliases: dict[str, str] = {}  # other names of stored adapters (e.g. adapter-1 for a chain's adapter 1)

    def log_message(self, format, *args):  # noqa: A002 - quiet: the node logs requests elsewhere
        pass

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._json(status, {"error": {"message": message, "type": kind, "code": status}})

    def do_GET(self) -> None:
        if self.path != "/v1/models":
            return self._error(404, f"no route {self.path}")
        ids = [BASE_MODEL] + sorted(self.aliases) + self.engine.store.ids()
        self._json(200, {"object": "list", "data": [{"id": i, "object": "model", "owned_by": "openlora"} for i in ids]})

    def do_POST(self) -> None:
        if self.path != "/v1/completions":
            return self._error(404, f"no route {self.path}")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._error(411, "Content-Length required")
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            return self._error(413, f"body of {length} bytes exceeds {MAX_BODY}")
        try:
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict):
                raise BadRequest("body must be a JSON object")
            model = body.get("model")
            if not isinstance(model, str):
                raise BadRequest("model must be an adapter id (or 'base')")
            adapter_id = None if model == BASE_MODEL else self.aliases.get(model, model)
            prompt = self._tokens(body.get("prompt"))
            params = _params(body)
            stream = body.get("stream", False)
            if not isinstance(stream, bool):
                raise BadRequest(f"stream={stream!r} must be a boolean")
            tokens: queue.SimpleQueue = queue.SimpleQueue()
            future = self.engine.submit(adapter_id, prompt, params, on_token=tokens.put if stream else None)
        except json.JSONDecodeError as exc:
            return self._error(400, f"body is not valid JSON: {exc}")
        except InferenceError as exc:
            return self._error(exc.http_status, str(exc))
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "object": "text_completion", "created": created, "model": model}
        if stream:
            return self._stream(head, future, tokens)
        try:
            gen = future.result()
        except InferenceError as exc:
            return self._error(exc.http_status, str(exc))
        self._json(200, {**head, "choices": [self._choice(gen.tokens, gen.finish_reason)],
                         "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(gen.tokens),
                                   "total_tokens": len(prompt) + len(gen.tokens)},
                         "openledger": self._proof(gen)})

    def _tokens(self, prompt) -> list[int]:
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise BadRequest("this server has no tokenizer: send prompt as a list of token ids")
            return list(self.tokenizer.encode(prompt))
        if isinstance(prompt, list):
            return prompt
        raise BadRequest("prompt must be a string or a list of token ids")

    def _choice(self, tokens, finish_reason) -> dict:
        text = self.tokenizer.decode(list(tokens)) if self.tokenizer is not None else ""
        return {"index": 0, "text": text, "tokens": list(tokens), "logprobs": None, "finish_reason": finish_reason}

    @staticmethod
    def _proof(gen) -> dict:
        return {"commitment": "0x" + gen.commitment.digest.hex(), "proof": "0x" + gen.commitment.to_bytes().hex(),
                "seed": gen.params.seed}

    def _stream(self, head: dict, future, tokens: queue.SimpleQueue) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(payload) -> None:
            self.wfile.write(b"data: " + (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
                             + b"\n\n")
            self.wfile.flush()

        try:
            while not (future.done() and tokens.empty()):
                try:
                    token = tokens.get(timeout=0.05)
                except queue.Empty:
                    continue
                event({**head, "choices": [{**self._choice([token], None)}]})
            try:
                gen = future.result()
                event({**head, "choices": [{**self._choice([], gen.finish_reason)}], "openledger": self._proof(gen)})
            except InferenceError as exc:
                event({"error": {"message": str(exc), "type": "invalid_request_error", "code": exc.http_status}})
            event(b"[DONE]")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away; the engine finishes the request on its own


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that hangs up (even before its error reply is sent) is not a server fault;
        anything else is reported as socketserver does."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def make_server(engine: Engine, host: str = "127.0.0.1", port: int = 8000, tokenizer=None,
                aliases: dict[str, str] | None = None) -> http.server.ThreadingHTTPServer:
    """A ready-to-run server (call `serve_forever()`; the engine must be `start()`ed). `aliases` maps
    other model names to stored adapter ids."""
    handler = type("Handler", (_Handler,), {"engine": engine, "tokenizer": tokenizer, "aliases": dict(aliases or {})})
    server = _Server((host, port), handler)
    server.daemon_threads = True
    return server
