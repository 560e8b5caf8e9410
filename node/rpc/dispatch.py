"""The JSON-RPC 2.0 layer: body bytes in, body bytes out, independent of the transport.

Method tables map wire names to handlers. A handler's parameters are declared with
`Annotated[T, parser]` (see `params`); the dispatcher checks arity and parses arguments once per
call with the parsers it read from the signature at start, so handlers see Python values only.
Sync handlers run inline on the event loop and must be cheap; `async` handlers may leave the loop
(`trio.to_thread.run_sync` behind a capacity limiter) for EVM execution.
"""
from __future__ import annotations

import collections
import inspect
import json
import logging
import re
import time
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import orjson
import trio

from node.rpc.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
)
from node.rpc.namespaces import known_namespaces

log = logging.getLogger(__name__)

_MISSING = object()


@dataclass(frozen=True)
class Method:
    """A handler with its argument parsers, read from its signature once."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    parsers: tuple[Callable[[object], object] | None, ...]
    defaults: tuple[object, ...]  # _MISSING for required arguments
    required: int

    @classmethod
    def wrap(cls, name: str, fn: Callable[..., Any]) -> "Method":
        hints = typing.get_type_hints(fn, include_extras=True)
        parsers, defaults = [], []
        for param in inspect.signature(fn).parameters.values():
            if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                raise TypeError(f"{name}: only positional parameters are allowed")
            hint = hints.get(param.name)
            meta = getattr(hint, "__metadata__", ())
            parsers.append(meta[0] if meta and callable(meta[0]) else None)
            defaults.append(_MISSING if param.default is param.empty else param.default)
        required = sum(1 for d in defaults if d is _MISSING)
        if any(d is not _MISSING for d in defaults[:required]):
            raise TypeError(f"{name}: required parameters must come first")
        return cls(name, fn, inspect.iscoroutinefunction(fn), tuple(parsers), tuple(defaults), required)

    def bind(self, params: object) -> list[object]:
        """Parse the JSON params into handler arguments, with geth's error wording."""
        if params is None:
            params = []
        elif not isinstance(params, list):
            raise RpcError("non-array args", code=INVALID_PARAMS)
        if len(params) > len(self.parsers):
            raise RpcError(f"too many arguments, want at most {len(self.parsers)}", code=INVALID_PARAMS)
        args = []
        for i, parser in enumerate(self.parsers):
            value = params[i] if i < len(params) else None
            if value is None:
                if self.defaults[i] is _MISSING:
                    raise RpcError(f"missing value for required argument {i}", code=INVALID_PARAMS)
                args.append(self.defaults[i])
                continue
            if parser is not None:
                try:
                    value = parser(value)
                except (ValueError, TypeError) as exc:
                    raise RpcError(f"invalid argument {i}: {exc}", code=INVALID_PARAMS) from None
            args.append(value)
        return args


def method_table(table: Mapping[str, Callable[..., Any]]) -> dict[str, Method]:
    return {name: Method.wrap(name, fn) for name, fn in table.items()}


def _error(id_: object, code: int, message: str, data: object = None) -> dict:
    err: dict = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def error_body(id_: object, code: int, message: str) -> bytes:
    return orjson.dumps(_error(id_, code, message))


PARSE_ERROR_BODY = error_body(None, PARSE_ERROR, "parse error")
INTERNAL_ERROR_BODY = error_body(None, INTERNAL_ERROR, "internal error")
RESPONSE_TOO_LARGE = -32003  # geth's errcodeResponseTooLarge
BATCH_SLICE_SECONDS = 0.0005  # a batch yields the event loop to other clients this often
_INVALID_REQUEST = error_body(None, INVALID_REQUEST, "invalid request")
_TOO_LARGE = {"code": RESPONSE_TOO_LARGE, "message": "response too large"}


# -- ids, byte for byte ---------------------------------------------------------------------
# A client matches answers to requests by id, so the id goes back as the very JSON text it
# sent (go-ethereum keeps it as json.RawMessage). orjson turns integers past 64 bits into
# floats, -0 into 0, and decodes escapes in strings, so those ids are taken from the request
# bytes by a scan of the body's structure; the common ids (integers, null, strings in a body
# without escapes) have one JSON spelling only and are written back from the parsed value.

_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],:]', re.S)
_SCALAR = re.compile(rb"[^\s,}\]]+")
_SPACE = re.compile(rb"[ \t\n\r]*")


