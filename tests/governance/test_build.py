"""The governance bytecode in genesis is what the project builds from source: OpenZeppelin
Contracts at the version package.json pins and contracts/governance/, through solc-js."""
import json
import pathlib
import shutil

import pytest

from tests.governance import build

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not build.SOLCJS.exists() or shutil.which("node") is None,
                    reason="solc-js not installed: run `npm install` (make test does)")
def test_committed_artifact_is_byte_identical_to_a_fresh_build():
    assert build.ARTIFACT.read_text() == build.dumps(build.build())


def test_artifact_names_the_pinned_compiler_and_library():
    pins = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    artifact = json.loads(build.ARTIFACT.read_text())
    assert (artifact["solc"], artifact["openzeppelin"]) == (pins["solc"], pins["@openzeppelin/contracts"])
