"""The committed L1 artifact (node/settlement/l1.json) is what solc-js builds from contracts/l1/."""
import shutil

import pytest

from node.settlement import build


def test_committed_artifact_is_a_fresh_build():
    if not build.SOLCJS.exists() or shutil.which("node") is None:
        pytest.skip("solc-js comes from npm: run `npm install` (make test does)")
    assert build.dumps(build.build()) == build.ARTIFACT.read_text()
