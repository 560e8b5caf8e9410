"""The JSON-RPC 2.0 layer: body bytes in, body bytes out, independent of the transport.

Method tables map wire names to handlers. A handler's parameters are declared with
`Annotated[T, parser]` (see `params`); the dispatcher checks arity and parses arguments once per
call with the parsers it read from the signature at start, so handlers see Python values only.
Sync handlers run inline on the event loop and must be cheap; `async` handlers may leave the loop
(`trio.to_thread.run_sync` behind a capacity limiter) for EVM execution.
"""
from __future__ import annotations

import inspect
import logging
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import orjson

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


def _valid_id(value: object) -> bool:
    return value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))


def _namespace_off(name: str, methods: Mapping[str, Method]) -> str:
    """Geth's text says only that a method is missing; when its namespace exists but is not served,
    say so and name the flag that turns it on."""
    namespace = name.partition("_")[0]
    if namespace not in known_namespaces() or any(m.startswith(namespace + "_") for m in methods):
        return ""
    return f" (the {namespace} API is off: add {namespace} to --http.api)"


class Dispatcher:
    """Answers request bodies from a method table; `extra` adds per-connection methods (WS)."""

    def __init__(self, methods: Mapping[str, Method], *, max_batch: int = 1000,
                 max_response_bytes: int = 25 * 1024 * 1024) -> None:
        self.methods = dict(methods)
        self.max_batch = max_batch
        self.max_response_bytes = max_response_bytes

    async def handle_body(self, body: bytes, extra: Mapping[str, Method] | None = None) -> bytes | None:
        """The response body, or None when every request was a notification."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return PARSE_ERROR_BODY
        if isinstance(request, list):
            if not request:
                return error_body(None, INVALID_REQUEST, "empty batch")
            if len(request) > self.max_batch:
                return error_body(None, INVALID_REQUEST, "batch too large")
            responses = []
            size = 0
            for item in request:
                response = await self.handle_one(item, extra)
                if response is None:
                    continue
                encoded = orjson.dumps(response)
                size += len(encoded)
                if size > self.max_response_bytes:
                    encoded = orjson.dumps(_error(item.get("id"), INVALID_REQUEST, "response too large"))
                responses.append(encoded)
            return b"[" + b",".join(responses) + b"]" if responses else None
        response = await self.handle_one(request, extra)
        return None if response is None else orjson.dumps(response)

    async def handle_one(self, request: object, extra: Mapping[str, Method] | None = None) -> dict | None:
        if not isinstance(request, dict):
            return _error(None, INVALID_REQUEST, "invalid request")
        id_ = request.get("id", _MISSING)
        name = request.get("method")
        if (id_ is not _MISSING and not _valid_id(id_)) or not isinstance(name, str) or request.get("jsonrpc") != "2.0":
            return _error(id_ if id_ is not _MISSING and _valid_id(id_) else None, INVALID_REQUEST, "invalid request")
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
        if method is None:
            return _error(id_, METHOD_NOT_FOUND, f"the method {name} does not exist/is not available"
                          + _namespace_off(name, self.methods))
        try:
            result = await self._call(method, request.get("params"))
        except RpcError as exc:
            return {"jsonrpc": "2.0", "id": id_, "error": exc.to_json()}
        return {"jsonrpc": "2.0", "id": id_, "result": result}

    async def _call(self, method: Method, params: object) -> object:
        try:
            args = method.bind(params)
            if method.is_async:
                return await method.fn(*args)
            return method.fn(*args)
        except RpcError:
            raise
        except Exception:  # a bug must not leak a traceback to the client nor kill the connection
            log.exception("internal error in %s", method.name)
            raise RpcError("internal error", code=INTERNAL_ERROR) from None
