"""One config file for `openledger run|devnet --config node.toml`, `openledger config dump`, and
the operator's flags (`--metrics*`, `--ready.*`, `--log.*`).

The file's keys are the commands' own long flags, read from the argparse parser, so a flag another
module adds later is a key with no change here: `--http.port 8545` is `http.port = 8545`, which
TOML also spells as a table (`[http]` then `port = 8545`); `--block-time 2` is `block-time = 2`. A
flag that is also the head of a table (`--metrics` beside `--metrics.port`) is written `enabled`
inside that table (`[metrics]` `enabled = true`), or `metrics = true` when the file has no
`[metrics]` table. Values are TOML values: booleans for switches, numbers or strings, arrays for
lists (`http.api = ["eth", "net"]`) and repeatable flags (`param = ["dispute_window_s=10"]`); each
is checked by the flag's own parser, so a bad value gets the flag's message.

Precedence: a flag on the command line beats the file, the file beats the defaults (a repeatable
flag given on the command line replaces the file's list). A key that names no flag is refused
with its name and the closest flag.
"""
from __future__ import annotations

import argparse
import difflib
import pathlib
import sys
import tomllib
from collections.abc import Sequence

from node.cli.common import CliError, port, positive_number, uint

ENABLED = "enabled"


# -- operator flags -------------------------------------------------------------------------------