class _Spelling:
    """Whether a parsed id might not encode back as the client spelled it. Without a backslash
    in the body a string has one spelling (JSON strings hold no raw control characters), and 0
    was written `0` unless `-0` is in the body; floats (and integers past 64 bits, which orjson
    parses as floats) always take the scan. The body is searched at most once for each."""

    __slots__ = ("body", "_escapes", "_minus_zero")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._escapes = self._minus_zero = None

    def needs_raw(self, id_: object) -> bool:
        kind = type(id_)
        if kind is int:
            if id_:  # past 64 bits only from the standard library's parse (see _parse): no encoding
                return not -(1 << 63) <= id_ < (1 << 64)
            if self._minus_zero is None:
                self._minus_zero = b"-0" in self.body
            return self._minus_zero
        if kind is str:
            if self._escapes is None:
                self._escapes = b"\\" in self.body
            return self._escapes
        return id_ is not None


def _valid_id(value: object) -> bool:
    """JSON-RPC 2.0: a string, a number or null."""
    return value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))


def _namespace_off(name: str, methods: Mapping[str, Method]) -> str:
    """Geth's text says only that a method is missing; when its namespace exists but is not served,
    say so and name the flag that turns it on."""
    namespace = name.partition("_")[0]
    if namespace not in known_namespaces() or any(m.startswith(namespace + "_") for m in methods):
        return ""
    return f" (the {namespace} API is off: add {namespace} to --http.api)"


def raw_ids(body: bytes, batch: bool) -> list[bytes | None]:
    """The raw text of the "id" member of each request in `body` (a valid JSON text): one entry
    for a single request, one per item for a batch; None where there is no id member or the
    item is not an object. A repeated "id" member counts by its last occurrence, as the parser
    reads it. Strings are skipped whole by one regular expression (C speed), so a large
    `data` field costs little."""
    level = 2 if batch else 1  # nesting depth of a request's members
    out: list[bytes | None] = [None]
    depth = 0
    key = None  # the last string seen at `level`: the member name when a colon follows
    for m in _TOKEN.finditer(body):
        token = m.group()
        first = token[0]
        if first == 0x22:  # '"'
            key = token if depth == level else None
        elif first == 0x3A:  # ':'
            if key is not None and (key == b'"id"' or (b"\\" in key and orjson.loads(key) == "id")):
                start = _SPACE.match(body, m.end()).end()
                if body[start:start + 1] == b'"':
                    out[-1] = _TOKEN.match(body, start).group()
                elif body[start:start + 1] not in (b"{", b"["):
                    out[-1] = _SCALAR.match(body, start).group()
                else:
                    out[-1] = None  # an object or array: not a valid id
            key = None
        elif first in (0x7B, 0x5B):  # '{' '['
            depth += 1
            key = None
        elif first in (0x7D, 0x5D):  # '}' ']'
            depth -= 1
            key = None
        else:  # ','
            if batch and depth == 1:
                out.append(None)
            key = None
    return out


