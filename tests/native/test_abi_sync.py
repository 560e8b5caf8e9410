"""The committed ABIs (vm/abi/*.json) are exactly what solc-js compiles from the Solidity
interfaces in contracts/native/, so the documented interface and the dispatched one never drift."""
import json
import pathlib
import subprocess

import pytest

from vm.modules import MODULES, load_abi

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("abi")
    sources = [f"contracts/native/I{m.name}.sol" for m in MODULES]
    subprocess.run([str(ROOT / "node_modules/.bin/solcjs"), "--abi", "-o", str(out), *sources],
                   cwd=ROOT, check=True, capture_output=True)
    return out


@pytest.mark.parametrize("name", [m.name for m in MODULES])
def test_committed_abi_matches_the_solidity_interface(name, compiled):
    abi = json.loads(next(compiled.glob(f"*_I{name}.abi")).read_text())
    key = lambda e: (e["type"], e.get("name", ""))  # noqa: E731
    assert sorted(abi, key=key) == sorted(load_abi(name), key=key)
