"""DESIGN.md's layering, checked on the source: `vm/` and `consensus/` do no I/O and never import
`node/`; the ML packages (`training/`, `attribution/`, `inference/`) never import `node/`."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "vm": {"node", "training", "attribution", "inference", "socket", "plyvel", "trio"},
    "consensus": {"node", "vm", "training", "attribution", "inference", "socket", "plyvel", "trio"},
    "genesis": {"node", "training", "attribution", "inference", "plyvel", "trio"},
    "training": {"node"},
    "attribution": {"node"},
    "inference": {"node"},
}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_layering(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package}/ has no Python files"
    bad = {
        str(f.relative_to(ROOT)): sorted(_imports(f) & FORBIDDEN[package])
        for f in files
        if _imports(f) & FORBIDDEN[package]
    }
    assert not bad, f"layering violations: {bad}"


PACKAGES = ("genesis", "vm", "consensus", "node", "training", "attribution", "inference")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _our_imports(path: pathlib.Path, modules: set[str]) -> set[str]:
    """Our modules that `path` imports, at load time or deferred inside a function (a deferred
    import is still a circle); imports for type checking only are left out."""
    found: set[str] = set()
    for stmt in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
            continue
        for node in ast.walk(stmt):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            found.update(n for n in names if n in modules)
    return found


def test_no_import_cycles_between_modules() -> None:
    """An import circle makes import order matter; a package's parts import one way. (A package's
    `__init__` re-exporting its own submodules is not a circle between modules.)"""
    files = {_module_name(f): f for pkg in PACKAGES for f in (ROOT / pkg).rglob("*.py")}
    modules = set(files)
    graph = {
        name: {m for m in _our_imports(path, modules) if not name.startswith(m + ".") and m != name}
        for name, path in files.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