def _parse(body: bytes) -> object:
    """orjson, with the standard library for the one valid JSON orjson refuses: numbers past a
    double's range (an id of 1e400 must be echoed, not answered as a parse error)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "infinity" not in str(exc):
            raise
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise orjson.JSONDecodeError("parse error", "", 0) from None


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


class Dispatcher:
    """Answers request bodies from a method table; `extra` adds per-connection methods (WS).

    `handle_body` never raises for what a client sent: a bug anywhere in answering one request
    body (a method, encoding a result) is logged and answered -32603 on the same connection."""

    def __init__(self, methods: Mapping[str, Method], *, max_batch: int = 1000,
                 max_response_bytes: int = 25 * 1024 * 1024) -> None:
        self.methods = dict(methods)
        self.max_batch = max_batch
        self.max_response_bytes = max_response_bytes
        self.stats: collections.Counter[str] = collections.Counter()  # internal_errors: -32603 answers (bugs)
        self.metrics = None  # node.metrics.RpcMetrics under --metrics: requests by method and code, latency

    async def handle_body(self, body: bytes, extra: Mapping[str, Method] | None = None) -> bytes | None:
        """The response body, or None when every request was a notification."""
        try:
            try:
                request = _parse(body)
            except orjson.JSONDecodeError:
                if self.metrics is not None:
                    self.metrics.observe("invalid", PARSE_ERROR, 0)
                return PARSE_ERROR_BODY
            if type(request) is list:
                return await self._batch(request, body, extra)
            raw_id = None
            if type(request) is dict:
                id_ = request.get("id")
                if id_ is not None and (type(id_) is not int or not -(1 << 63) < id_ < (1 << 63) or id_ == 0):
                    if _Spelling(body).needs_raw(id_):
                        raw_id = raw_ids(body, batch=False)[0]
            return await self.handle_one(request, extra, raw_id)
        except Exception:
            self.stats["internal_errors"] += 1
            log.exception("internal error answering a request body")
            return INTERNAL_ERROR_BODY

    async def _batch(self, request: list, body: bytes, extra: Mapping[str, Method] | None) -> bytes | None:
        if not request:
            return error_body(None, INVALID_REQUEST, "empty batch")
        if len(request) > self.max_batch:
            return error_body(None, INVALID_REQUEST, "batch too large")
        ids = None
        spelling = _Spelling(body)
        responses = []
        size = 0
        slice_start = time.perf_counter()
        for i, item in enumerate(request):
            raw_id = None
            if type(item) is dict:
                id_ = item.get("id")
                if id_ is not None and (type(id_) is not int or not -(1 << 63) < id_ < (1 << 63) or id_ == 0) \
                        and spelling.needs_raw(id_):
                    if ids is None:
                        ids = raw_ids(body, batch=True)
                    raw_id = ids[i]
            if size > self.max_response_bytes:  # geth: the calls left get -32003, unrun
                if type(item) is not dict or not _valid_id(item.get("id")):
                    responses.append(_INVALID_REQUEST)
                elif "id" in item:
                    responses.append(self._respond(item["id"], raw_id, "error", _TOO_LARGE))
                continue
            response = await self.handle_one(item, extra, raw_id)
            if response is not None:
                size += len(response)
                responses.append(response)
            if time.perf_counter() - slice_start > BATCH_SLICE_SECONDS:
                await trio.lowlevel.checkpoint()  # a long batch must not hold the loop from other clients
                slice_start = time.perf_counter()
        return b"[" + b",".join(responses) + b"]" if responses else None

    async def handle_one(self, request: object, extra: Mapping[str, Method] | None = None,
                         raw_id: bytes | None = None) -> bytes | None:
        """One request object's encoded response (None for a notification). `raw_id`: the id as
        the client spelled it, where its parsed value may not encode back the same."""
        if type(request) is not dict:
            return _INVALID_REQUEST
        id_ = request.get("id", _MISSING)
        name = request.get("method")
        kind = type(id_)
        valid_id = kind is int or kind is str or id_ is None or id_ is _MISSING or kind is float
        if not valid_id or type(name) is not str or request.get("jsonrpc") != "2.0":
            if self.metrics is not None:
                self.metrics.observe("invalid", INVALID_REQUEST, 0)
            if id_ is _MISSING or not valid_id:
                return _INVALID_REQUEST
            return self._respond(id_, raw_id, "error", {"code": INVALID_REQUEST, "message": "invalid request"})
        method = self.methods.get(name)
        if method is None and extra:
            method = extra.get(name)
        if id_ is _MISSING:  # a notification: run nothing that answers, as geth does for unknown ids
            if method is not None:
                try:
                    await self._call(method, request.get("params"))
                except RpcError:
                    pass
            return None
        metrics = self.metrics
        if method is None:
            if metrics is not None:  # not the name: clients must not grow the label set
                metrics.observe("unknown", METHOD_NOT_FOUND, 0)
            return self._respond(id_, raw_id, "error", {
                "code": METHOD_NOT_FOUND, "message": f"the method {name} does not exist/is not available"
                           + _namespace_off(name, self.methods)})
        started = time.perf_counter_ns() if metrics is not None else 0
        code = 0
        try:
            result = await self._call(method, request.get("params"))
        except RpcError as exc:
            code = exc.code
            answer = self._respond(id_, raw_id, "error", exc.to_json())
        else:
            try:
                if raw_id is None:
                    answer = orjson.dumps({"jsonrpc": "2.0", "id": id_, "result": result})
                else:
                    answer = self._respond(id_, raw_id, "result", result)
            except orjson.JSONEncodeError:  # a result JSON cannot carry (a bug in the method)
                self.stats["internal_errors"] += 1
                log.exception("internal error encoding the result of %s", name)
                code = INTERNAL_ERROR
                answer = self._respond(id_, raw_id, "error", {"code": INTERNAL_ERROR, "message": "internal error"})
        if metrics is not None:
            metrics.observe(method.name, code, time.perf_counter_ns() - started)
        return answer

    @staticmethod
    def _respond(id_: object, raw_id: bytes | None, key: str, value: object) -> bytes:
        if raw_id is None:  # the id encodes back as sent: one encoding of the whole answer
            return orjson.dumps({"jsonrpc": "2.0", "id": id_, key: value})
        return b'{"jsonrpc":"2.0","id":' + raw_id + b',"' + key.encode() + b'":' + orjson.dumps(value) + b"}"

    async def _call(self, method: Method, params: object) -> object:
        try:
            args = method.bind(params)
            if method.is_async:
                return await method.fn(*args)
            return method.fn(*args)
        except RpcError:
            raise
        except Exception:  # a bug must not leak a traceback to the client nor kill the connection
            self.stats["internal_errors"] += 1
            log.exception("internal error in %s", method.name)
            raise RpcError("internal error", code=INTERNAL_ERROR) from None
