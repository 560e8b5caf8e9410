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
