"""Logs an operator can read: levels per component, terminal or JSON lines, one line per block,
and secrets kept out.

`--log.level` sets the level of every logger; `--log.vmodule node.rpc=debug,node.services=warn`
overrides it per component (a logger name and everything under it, as go-ethereum's --vmodule
does per package). `--log.format terminal` writes go-ethereum-like lines
(`INFO  [12-06|12:30:01.123] node.chain: imported block number=12 ...`), `json` one JSON object per
line with the same fields (`t`, `lvl`, `logger`, `msg`, then the record's own fields).

Secrets: the node never formats a key or a password into a log message (tests/ops/test_secrets.py
runs real flows at debug level and greps every line); as a second guard, passwords and keys the
process reads are registered with `register_secret`, and any log line containing one has it
replaced by `<redacted>` before it is written.
"""
from __future__ import annotations

import datetime
import logging
import sys
import threading

import orjson

LEVELS = {"crit": logging.CRITICAL, "critical": logging.CRITICAL, "error": logging.ERROR, "warn": logging.WARNING,
          "warning": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG, "trace": 5}
FORMATS = ("terminal", "json")
MIN_SECRET = 6  # shorter strings are not registered: replacing them would garble ordinary text
_NAMES = {logging.CRITICAL: "CRIT", logging.ERROR: "ERROR", logging.WARNING: "WARN", logging.INFO: "INFO",
          logging.DEBUG: "DEBUG", 8: "DEBUG2", 5: "TRACE"}  # 8: py-evm's DEBUG2
_secrets: tuple[str, ...] = ()  # replaced whole, never mutated: formatters in other threads read it
_secrets_lock = threading.Lock()
_handler: logging.Handler | None = None


def level(text: str) -> int:
    """A level name (crit, error, warn, info, debug, trace); ValueError naming a bad one."""
    try:
        return LEVELS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"invalid log level {text!r}: want one of crit, error, warn, info, debug, trace") from None


def vmodule(text: str) -> dict[str, int]:
    """`name=level,name=level` -> {logger name: level}; ValueError naming a bad entry."""
    out = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, sep, value = entry.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"invalid --log.vmodule entry {entry!r}: want COMPONENT=LEVEL, e.g. node.rpc=debug")
        out[name.strip()] = level(value)
    return out


def register_secret(secret: str | bytes | None) -> None:
    """Never let `secret` (a password, a private key in hex) reach a log line."""
    if isinstance(secret, bytes):
        for text in (secret.hex(), "0x" + secret.hex()):
            register_secret(text)
        return
    global _secrets
    if secret and len(secret) >= MIN_SECRET:
        with _secrets_lock:
            if secret not in _secrets:
                _secrets = (*_secrets, secret)


def _redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "<redacted>")
    return text


def _fields(record: logging.LogRecord) -> dict:
    return getattr(record, "fields", None) or {}


class TerminalFormatter(logging.Formatter):
    """`LEVEL [MM-DD|HH:MM:SS.mmm] logger: message key=value ...` (go-ethereum's terminal format)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created)
        line = (f"{_NAMES.get(record.levelno, record.levelname):<5} [{when:%m-%d|%H:%M:%S}.{int(record.msecs):03d}] "
                f"{record.name}: {record.getMessage()}")
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return _redact(line) if _secrets else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: t (UTC, ISO 8601), lvl, logger, msg, the record's fields, error."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        entry = {"t": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                 "lvl": _NAMES.get(record.levelno, record.levelname).lower(), "logger": record.name,
                 "msg": record.getMessage(), **_fields(record)}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        line = orjson.dumps(entry, default=str).decode()
        return _redact(line) if _secrets else line


def setup(level_name: str = "info", overrides: str = "", fmt: str = "terminal", stream=None) -> None:
    """Configure the process's logging (replacing an earlier setup): the root level, the
    per-component overrides and one handler on `stream` (stderr by default)."""
    global _handler
    if fmt not in FORMATS:
        raise ValueError(f"invalid --log.format {fmt!r}: want terminal or json")
    root_level, per_component = level(level_name), vmodule(overrides)
    logging.addLevelName(5, "TRACE")
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(stream or sys.stderr)
    _handler.setFormatter(JsonFormatter() if fmt == "json" else TerminalFormatter())
    root.addHandler(_handler)
    root.setLevel(root_level)
    for name, value in per_component.items():
        logging.getLogger(name).setLevel(value)


# -- one line per block ---------------------------------------------------------------------------

block_log = logging.getLogger("node.chain")


def block_logger(node):
    """A node listener writing one INFO line per committed block."""
    def on_block(block, receipts) -> None:
        if not block_log.isEnabledFor(logging.INFO):
            return
        origin, seconds = node.last_commit
        header = block.header
        block_log.info("%s block", "imported" if origin == "imported" else "built", extra={"fields": {
            "number": header.block_number, "hash": "0x" + header.hash.hex(), "txs": len(block.transactions),
            "gas": header.gas_used, "ms": round(seconds * 1000, 2)}})
    return on_block