def _log_level(text: str) -> str:
    from node import logs

    try:
        logs.level(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text.strip().lower()


def _vmodule(text: str) -> str:
    from node import logs

    try:
        logs.vmodule(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_log_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("logging")
    g.add_argument("--log.level", dest="log_level", type=_log_level, default="info", metavar="LEVEL",
                   help="crit, error, warn, info, debug or trace (default info)")
    g.add_argument("--log.vmodule", dest="log_vmodule", type=_vmodule, default="", metavar="LIST",
                   help="per-component levels, e.g. node.rpc=debug,node.services=warn")
    g.add_argument("--log.format", dest="log_format", choices=("terminal", "json"), default="terminal",
                   help="terminal lines or one JSON object per line (default terminal)")


def add_operator_flags(p: argparse.ArgumentParser) -> None:
    """--config, --metrics*, --ready.*, --log.* on `run` and `devnet`."""
    p.add_argument("--config", dest="node_config", metavar="FILE",
                   help="TOML file of flag values (flags given here override it; see docs/operating.md)")
    g = p.add_argument_group("metrics and readiness (see docs/operating.md)")
    g.add_argument("--metrics", action="store_true", help="serve Prometheus metrics on --metrics.addr:--metrics.port")
    g.add_argument("--metrics.addr", dest="metrics_addr", default="127.0.0.1", metavar="ADDR",
                   help="metrics listening interface (default 127.0.0.1)")
    g.add_argument("--metrics.port", dest="metrics_port", type=port, default=6060, metavar="PORT",
                   help="metrics port: /metrics, /health, /ready (default 6060)")
    g.add_argument("--ready.blocktimes", dest="ready_blocktimes", type=positive_number, default=3.0, metavar="N",
                   help="/ready fails when the head is older than N block times (default 3; at least 10 s)")
    g.add_argument("--ready.maxage", dest="ready_maxage", type=positive_number, default=None, metavar="S",
                   help="/ready fails when the head is older than S seconds (overrides --ready.blocktimes; "
                        "also applies with --block-time 0)")
    g.add_argument("--ready.peers", dest="ready_peers", type=uint, default=1, metavar="N",
                   help="/ready fails with fewer peers, once the node runs p2p (default 1)")
    add_log_flags(p)


def operator_config(args: argparse.Namespace) -> dict:
    """NodeConfig's metrics and readiness fields from the flags."""
    from node.health import ReadinessConfig
    from node.metrics import MetricsConfig

    try:
        return {"metrics": MetricsConfig(enabled=args.metrics, addr=args.metrics_addr, port=args.metrics_port),
                "readiness": ReadinessConfig(block_times=args.ready_blocktimes, max_age=args.ready_maxage,
                                             min_peers=args.ready_peers)}
    except ValueError as e:
        raise CliError(str(e)) from None


def log_flags(args: argparse.Namespace) -> list[str]:
    """The --log.* flags as given, for a child process (the services)."""
    return [f"--log.level={args.log_level}", f"--log.vmodule={args.log_vmodule}", f"--log.format={args.log_format}"]


# -- the file ----------------------------------------------------------------------------------

def flag_keys(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Config key -> action: each optional flag of `parser` by its first long name, minus --config."""
    keys = {}
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or action.dest in ("help", "node_config") or not action.option_strings:
            continue
        long = next((o for o in action.option_strings if o.startswith("--")), None)
        if long is not None:
            keys[long[2:]] = action
    return keys


def _flatten(table: dict, keys: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(_flatten(value, keys, key + "."))
        elif name == ENABLED and prefix and key not in keys and prefix[:-1] in keys:
            out[prefix[:-1]] = value
        else:
            out[key] = value
    return out


def _text(value: object) -> str:
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    if isinstance(value, (dict, bool)) or value is None:
        raise ValueError("want a string, a number or an array")
    return str(value)


def _convert(action: argparse.Action, value: object) -> object:
    """The value the flag would take for `value` (ValueError / ArgumentTypeError with its message)."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise ValueError("want true or false")
        return action.const if value else action.default
    if isinstance(action, argparse.BooleanOptionalAction):  # --ui / --no-ui
        if not isinstance(value, bool):
            raise ValueError("want true or false")
        return value
    if isinstance(action, argparse._AppendAction):
        return [_convert_one(action, item) for item in (value if isinstance(value, list) else [value])]
    return _convert_one(action, value)


def _convert_one(action: argparse.Action, value: object) -> object:
    text = _text(value)
    converted = action.type(text) if action.type is not None else text
    if action.choices is not None and converted not in action.choices:
        raise ValueError(f"want one of {', '.join(map(str, action.choices))}")
    return converted


def load(path: str | pathlib.Path, parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.Action, object]]:
    """The file's settings for `parser`'s flags: key -> (action, converted value). CliError names
    the file and the key for an unreadable file, an unknown key or a bad value."""
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except OSError as e:
        raise CliError(f"cannot read config file {str(path)!r}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise CliError(f"config file {str(path)!r} is not valid TOML: {e}") from None
    keys = flag_keys(parser)
    out = {}
    for key, value in _flatten(table, keys).items():
        action = keys.get(key)
        if action is None:
            close = difflib.get_close_matches(key, list(keys), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(sorted(keys))}"
            raise CliError(f"config file {str(path)!r}: unknown key {key!r}{hint}")
        try:
            out[key] = (action, _convert(action, value))
        except (ValueError, TypeError, argparse.ArgumentTypeError) as e:
            raise CliError(f"config file {str(path)!r}: {key} = {value!r}: {e}") from None
    return out


def _command(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser | None:
    """The (sub)parser that will parse `argv`'s options: the deepest subcommand named in it."""
    for token in argv:
        if token.startswith("-"):
            continue
        subparsers = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if subparsers is None or token not in subparsers.choices:
            break
        parser = subparsers.choices[token]
    return parser


def _given(argv: Sequence[str], option: str) -> bool:
    return any(t == option or t.startswith(option + "=") for t in argv)


def _option_value(argv: Sequence[str], option: str) -> str | None:
    for i, token in enumerate(argv):
        if token == option and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(option + "="):
            return token.split("=", 1)[1]
    return None


def apply(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Make the values of `--config FILE` (if argv has one) the defaults of the command's parser:
    then flags on the command line override them, and they override the built-in defaults."""
    command = _command(parser, argv)
    path = _option_value(argv, "--config")
    if command is None or path is None or "node_config" not in {a.dest for a in command._actions}:
        return  # not a command that takes a node config (`train --config` is a training config)
    defaults = {}
    for key, (action, value) in load(path, command).items():
        if isinstance(action, argparse._AppendAction) and any(_given(argv, o) for o in action.option_strings):
            continue  # the command line's list replaces the file's
        defaults[action.dest] = value
        action.required = False  # given by the file
    command.set_defaults(**defaults)


# -- openledger config dump ------------------------------------------------------------------------

def _toml_value(action: argparse.Action, value: object) -> object:
    if isinstance(value, pathlib.Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        if isinstance(action, argparse._AppendAction):
            return [("=".join(map(str, v)) if isinstance(v, tuple) else _toml_value(action, v)) for v in value]
        return [_toml_value(action, v) for v in value]
    return value


def effective(parser: argparse.ArgumentParser, argv: Sequence[str]) -> dict:
    """The configuration `parser` would run with for `argv` (file applied), as a TOML table."""
    apply(parser, argv)
    for action in parser._actions:
        action.required = False  # a dump shows what is set; the command itself asks for the rest
    args = parser.parse_args(argv)
    out: dict = {}
    keys = flag_keys(parser)
    for key, action in keys.items():
        value = getattr(args, action.dest, None)
        if value is None or (isinstance(action, argparse._AppendAction) and not value):
            continue
        table, parts = out, key.split(".")
        for part in parts[:-1]:
            existing = table.get(part)
            if existing is not None and not isinstance(existing, dict):
                table[part] = existing = {ENABLED: existing}
            table = table.setdefault(part, {})
        last = parts[-1]
        if isinstance(table.get(last), dict):
            table[last][ENABLED] = _toml_value(action, value)
        else:
            table[last] = _toml_value(action, value)
    return out


def cmd_dump(args: argparse.Namespace) -> int:
    import tomli_w

    from node.cli import build_parser

    root = build_parser()
    command = _command(root, [args.target])
    if command is root:
        raise CliError(f"no command {args.target!r}")
    try:
        table = effective(command, args.extra)
    except SystemExit as e:  # argparse already printed what was wrong with a flag
        return int(e.code or 0)
    sys.stdout.write(f"# effective configuration of `openledger {args.target}`: flags > --config file > defaults\n")
    sys.stdout.write(tomli_w.dumps(table))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("config", help="show the effective configuration",
                              description="Work with node.toml, the config file of `run` and `devnet` (--config).")
    sub = p.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    d = sub.add_parser("dump", help="print the effective configuration as TOML",
                       description="Print the configuration `openledger run` (or --for devnet) would use with the "
                                   "flags that follow, --config FILE included, as TOML a --config file accepts.")
    d.add_argument("--for", dest="target", choices=("run", "devnet"), default="run",
                   help="the command whose configuration to print (default run)")
    d.set_defaults(func=cmd_dump, extra_args=True)
