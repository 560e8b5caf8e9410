"""The execution-apis conformance runner: our node against the rpc-compat fixtures.

Starts the node as a user would (`openledger init`, `openledger import`, `openledger run`), then
replays every `tests/<method>/<name>.io` round trip and compares the answer the way hive's
rpc-compat simulator does: JSON equality with numbers compared as numbers; when both sides are
errors only the codes are compared (messages are free text); `// speconly` fixtures are checked
against the method's result schema in spec/ instead of the recorded value.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import subprocess
from collections.abc import Iterator
from typing import Any

import jsonschema
import yaml

from tests.rpc.nodes import NodeProcess, free_port, openledger

ROOT = pathlib.Path(__file__).resolve().parents[2]
SUITE = ROOT.parent / "shared" / "conformance" / "execution-apis"
APIS = "eth,net,web3,debug,txpool,testing"

# Fixtures we do not pass, each with the reason (strict xfail: a fixed one must leave this list).
KNOWN_FAILURES: dict[str, str] = {
}


@dataclasses.dataclass(frozen=True)
class Exchange:
    request: str
    expected: Any


@dataclasses.dataclass(frozen=True)
class Fixture:
    method: str
    name: str
    speconly: bool
    exchanges: tuple[Exchange, ...]

    @property
    def id(self) -> str:
        return f"{self.method}/{self.name}"


def load_fixtures(tests_dir: pathlib.Path = SUITE / "tests") -> list[Fixture]:
    """Every `.io` file, sorted by path (the order hive replays them in)."""
    fixtures = []
    for path in sorted(tests_dir.glob("*/*.io")):
        speconly, exchanges, request = False, [], None
        for line in path.read_text().splitlines():
            if line.startswith("//"):
                speconly = speconly or line[2:].strip().startswith("speconly")
            elif line.startswith(">> "):
                request = line[3:]
            elif line.startswith("<< "):
                if request is None:
                    raise ValueError(f"{path}: response without a request")
                exchanges.append(Exchange(request, json.loads(line[3:])))
                request = None
        if not exchanges:
            raise ValueError(f"{path}: no request/response pair")
        fixtures.append(Fixture(path.parent.name, path.stem, speconly, tuple(exchanges)))
    if not fixtures:
        raise FileNotFoundError(f"no .io fixtures under {tests_dir}")
    return fixtures


# -- comparison -------------------------------------------------------------------------------

def json_diff(expected: Any, actual: Any, path: str = "$") -> str | None:
    """First difference between two JSON values (numbers compared numerically), or None."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return None if expected is actual else f"{path}: want {expected!r}, got {actual!r}"
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return None if expected == actual else f"{path}: want {expected!r}, got {actual!r}"
    if isinstance(expected, dict) and isinstance(actual, dict):
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        if missing or extra:
            return f"{path}: missing keys {missing}, unexpected keys {extra}"
        for key in expected:
            diff = json_diff(expected[key], actual[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{path}: want {len(expected)} items, got {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            diff = json_diff(e, a, f"{path}[{i}]")
            if diff:
                return diff
        return None
    if type(expected) is not type(actual) or expected != actual:
        return f"{path}: want {_short(expected)}, got {_short(actual)}"
    return None


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


@functools.lru_cache(maxsize=1)
def _spec() -> tuple[dict[str, Any], dict[str, Any]]:
    """(method name -> result schema, all component schemas) from the OpenRPC YAML."""
    schemas: dict[str, Any] = {}
    for path in sorted((SUITE / "spec" / "schemas").glob("*.yaml")):
        schemas.update(yaml.safe_load(path.read_text()) or {})
    methods: dict[str, Any] = {}
    for path in sorted((SUITE / "spec").glob("*/*.yaml")):
        if path.parent.name in ("schemas", "error-groups"):
            continue
        for method in yaml.safe_load(path.read_text()) or []:
            if isinstance(method, dict) and "name" in method:
                methods[method["name"]] = method.get("result", {}).get("schema", {})
    return methods, schemas


def schema_errors(method: str, result: Any) -> str | None:
    """Why `result` does not fit the method's result schema (None when it fits)."""
    methods, schemas = _spec()
    if method not in methods:
        return f"{method}: no result schema in spec/"
    root = {"components": {"schemas": schemas}, **methods[method]}
    validator = jsonschema.Draft202012Validator(root)
    error = jsonschema.exceptions.best_match(validator.iter_errors(result))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "$"
    return f"schema: at {where}: {error.message[:200]}"


def check(fixture: Fixture, exchange: Exchange, actual: Any) -> str | None:
    """Why `actual` fails this exchange, or None when it passes."""
    expected = exchange.expected
    if not isinstance(actual, dict):
        return f"not a JSON-RPC response: {_short(actual)}"
    if "error" in expected:
        if "error" not in actual:
            return f"want error {expected['error'].get('code')}, got result {_short(actual.get('result'))}"
        error = actual["error"]
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return f"malformed error object {_short(error)}"
        if error.get("code") != expected["error"].get("code"):
            return f"want error code {expected['error'].get('code')}, got {error.get('code')} ({error.get('message')})"
        return None
    if "error" in actual:
        return f"want result, got error {actual['error'].get('code')}: {actual['error'].get('message')}"
    if "result" not in actual:
        return "response has neither result nor error"
    method = json.loads(exchange.request).get("method")
    if fixture.speconly:
        return schema_errors(method, actual["result"])
    return json_diff(expected.get("result"), actual["result"], "result")


# -- the node process ------------------------------------------------------------------------

def start_node(tmp: pathlib.Path, suite: pathlib.Path = SUITE, apis: str = APIS) -> NodeProcess:
    """`openledger init` + `import` of the suite's chain into `tmp`/data, then `openledger run` on it."""
    datadir, tests = tmp / "data", suite / "tests"
    for args in (["init", str(tests / "genesis.json"), "--datadir", str(datadir)],
                 ["import", str(tests / "chain.rlp"), "--datadir", str(datadir)]):
        done = subprocess.run(openledger(*args), capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"openledger {args[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    port = free_port()
    cmd = openledger("run", "--datadir", str(datadir), "--http.port", str(port), "--http.api", apis)
    return NodeProcess(cmd, port, tmp / "node.log").wait_ready(60)


@dataclasses.dataclass
class Outcome:
    fixture: Fixture
    failure: str | None


def run_fixture(node: NodeProcess, fixture: Fixture) -> Outcome:
    for exchange in fixture.exchanges:
        failure = check(fixture, exchange, node.post(exchange.request))
        if failure:
            return Outcome(fixture, failure)
    return Outcome(fixture, None)


def run_all(node: NodeProcess, fixtures: list[Fixture]) -> Iterator[Outcome]:
    for fixture in fixtures:
        yield run_fixture(node, fixture)


def summary_line(outcomes: list[Outcome]) -> str:
    passed = sum(1 for o in outcomes if o.failure is None)
    return f"rpc-compat: {passed} passed, {len(outcomes) - passed} failed of {len(outcomes)}"


def print_table(outcomes: list[Outcome], console: Any = None) -> None:
    """Per-method pass/fail counts and each failure's first difference, then the summary line."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    by_method: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_method.setdefault(outcome.fixture.method, []).append(outcome)
    table = Table(title="execution-apis rpc-compat")
    for column in ("method", "passed", "failed", "first failure"):
        table.add_column(column, overflow="fold")
    for method, items in sorted(by_method.items()):
        failed = [o for o in items if o.failure]
        note = f"{failed[0].fixture.name}: {failed[0].failure}" if failed else ""
        table.add_row(method, str(len(items) - len(failed)), str(len(failed)), note[:160])
    console.print(table)
    print(summary_line(outcomes), flush=True)
